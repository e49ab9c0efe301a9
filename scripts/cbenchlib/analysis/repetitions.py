"""Which repetitions of a point may enter a comparison, and the comparison's effect over them.

Each repetition is judged on its own record (format/verdict.repetition_problem): a failed one, a
disturbed one (other processes' CPU in its window) or, for a metric, one whose verdict the metric
may not decide at is left out with its reason, never its point: the others still decide. The
effect a/b is a ratio with its 95% interval, paired by block when both rows recorded blocks
(stats.ratio_ci). findings.py reads these (and re-exports them for its readers).

A metric read at a fixed-rate load (findingdecl.at_fixed_rate) decides by loadgen.fixed_rate_refusal
instead of by verdict: a repetition that did not keep the offered rate (overloaded, error-bound,
not open loop) shows the common rate at or above its row's capacity, so leaving it out would keep
only the lucky repetitions: one such repetition keeps its whole cell from deciding.
"""
from __future__ import annotations

import math

from . import stats
from ..format import loadgen, metrics as registry, verdict
from .findingdecl import FIXED_RATE_DECIDE_AT, METRICS
from .runload import Cell


def cell_values(cell: Cell, metric: str, decide_at: tuple | None = None) -> tuple[list[float], list]:
    """(values, blocks) of a metric over a cell's repetitions that may enter a comparison (judged
    one by one, verdict.repetition_problem: not failed, not disturbed, and, with DECIDE_AT, a
    verdict it lists); a block is None when unrecorded."""
    path = METRICS[metric][0]
    vals, blocks = [], []
    fixed = decide_at == FIXED_RATE_DECIDE_AT
    if fixed and any(loadgen.fixed_rate_refusal(p) for p in cell.ok_points):
        return [], []
    for p in cell.points:
        if _problem(p, decide_at) is not None:
            continue
        v = registry.dig(p, path)
        if v is None and metric == "req_per_s":
            req, dur = registry.dig(p, "wrk.requests"), registry.dig(p, "wrk.duration_us")
            v = req / (dur / 1e6) if isinstance(req, (int, float)) and isinstance(dur, (int, float)) and dur > 0 else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            vals.append(float(v))
            b = p.get("block")
            blocks.append(b if isinstance(b, int) and not isinstance(b, bool) else None)
    return vals, blocks


def _problem(p: dict, decide_at: tuple | None) -> str | None:
    """Why one repetition may not enter (verdict.repetition_problem; at FIXED_RATE_DECIDE_AT, a
    disturbed repetition or loadgen.fixed_rate_refusal's reason instead of the verdict's)."""
    if decide_at == FIXED_RATE_DECIDE_AT:
        return verdict.repetition_problem(p) or loadgen.fixed_rate_refusal(p)
    return verdict.repetition_problem(p, decide_at)


def excluded(cell: Cell, decide_at: tuple | None = None) -> list[str]:
    """"<row> repetition N: why" for each repetition of the cell that may not enter a comparison
    (verdict.repetition_problem, or at a fixed rate _problem's reason), in record order."""
    out = []
    for p in cell.points:
        why = _problem(p, decide_at)
        if why is not None:
            out.append(f"{cell.row.key} repetition {p.get('rep')}: {why}")
    return out


def cell_verdicts(cell: Cell) -> list[str]:
    return [verdict.point_verdict(p) for p in cell.ok_points]


def effect(ca: Cell, cb: Cell, metric: str, decide_only: bool = False) -> stats.RatioCI | None:
    """a/b of a metric with its interval (paired by block when both cells recorded blocks), over the
    repetitions that may enter a comparison: never a failed or disturbed one; with DECIDE_ONLY, only
    those whose verdict lets the metric decide (what can_decide counts)."""
    allowed = METRICS[metric][2] if decide_only else None
    va, ba = cell_values(ca, metric, allowed)
    vb, bb = cell_values(cb, metric, allowed)
    if not va or not vb:
        return None
    return stats.ratio_ci(va, vb, blocks_num=ba, blocks_den=bb)


def can_decide(ca: Cell, cb: Cell, metric: str) -> tuple[bool, str]:
    """Whether this metric may decide at this point, and why not. Each repetition is judged on its
    own (verdict.repetition_problem against the metric's decide_at): the ones that may not decide
    are left out, never the point; the metric decides when each row keeps MIN_REPS_FOR_CI."""
    allowed = METRICS[metric][2]
    short = [c.row.key for c in (ca, cb) if len(cell_values(c, metric, allowed)[0]) < stats.MIN_REPS_FOR_CI]
    if short:
        bad = excluded(ca, allowed) + excluded(cb, allowed)
        where = ("where every repetition of both rows kept the offered rate (not overloaded, not error-bound),"
                 " undisturbed" if allowed == FIXED_RATE_DECIDE_AT else
                 f"at {', '.join(allowed)} points of undisturbed repetitions")
        return False, (f"{METRICS[metric][1]} cannot decide here: fewer than {stats.MIN_REPS_FOR_CI} repetitions"
                       f" of {' and '.join(short)} may decide (it decides only {where}"
                       f"{'; left out: ' + '; '.join(bad) if bad else ''})")
    return True, ""
