"""Reading a microbenchmark run (`cbench micro`): tables and bar charts of Google Benchmark JSON.

A micro run directory holds meta.json ("kind": "micro"; "micro.binaries" lists each binary's
JSON file) and one Google Benchmark JSON file per binary (bench/<subject>_bench.cpp). This
module only reads them: `cbench report` and `cbench plot` call it for micro runs (charts:
micro-time-per-op, and micro-thread-memory from thread_bench's memory counters).

Figures: per benchmark, the median over its repetitions of each value (the raw repetitions are
in the JSON; the library's own mean/median/stddev/cv aggregates are used only when a file has no
raw repetitions). "Time per op" is 1e9 / items_per_second when the benchmark counts items (an op
is then what it counts: a request, a hand-off, a round trip, a loop round, a thread), else the
time per iteration; either on the benchmark's clock (real time for benchmarks that cross threads
or make system calls, CPU time for the codec).
"""
from __future__ import annotations

import json
import math
import os
import re
import statistics
from dataclasses import dataclass, field

# Other processes' CPU use (fraction of a CPU) above which a binary's figures are marked
# disturbed: the sweep's threshold, so that both kinds of run are judged alike.
from .verdict import DISTURBED_CPU

# Fields of a Google Benchmark entry that are not user counters.
_STANDARD_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label",
}
RATE_COUNTERS = ("items_per_second", "bytes_per_second")
_TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Subjects in the order of the issue (codec first: it is in every model's path).
SUBJECT_ORDER = ("codec", "queue", "wakeup", "loop", "thread")


def is_micro_run(run) -> bool:
    """True for a run written by `cbench micro` (a Run from runload, or anything with .meta)."""
    meta = getattr(run, "meta", None) or {}
    return meta.get("kind") == "micro"


@dataclass
class Bench:
    """One benchmark (a run_name) of one binary, summarised over its repetitions."""
    subject: str
    run_name: str
    real_time_clock: bool
    reps: int = 0
    ns_per_op: float | None = None       # median over repetitions
    ns_per_op_min: float | None = None
    ns_per_op_max: float | None = None
    per_op_from_items: bool = False
    counters: dict = field(default_factory=dict)  # name -> median value (rates included)
    error: str | None = None

    @property
    def display_name(self) -> str:
        """The run name without the parts the table says otherwise (clock, fixed iteration count)."""
        return re.sub(r"/(real_time|manual_time|iterations:\d+)(?=/|$)", "", self.run_name)


@dataclass
class Subject:
    name: str               # "codec" for codec_bench
    binary: str
    file: str               # JSON file, relative to the run directory
    benches: list = field(default_factory=list)
    context: dict = field(default_factory=dict)
    error: str | None = None  # the file is missing or unreadable, or the binary failed


def _ns(entry: dict, key: str) -> float | None:
    v = entry.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    return float(v) * _TIME_UNIT_NS.get(entry.get("time_unit", "ns"), 1.0)


def _per_op_ns(entry: dict, real_clock: bool) -> tuple[float | None, bool]:
    ips = entry.get("items_per_second")
    if isinstance(ips, (int, float)) and ips > 0:
        return 1e9 / float(ips), True
    return _ns(entry, "real_time" if real_clock else "cpu_time"), False


def _counters(entry: dict) -> dict:
    return {k: float(v) for k, v in entry.items()
            if k not in _STANDARD_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)}


def summarise(entries: list[dict], subject: str) -> list[Bench]:
    """Benches in file order from a Google Benchmark "benchmarks" list."""
    order: list[str] = []
    raw: dict[str, list[dict]] = {}
    aggregates: dict[str, dict[str, dict]] = {}
    for e in entries:
        if not isinstance(e, dict):
            continue
        name = str(e.get("run_name") or e.get("name") or "?")
        if name not in raw:
            order.append(name)
            raw[name] = []
            aggregates[name] = {}
        if e.get("run_type") == "aggregate":
            aggregates[name][str(e.get("aggregate_name"))] = e
        else:
            raw[name].append(e)
    out = []
    for name in order:
        real_clock = name.endswith("/real_time") or name.endswith("/manual_time")
        b = Bench(subject=subject, run_name=name, real_time_clock=real_clock)
        errors = [e for e in raw[name] if e.get("error_occurred")]
        ok = [e for e in raw[name] if not e.get("error_occurred")]
        if errors and not ok:
            b.error = str(errors[0].get("error_message") or "error")
            out.append(b)
            continue
        if not ok and "median" in aggregates[name]:
            ok = [aggregates[name]["median"]]  # a file written with report_aggregates_only
        if not ok:
            continue
        b.reps = len(ok)
        per_op = [v for v, _ in (_per_op_ns(e, real_clock) for e in ok) if v is not None and math.isfinite(v)]
        b.per_op_from_items = _per_op_ns(ok[0], real_clock)[1]
        if per_op:
            b.ns_per_op = statistics.median(per_op)
            b.ns_per_op_min, b.ns_per_op_max = min(per_op), max(per_op)
        keys = []
        for e in ok:
            keys += [k for k in _counters(e) if k not in keys]
        for k in keys:
            vals = [_counters(e)[k] for e in ok if k in _counters(e)]
            if vals:
                b.counters[k] = statistics.median(vals)
        if errors:
            b.error = f"{len(errors)} of {len(raw[name])} repetitions failed: {errors[0].get('error_message')}"
        out.append(b)
    return out


