"""A `cbench micro` run as text and charts: its tables, environment lines and charts (the
run's data is read by analysis/micro.py)."""
from __future__ import annotations


from ..analysis.micro import Bench, RATE_COUNTERS, Subject, load_subjects
from ..format.verdict import DISTURBED_CPU
from . import tables


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
    out = [f"# Microbenchmarks: run {run.run_id}", ""] + tables.run_header(run) + [""]
    out.append(tables_text(run, heading_level=2))
    out += ["## Charts", ""] + chart_link_lines + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def section_body(run, rel: str, chart_link_lines: list[str]) -> str:
    """A REPORT.md generated section for a micro run (its header, tables and charts)."""
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
