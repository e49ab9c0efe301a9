"""PNG and SVG charts of one run, written to RUN/charts/ (reads results only).

Every chart has a title, axis labels with units, and a footer naming the machine and the
run. Points whose verdict is not server-bound are drawn hollow (lines) or hatched (bars).
A chart is drawn only when the run has the data for it; `draw_all` returns what it skipped
and why. Uses matplotlib's Agg backend (no display).
"""
from __future__ import annotations

import json
import math
import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..analysis import micro, stats  # noqa: E402
from ..analysis.runload import Load, Row, Run, column_label, group_title  # noqa: E402
from ..format import published, resultio  # noqa: E402
from ..format.loadpoint import canonical_label  # noqa: E402
from . import microreport, pubcompare  # noqa: E402
from .tables import LATENCY_STATS  # noqa: E402

PNG_DPI = 110  # readable at 100% in a browser without making 20-row charts huge
HOLLOW_NOTE = "hollow marker = not server-bound (client-bound, error-bound or unclear)"
HATCH_NOTE = "hatched bar = not server-bound (client-bound, error-bound or unclear)"
VARIANT_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
INTERVAL_NOTE = ("bars: 95% t interval of the mean over repetitions (log scale); a bar ending in ▲ at the"
                 " top edge runs past the axis and is cut there")
MAX_PANEL_ROWS = 5  # a family with more variants is split by queues and --gvl into more panels
CLIP_HEADROOM = 1.35  # the y axis ends this far above the highest median; longer bars are cut
MAX_LEGEND_ROWS = 40  # a legend longer than this is unreadable; the tables name every row anyway


