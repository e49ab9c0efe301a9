"""The charts of a run's points under load, against connections and server threads (charts.py
draws them per path and pipeline group): requests per second by model in small multiples and
against server threads. The charts by family (requests per second and p99 latency against
connections, p99 latency against throughput) are chart_panels.py's.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..analysis.runload import Load, Row, column_label, group_title  # noqa: E402
from . import chart_panels  # noqa: E402
from .chartset import CLIP_HEADROOM, HOLLOW_NOTE, INTERVAL_NOTE, ChartSet, family, interval_of, panels  # noqa: E402


def _series(cs: ChartSet, loads: list[Load], row: Row, metric: str):
    """(x connections, y median, cells) for a row over loads with a value, sorted by x."""
    pts = []
    for ld in loads:
        c = cs.run.cell(row.key, ld.lid)
        if c is None or ld.connections is None:
            continue
        v = c.median(metric)
        if v is not None:
            pts.append((ld.connections, v, c))
    pts.sort(key=lambda t: t[0])
    return pts


def _plot_series(cs: ChartSet, ax, row: Row, pts, scale: float = 1.0, intervals: bool = False,
                 clip_top: float | None = None) -> None:
    """One row's line; with intervals, its 95% bars, cut at clip_top (marked ▲) when given."""
    if not pts:
        return
    color = cs.colors[row.key]
    ax.plot([p[0] for p in pts], [p[1] * scale for p in pts], color=color, linestyle=cs.styles[row.key],
            linewidth=1.2)
    for x, y, c in pts:
        ci = interval_of(c.rps()) if intervals else None
        if ci is not None:
            hi = ci[1] * scale
            cut = clip_top is not None and hi > clip_top
            if cut:
                hi = clip_top
                ax.plot([x], [clip_top], marker="^", color=color, markersize=4, clip_on=False)
            # The bar spans the interval itself: the marked value (a median) may lie outside a
            # skewed sample's interval of the mean, so bars measured from it could be negative.
            lo = min(ci[0] * scale, hi)
            mid = (lo + hi) / 2
            ax.errorbar([x], [mid], yerr=[[mid - lo], [hi - mid]],
                        color=color, linewidth=0.8, capsize=0 if cut else 2, fmt="none")
        cs.mark(ax, x, y * scale, c, color, cs.markers[row.key])


CONNECTION_CHARTS = ("rps-vs-connections", "rps-by-family", "latency-vs-connections")


def against_connections(cs: ChartSet, slug: str, group, loads: list[Load]) -> None:
    """The charts against connections (CONNECTION_CHARTS); all are skipped when the loads hold
    fewer than two connection counts (a line needs two)."""
    conns = {ld.connections for ld in loads if ld.connections}
    if len(conns) < 2:
        for chart in CONNECTION_CHARTS:
            cs.skip(f"{chart}-{slug}",
                    f"{group_title(group)}: only {len(conns)} connection count(s); a line needs two")
        return
    rows = cs.run.rows_in(loads)
    chart_panels.rps_vs_connections(cs, slug, group, loads, rows)
    rps_by_family(cs, slug, group, loads, rows)
    chart_panels.latency_vs_connections(cs, slug, group, loads, rows)


