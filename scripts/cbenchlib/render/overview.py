"""The four overview charts of the one-page report, one per question, drawn from the reference
set's runs (reads result files only):

- decision: per workload shape, each family's best row relative to the winning family's best
  (analysis/decision.shape_ranking: the same load point, metric, fallback and margin as the
  decision table's cell), with its 95% interval; 1 is the winner, the shaded band its margin;
- reproduction: per published row, its ratio to its single thread as published and as measured
  on the Ruby rows and the C++ models (analysis/replicas.normalised), one panel per column;
- cost-account: per model at the tiny-handler point, server CPU per request split user and
  system, system calls and context switches per request (format/metrics.py's derived.* paths);
- latency-load: p99 latency against offered load from the latency-curve run's open-loop points
  (analysis/latencycurve), with the p99 target.

A chart whose run is missing is still written, saying which section has no run, so the report's
links never break. `write_overview` is the entry point of `make report` and `cbench plot --overview`.
"""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..analysis import decision, families, latencycurve, replicas  # noqa: E402
from ..analysis.runload import Run, RunError, column_label, load_run  # noqa: E402
from ..format import published, reportrefs  # noqa: E402
from . import chartmarks  # noqa: E402
from .chartmarks import FAMILY_COLOR, interval, row_family  # noqa: E402
from .chartset import save_figure  # noqa: E402

OVERVIEW_DPI = 100  # the report shows them at 900-1000 px wide: 9-10 inch figures at 100 dpi
COST_POINT = decision.SHAPES[0]  # the tiny handler: where the model's own cost is the whole cost
STACK_STYLE = {"published": ("k", "D", "white"), "Ruby": (FAMILY_COLOR[chartmarks.RUBY], "^", None),
               "C++": ("#1f4e79", "s", None)}


def _load(runs: dict[str, str], section: str) -> Run | None:
    d = runs.get(section)
    if not d:
        return None
    try:
        return load_run(d)
    except RunError:
        return None


PLAIN = matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}")  # 0.1, 1, 10 rather than 10^-1 on log axes


def _footer(fig, runs: list[Run], note: str = "") -> None:
    ids = list(dict.fromkeys(r.run_id for r in runs))
    ids = ",\n      ".join(", ".join(ids[i:i + 3]) for i in range(0, len(ids), 3)) or "no run"
    text = f"runs: {ids}" + (f"\n{note}" if note else "")
    fig.text(0.01, 0.005, text, fontsize=7, color="#444444", ha="left", va="bottom")