def subject_of(binary: str) -> str:
    return binary[: -len("_bench")] if binary.endswith("_bench") else binary


def load_subjects(run_dir: str, meta: dict) -> list[Subject]:
    """Every binary's results, in subject order; files named in meta first, else *_bench.json."""
    listed = (meta.get("micro") or {}).get("binaries") or []
    entries = [(b.get("name"), b.get("file"), b) for b in listed if isinstance(b, dict) and b.get("name")]
    if not entries:
        entries = [(f[: -len(".json")], f, {}) for f in sorted(os.listdir(run_dir))
                   if f.endswith("_bench.json")]
    subjects = []
    for name, rel, info in entries:
        s = Subject(name=subject_of(name), binary=name, file=rel or f"{name}.json")
        path = os.path.join(run_dir, s.file)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            s.context = doc.get("context") or {}
            s.benches = summarise(doc.get("benchmarks") or [], s.name)
        except (OSError, ValueError, AttributeError) as exc:
            s.error = f"{s.file}: cannot read ({exc})"
        status = info.get("exit_status")
        if isinstance(status, int) and status != 0:
            note = f"{name} exited with status {status}"
            s.error = f"{s.error}; {note}" if s.error else note
        subjects.append(s)
    rank = {n: i for i, n in enumerate(SUBJECT_ORDER)}
    subjects.sort(key=lambda s: (rank.get(s.name, len(rank)), s.name))
    return subjects


# ---------------------------------------------------------------- text
def fmt_time_ns(ns: float | None) -> str:
    """'85.2 ns', '4.31 µs', '1.20 ms'."""
    if ns is None:
        return "–"
    for limit, unit, scale in ((1e3, "ns", 1.0), (1e6, "µs", 1e3), (1e9, "ms", 1e6)):
        if ns < limit:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns / 1e9:.3g} s"


def fmt_si(v: float, unit: str = "") -> str:
    """Three significant digits with k/M/G: '11.8M/s'."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{v / limit:.3g}{suffix}{unit}"
    return f"{v:.3g}{unit}"


def fmt_counter(name: str, v: float) -> str:
    if name == "items_per_second":
        return fmt_si(v, "/s")
    if name == "bytes_per_second":
        for limit, suffix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if v >= limit:
                return f"{v / limit:.3g} {suffix}/s"
        return f"{v:.3g} B/s"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return fmt_si(v)


def _spread(b: Bench) -> str:
    if b.reps < 2 or b.ns_per_op is None or not b.ns_per_op:
        return "–"
    lo, hi = b.ns_per_op_min, b.ns_per_op_max
    return f"{fmt_time_ns(lo)} – {fmt_time_ns(hi)}"


def subject_table(s: Subject) -> list[str]:
    """Markdown lines of one subject's table."""
    out = []
    if s.error:
        out += [f"Problem: {s.error}.", ""]
    if not s.benches:
        return out + ["No benchmark results.", ""]
    out += ["| benchmark | time per op | clock | reps (min – max) | items/s | bytes/s | other counters |",
            "|---|---:|---|---|---:|---:|---|"]
    for b in s.benches:
        if b.error and b.ns_per_op is None:
            out.append(f"| `{b.display_name}` | skipped | | | | | {b.error} |")
            continue
        per = fmt_time_ns(b.ns_per_op) + ("" if b.per_op_from_items else " per iteration")
        clock = "real" if b.real_time_clock else "CPU"
        reps = f"{b.reps} ({_spread(b)})" if b.reps > 1 else str(b.reps)
        rates = [fmt_counter(k, b.counters[k]) if k in b.counters else "–" for k in RATE_COUNTERS]
        others = ", ".join(f"{k}={fmt_counter(k, v)}" for k, v in b.counters.items() if k not in RATE_COUNTERS)
        if b.error:
            others = (others + "; " if others else "") + b.error
        out.append(f"| `{b.display_name}` | {per} | {clock} | {reps} | {rates[0]} | {rates[1]} | {others} |")
    return out + [""]