def rps_by_family(cs: ChartSet, slug: str, group, loads: list[Load], rows: list[Row]) -> None:
    """Small multiples: one panel per model family, its variants against connections."""
    name = f"rps-by-family-{slug}"
    panel_of = panels(rows)
    fams = list(dict.fromkeys(panel_of[r.key] for r in rows))
    ncol = min(3, len(fams))
    nrow = (len(fams) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), sharex=True, sharey=True,
                             squeeze=False)
    series = {r.key: _series(cs, loads, r, "wrk.req_per_s") for r in rows}
    top = max([p[1] for pts in series.values() for p in pts] + [0.0])
    for ax, f in zip(axes.flat, fams):
        fam_rows = [r for r in rows if panel_of[r.key] == f]
        for r in fam_rows:
            _plot_series(cs, ax, r, series[r.key], intervals=True, clip_top=top * CLIP_HEADROOM or None)
        ax.set_title(f, fontsize=9, color=cs.family_color[family(fam_rows[0])])
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        handles = [Line2D([0], [0], color=cs.colors[r.key], linestyle=cs.styles[r.key],
                          marker=cs.markers[r.key], label=_short_variant(r)) for r in fam_rows]
        ax.legend(handles=handles, fontsize=6, loc="upper right", frameon=False, ncol=2)
    for ax in list(axes.flat)[len(fams):]:
        ax.set_visible(False)
    # Two-repetition intervals can be very wide (t = 12.7 at 1 degree of freedom); the axis
    # shows the medians, and a bar that leaves it is cut at the edge and marked ▲.
    axes[0][0].set_ylim(0, top * CLIP_HEADROOM if top > 0 else 1)
    for ax in axes[-1]:
        ax.set_xlabel("connections (log scale)")
    for ax in axes[:, 0]:
        ax.set_ylabel("requests/s (median)")
    cs.save(fig, name, f"Requests per second by model family: {group_title(group)}",
            HOLLOW_NOTE + "; " + INTERVAL_NOTE)


def rps_vs_threads(cs: ChartSet, slug: str, group, loads: list[Load]) -> None:
    name = f"rps-vs-threads-{slug}"
    rows = cs.run.rows_in(loads)
    families: dict[tuple, list[Row]] = {}
    for r in rows:
        if r.threads is not None:
            families.setdefault(r.variant_fields(), []).append(r)
    families = {k: sorted(v, key=lambda r: r.threads) for k, v in families.items()
                if len({r.threads for r in v}) >= 2}
    if not families:
        cs.skip(name, f"{group_title(group)}: no model variant measured at two or more thread counts")
        return
    n = len(loads)
    cols = min(n, 4)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols + 2.5, 4.0 * nrows), squeeze=False)
    handles = []
    for i, ld in enumerate(loads):
        ax = axes[i // cols][i % cols]
        for fam_rows in families.values():
            first = fam_rows[0]
            pts = []
            for r in fam_rows:
                c = cs.run.cell(r.key, ld.lid)
                v = c.median("wrk.req_per_s") if c else None
                if v is not None:
                    pts.append((r.threads, v, c))
            if not pts:
                continue
            color = cs.colors[first.key]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linewidth=1.2)
            for x, y, c in pts:
                cs.mark(ax, x, y, c, color)
        ax.set_title(column_label(ld), fontsize=10)
        ax.set_xlabel("server threads")
        ax.set_ylabel("requests/s (median)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    for j in range(n, nrows * cols):
        axes[j // cols][j % cols].axis("off")
    for fam_rows in families.values():
        first = fam_rows[0]
        label = _variant_name(first)
        handles.append(Line2D([0], [0], color=cs.colors[first.key], marker="o", label=label))
    handles.append(Line2D([0], [0], color="#555555", marker="o", markerfacecolor="white", linestyle="none",
                          label="hollow: not server-bound"))
    axes[0][cols - 1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                             frameon=False)
    cs.save(fig, name, f"Requests per second against server threads: {group_title(group)}", HOLLOW_NOTE)


def _short_variant(r: Row) -> str:
    """The row within its family: threads, queues, --gvl, backend."""
    parts = []
    if r.threads is not None:
        parts.append(f"t{r.threads}")
    if r.queues:
        parts.append(r.queues)
    if r.gvl:
        parts.append("gvl")
    if r.backend:
        parts.append(r.backend)
    return " ".join(parts) or r.key


def _variant_name(r: Row) -> str:
    parts = [r.model or r.key]
    if r.queues:
        parts.append(f"{r.queues} queue")
    if r.gvl:
        parts.append("--gvl")
    if r.backend:
        parts.append(r.backend)
    if r.kind != "model":
        parts.append(f"({r.kind})")
    return " ".join(parts)