def _placeholder(title: str, why: str):
    fig, ax = plt.subplots(figsize=(9, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=11, color="#444444", wrap=True)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig


def _relative(sr: decision.ShapeRanking, e: families.Entry):
    """(estimate, lo, hi) of E relative to the winner on the performance side (1 = the winner,
    below 1 = worse), from families.compare's interval of the winner's advantage."""
    top = sr.ranking.families[0]
    if e is top:
        return 1.0, None, None
    ci = families.compare(top, e, sr.higher, sr.margin).ci
    if ci is None:
        return None, None, None
    return 1.0 / ci.ratio, (1.0 / ci.hi if ci.hi else None), (1.0 / ci.lo if ci.lo else None)


METRIC_WORDS = {"wrk.req_per_s": "req/s", "derived.server_cpu_us_per_req": "server CPU per request",
                "idle.bytes_per_conn": "memory per idle connection"}


def _decision_panel(ax, sh: decision.Shape, sr: decision.ShapeRanking | None) -> None:
    ax.set_xscale("log")
    ax.set_xlim(0.008, 1.6)
    ax.xaxis.set_major_formatter(PLAIN)
    ax.axvline(1.0, color="#333333", linewidth=0.8)
    if sr is None or sr.ranking is None:
        ax.set_title(f"{sh.name}: no point may decide", fontsize=9, loc="left")
        ax.set_yticks([])
        return
    ax.axvspan(1.0 / sr.margin, 1.0, color="#dddddd", zorder=0)
    fams = sr.ranking.families
    ys = list(range(len(fams)))
    for y, e in zip(ys, fams):
        est, lo, hi = _relative(sr, e)
        color = FAMILY_COLOR.get(e.family, "#bcbd22")
        if est is None:
            continue
        ax.plot([min(max(est, 0.008), 1.6)], [y], marker="o", color=color, markersize=6, linestyle="none",
                zorder=3)
        interval(ax, y, est, lo, hi, color, vertical=False, linewidth=1.6)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{e.family}\n{e.key}" for e in fams], fontsize=7)
    ax.invert_yaxis()
    word = sr.ranking.word or "one family"
    ax.set_title(f"{sh.name}, by {METRIC_WORDS.get(sr.metric, sr.metric)}\n{fams[0].family} first:"
                 f" {word} against the next", fontsize=9, loc="left")
    ax.grid(True, axis="x", which="both", alpha=0.3)


def draw_decision(runs: dict[str, str]):
    shapes, used = [], []
    for sh in decision.SHAPES:
        run = _load(runs, sh.section)
        sr = decision.shape_ranking(run, sh) if run is not None else None
        if run is not None:
            used.append(run)
        shapes.append((sh, sr))
    if not used:
        return _placeholder("Which family wins, by workload shape", "no reference run listed for any shape")
    fig, axes = plt.subplots(3, 2, figsize=(10, 9.5), squeeze=False)
    for ax, (sh, sr) in zip(axes.flat, shapes):
        _decision_panel(ax, sh, sr)
    for ax in axes[-1]:
        ax.set_xlabel("best row of the family / the winner's (log; 1 = winner, left = worse)", fontsize=8)
    fig.suptitle("Which family wins, by workload shape: each family's best row against the winner",
                 fontsize=12, fontweight="bold")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    _footer(fig, used, "dots: median ratio, bars: 95% interval (paired by block), a bar cut at the edge ends in a"
            " triangle; grey band: the metric's equivalence margin. CPU and memory are inverted, so left is"
            " always worse.")
    return fig


def _repro_series(runs: dict[str, str]):
    """(published table, rows [(label, published, ruby, cpp)], runs used): C++ from the ever-table
    run, Ruby from the first run of (ever-table, ruby-replicas) that has Ruby rows."""
    cands = [r for r in (_load(runs, s) for s in ("ever-table", "ruby-replicas")) if r is not None]
    if not cands:
        return None, [], []
    pubs = published.matching(r.label for r in cands[0].rows.values())
    if not pubs:
        return None, [], cands[:1]
    pub = pubs[0]
    cpp = {nr.label: nr for nr in replicas.normalised(cands[0], pub)}
    ruby_run, ruby = None, {}
    for r in cands:
        norm = {nr.label: nr for nr in replicas.normalised(r, pub)}
        if any(nr.ruby for nr in norm.values()):
            ruby_run, ruby = r, norm
            break
    rows = [(label, nr.published, (ruby.get(label).ruby if label in ruby else None), nr.cpp)
            for label, nr in cpp.items() if any(nr.published) or nr.cpp]
    used = [cands[0]] + ([ruby_run] if ruby_run is not None and ruby_run is not cands[0] else [])
    return pub, rows, used


def _repro_point(ax, y, ce, stack):
    color, marker, face = STACK_STYLE[stack]
    if ce is None or ce.ci is None:
        return
    ci = ce.ci
    est = min(max(ci.ratio, ax.get_xlim()[0]), ax.get_xlim()[1])
    ax.plot([est], [y], marker=marker, color=color, markerfacecolor=(face or color) if ce.can else "white",
            markersize=5, linestyle="none", zorder=3)
    interval(ax, y, ci.ratio, ci.lo, ci.hi, color, vertical=False)


def draw_reproduction(runs: dict[str, str]):
    pub, rows, used = _repro_series(runs)
    title = "Reproduction: each published row over its single thread, published and measured"
    if pub is None or not rows:
        return _placeholder(title, "no reference run with rows of a published table (section ever-table)")
    fig, axes = plt.subplots(1, len(pub.columns), figsize=(10, 0.42 * len(rows) + 2.2), sharey=True, squeeze=False)
    offs = {"published": 0.0, "Ruby": -0.22, "C++": 0.22}
    for ci_, (ax, col) in enumerate(zip(axes[0], pub.columns)):
        ax.set_xscale("log")
        ax.set_xlim(0.02, 3.0)
        ax.xaxis.set_major_formatter(PLAIN)
        ax.axvline(1.0, color="#333333", linewidth=0.8)
        for y, (_label, pubv, ruby, cpp) in enumerate(rows):
            if pubv[ci_]:
                ax.plot([pubv[ci_]], [y + offs["published"]], marker="D", color="k", markerfacecolor="white",
                        markersize=5, linestyle="none", zorder=4)
            _repro_point(ax, y + offs["Ruby"], ruby[ci_] if ruby else None, "Ruby")
            _repro_point(ax, y + offs["C++"], cpp[ci_] if cpp else None, "C++")
        ax.set_title(f"GET / {col}", fontsize=9)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.set_xlabel("ratio to single thread (log)", fontsize=8)
    axes[0][0].set_yticks(range(len(rows)))
    axes[0][0].set_yticklabels([r[0] for r in rows], fontsize=7)
    axes[0][0].invert_yaxis()
    handles = [Line2D([0], [0], marker="D", color="k", markerfacecolor="white", linestyle="none", label="published"),
               Line2D([0], [0], marker="^", color=STACK_STYLE["Ruby"][0], linestyle="none", label="Ruby rows (measured)"),
               Line2D([0], [0], marker="s", color=STACK_STYLE["C++"][0], linestyle="none", label="C++ models (measured)")]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.93))
    fig.suptitle(f"{title} (`{pub.name}`)", fontsize=12, fontweight="bold")
    fig.tight_layout(rect=(0, 0.06, 1, 0.89))
    _footer(fig, used, "measured: median ratio with its 95% interval, hollow where req/s may not decide (a side not"
            " server-bound); " + chartmarks.CLIP_NOTE + "; no marker: the stack lacks the row")
    return fig


