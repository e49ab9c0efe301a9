"""The plumbing every chart of a run shares (render/charts.py draws them): ChartSet holds the
run, the output folder, each row's colour, line style and marker, and the lists of charts written
and skipped; it saves a figure as PNG and SVG with the footer naming the machine and the run, and
writes the index RUN/charts/charts.json. Points whose verdict is not server-bound are drawn
hollow (lines) or hatched (bars). Uses matplotlib's Agg backend (no display).
"""
from __future__ import annotations

import json
import math
import os
import statistics

import matplotlib

matplotlib.use("Agg")
# Plotting an unchanged run must change no file, so that a chart's diff means its data changed:
# a fixed salt makes the SVG's clip-path and glyph ids a function of the figure alone (matplotlib
# otherwise salts them with a random UUID), and save_figure drops the timestamps (SVG_METADATA,
# PNG_METADATA). tests/report/test_chart_determinism.py plots a run twice and compares bytes.
matplotlib.rcParams["svg.hashsalt"] = "concurrency-bench"
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..analysis import stats  # noqa: E402
from ..analysis.runload import Row, Run  # noqa: E402
from .chartmarks import FAMILY_COLOR, VARIANT_MARKERS, VARIANT_STYLES, row_family  # noqa: E402

PNG_DPI = 110  # readable at 100% in a browser without making 20-row charts huge
HOLLOW_NOTE = "hollow marker = not server-bound (client-bound, error-bound or unclear)"
HATCH_NOTE = "hatched bar = not server-bound (client-bound, error-bound or unclear)"
INTERVAL_NOTE = ("bars: 95% t interval of the mean over repetitions (log scale); a bar ending in a triangle"
                 " at an edge runs past the axis and is cut there")
MAX_PANEL_ROWS = 5  # a family with more variants is split by queues and --gvl into more panels
CLIP_HEADROOM = 1.35  # the y axis ends this far above the highest median; longer bars are cut
MAX_LEGEND_ROWS = 40  # a legend longer than this is unreadable; the tables name every row anyway
SVG_METADATA = {"Date": None}  # no timestamp in the SVG (matplotlib's version stays: it names the tool)
PNG_METADATA = {"Software": None}  # a PNG has no date; its "Software" text names matplotlib's version
INDEX_FILE = "charts.json"  # RUN/charts/charts.json: run_id, written and skipped charts


class ChartSet:
    """Writes charts for one run; collects written and skipped charts."""

    def __init__(self, run: Run, out_dir: str | None = None):
        self.run = run
        self.out_dir = out_dir or os.path.join(run.dir, "charts")
        self.written: list[dict] = []
        self.skipped: list[dict] = []
        # A colour per family (chartmarks.FAMILY_COLOR: the same in every chart and run), a line
        # style and marker per variant within the family, so no two rows of a family look alike.
        self.family_color = {family(r): FAMILY_COLOR[row_family(r)] for r in run.rows.values()}
        self.colors, self.styles, self.markers = {}, {}, {}
        seen: dict = {}
        for key, r in run.rows.items():
            f = row_family(r)
            i = seen.get(f, 0)
            seen[f] = i + 1
            self.colors[key] = FAMILY_COLOR[f]
            self.styles[key] = VARIANT_STYLES[i % len(VARIANT_STYLES)]
            # the marker steps once more each time the styles wrap, so (style, marker) stays unique
            # for up to len(VARIANT_STYLES) * len(VARIANT_MARKERS) rows of one family
            self.markers[key] = VARIANT_MARKERS[(i + i // len(VARIANT_STYLES)) % len(VARIANT_MARKERS)]

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
        files = [os.path.relpath(p, self.run.dir) for p in save_figure(fig, os.path.join(self.out_dir, name))]
        self.written.append({"name": name, "title": title, "files": files})

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append({"name": name, "reason": reason})

    def drop(self, fig, name: str, reason: str) -> None:
        """Close a figure that turned out empty and record the chart as skipped."""
        plt.close(fig)
        self.skip(name, reason)

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

    def mark(self, ax, x: float, y: float, cell, color, marker: str = "o") -> None:
        """One point's marker, hollow when the cell is not server-bound."""
        ax.plot([x], [y], marker=marker, color=color, markersize=5,
                **{k: v for k, v in self.point_style(cell).items() if v is not None})

    def write_index(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, INDEX_FILE), "w", encoding="utf-8") as f:
            json.dump({"run_id": self.run.run_id, "written": self.written, "skipped": self.skipped}, f, indent=2)
            f.write("\n")


def save_figure(fig, base: str, dpi: int = PNG_DPI) -> list[str]:
    """Write BASE.png and BASE.svg byte-for-byte the same for the same figure (no timestamp,
    fixed ids), close the figure, and return the two paths."""
    paths = []
    for ext, meta in (("png", PNG_METADATA), ("svg", SVG_METADATA)):
        path = f"{base}.{ext}"
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


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


def interval_of(values: list[float]) -> tuple[float, float] | None:
    """95% t interval of the mean on the log scale (stats.t_quantile), or None below 2 values."""
    logs = [math.log(v) for v in values if v > 0]
    if len(logs) < 2 or len(logs) != len(values):
        return None
    m, se = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    half = stats.t_quantile(0.975, len(logs) - 1) * se
    return (math.exp(m - half), math.exp(m + half))


def read_index(run_dir: str) -> dict | None:
    try:
        with open(os.path.join(run_dir, "charts", INDEX_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
