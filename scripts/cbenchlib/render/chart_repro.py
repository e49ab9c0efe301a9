"""The reproduction charts: per published table the run matches, its rows' req/s normalised by
each family's single-thread row, published against measured on each stack.

The numbers are analysis/replicas.normalised's, the same as the normalised table beside the
published one: per stack, a row over that stack's own single-thread row (a Ruby row over the Ruby
single thread, a C++ row over the C++ one, both without --gvl), never a row of one stack over a
row of the other. Each stack is its own series: published (dashed, open circles), the Ruby rows
(the original stack: dash-dot, triangles) and the C++ rows (cbench-server's stand-ins: solid,
squares), one colour per published row.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from ..analysis import replicas  # noqa: E402
from ..format import published  # noqa: E402
from ..format.published import STACK_CPP, STACK_RUBY  # noqa: E402
from . import pubcompare  # noqa: E402
from .chartmarks import CLIP_NOTE, interval  # noqa: E402
from .chartset import ChartSet  # noqa: E402

PLAIN = FuncFormatter(lambda v, _pos: f"{v:g}")  # 0.5 rather than 5x10^-1 on the log axis

# stack -> (legend name, line style, marker, offset from the column in x units, so intervals stay apart)
SERIES_STYLE = {
    STACK_RUBY: ("Ruby", "-.", "^", -0.05),
    STACK_CPP: ("C++", "-", "s", 0.05),
}


@dataclass
class Series:
    """One published row of a panel: its published ratios and, per stack, the measured ones
    (replicas.NormRow: a ColumnEffect per column, or None where the stack lacks the row or its base)."""
    label: str
    published: list
    measured: dict  # stack -> [ColumnEffect] | None


def panels(run, pub) -> list[tuple[str, str, list[Series]]]:
    """(family, its single-thread label, series) per family of which some stack measured a row
    against its single thread; families without such a row are left out."""
    fams = pub.families()
    by_fam: dict[str, list[Series]] = {}
    for nr in replicas.normalised(run, pub):
        prow = pub.row(nr.label)
        s = Series(nr.label, nr.published, {STACK_RUBY: nr.ruby, STACK_CPP: nr.cpp})
        by_fam.setdefault(prow.family, []).append(s)
    out = []
    for fam, series in by_fam.items():
        if any(m for s in series for m in s.measured.values()):
            out.append((fam, fams.get(fam) or f"{fam} single thread", series))
    return out


def _draw_measured(ax, xs, effects, color, dx: float, style: str, marker: str, name: str, bars: list) -> list[float]:
    """One stack's series of one row: estimates (hollow where a side was not server-bound) joined
    by a line; their 95% intervals are appended to BARS, drawn once the axis is fixed (so they are
    cut at its edges and marked); returns the plotted ratios."""
    ys = []
    for x, ce in zip(xs, effects):
        ci = ce.ci
        if ci is None:
            continue
        bars.append((x + dx, ci.ratio, ci.lo, ci.hi, color))
        ax.plot([x + dx], [ci.ratio], marker=marker, color=color,
                markerfacecolor=color if ce.can else "white", linestyle="none")
        ys.append((x + dx, ci.ratio))
    if ys:
        ax.plot([p[0] for p in ys], [p[1] for p in ys], color=color, linestyle=style, linewidth=1.2, label=name)
    return [p[1] for p in ys]


def reproduction(cs: ChartSet) -> None:
    """Per published table the run matches: one panel per family (see the module docstring)."""
    for pub in published.matching(r.label for r in cs.run.rows.values()):
        name = f"reproduction-{pub.name}"
        path = pubcompare._pub_path(pub)
        pans = panels(cs.run, pub)
        if not pans:
            cs.skip(name, f"published table {pub.name}: no family with its single-thread row in this run")
            continue
        fig, axes = plt.subplots(1, len(pans), figsize=(5.5 * len(pans), 5.4), squeeze=False)
        xs = list(range(len(pub.columns)))
        for ax, (fam, base_label, series) in zip(axes[0], pans):
            seen_y, bars = [], []
            for i, s in enumerate(series):
                color = plt.get_cmap("tab10")(i % 10)
                pub_y = s.published
                seen_y += [y for y in pub_y if y]
                ax.plot([x for x, y in zip(xs, pub_y) if y], [y for y in pub_y if y], color=color,
                        linestyle="--", marker="o", markerfacecolor="white", linewidth=1.0)
                for stack, effects in s.measured.items():
                    if effects:
                        sname, style, marker, dx = SERIES_STYLE[stack]
                        seen_y += _draw_measured(ax, xs, effects, color, dx + 0.03 * (i - (len(series) - 1) / 2), style,
                                                 marker, f"{s.label} ({sname})", bars)
            ax.axhline(1.0, color="#888888", linewidth=0.8)
            ax.set_xticks(xs)
            ax.set_xticklabels(pub.columns, fontsize=7)
            ax.set_title(f"{fam}: / {base_label}", fontsize=9)
            ax.set_ylabel("req/s / the stack's single thread (log)")
            ax.set_yscale("log")
            # Two-repetition intervals can span orders of magnitude; the axis fits the
            # estimates and the published values, and longer bars are cut at its edge.
            if seen_y:
                ax.set_ylim(min(seen_y + [1.0]) / 1.6, max(seen_y + [1.0]) * 1.6)
            for x, y, lo, hi, color in bars:
                interval(ax, x, y, lo, hi, color, vertical=True, linewidth=0.8)
            ax.yaxis.set_major_formatter(PLAIN)
            lo_y, hi_y = ax.get_ylim()
            if hi_y / lo_y < 10:  # within a decade the minor ticks are the only labels; across decades they crowd
                ax.yaxis.set_minor_formatter(PLAIN)
            ax.tick_params(axis="y", which="minor", labelsize=6.5)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(0.0, -0.1))
        cs.save(fig, name, f"Reproduction of the published table `{pub.name}`: GET {path}",
                "dashed, open circles: published; dash-dot, triangles: the Ruby rows over the Ruby single"
                " thread;\nsolid, squares: the C++ rows over the C++ single thread; 95% interval bars"
                f" (hollow marker: a side not server-bound); {CLIP_NOTE}")