LEGEND = ("Time per op: median over repetitions of 1e9 ÷ items/s, where an op is what the benchmark"
          " counts (a request, a hand-off, a round trip, a loop round, a thread); \"per iteration\""
          " where it counts none. Clock: real (wall) time for benchmarks that cross threads or make"
          " system calls, CPU time otherwise. Counters are medians over repetitions. What each"
          " benchmark does is described at the top of its source file, bench/<subject>_bench.cpp.")


def environment_lines(run, subjects: list[Subject]) -> list[str]:
    m = run.meta.get("micro") or {}
    parts = []
    if m.get("cpus"):
        parts.append(f"pinned with taskset to CPU {m['cpus']}")
    if m.get("repetitions"):
        n = m["repetitions"]
        parts.append(f"{n} repetition{'s' if n != 1 else ''}")
    if m.get("min_time_s") is not None:
        parts.append(f"at least {m['min_time_s']:g} s per repetition")
    if m.get("filter"):
        parts.append(f"filter `{m['filter']}`")
    ctx = next((s.context for s in subjects if s.context), {})
    pinned, machine = [], []
    for b in m.get("binaries") or []:
        mw = b.get("machine") if isinstance(b, dict) else None
        if isinstance(mw, dict):
            for key, vals in (("other_on_pinned_cpu_util", pinned), ("other_cpu_util", machine)):
                if isinstance(mw.get(key), (int, float)):
                    vals.append(mw[key])
    if pinned or machine:
        spans = []
        if pinned:
            spans.append(f"{_pct_span(pinned)} of the pinned CPU")
        if machine:
            spans.append(f"{_pct_span(machine)} of a CPU machine-wide")
        text = f"other processes used {' and '.join(spans)} while the binaries ran"
        if max(pinned or machine) > DISTURBED_CPU:
            text += (" (**DISTURBED**: other work shared the benchmarks' CPU, so real-time figures are"
                     " noisier, and may be higher, than on an idle machine)")
        elif machine and max(machine) > DISTURBED_CPU:
            text += (" (the other CPU was busy: shared caches and memory, or a sibling hyperthread on a"
                     " VM, may still have slowed the benchmarks a little)")
        parts.append(text)
    if ctx.get("library_build_type") == "debug":
        parts.append("Google Benchmark library built as debug by Debian (affects its own"
                     " bookkeeping, not the measured code)")
    return [f"Benchmarks: {'; '.join(parts)}."] if parts else []


def _pct_span(values: list[float]) -> str:
    lo, hi = min(values) * 100, max(values) * 100
    return f"{hi:.0f}%" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}%"


