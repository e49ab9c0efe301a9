"""The per-request cost charts of a run (bars per row and load: server CPU, system calls and
context switches per request) and the idle-connection chart (memory and threads per idle
connection). A bar whose cell is not server-bound is hatched.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..analysis.runload import Load, column_label, group_title  # noqa: E402
from ..format.loadpoint import measured  # noqa: E402
from .chartset import HATCH_NOTE, ChartSet  # noqa: E402


def _bar_grid(cs: ChartSet, loads, metric_rows, name, title, xlabel_by_metric, group, stacked=None) -> None:
    rows = cs.run.rows_in(loads)
    used_loads = [ld for ld in loads if any(
        (c := cs.run.cell(r.key, ld.lid)) and any(c.median(m) is not None for m in _flat(metric_rows))
        for r in rows)]
    if not used_loads:
        cs.skip(name, f"{group_title(group)}: no per-request figures recorded (derived.*)")
        return
    used_rows = [r for r in rows if any(
        (c := cs.run.cell(r.key, ld.lid)) and any(c.median(m) is not None for m in _flat(metric_rows))
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
                    c = cs.run.cell(r.key, ld.lid)
                    v = c.median(m) if c else None
                    vals.append(v or 0.0)
                    hatches.append("///" if c and c.not_server_bound() else None)
                colors = stacked[k] if stacked else [cs.colors[r.key] for r in used_rows]
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
    cs.save(fig, name, f"{title}: {group_title(group)}", HATCH_NOTE)


def cpu_per_request(cs: ChartSet, slug: str, group, loads: list[Load]) -> None:
    _bar_grid(cs, loads, [("derived.server_user_us_per_req", "derived.server_sys_us_per_req")],
              f"cpu-per-request-{slug}", "Server CPU per request, user and system",
              ["server CPU per request (µs, user + system)"], group,
              stacked=("#4c72b0", "#dd8452"))


def syscalls_ctx_per_request(cs: ChartSet, slug: str, group, loads: list[Load]) -> None:
    # The sweep counts every system call with perf when it can ("perf"), else only the
    # read/write family from /proc/PID/io ("proc-io"); the label says which this run has.
    sources = {(p.get("server") or {}).get("syscalls_source", "proc-io") for p in cs.run.points
               if measured(p) and not p.get("idle")}
    label = ("system calls per request (all, perf)" if sources == {"perf"}
             else "read+write system calls per request" if sources <= {"proc-io"}
             else "system calls per request (perf or read+write only: mixed run)")
    _bar_grid(cs, loads, [("derived.syscalls_per_req",), ("derived.ctx_switches_per_req",)],
              f"syscalls-ctx-per-request-{slug}", "System calls and context switches per request",
              [label, "context switches per request"], group)


def idle_memory(cs: ChartSet, loads: list[Load]) -> None:
    name = "idle-memory"
    rows = cs.run.rows_in(loads)
    data = []
    for r in rows:
        for ld in loads:
            c = cs.run.cell(r.key, ld.lid)
            b = c.median("idle.bytes_per_conn") if c else None
            t = c.median("idle.threads_per_conn") if c else None
            if b is not None:
                data.append((r, ld, b, t))
    if not data:
        cs.skip(name, "idle points have no idle.bytes_per_conn")
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
    cs.save(fig, name, "Memory and threads per idle connection (no load generator)")


def _flat(metric_rows):
    return [m for ms in metric_rows for m in ms]
