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
