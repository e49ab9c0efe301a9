"""What every chart uses to say the same thing the same way: one fixed colour per model family
(the decision table's families, plus the peers and floors and the Ruby stack), a line style and
marker per variant within a family, and interval bars that stay inside the axes, a bar that runs
past an edge being cut there and marked with a triangle pointing off the axis.

The colours are fixed by family, not by a run's row order, so "worker pool" is the same green in
every chart of every run and in the overview charts of the report.
"""
from __future__ import annotations

from ..analysis import families
from ..format.published import STACK_RUBY, row_stack

PEERS = "peers and floors"
RUBY = "Ruby"
FAMILY_ORDER = families.FAMILIES + (families.UNCLASSIFIED, PEERS, RUBY)
# tab10 hues, one per family; grey for what is not a model (nginx, h2o, the floors).
FAMILY_COLOR = {
    families.EVENT_LOOP: "#1f77b4",
    families.THREAD_PER_CONNECTION: "#ff7f0e",
    families.WORKER_POOL: "#2ca02c",
    families.PROCESSES: "#d62728",
    families.FIBERS: "#9467bd",
    families.COMPLETION: "#8c564b",
    families.UNCLASSIFIED: "#bcbd22",
    PEERS: "#7f7f7f",
    RUBY: "#e377c2",
}
VARIANT_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (3, 1, 1, 1)), (0, (8, 2)))
VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
CLIP_NOTE = "a bar cut at the axis edge ends in a triangle pointing off the axis"


def row_family(row) -> str:
    """The chart family of a run row: its ranked family (families.row_family), Ruby for the Ruby
    stack, peers and floors for the rest (nginx, h2o, the floors)."""
    fam = families.row_family(row.kind, row.model, (row.raw or {}).get("processes"))
    if fam is not None:
        return fam
    if row_stack(row.kind, row.model) == STACK_RUBY:
        return RUBY
    return PEERS


def interval(ax, pos: float, est: float, lo: float | None, hi: float | None, color, vertical: bool = True,
             linewidth: float = 0.9, alpha: float = 1.0) -> None:
    """An interval bar [lo, hi] around est at POS (x when vertical, y otherwise), cut at the
    axes' current limits of the value axis; a cut end gets a triangle pointing off the axis.
    Call after the value axis's limits are set."""
    if lo is None or hi is None:
        return
    vmin, vmax = ax.get_ylim() if vertical else ax.get_xlim()
    vmin, vmax = min(vmin, vmax), max(vmin, vmax)
    a, b = max(lo, vmin), min(hi, vmax)
    if a > b:
        return
    if vertical:
        ax.plot([pos, pos], [a, b], color=color, linewidth=linewidth, solid_capstyle="butt", alpha=alpha)
    else:
        ax.plot([a, b], [pos, pos], color=color, linewidth=linewidth, solid_capstyle="butt", alpha=alpha)
    for cut, edge, marker in ((lo < vmin, vmin, "v" if vertical else "<"), (hi > vmax, vmax, "^" if vertical else ">")):
        if cut:
            xy = ([pos], [edge]) if vertical else ([edge], [pos])
            ax.plot(*xy, marker=marker, color=color, markersize=5, linestyle="none", clip_on=False)
