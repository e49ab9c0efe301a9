"""PNG and SVG charts of one run, written to RUN/charts/ (reads results only).

Every chart has a title, axis labels with units, and a footer naming the machine and the
run. Points whose verdict is not server-bound are drawn hollow (lines) or hatched (bars).
A chart is drawn only when the run has the data for it; `plot_run` returns what it skipped
and why. Uses matplotlib's Agg backend (no display). This module chooses the charts of a run;
chartset.py holds what they share (styles, saving, the index), chart_load.py, chart_costs.py
and chart_repro.py draw the families.
"""
from __future__ import annotations

import re

from ..analysis import micro
from . import chart_costs, chart_load, chart_panels, chart_repro, microreport
from .chartset import ChartSet, read_index

__all__ = ["ChartSet", "draw_all", "group_slug", "plot_run", "read_index"]


def draw_all(cs: ChartSet) -> None:
    """Every chart the run has data for, then the index (charts.json)."""
    if micro.is_micro_run(cs.run):  # a `cbench micro` run: its own chart, no points
        microreport.draw_charts(cs)
        cs.write_index()
        return
    idle_loads = []
    for group, loads in cs.run.load_groups():
        if group[2]:
            idle_loads += loads
            continue
        slug = group_slug(group)
        chart_load.against_connections(cs, slug, group, loads)
        chart_load.rps_vs_threads(cs, slug, group, loads)
        chart_costs.cpu_per_request(cs, slug, group, loads)
        chart_costs.syscalls_ctx_per_request(cs, slug, group, loads)
        chart_panels.throughput_vs_latency(cs, slug, group, loads)
    chart_repro.reproduction(cs)
    if idle_loads:
        chart_costs.idle_memory(cs, idle_loads)
    else:
        cs.skip("idle-memory", "the run has no idle-connection points")
    if not any(not g[2] for g, _ in cs.run.load_groups()):
        cs.skip("load charts", "the run has no points under load (wrk)")
    cs.write_index()


def group_slug(group) -> str:
    path, pipeline, _idle = group
    slug = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "root"
    if pipeline > 1:
        slug += f"-p{pipeline}"
    return slug


def plot_run(r, out_dir=None) -> "ChartSet":
    """Draw every chart the run has data for; returns the ChartSet (written and skipped lists).
    The one entry point for `cbench plot` and the report (which imports no CLI module)."""
    cs = ChartSet(r, out_dir)
    draw_all(cs)
    return cs