class ChartSet:
    """Writes charts for one run; collects written and skipped charts."""

    def __init__(self, run: Run, out_dir: str | None = None):
        self.run = run
        self.out_dir = out_dir or os.path.join(run.dir, "charts")
        self.written: list[dict] = []
        self.skipped: list[dict] = []
        # A colour per model family, a line style and marker per variant within the family, so
        # no two rows of a chart look alike (issue 19 item 4).
        fams = list(dict.fromkeys(family(r) for r in run.rows.values()))
        # tab10 while it lasts; beyond ten families tab20's 20 distinct shades
        cmap, n = (plt.get_cmap("tab10"), 10) if len(fams) <= 10 else (plt.get_cmap("tab20"), 20)
        self.family_color = {f: cmap(i % n) for i, f in enumerate(fams)}
        self.colors, self.styles, self.markers = {}, {}, {}
        seen: dict = {}
        for key, r in run.rows.items():
            f = family(r)
            i = seen.get(f, 0)
            seen[f] = i + 1
            self.colors[key] = self.family_color[f]
            self.styles[key] = VARIANT_STYLES[i % len(VARIANT_STYLES)]
            self.markers[key] = VARIANT_MARKERS[i % len(VARIANT_MARKERS)]

    # ---- plumbing --------------------------------------------------------
    def footer(self) -> str:
        text = f"machine: {self.run.machine_line()}  ·  run: {self.run.run_id}"
        if self.run.synthetic:
            text += "  ·  SYNTHETIC TEST DATA"
        return text

    def save(self, fig, name: str, title: str, note: str | None = None) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        fig.suptitle(title, fontsize=12, fontweight="bold")
        foot = self.footer() + (f"\n{note}" if note else "")
        fig.text(0.01, 0.005, foot, fontsize=7.5, color="#444444", ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.06, 1, 0.95))
        files = []
        for ext in ("png", "svg"):
            path = os.path.join(self.out_dir, f"{name}.{ext}")
            fig.savefig(path, dpi=PNG_DPI, bbox_inches="tight", metadata=None if ext == "png" else {"Date": None})
            files.append(os.path.relpath(path, self.run.dir))
        plt.close(fig)
        self.written.append({"name": name, "title": title, "files": files})

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append({"name": name, "reason": reason})

    def legend(self, ax, rows: list[Row], extra=None) -> None:
        handles = [Line2D([0], [0], color=self.colors[r.key], linestyle=self.styles[r.key],
                          marker=self.markers[r.key], label=r.display()) for r in rows[:MAX_LEGEND_ROWS]]
        handles += extra or []
        handles.append(Line2D([0], [0], color="#555555", marker="o", markerfacecolor="white", linestyle="none",
                              label="hollow: not server-bound"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)

    def point_style(self, cell) -> dict:
        hollow = bool(cell.not_server_bound())
        return {"markerfacecolor": "white" if hollow else None}

    # ---- line charts against connections ---------------------------------
    def _series(self, loads: list[Load], row: Row, metric: str):
        """(x connections, y median, cells) for a row over loads with a value, sorted by x."""
        pts = []
        for ld in loads:
            c = self.run.cell(row.key, ld.lid)
            if c is None or ld.connections is None:
                continue
            v = c.median(metric)
            if v is not None:
                pts.append((ld.connections, v, c))
        pts.sort(key=lambda t: t[0])
        return pts

    def _plot_series(self, ax, row: Row, pts, scale: float = 1.0, intervals: bool = False,
                     clip_top: float | None = None) -> None:
        """One row's line; with intervals, its 95% bars, cut at clip_top (marked ▲) when given."""
        if not pts:
            return
        color = self.colors[row.key]
        ax.plot([p[0] for p in pts], [p[1] * scale for p in pts], color=color, linestyle=self.styles[row.key],
                linewidth=1.2)
        for x, y, c in pts:
            ci = interval_of(c.rps()) if intervals else None
            if ci is not None:
                hi = ci[1] * scale
                cut = clip_top is not None and hi > clip_top
                if cut:
                    hi = clip_top
                    ax.plot([x], [clip_top], marker="^", color=color, markersize=4, clip_on=False)
                ax.errorbar([x], [y * scale], yerr=[[y * scale - ci[0] * scale], [max(0.0, hi - y * scale)]],
                            color=color, linewidth=0.8, capsize=0 if cut else 2, fmt="none")
            ax.plot([x], [y * scale], marker=self.markers[row.key], color=color, markersize=5, **{
                k: v for k, v in self.point_style(c).items() if v is not None})

    def rps_vs_connections(self, slug: str, group, loads: list[Load]) -> None:
        name = f"rps-vs-connections-{slug}"
        conns = {ld.connections for ld in loads if ld.connections}
        if len(conns) < 2:
            self.skip(name, f"{group_title(group)}: only {len(conns)} connection count(s); a line needs two")
            return
        rows = self.run.rows_in(loads)
        fig, ax = plt.subplots(figsize=(11, 5.5))
        drawn = []
        series = [(r, self._series(loads, r, "wrk.req_per_s")) for r in rows]
        top = max([p[1] for _, pts in series for p in pts] + [0.0]) * CLIP_HEADROOM or None
        for r, pts in series:
            if pts:
                self._plot_series(ax, r, pts, intervals=True, clip_top=top)
                drawn.append(r)
        if not drawn:
            plt.close(fig)
            self.skip(name, f"{group_title(group)}: no successful points")
            return
        ax.set_xscale("log")
        ax.set_xlabel("connections (wrk -c, log scale)")
        ax.set_ylabel("throughput (requests/s, median)")
        ax.set_ylim(0, top or 1)
        ax.grid(True, which="both", alpha=0.3)
        self.legend(ax, drawn)
        self.save(fig, name, f"Requests per second against connections: {group_title(group)}",
                  HOLLOW_NOTE + "; " + INTERVAL_NOTE)

    def rps_by_family(self, slug: str, group, loads: list[Load]) -> None:
        """Small multiples: one panel per model family, its variants against connections."""
        name = f"rps-by-family-{slug}"
        conns = {ld.connections for ld in loads if ld.connections}
        if len(conns) < 2:
            self.skip(name, f"{group_title(group)}: only {len(conns)} connection count(s); a line needs two")
            return
        rows = self.run.rows_in(loads)
        panel_of = panels(rows)
        fams = list(dict.fromkeys(panel_of[r.key] for r in rows))
        ncol = min(3, len(fams))
        nrow = (len(fams) + ncol - 1) // ncol
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), sharex=True, sharey=True,
                                 squeeze=False)
        series = {r.key: self._series(loads, r, "wrk.req_per_s") for r in rows}
        top = max([p[1] for pts in series.values() for p in pts] + [0.0])
        for ax, f in zip(axes.flat, fams):
            fam_rows = [r for r in rows if panel_of[r.key] == f]
            for r in fam_rows:
                self._plot_series(ax, r, series[r.key], intervals=True, clip_top=top * CLIP_HEADROOM or None)
            ax.set_title(f, fontsize=9, color=self.family_color[family(fam_rows[0])])
            ax.set_xscale("log")
            ax.grid(True, which="both", alpha=0.3)
            handles = [Line2D([0], [0], color=self.colors[r.key], linestyle=self.styles[r.key],
                              marker=self.markers[r.key], label=_short_variant(r)) for r in fam_rows]
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
        self.save(fig, name, f"Requests per second by model family: {group_title(group)}",
                  HOLLOW_NOTE + "; " + INTERVAL_NOTE)

    def latency_vs_connections(self, slug: str, group, loads: list[Load]) -> None:
        name = f"latency-vs-connections-{slug}"
        conns = {ld.connections for ld in loads if ld.connections}
        if len(conns) < 2:
            self.skip(name, f"{group_title(group)}: only {len(conns)} connection count(s); a line needs two")
            return
        rows = self.run.rows_in(loads)
        fig, axes = plt.subplots(1, 3, figsize=(15, 5.5), sharey=True)
        drawn = set()
        for ax, stat in zip(axes, ("p50", "p99", "max")):
            for r in rows:
                pts = self._series(loads, r, LATENCY_STATS[stat][0])
                if pts:
                    self._plot_series(ax, r, pts, scale=1e-3)
                    drawn.add(r.key)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"wrk {stat} latency", fontsize=10)
            ax.set_xlabel("connections (log scale)")
            ax.grid(True, which="both", alpha=0.3)
        if not drawn:
            plt.close(fig)
            self.skip(name, f"{group_title(group)}: no latency recorded")
            return
        axes[0].set_ylabel("latency (ms, log scale)")
        self.legend(axes[-1], [r for r in rows if r.key in drawn])
        note = HOLLOW_NOTE
        if group[1] > 1:
            note += f"; pipelined: wrk times a whole batch of {group[1]} requests"
        self.save(fig, name, f"Latency (p50, p99, max) against connections: {group_title(group)}", note)

    def throughput_vs_latency(self, slug: str, group, loads: list[Load]) -> None:
        name = f"throughput-vs-latency-{slug}"
        rows = self.run.rows_in(loads)
        fig, ax = plt.subplots(figsize=(11, 5.5))
        drawn = []
        for r in rows:
            pts = []
            for ld in loads:
                c = self.run.cell(r.key, ld.lid)
                if c is None:
                    continue
                x, y = c.median("wrk.req_per_s"), c.median("wrk.latency_us.p99")
                if x is not None and y is not None:
                    pts.append((ld.connections or 0, x, y / 1e3, c))
            if not pts:
                continue
            pts.sort(key=lambda t: t[0])
            color = self.colors[r.key]
            ax.plot([p[1] for p in pts], [p[2] for p in pts], color=color, linestyle=self.styles[r.key],
                    linewidth=1.0)
            for _, x, y, c in pts:
                ax.plot([x], [y], marker="o", color=color, markersize=5,
                        **{k: v for k, v in self.point_style(c).items() if v is not None})
            drawn.append(r)
        if not drawn:
            plt.close(fig)
            self.skip(name, f"{group_title(group)}: no point with both req/s and p99 latency")
            return
        ax.set_yscale("log")
        ax.set_xlabel("throughput (requests/s, median)")
        ax.set_ylabel("wrk p99 latency (ms, log scale)")
        ax.grid(True, which="both", alpha=0.3)
        self.legend(ax, drawn)
        self.save(fig, name, f"Throughput against p99 latency (one point per load, connections rising):"
                  f" {group_title(group)}", HOLLOW_NOTE)

    # ---- against server threads ------------------------------------------
    def rps_vs_threads(self, slug: str, group, loads: list[Load]) -> None:
        name = f"rps-vs-threads-{slug}"
        rows = self.run.rows_in(loads)
        families: dict[tuple, list[Row]] = {}
        for r in rows:
            if r.threads is not None:
                families.setdefault(r.variant_fields(), []).append(r)
        families = {k: sorted(v, key=lambda r: r.threads) for k, v in families.items()
                    if len({r.threads for r in v}) >= 2}
        if not families:
            self.skip(name, f"{group_title(group)}: no model variant measured at two or more thread counts")
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
                    c = self.run.cell(r.key, ld.lid)
                    v = c.median("wrk.req_per_s") if c else None
                    if v is not None:
                        pts.append((r.threads, v, c))
                if not pts:
                    continue
                color = self.colors[first.key]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linewidth=1.2)
                for x, y, c in pts:
                    ax.plot([x], [y], marker="o", color=color, markersize=5,
                            **{k: v for k, v in self.point_style(c).items() if v is not None})
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
            handles.append(Line2D([0], [0], color=self.colors[first.key], marker="o", label=label))
        handles.append(Line2D([0], [0], color="#555555", marker="o", markerfacecolor="white", linestyle="none",
                              label="hollow: not server-bound"))
        axes[0][cols - 1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                                 frameon=False)
        self.save(fig, name, f"Requests per second against server threads: {group_title(group)}", HOLLOW_NOTE)

    # ---- per-request costs (bars) ----------------------------------------
    def _bar_grid(self, loads, metric_rows, name, title, xlabel_by_metric, group, stacked=None) -> None:
        rows = self.run.rows_in(loads)
        used_loads = [ld for ld in loads if any(
            (c := self.run.cell(r.key, ld.lid)) and any(c.median(m) is not None for m in _flat(metric_rows))
            for r in rows)]
        if not used_loads:
            self.skip(name, f"{group_title(group)}: no per-request figures recorded (derived.*)")
            return
        used_rows = [r for r in rows if any(
            (c := self.run.cell(r.key, ld.lid)) and any(c.median(m) is not None for m in _flat(metric_rows))
            for ld in used_loads)]
        nm, nl = len(metric_rows), len(used_loads)
        height = max(3.0, 0.28 * len(used_rows) + 1.5)
        fig, axes = plt.subplots(nm, nl, figsize=(3.6 * nl + 3.5, height * nm), squeeze=False, sharey=True)
        ypos = list(range(len(used_rows)))
        for mi, metrics in enumerate(metric_rows):
            for li, ld in enumerate(used_loads):
                ax = axes[mi][li]
                left = [0.0] * len(used_rows)
                for k, m in enumerate(metrics):
                    vals, hatches = [], []
                    for r in used_rows:
                        c = self.run.cell(r.key, ld.lid)
                        v = c.median(m) if c else None
                        vals.append(v or 0.0)
                        hatches.append("///" if c and c.not_server_bound() else None)
                    colors = stacked[k] if stacked else [self.colors[r.key] for r in used_rows]
                    bars = ax.barh(ypos, vals, left=left, color=colors, edgecolor="#333333", linewidth=0.4)
                    for b, h in zip(bars, hatches):
                        if h:
                            b.set_hatch(h)
                    left = [a + b for a, b in zip(left, vals)]
                ax.set_yticks(ypos)
                ax.set_yticklabels([r.display() for r in used_rows], fontsize=7)
                ax.set_xlabel(xlabel_by_metric[mi], fontsize=8)
                ax.set_title(column_label(ld), fontsize=9)
                ax.grid(True, axis="x", alpha=0.3)
        axes[0][0].invert_yaxis()  # shared y: inverting once turns every subplot top-down
        if stacked:
            handles = [Patch(facecolor=stacked[k], edgecolor="#333333", label=lab)
                       for k, lab in enumerate(("user", "system"))]
            handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="///", label="not server-bound"))
            axes[0][-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                               frameon=False)
        self.save(fig, name, f"{title}: {group_title(group)}", HATCH_NOTE)

    def cpu_per_request(self, slug: str, group, loads: list[Load]) -> None:
        self._bar_grid(loads, [("derived.server_user_us_per_req", "derived.server_sys_us_per_req")],
                       f"cpu-per-request-{slug}", "Server CPU per request, user and system",
                       ["server CPU per request (µs, user + system)"], group,
                       stacked=("#4c72b0", "#dd8452"))

    def syscalls_ctx_per_request(self, slug: str, group, loads: list[Load]) -> None:
        # The sweep counts every system call with perf when it can ("perf"), else only the
        # read/write family from /proc/PID/io ("proc-io"); the label says which this run has.
        sources = {(p.get("server") or {}).get("syscalls_source", "proc-io") for p in self.run.points
                   if p.get("status", "ok") == "ok" and not p.get("idle")}
        label = ("system calls per request (all, perf)" if sources == {"perf"}
                 else "read+write system calls per request" if sources <= {"proc-io"}
                 else "system calls per request (perf or read+write only: mixed run)")
        self._bar_grid(loads, [("derived.syscalls_per_req",), ("derived.ctx_switches_per_req",)],
                       f"syscalls-ctx-per-request-{slug}", "System calls and context switches per request",
                       [label, "context switches per request"], group)

    # ---- idle connections ------------------------------------------------
    def idle_memory(self, loads: list[Load]) -> None:
        name = "idle-memory"
        rows = self.run.rows_in(loads)
        data = []
        for r in rows:
            for ld in loads:
                c = self.run.cell(r.key, ld.lid)
                b = c.median("idle.bytes_per_conn") if c else None
                t = c.median("idle.threads_per_conn") if c else None
                if b is not None:
                    data.append((r, ld, b, t))
        if not data:
            self.skip(name, "idle points have no idle.bytes_per_conn")
            return
        counts = sorted({ld.idle_connections or 0 for _, ld, _, _ in data})
        fig, axes = plt.subplots(1, 2, figsize=(12, max(3.0, 0.45 * len(rows) * len(counts) / 2 + 1.8)),
                                 sharey=True)
        width = 0.8 / max(1, len(counts))
        used_rows = [r for r in rows if any(d[0] is r for d in data)]
        shades = plt.get_cmap("Blues")
        for ci, n in enumerate(counts):
            ys, bs, ts = [], [], []
            for ri, r in enumerate(used_rows):
                d = next((d for d in data if d[0] is r and (d[1].idle_connections or 0) == n), None)
                if d:
                    ys.append(ri + ci * width)
                    bs.append(d[2] / 1024.0)
                    ts.append(d[3] or 0.0)
            color = shades(0.4 + 0.5 * ci / max(1, len(counts) - 1))
            axes[0].barh(ys, bs, height=width, color=color, edgecolor="#333333", linewidth=0.4,
                         label=f"{n} idle connections")
            axes[1].barh(ys, ts, height=width, color=color, edgecolor="#333333", linewidth=0.4)
        centre = [ri + width * (len(counts) - 1) / 2 for ri in range(len(used_rows))]
        axes[0].set_yticks(centre)
        axes[0].set_yticklabels([r.display() for r in used_rows], fontsize=8)
        axes[0].invert_yaxis()
        axes[0].set_xlabel("server memory per idle connection (KiB, RSS growth ÷ connections)")
        axes[1].set_xlabel("server threads per idle connection")
        for ax in axes:
            ax.grid(True, axis="x", alpha=0.3)
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                       handles=[Patch(facecolor=shades(0.4 + 0.5 * i / max(1, len(counts) - 1)),
                                      label=f"{n} idle connections") for i, n in enumerate(counts)])
        self.save(fig, name, "Memory and threads per idle connection (no load generator)")

    # ---- reproduction: published against measured, normalised -------------
    def reproduction(self) -> None:
        """Per published table the run matches: one panel per family, each row's req/s divided
        by its family's single-thread row, published (dashed, open) against measured (solid,
        95% interval of the ratio from stats.ratio_ci, paired over blocks when recorded)."""
        for pub in published.matching(r.label for r in self.run.rows.values()):
            name = f"reproduction-{pub.name}"
            path = pubcompare._pub_path(pub)
            loads = pubcompare._run_loads(self.run, pub, path)
            fams = pub.families()
            panels = []
            for fam, base_label in fams.items():
                base_pub = pub.row(base_label) if base_label else None
                base_row = self._row_for(base_label)
                if base_pub is None or base_row is None:
                    continue
                rows = [r for r in pub.rows if r.family == fam and r.canonical != base_pub.canonical]
                if rows:
                    panels.append((fam, base_pub, base_row, rows))
            if not panels:
                self.skip(name, f"published table {pub.name}: no family with its single-thread row in this run")
                continue
            fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
            xs = list(range(len(pub.columns)))
            for ax, (fam, base_pub, base_row, rows) in zip(axes[0], panels):
                seen_y = []
                for i, prow in enumerate(rows):
                    color = plt.get_cmap("tab10")(i % 10)
                    dx = 0.07 * (i - (len(rows) - 1) / 2)  # side by side, so intervals stay apart
                    pub_y = [(c.req_per_s / b.req_per_s) if c and b else None
                             for c, b in zip(prow.cells, base_pub.cells)]
                    seen_y += [y for y in pub_y if y]
                    ax.plot([x for x, y in zip(xs, pub_y) if y], [y for y in pub_y if y], color=color,
                            linestyle="--", marker="o", markerfacecolor="white", linewidth=1.0)
                    mrow = self._row_for(prow.label)
                    if mrow is None:
                        continue
                    for x, ld in zip(xs, loads):
                        ca = self.run.cell(mrow.key, ld.lid) if ld else None
                        cb = self.run.cell(base_row.key, ld.lid) if ld else None
                        if not ca or not cb or not ca.rps() or not cb.rps():
                            continue
                        ci = stats.ratio_ci(ca.rps(), cb.rps(),
                                            blocks_num=[resultio.point_block(p) for p in ca.ok_points],
                                            blocks_den=[resultio.point_block(p) for p in cb.ok_points])
                        if ci is None:
                            continue
                        if ci.lo is not None:
                            ax.errorbar([x + dx], [ci.ratio], yerr=[[ci.ratio - ci.lo], [ci.hi - ci.ratio]],
                                        color=color, capsize=2, linewidth=0.8, fmt="none")
                        hollow = ca.not_server_bound() or cb.not_server_bound()
                        seen_y.append(ci.ratio)
                        ax.plot([x + dx], [ci.ratio], marker="s", color=color,
                                markerfacecolor="white" if hollow else color, linestyle="none")
                    ys = []
                    for x, ld in zip(xs, loads):
                        ca = self.run.cell(mrow.key, ld.lid) if ld else None
                        cb = self.run.cell(base_row.key, ld.lid) if ld else None
                        if ca and cb and ca.median("wrk.req_per_s") and cb.median("wrk.req_per_s"):
                            ys.append((x + dx, ca.median("wrk.req_per_s") / cb.median("wrk.req_per_s")))
                    if ys:
                        ax.plot([p[0] for p in ys], [p[1] for p in ys], color=color, linewidth=1.2,
                                label=canonical_label(prow.label) or prow.label)
                ax.axhline(1.0, color="#888888", linewidth=0.8)
                ax.set_xticks(xs)
                ax.set_xticklabels(pub.columns, fontsize=7)
                ax.set_title(f"{fam}: / {base_pub.label}", fontsize=9)
                ax.set_ylabel("req/s / family's single thread (log)")
                ax.set_yscale("log")
                # Two-repetition intervals can span orders of magnitude; the axis fits the
                # estimates and the published values, and longer bars are cut at its edge.
                if seen_y:
                    ax.set_ylim(min(seen_y + [1.0]) / 1.6, max(seen_y + [1.0]) * 1.6)
                ax.grid(True, alpha=0.3)
                ax.legend(fontsize=6, frameon=False, loc="best")
            self.save(fig, name, f"Reproduction of the published table `{pub.name}`: GET {path}",
                      "dashed, open circles: published; solid, squares: this run with 95% interval bars"
                      " (hollow square: a side not server-bound)")

    def _row_for(self, label: str | None):
        """The run's row with that published label, without --gvl (the published rows had no
        emulated lock), or None."""
        c = canonical_label(label)
        rows = [r for r in self.run.rows.values() if r.label and canonical_label(r.label) == c]
        return next((r for r in rows if not r.gvl), rows[0] if rows else None)

    # ---- all -------------------------------------------------------------
    def draw_all(self) -> None:
        if micro.is_micro_run(self.run):  # a `cbench micro` run: its own chart, no points
            microreport.draw_charts(self)
            self.write_index()
            return
        idle_loads = []
        for group, loads in self.run.load_groups():
            if group[2]:
                idle_loads += loads
                continue
            slug = group_slug(group)
            self.rps_vs_connections(slug, group, loads)
            self.rps_by_family(slug, group, loads)
            self.latency_vs_connections(slug, group, loads)
            self.rps_vs_threads(slug, group, loads)
            self.cpu_per_request(slug, group, loads)
            self.syscalls_ctx_per_request(slug, group, loads)
            self.throughput_vs_latency(slug, group, loads)
        self.reproduction()
        if idle_loads:
            self.idle_memory(idle_loads)
        else:
            self.skip("idle-memory", "the run has no idle-connection points")
        if not any(not g[2] for g, _ in self.run.load_groups()):
            self.skip("load charts", "the run has no points under load (wrk)")
        self.write_index()

    def write_index(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, "charts.json"), "w", encoding="utf-8") as f:
            json.dump({"run_id": self.run.run_id, "written": self.written, "skipped": self.skipped}, f, indent=2)
            f.write("\n")