def tables_text(run, heading_level: int = 2) -> str:
    subjects = load_subjects(run.dir, run.meta)
    h = "#" * heading_level
    out = environment_lines(run, subjects) + ["", LEGEND, ""]
    for s in subjects:
        out += [f"{h} {s.name} (`bench/{s.binary}.cpp`)", ""] + subject_table(s)
    if not subjects:
        out += ["The run has no benchmark files.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def run_report(run, chart_link_lines: list[str]) -> str:
    """The text of a micro run's report.md."""
    from . import tables
    out = [f"# Microbenchmarks: run {run.run_id}", ""] + tables.run_header(run) + [""]
    out.append(tables_text(run, heading_level=2))
    out += ["## Charts", ""] + chart_link_lines + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def section_body(run, rel: str, chart_link_lines: list[str]) -> str:
    """A REPORT.md generated section for a micro run (its header, tables and charts)."""
    from . import tables
    out = [f"Every number in this section comes from run directory `{rel}/`"
           f" (run `{run.run_id}`; regenerate with `make report`).", ""]
    out += tables.run_header(run)[2:] + [""]
    out.append(tables_text(run, heading_level=3))
    out += [f"Charts (from `{rel}/charts/`):", ""] + chart_link_lines + [""]
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------- charts
def draw_charts(cs) -> None:
    """One horizontal bar chart of time per op, a panel per subject (charts.ChartSet `cs`)."""
    import matplotlib.pyplot as plt

    name = "micro-time-per-op"
    all_subjects = load_subjects(cs.run.dir, cs.run.meta)

    def charted(s: Subject) -> list[Bench]:
        # Benchmarks that count ops; a time per iteration (e.g. the idle-memory runs, whose time
        # is set-up) is not a cost to compare.
        return [b for b in s.benches if b.ns_per_op is not None and b.per_op_from_items]

    subjects = [s for s in all_subjects if charted(s)]
    if not subjects:
        cs.skip(name, "the run has no benchmark with a time per op")
    else:
        heights = [max(1.2, 0.27 * len(charted(s)) + 0.9) for s in subjects]
        fig, axes = plt.subplots(len(subjects), 1, figsize=(11, sum(heights) + 1.2), squeeze=False,
                                 gridspec_kw={"height_ratios": heights})
        for ax, s in zip((a[0] for a in axes), subjects):
            _time_panel(ax, s, charted(s))
        note = ("median over repetitions; whiskers: fastest and slowest repetition; blue: real time,"
                " orange: CPU time; an op is what the benchmark counts (see bench/*_bench.cpp)")
        cs.save(fig, name, "Microbenchmarks: time per operation", note)
    _thread_memory_chart(cs, all_subjects)


def _time_panel(ax, s: Subject, benches: list[Bench]) -> None:
    ys = list(range(len(benches)))
    vals = [b.ns_per_op for b in benches]
    lo = [b.ns_per_op - (b.ns_per_op_min if b.ns_per_op_min is not None else b.ns_per_op) for b in benches]
    hi = [(b.ns_per_op_max if b.ns_per_op_max is not None else b.ns_per_op) - b.ns_per_op for b in benches]
    colors = ["#4c72b0" if b.real_time_clock else "#dd8452" for b in benches]
    ax.barh(ys, vals, color=colors, edgecolor="#333333", linewidth=0.4,
            xerr=[lo, hi] if any(b.reps > 1 for b in benches) else None, ecolor="#222222", capsize=2)
    ax.set_yticks(ys)
    ax.set_yticklabels([b.display_name for b in benches], fontsize=7)
    ax.invert_yaxis()
    positive = [v for v in vals if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_xscale("log")
        ax.set_xlabel("time per op (ns, log scale)", fontsize=8)
    else:
        ax.set_xlabel("time per op (ns)", fontsize=8)
    ax.set_title(f"{s.name} (bench/{s.binary}.cpp)", fontsize=9, loc="left")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    for y, v, b in zip(ys, vals, benches):
        right = max(v, b.ns_per_op_max or v)  # past the whisker, so that the label stays readable
        ax.text(right, y, "  " + fmt_time_ns(v), va="center", fontsize=6.5)


# Counters of BM_Thread_IdleMemory drawn as bars (KiB per idle thread), with their legend text.
_THREAD_MEMORY = (("rss_kib_per_thread", "resident (process RSS growth)", "#4c72b0"),
                  ("kernel_stack_kib_per_thread", "kernel stack (/proc/meminfo KernelStack, machine-wide)", "#dd8452"))


def _thread_memory_chart(cs, subjects: list[Subject]) -> None:
    """Memory per idle thread at each stack size (thread_bench's BM_Thread_IdleMemory counters)."""
    import matplotlib.pyplot as plt

    name = "micro-thread-memory"
    benches = [b for s in subjects for b in s.benches
               if any(k in b.counters for k, _, _ in _THREAD_MEMORY)]
    if not benches:
        cs.skip(name, "the run has no memory-per-thread counters (thread_bench BM_Thread_IdleMemory)")
        return
    fig, ax = plt.subplots(figsize=(12, 1.4 + 0.7 * len(benches)))
    width = 0.8 / len(_THREAD_MEMORY)
    for k, (key, label, color) in enumerate(_THREAD_MEMORY):
        ys = [i + k * width for i in range(len(benches))]
        vals = [b.counters.get(key, 0.0) for b in benches]
        ax.barh(ys, vals, height=width, color=color, edgecolor="#333333", linewidth=0.4, label=label)
        for y, v in zip(ys, vals):
            ax.text(v, y, f" {v:.3g} KiB", va="center", fontsize=7)
    ax.set_yticks([i + width * (len(_THREAD_MEMORY) - 1) / 2 for i in range(len(benches))])
    labels = []
    for b in benches:
        virt = b.counters.get("virtual_kib_per_thread")
        labels.append(b.display_name + (f"\n(address space {virt:,.0f} KiB)" if virt is not None else ""))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("memory per idle thread (KiB)")
    ax.grid(True, axis="x", alpha=0.3)
    top = max((b.counters.get(k, 0.0) for b in benches for k, _, _ in _THREAD_MEMORY), default=0.0)
    if top > 0:
        ax.set_xlim(0, top * 1.25)  # room for the value labels
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    cs.save(fig, name, "Memory per idle thread (thread-per-connection's cost per idle connection)",
            "threads parked in a futex wait; medians over repetitions; see bench/thread_bench.cpp")
