"""Which repetitions of a point may enter a comparison, and the comparison's effect over them.

Each repetition is judged on its own record (format/verdict.repetition_problem): a failed one, a
disturbed one (other processes' CPU in its window) or, for a metric, one whose verdict the metric
may not decide at is left out with its reason, never its point: the others still decide. The
effect a/b is a ratio with its 95% interval, paired by block when both rows recorded blocks
(stats.ratio_ci). findings.py reads these (and re-exports them for its readers).
"""
from __future__ import annotations

import math

from . import stats
from ..format import metrics as registry, verdict
from .findingdecl import METRICS
from .runload import Cell


def cell_values(cell: Cell, metric: str, decide_at: tuple | None = None) -> tuple[list[float], list]:
    """(values, blocks) of a metric over a cell's repetitions that may enter a comparison (judged
    one by one, verdict.repetition_problem: not failed, not disturbed, and, with DECIDE_AT, a
    verdict it lists); a block is None when unrecorded."""
    path = METRICS[metric][0]
    vals, blocks = [], []
    for p in cell.points:
        if verdict.repetition_problem(p, decide_at) is not None:
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


def excluded(cell: Cell, decide_at: tuple | None = None) -> list[str]:
    """"<row> repetition N: why" for each repetition of the cell that may not enter a comparison
    (verdict.repetition_problem), in record order."""
    out = []
    for p in cell.points:
        why = verdict.repetition_problem(p, decide_at)
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
        return False, (f"{METRICS[metric][1]} cannot decide here: fewer than {stats.MIN_REPS_FOR_CI} repetitions"
                       f" of {' and '.join(short)} may decide (it decides only at {', '.join(allowed)} points"
                       f" of undisturbed repetitions{'; left out: ' + '; '.join(bad) if bad else ''})")
    return True, ""
