"""Small multiples by family for the charts of a run's points under load: one panel per family
(chartmarks.row_family: event loop, thread per connection, worker pool, processes, fibers,
completion, peers and floors, Ruby) in the family's colour, with a line style and marker per row
inside the panel and never more than MAX_SERIES rows in one panel (a larger family is split by
model, then by --gvl, then into numbered parts). Each panel has its own legend under it, so no
legend runs into another panel or the footer; the value axis is shared, and an interval that
leaves it is cut at the edge and marked (chartmarks.interval).

rps_vs_connections and throughput_vs_latency draw with it (render/charts.py calls them).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from ..analysis.runload import Load, Row, group_title  # noqa: E402
from .chartmarks import CLIP_NOTE, FAMILY_COLOR, FAMILY_ORDER, VARIANT_MARKERS, VARIANT_STYLES, interval, row_family  # noqa: E402
from .chartset import CLIP_HEADROOM, HOLLOW_NOTE, ChartSet, interval_of  # noqa: E402

MAX_SERIES = 8  # more lines than this in one panel cannot be told apart by style and marker
PANEL_W, PANEL_H = 5.6, 3.0  # inches of one panel's plot; its legend adds LEGEND_LINE_H per line
LEGEND_LINE_H = 0.17
PLAIN = FuncFormatter(lambda v, _pos: f"{v:g}")  # 10, 100, 1000 rather than 10^1 on log axes
THOUSANDS = FuncFormatter(lambda v, _pos: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")  # 40k req/s
DODGE = 0.035  # each row's points and bars are moved this fraction of x apart, so bars at one load do not overlap


def _chunks(title: str, rows: list[Row]) -> list[tuple[str, list[Row]]]:
    if len(rows) <= MAX_SERIES:
        return [(title, rows)]
    n = (len(rows) + MAX_SERIES - 1) // MAX_SERIES
    return [(f"{title} ({i + 1}/{n})", rows[i * MAX_SERIES:(i + 1) * MAX_SERIES]) for i in range(n)]


def family_panels(rows: list[Row]) -> list[tuple[str, str, list[Row]]]:
    """(panel title, family, rows) in FAMILY_ORDER, at most MAX_SERIES rows per panel."""
    by_fam: dict[str, list[Row]] = {}
    for r in rows:
        by_fam.setdefault(row_family(r), []).append(r)
    out = []
    for fam in sorted(by_fam, key=lambda f: FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER)):
        fam_rows = by_fam[fam]
        if len(fam_rows) <= MAX_SERIES:
            out.append((fam, fam, fam_rows))
            continue
        by_model: dict[str, list[Row]] = {}
        for r in fam_rows:
            by_model.setdefault(r.model or r.key, []).append(r)
        for model, mrows in by_model.items():
            if len(mrows) <= MAX_SERIES:
                out.append((f"{fam}: {model}", fam, mrows))
                continue
            for gvl in (False, True):
                part = [r for r in mrows if bool(r.gvl) == gvl]
                title = f"{fam}: {model}" + (" --gvl" if gvl else "")
                out += [(t, fam, rs) for t, rs in _chunks(title, part)] if part else []
    return out


def row_label(r: Row) -> str:
    """The row as its legend names it: the published label (when it has one) over the model's key."""
    return r.display()


def _grid(n: int, legend_lines: int):
    ncol = 1 if n == 1 else 2
    nrow = (n + ncol - 1) // ncol
    panel_h = PANEL_H + LEGEND_LINE_H * legend_lines + 0.6
    fig, axes = plt.subplots(nrow, ncol, figsize=(PANEL_W * ncol + 0.8, panel_h * nrow + 1.0), squeeze=False,
                             sharey=True)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def _legend(ax, rows: list[Row], color) -> None:
    handles = [Line2D([0], [0], color=color, linestyle=VARIANT_STYLES[i % len(VARIANT_STYLES)],
                      marker=VARIANT_MARKERS[i % len(VARIANT_MARKERS)], label=row_label(r)) for i, r in enumerate(rows)]
    ax.legend(handles=handles, fontsize=6.5, loc="upper left", bbox_to_anchor=(0.0, -0.2), frameon=False, ncol=1,
              borderaxespad=0.0, handlelength=3.0)


def _draw_panel(cs: ChartSet, ax, prow: list[Row], color, points_of, linewidth: float,
                with_rps_interval: bool = False) -> None:
    """Draws each row of one panel in turn: its line in the row's style (VARIANT_STYLES by its
    place in the panel), then at each point its 95% req/s interval (WITH_RPS_INTERVAL) and its
    marker (cs.mark). POINTS_OF(i, row) gives the row's [(x, y, cell)] in drawing order; the
    order of the calls is the chart's SVG order, which the determinism test pins."""
    for i, r in enumerate(prow):
        pts = points_of(i, r)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linewidth=linewidth,
                linestyle=VARIANT_STYLES[i % len(VARIANT_STYLES)])
        for x, y, c in pts:
            if with_rps_interval:
                ci = interval_of(c.rps())
                if ci is not None:
                    interval(ax, x, y, ci[0], ci[1], color, vertical=True, linewidth=0.7, alpha=0.55)
            cs.mark(ax, x, y, c, color, VARIANT_MARKERS[i % len(VARIANT_MARKERS)])


def _series(cs: ChartSet, loads: list[Load], row: Row, metric: str):
    pts = []
    for ld in loads:
        c = cs.run.cell(row.key, ld.lid)
        v = c.median(metric) if c is not None and ld.connections is not None else None
        if v is not None:
            pts.append((ld.connections, v, c))
    return sorted(pts, key=lambda t: t[0])