def _cost_rows(run: Run):
    """Per model (and per peer, floor or Ruby row family), the row with the most median req/s at
    the tiny-handler point without --gvl: [(row, cell)] ordered by family then CPU per request."""
    ld = decision.shape_load(run, COST_POINT)
    if ld is None:
        return None, []
    best: dict[str, tuple] = {}
    for r in run.rows.values():
        c = run.cell(r.key, ld.lid)
        if c is None or r.gvl or c.median("derived.server_user_us_per_req") is None:
            continue
        model = r.model or r.key
        rps = c.median("wrk.req_per_s") or 0.0
        if model not in best or rps > best[model][2]:
            best[model] = (r, c, rps)
    order = {f: i for i, f in enumerate(chartmarks.FAMILY_ORDER)}
    out = sorted(((r, c) for r, c, _ in best.values()),
                 key=lambda t: (order.get(row_family(t[0]), 99), t[1].median("derived.server_cpu_us_per_req") or 0))
    return ld, out


def draw_cost_account(runs: dict[str, str]):
    run = _load(runs, COST_POINT.section)
    title = "Cost account per model: server CPU, system calls and context switches per request"
    ld, rows = _cost_rows(run) if run is not None else (None, [])
    if not rows:
        return _placeholder(title, f"no reference run with per-request figures (section {COST_POINT.section})")
    fig, axes = plt.subplots(1, 3, figsize=(10, 0.3 * len(rows) + 2.2), sharey=True,
                             gridspec_kw={"width_ratios": [2, 1, 1]})
    ys = list(range(len(rows)))
    user = [c.median("derived.server_user_us_per_req") or 0 for _, c in rows]
    sys_ = [c.median("derived.server_sys_us_per_req") or 0 for _, c in rows]
    colors = [FAMILY_COLOR[row_family(r)] for r, _ in rows]
    hatch = ["///" if c.not_server_bound() else None for _, c in rows]
    bars = list(axes[0].barh(ys, user, color=colors, edgecolor="#333333", linewidth=0.4))
    bars += list(axes[0].barh(ys, sys_, left=user, color=colors, alpha=0.45, edgecolor="#333333", linewidth=0.4))
    for b, h in zip(bars, hatch + hatch):
        b.set_hatch(h)
    axes[0].set_xlabel("server CPU µs per request: user (solid) + system (light)", fontsize=8)
    for ax, path, label in ((axes[1], "derived.syscalls_per_req", "system calls per request"),
                            (axes[2], "derived.ctx_switches_per_req", "context switches per request")):
        ax.barh(ys, [c.median(path) or 0 for _, c in rows], color=colors, edgecolor="#333333", linewidth=0.4)
        ax.set_xlabel(label, fontsize=8)
    for ax in axes:
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels([r.key for r, _ in rows], fontsize=7)
    axes[0].invert_yaxis()
    fams = list(dict.fromkeys(row_family(r) for r, _ in rows))
    handles = [Patch(facecolor=FAMILY_COLOR[f], label=f) for f in fams]
    handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="///", label="not server-bound"))
    fig.legend(handles=handles, loc="upper center", ncol=min(5, len(handles)), fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.5, 0.935))
    fig.suptitle(f"{title} ({column_label(ld)} GET {ld.lid.path})", fontsize=11, fontweight="bold")
    fig.tight_layout(rect=(0, 0.05, 1, 0.88))
    _footer(fig, [run], "one row per model: its row with the most req/s at this point, without --gvl; medians over"
            " repetitions")
    return fig


