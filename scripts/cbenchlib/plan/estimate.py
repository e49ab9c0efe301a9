"""How long a sweep's points take: the estimate the summary, the dry run, meta.json and the
progress line's ETA share, and how it is written."""
from __future__ import annotations

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


def estimate_s(point, settings, available: set[str] | None) -> float:
    """Expected wall time of one repetition of point; 0 for a model not in `available` (its
    points are recorded as skipped). available None: every model counts."""
    row = point.row
    if row.kind in ("model", "instrument") and available is not None and row.model not in available:
        return 0.0
    if point.load.is_idle:
        return IDLE_BASE_S + IDLE_PER_CONN_S * point.load.idle_connections
    return settings.duration_s + settings.warmup_s + OVERHEAD_S


def extra_blocks_estimate_s(points: list, settings) -> float:
    """The most a sequential design's extra blocks can take: every extra block at its cap of
    sequential_points points, each as long as the scenario's longest point (an idle point's
    estimate where the scenario has only those)."""
    if settings.target_ci_pct is None:
        return 0.0
    blocks = settings.repetitions_cap - settings.repetitions
    longest = max((estimate_s(p, settings, None) for p in points), default=0.0)
    return blocks * min(settings.sequential_points, len(points)) * longest


def fmt_duration(seconds: float) -> str:
    """Whole seconds as `1h02m03s`, `2m03s` or `3s`."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Eta:
    """The time left of a list of slots, rescaled by how the estimate has fared so far."""

    def __init__(self, todo: list, settings, available: set[str] | None):
        self.settings, self.available = settings, available
        self.left_s = sum(estimate_s(x.point, settings, available) for x in todo)
        self.done_s = 0.0

    def advance(self, slot, spent_s: float) -> float:
        """Count slot as run; returns the seconds left, given spent_s of wall time so far. The
        ratio is bounded so that one slow point cannot make the ETA absurd."""
        e = estimate_s(slot.point, self.settings, self.available)
        self.done_s += e
        self.left_s -= e
        ratio = min(3.0, max(0.5, spent_s / self.done_s)) if self.done_s > 0 else 1.0
        return self.left_s * ratio
