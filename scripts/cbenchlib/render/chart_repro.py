"""The reproduction charts: per published table the run matches, its rows' req/s normalised by
each family's single-thread row, published against measured.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..analysis import stats  # noqa: E402
from ..format import published, resultio  # noqa: E402
from ..format.loadpoint import canonical_label  # noqa: E402
from . import pubcompare  # noqa: E402
from .chartset import ChartSet  # noqa: E402


def reproduction(cs: ChartSet) -> None:
    """Per published table the run matches: one panel per family, each row's req/s divided
    by its family's single-thread row, published (dashed, open) against measured (solid,
    95% interval of the ratio from stats.ratio_ci, paired over blocks when recorded)."""
    for pub in published.matching(r.label for r in cs.run.rows.values()):
        name = f"reproduction-{pub.name}"
        path = pubcompare._pub_path(pub)
        loads = pubcompare._run_loads(cs.run, pub, path)
        fams = pub.families()
        panels = []
        for fam, base_label in fams.items():
            base_pub = pub.row(base_label) if base_label else None
            base_row = _row_for(cs, base_label)
            if base_pub is None or base_row is None:
                continue
            rows = [r for r in pub.rows if r.family == fam and r.canonical != base_pub.canonical]
            if rows:
                panels.append((fam, base_pub, base_row, rows))
        if not panels:
            cs.skip(name, f"published table {pub.name}: no family with its single-thread row in this run")
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
                mrow = _row_for(cs, prow.label)
                if mrow is None:
                    continue
                for x, ld in zip(xs, loads):
                    ca = cs.run.cell(mrow.key, ld.lid) if ld else None
                    cb = cs.run.cell(base_row.key, ld.lid) if ld else None
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
                    ca = cs.run.cell(mrow.key, ld.lid) if ld else None
                    cb = cs.run.cell(base_row.key, ld.lid) if ld else None
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
        cs.save(fig, name, f"Reproduction of the published table `{pub.name}`: GET {path}",
                "dashed, open circles: published; solid, squares: this run with 95% interval bars"
                " (hollow square: a side not server-bound)")


def _row_for(cs: ChartSet, label: str | None):
    """The run's row with that published label, without --gvl (the published rows had no
    emulated lock), or None."""
    c = canonical_label(label)
    rows = [r for r in cs.run.rows.values() if r.label and canonical_label(r.label) == c]
    return next((r for r in rows if not r.gvl), rows[0] if rows else None)