def draw_latency_load(runs: dict[str, str]):
    run = _load(runs, "latency-curve")
    title = "p99 latency against offered load (open loop)"
    curves = latencycurve.curve_points(run.points) if run is not None else {}
    if not curves:
        return _placeholder(title, "no reference run with open-loop points (section latency-curve)")
    target = latencycurve.DEFAULT_TARGET_US
    fig, ax = plt.subplots(figsize=(9, 5))
    seen: dict[str, int] = {}
    for key, entries in curves.items():
        row = run.rows.get(key)
        fam = row_family(row) if row is not None else chartmarks.PEERS
        i = seen.get(fam, 0)
        seen[fam] = i + 1
        color = FAMILY_COLOR.get(fam, "#bcbd22")
        pts = [e for e in entries if e["p99"] is not None]
        ax.plot([e["rate"] for e in pts], [e["p99"] / 1e3 for e in pts], color=color,
                linestyle=chartmarks.VARIANT_STYLES[i % len(chartmarks.VARIANT_STYLES)], linewidth=1.4,
                label=f"{key} ({fam})")
        for e in pts:
            ax.plot([e["rate"]], [e["p99"] / 1e3], marker=chartmarks.VARIANT_MARKERS[i % 8], color=color,
                    markerfacecolor="white" if e["overloaded"] or e["generator_bound"] else color,
                    linestyle="none", markersize=5)
    ax.axhline(target / 1e3, color="#555555", linewidth=0.9, linestyle="--")
    ax.annotate(f"p99 target {target / 1e3:g} ms", (0.01, target / 1e3), xycoords=("axes fraction", "data"),
                fontsize=8, color="#555555", va="bottom")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("p99 latency from intended send time (ms, log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.set_title(title, fontsize=12, fontweight="bold")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _footer(fig, [run], "median p99 over repetitions; hollow: overloaded (no steady state) or generator-bound")
    return fig


OVERVIEW = (
    ("decision", "Which family wins, by workload shape", draw_decision,
     "Per workload shape, each family's best row relative to the winning family's, with 95% intervals"),
    ("reproduction", "The published table, reproduced", draw_reproduction,
     "Each published row's ratio to its single thread: published, Ruby rows and C++ models, per column"),
    ("cost-account", "Cost account per model", draw_cost_account,
     "Server CPU per request (user and system), system calls and context switches per request, per model"),
    ("latency-load", "p99 latency against offered load", draw_latency_load,
     "p99 latency of each model against the offered request rate, with the p99 target"),
)


def write_overview(runs: dict[str, str], out_dir: str) -> list[dict]:
    """Write decision, reproduction, cost-account and latency-load (.png and .svg) into OUT_DIR
    from RUNS (reference-set section -> run directory); returns [{name, title, png, svg, alt}]
    with the file paths as written. A chart without its run says so in the image."""
    os.makedirs(out_dir, exist_ok=True)
    out = []
    for name, title, draw, alt in OVERVIEW:
        png, svg = save_figure(draw(runs), os.path.join(out_dir, name), dpi=OVERVIEW_DPI)
        out.append({"name": name, "title": title, "png": png, "svg": svg, "alt": alt})
    return out


def reference_runs(config: dict, root: str) -> dict[str, str]:
    """Section -> run directory for the sections of results/reference-runs.toml that list a run
    (run = "" sections are left out)."""
    return {name: d for name in (config or {}) if (d := reportrefs.resolve(config[name], root))}


__all__ = ["OVERVIEW", "reference_runs", "write_overview"]
