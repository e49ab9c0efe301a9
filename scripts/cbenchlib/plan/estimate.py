"""How long a sweep's points take: the estimate the summary, the dry run, meta.json and the
progress line's ETA share, and how it is written."""
from __future__ import annotations

import dataclasses
import os
import statistics

from ..format import resultio

# Per-repetition cost beyond duration and warm-up, for the estimate: server start and
# readiness, primer, two wrk runs that each last ~0.1 s past -d (wrk stops its threads at its
# next 100 ms tick), post-check and stop. Measured from the committed reference run
# results/runs/20261122T063927Z-ever-table (2-core VM; 280 repetitions of 2 s + 0.5 s): each
# point's ended_utc - started_utc was 2.81-3.04 s, mean 2.88 s, so 0.38 s beyond the 2.5 s; the
# gap between points (writing the line, printing) was under 4 ms. Rounded up to 0.4 s.
OVERHEAD_S = 0.4
# Idle points: start, settle, stop, plus opening, holding and closing the connections:
# measured 0.5 s at 100 connections, 1.5 s (epoll-reactor) to 5.9 s (thread-per-connection,
# 10000 threads) at 10000.
IDLE_BASE_S = 1.0
IDLE_PER_CONN_S = 0.0005


@dataclasses.dataclass(frozen=True)
class Overheads:
    """Each row's seconds per repetition beyond duration and warm-up, learned from the newest
    recorded run of the same scenario (learned_overheads), never below OVERHEAD_S. Some rows take
    far longer than the rest: nio4r's worker design (C++ `--dispatch unbounded` and its Ruby
    replica) leaves millions of queued jobs behind its load, which the post-check request waits
    out (about 10 s a repetition in 20261204T182740Z-ever-table, against 0.4 s for the others), so
    a constant under-counted that sitting by a third. A row the run did not record, or no run at
    all, gets OVERHEAD_S."""
    by_row: dict = dataclasses.field(default_factory=dict)  # row key -> seconds beyond duration + warm-up
    source: str | None = None                               # the run directory they come from

    def for_point(self, point) -> float:
        return max(OVERHEAD_S, self.by_row.get(point.row.key, 0.0))

    def note(self) -> str:
        """The dry run's line on where the overheads come from."""
        slow = sorted(((k, v) for k, v in self.by_row.items() if v > 2 * OVERHEAD_S), key=lambda kv: -kv[1])
        if self.source is None:
            return f"per repetition: duration + warm-up + {OVERHEAD_S:g} s measured overhead (no recorded run of this scenario)"
        text = (f"per repetition: duration + warm-up + each row's overhead in {os.path.basename(self.source)}"
                f" (at least {OVERHEAD_S:g} s)")
        if slow:
            text += "; slow rows: " + ", ".join(f"{k} {v:.1f} s" for k, v in slow[:6]) + \
                (f" and {len(slow) - 6} more" if len(slow) > 6 else "")
        return text


def row_overheads(points: list[dict]) -> dict:
    """Row key -> median over its repetitions of (ended_utc - started_utc) - (duration + warm-up)
    as the load recorded them; idle points and records without both times are left out."""
    extra: dict[str, list[float]] = {}
    for p in points:
        load, row = p.get("load") or {}, p.get("row") or {}
        if load.get("idle_connections") or not p.get("started_utc") or not p.get("ended_utc"):
            continue
        try:
            wall = (resultio.parse_utc(p["ended_utc"]) - resultio.parse_utc(p["started_utc"])).total_seconds()
            planned = float(load.get("duration_s") or 0.0) + float(load.get("warmup_s") or 0.0)
        except (TypeError, ValueError):
            continue
        extra.setdefault(row.get("key"), []).append(wall - planned)
    return {k: statistics.median(v) for k, v in extra.items() if k is not None}


def learned_overheads(runs_dir: str, scenario_name: str, exclude: str | None = None) -> Overheads:
    """The Overheads of the newest run directory under runs_dir (by name: ids begin with their
    UTC start) whose meta.json names scenario_name and whose points carry times; EXCLUDE (a run
    being resumed) is skipped. Unreadable runs are skipped; none found: Overheads()."""
    try:
        names = sorted(os.listdir(runs_dir), reverse=True)
    except OSError:
        return Overheads()
    for name in names:
        d = os.path.join(runs_dir, name)
        if exclude and os.path.abspath(d) == os.path.abspath(exclude):
            continue
        try:
            if resultio.read_meta(d).get("scenario_name") != scenario_name:
                continue
            by_row = row_overheads(resultio.read_points(os.path.join(d, resultio.POINTS_FILE)).points)
        except (resultio.ResultsFormatError, OSError):
            continue
        if by_row:
            return Overheads(by_row, d)
    return Overheads()


def estimate_s(point, settings, available: set[str] | None, overheads: Overheads | None = None) -> float:
    """Expected wall time of one repetition of point; 0 for a model not in `available` (its
    points are recorded as skipped). available None: every model counts. Overheads: the row's
    learned overhead (OVERHEAD_S without)."""
    row = point.row
    if row.kind in ("model", "instrument") and available is not None and row.model not in available:
        return 0.0
    if point.load.is_idle:
        return IDLE_BASE_S + IDLE_PER_CONN_S * point.load.idle_connections
    return settings.duration_s + settings.warmup_s + (overheads.for_point(point) if overheads else OVERHEAD_S)


def extra_blocks_estimate_s(points: list, settings, overheads: Overheads | None = None) -> float:
    """The most a sequential design's extra blocks can take: every extra block at its cap of
    sequential_points points, each of them among the scenario's longest (an idle point's
    estimate where the scenario has only those)."""
    if settings.target_ci_pct is None:
        return 0.0
    blocks = settings.repetitions_cap - settings.repetitions
    longest = sorted((estimate_s(p, settings, None, overheads) for p in points), reverse=True)
    return blocks * sum(longest[:settings.sequential_points])


def fmt_duration(seconds: float) -> str:
    """Whole seconds as `1h02m03s`, `2m03s` or `3s`."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Eta:
    """The time left of a list of slots, rescaled by how the estimate has fared so far."""

    def __init__(self, todo: list, settings, available: set[str] | None, overheads: Overheads | None = None):
        self.settings, self.available, self.overheads = settings, available, overheads
        self.left_s = sum(estimate_s(x.point, settings, available, overheads) for x in todo)
        self.done_s = 0.0

    def advance(self, slot, spent_s: float) -> float:
        """Count slot as run; returns the seconds left, given spent_s of wall time so far. The
        ratio is bounded so that one slow point cannot make the ETA absurd."""
        e = estimate_s(slot.point, self.settings, self.available, self.overheads)
        self.done_s += e
        self.left_s -= e
        ratio = min(3.0, max(0.5, spent_s / self.done_s)) if self.done_s > 0 else 1.0
        return self.left_s * ratio