def rps_vs_connections(cs: ChartSet, slug: str, group, loads: list[Load], rows: list[Row]) -> None:
    """req/s against connections with 95% intervals, one panel per family."""
    name = f"rps-vs-connections-{slug}"
    series = {r.key: _series(cs, loads, r, "wrk.req_per_s") for r in rows}
    rows = [r for r in rows if series[r.key]]
    if not rows:
        cs.skip(name, f"{group_title(group)}: no successful points")
        return
    pans = family_panels(rows)
    fig, axes = _grid(len(pans), max(len(p[2]) for p in pans))
    top = max(p[1] for pts in series.values() for p in pts) * CLIP_HEADROOM
    for ax, (title, fam, prow) in zip(axes, pans):
        color = FAMILY_COLOR[fam]
        ax.set_ylim(0, top)
        ax.set_xscale("log")
        def dodged(i, r, n=len(prow)):
            shift = 1.0 + DODGE * (i - (n - 1) / 2)
            return [(x * shift, y, c) for x, y, c in series[r.key]]

        _draw_panel(cs, ax, prow, color, dodged, 1.2, with_rps_interval=True)
        _style(ax, title, color, "connections (wrk -c, log)", "requests/s (median)")
        ax.yaxis.set_major_formatter(THOUSANDS)
        _legend(ax, prow, color)
    cs.save(fig, name, f"Requests per second against connections, by family: {group_title(group)}",
            f"{HOLLOW_NOTE}; bars: 95% t interval of the mean over repetitions; {CLIP_NOTE}")


# The latency statistic drawn against connections: p99 where the run recorded it, else the next
# one it has (a pipelined run records wrk's p50 and max per batch but no p99).
LATENCY_ORDER = ("p99", "p50", "max")


def latency_vs_connections(cs: ChartSet, slug: str, group, loads: list[Load], rows: list[Row]) -> None:
    """wrk's p99 latency (LATENCY_ORDER) against connections, one panel per family; the other
    statistics are in the tables."""
    name = f"latency-vs-connections-{slug}"
    for stat in LATENCY_ORDER:
        series = {r.key: [(x, y / 1e3, c) for x, y, c in _series(cs, loads, r, f"wrk.latency_us.{stat}")]
                  for r in rows}
        if any(series.values()):
            break
    rows = [r for r in rows if series[r.key]]
    if not rows:
        cs.skip(name, f"{group_title(group)}: no latency recorded")
        return
    pans = family_panels(rows)
    fig, axes = _grid(len(pans), max(len(p[2]) for p in pans))
    for ax, (title, fam, prow) in zip(axes, pans):
        color = FAMILY_COLOR[fam]
        _draw_panel(cs, ax, prow, color, lambda _i, r: series[r.key], 1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _style(ax, title, color, "connections (wrk -c, log)", f"wrk {stat} latency (ms, log)")
        _legend(ax, prow, color)
    note = HOLLOW_NOTE + "; the other latency statistics are in the run's tables"
    if group[1] > 1:
        note += f"; pipelined: wrk times a whole batch of {group[1]} requests"
    cs.save(fig, name, f"{stat} latency against connections, by family: {group_title(group)}", note)


def throughput_vs_latency(cs: ChartSet, slug: str, group, loads: list[Load]) -> None:
    """p99 latency against req/s, one line per row (connections rising), one panel per family."""
    name = f"throughput-vs-latency-{slug}"
    data = {}
    for r in cs.run.rows_in(loads):
        pts = []
        for ld in loads:
            c = cs.run.cell(r.key, ld.lid)
            x = c.median("wrk.req_per_s") if c else None
            y = c.median("wrk.latency_us.p99") if c else None
            if x is not None and y is not None:
                pts.append((ld.connections or 0, x, y / 1e3, c))
        if pts:
            data[r.key] = (r, sorted(pts, key=lambda t: t[0]))
    if not data:
        cs.skip(name, f"{group_title(group)}: no point with both req/s and p99 latency")
        return
    pans = family_panels([r for r, _ in data.values()])
    fig, axes = _grid(len(pans), max(len(p[2]) for p in pans))
    xmax = max(p[1] for _, pts in data.values() for p in pts) * 1.08
    for ax, (title, fam, prow) in zip(axes, pans):
        color = FAMILY_COLOR[fam]
        _draw_panel(cs, ax, prow, color, lambda _i, r: [(x, y, c) for _conns, x, y, c in data[r.key][1]], 1.1)
        ax.set_xlim(0, xmax)
        ax.set_yscale("log")
        _style(ax, title, color, "requests/s (median)", "wrk p99 latency (ms, log)")
        ax.xaxis.set_major_formatter(THOUSANDS)
        _legend(ax, prow, color)
    note = HOLLOW_NOTE + "; each line runs through the loads in order of connections"
    if group[1] > 1:
        note += f"; pipelined: wrk times a whole batch of {group[1]} requests"
    cs.save(fig, name, f"p99 latency against throughput, by family: {group_title(group)}", note)


def _style(ax, title: str, color, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=9.5, color=color, loc="left", fontweight="bold")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7.5, labelleft=True)
    if ax.get_xscale() == "log":
        ax.xaxis.set_major_formatter(PLAIN)
    if ax.get_yscale() == "log":
        ax.yaxis.set_major_formatter(PLAIN)
    ax.grid(True, which="major", alpha=0.35)  # minor lines on a log axis read as data at this size
