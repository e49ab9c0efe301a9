"""The report template's vocabulary: its metric names (a view of format/metrics.py), how a figure
prints, what a rendered placeholder records (Use) and claims (Claim), and the effect of one row over
another. reporttpl.py renders the template with these; its placeholder functions live beside it
(tplfacts.py, tplsoftirq.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..analysis import stats
from ..analysis.runload import Cell
from ..format import metrics as registry, resultio

# placeholder metric name -> (dotted path in a point, scale to the printed unit, unit format): a
# view of the registry (format/metrics.py). A fraction prints as a percent; latencies print in ms
# and peak RSS in MiB; every other metric in its registered unit and format.
_PATHS = {"rps": "wrk.req_per_s", "cpu": "derived.server_cpu_us_per_req", "user": "derived.server_user_us_per_req",
          "sys": "derived.server_sys_us_per_req", "syscalls": "derived.syscalls_per_req",
          "ctx": "derived.ctx_switches_per_req", "p99": "wrk.latency_us.p99", "max": "wrk.latency_us.max",
          "server_util": "derived.server_cpu_util", "client_util": "derived.client_cpu_util",
          "rss_mb": "server.rss_peak_kb", "softirq_server": "machine.softirq_frac.server",
          "steal_server": "machine.steal_frac.server"}
# The server's mechanism counters per request (backends/stats/counters.h).
_PATHS.update({name: f"derived.counters_per_req.{counter}" for name, counter in (
    ("dispatches", "dispatches"), ("dup", "duplicate_dispatches"), ("suppressed", "suppressed_duplicates"),
    ("empty_reads", "empty_reads"), ("wakeups", "wakeups"), ("rearms", "rearms"), ("poll_rounds", "poll_rounds"),
    ("ring_enters", "ring_enters"), ("gvl_yields", "gvl_timeslice_yields"), ("pipe_full", "pipe_full_writes"))})
_RESCALED = {"p99": (1e-3, "ms"), "max": (1e-3, "ms"), "rss_mb": (1.0 / 1024, "f0")}
METRICS = {name: (m.path,) + _RESCALED.get(name, (100.0 if m.fmt == "pct" else 1.0, m.fmt))
           for name, m in ((name, registry.get(path)) for name, path in _PATHS.items())}


class TemplateError(Exception):
    """A template that cannot be rendered; the message names the line and the problem."""


@dataclass
class Claim:
    """A rendered quantified statement ("every ...", a range) and how to re-check it."""
    kind: str            # "range" (f_range), "verdicts" (f_bound) or "undisturbed" (f_disturbed)
    text: str
    section: str
    check: object        # callable(run of `section`) -> str | None (None: holds; else what is wrong)


@dataclass
class Use:
    """One rendered placeholder: its text, and the cells it read (figures or verdicts)."""
    index: int
    source: str
    text: str
    section: str
    figures: set = field(default_factory=set)    # {(row key, load key)}
    verdicts: set = field(default_factory=set)
    line: int = 0


# unit format (the third field of METRICS) -> how a figure is printed; "ms" switches to seconds.
_FORMATS = {"int": "{:.0f}", "us": "{:.2f}", "f2": "{:.2f}", "f3": "{:.3f}", "f0": "{:.0f}", "pct": "{:.0f}%"}


def fmt(value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.2f} ms"
    return _FORMATS.get(unit, "{:g}").format(value)


def unit_suffix(unit: str) -> str:
    return {"us": " µs"}.get(unit, "")



def effect(ca: Cell, cb: Cell, a: list[float], b: list[float], blocks_a: list | None = None,
           blocks_b: list | None = None):
    """(ratio, lo, hi, method words) from stats.ratio_ci, paired over blocks: BLOCKS_A/BLOCKS_B give
    each value's block (values picked from some repetitions only, e.g. the undisturbed ones, pass
    theirs); without them the cells' ok repetitions' blocks are used when the values line up with
    them. Welch only when a side recorded no blocks (runs from before blocks existed)."""
    if blocks_a is None and len(a) == len(ca.ok_points):
        blocks_a = [resultio.point_block(p) for p in ca.ok_points]
    if blocks_b is None and len(b) == len(cb.ok_points):
        blocks_b = [resultio.point_block(p) for p in cb.ok_points]
    ci = stats.ratio_ci(a, b, blocks_num=blocks_a, blocks_den=blocks_b)
    if ci is None:
        return (float("nan"), None, None, "")
    return (ci.ratio, ci.lo, ci.hi, {"paired-t": "paired", "welch-t": "Welch"}.get(ci.method, ci.method))