def _flat(metric_rows):
    return [m for ms in metric_rows for m in ms]


def family(r: Row) -> str:
    """The model family a row belongs to (its model; peers and instruments by name)."""
    return r.model or r.key.split()[0]


def panels(rows: list[Row]) -> dict[str, str]:
    """Row key -> small-multiple panel title: the family, split by queues and --gvl when the
    family has more than MAX_PANEL_ROWS variants (worker-pool's ten rows would crowd one panel)."""
    count: dict[str, int] = {}
    for r in rows:
        count[family(r)] = count.get(family(r), 0) + 1
    out = {}
    for r in rows:
        f = family(r)
        if count[f] > MAX_PANEL_ROWS:
            f = " ".join(x for x in (f, r.queues, "gvl" if r.gvl else "") if x)
        out[r.key] = f
    return out


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


def interval_of(values: list[float]) -> tuple[float, float] | None:
    """95% t interval of the mean on the log scale (stats.t_quantile), or None below 2 values."""
    logs = [math.log(v) for v in values if v > 0]
    if len(logs) < 2 or len(logs) != len(values):
        return None
    m, se = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    half = stats.t_quantile(0.975, len(logs) - 1) * se
    return (math.exp(m - half), math.exp(m + half))


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


def group_slug(group) -> str:
    path, pipeline, _idle = group
    slug = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "root"
    if pipeline > 1:
        slug += f"-p{pipeline}"
    return slug


def read_index(run_dir: str) -> dict | None:
    try:
        with open(os.path.join(run_dir, "charts", "charts.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def plot_run(r, out_dir=None) -> "ChartSet":
    """Draw every chart the run has data for; returns the ChartSet (written and skipped lists).
    The one entry point for `cbench plot` and the report (which imports no CLI module)."""
    cs = ChartSet(r, out_dir)
    cs.draw_all()
    return cs
