"""`cbench compare RUN_A RUN_B`: per matching point, B's req/s against A's.

Points match on (row key, path, pipeline, load key). Refuses runs whose environments differ
in the fields that change results (pyperf's rule: do not mix environments unless told to).
"""
from __future__ import annotations

from ..analysis import boundshare, stats
from . import boundtext, tables
from ..analysis.runload import Run, column_label, group_title

# Fields of meta.env that must be equal for a comparison to mean anything.
ENV_FIELDS = ("cpu_model", "cpu_count", "kernel", "compiler", "server_cpus", "client_cpus")
# Where the server and the load ran (env.topology: "loopback",
# "across-namespaces", ...); runs written before it existed were all on loopback.
ENV_DEFAULTS = {"topology": "loopback"}
ENV_FIELDS += tuple(ENV_DEFAULTS)


def env_differences(a: Run, b: Run) -> list[tuple[str, object, object]]:
    """(field, value in A, value in B) for each environment field that differs."""
    diffs = []
    for f in ENV_FIELDS:
        va, vb = a.env.get(f, ENV_DEFAULTS.get(f)), b.env.get(f, ENV_DEFAULTS.get(f))
        if va != vb:
            diffs.append((f, va, vb))
    return diffs


def refusal_message(a: Run, b: Run, diffs) -> str:
    lines = ["cbench compare: refusing to compare runs measured in different environments:"]
    for f, va, vb in diffs:
        lines.append(f"  env.{f} differs: {a.run_id} has {va!r}, {b.run_id} has {vb!r}")
    lines.append("  (pass --force to compare anyway)")
    return "\n".join(lines)


def _marks(cell) -> str:
    if cell is None:
        return ""
    m = "".join(tables.verdict_mark(v) for v in cell.not_server_bound())
    return m + (tables.FAILED_MARK if cell.failed_points else "")


def render_run_comparison(a: Run, b: Run, forced_diffs=None, heading_level: int = 1) -> str:
    h = "#" * heading_level
    out = [f"{h} Run `{b.run_id}` compared with run `{a.run_id}`", "",
           f"- A: `{a.run_id}` (`{a.rel_dir()}`), scenario `{a.meta.get('scenario_name', '?')}`"
           + (", synthetic" if a.synthetic else ""),
           f"- B: `{b.run_id}` (`{b.rel_dir()}`), scenario `{b.meta.get('scenario_name', '?')}`"
           + (", synthetic" if b.synthetic else ""),
           f"- Machine: {a.machine_line()}.", ""]
    if forced_diffs:
        out += ["**Compared with --force although the environments differ:** "
                + "; ".join(f"env.{f}: A {va!r}, B {vb!r}" for f, va, vb in forced_diffs) + ".", ""]
    out += [f"Ratio: B's req/s ÷ A's (geometric means of the repetitions), with a {stats.interval_method_text()};"
            f" \"not significant\" when the interval includes 1 or either side has fewer than"
            f" {stats.MIN_REPS_FOR_CI} repetitions. † ‡ § ✗ mark points not server-bound or failed in that run.", ""]
    ratios, n_faster, n_slower, n_ns = [], 0, 0, 0
    only_a = [k for k in a.cells if k not in b.cells]
    only_b = [k for k in b.cells if k not in a.cells]
    any_table = False
    for group, points in point_comparisons(a, b):
        lines = []
        for pc in points:
            row, ld, ca, cb, ci = pc["row"], pc["load"], pc["a"], pc["b"], pc["ci"]
            va, vb = ca.rps(), cb.rps()
            ma = f"{stats.median(va):.0f}" if va else "failed"
            mb = f"{stats.median(vb):.0f}" if vb else "failed"
            words = stats.speed_words(ci.ratio) if ci is not None else ""
            ci_text = f"{stats.fmt_bound(ci.lo)}–{stats.fmt_bound(ci.hi)}" if ci is not None and ci.enough_reps else ""
            verdict = pc["verdict"]
            if ci is not None:
                ratios.append(ci.ratio)
                n_ns += verdict.startswith("not significant")
                n_faster += verdict == "significant" and ci.lo > 1
                n_slower += verdict == "significant" and ci.hi < 1
            lines.append(f"| {row.display()} | {column_label(ld)} | {ma}{_marks(ca)} | {mb}{_marks(cb)} | {words}"
                         f" | {ci_text} | {verdict} |")
        if lines:
            any_table = True
            out += [f"{h}# {group_title(group)}", "",
                    "| Row | Load | A req/s | B req/s | B vs A | 95% CI of B/A | |", "|---|---|---|---|---|---|---|"]
            out += lines + [""]
    if not any_table:
        out += ["No point was measured in both runs.", ""]
    gm = stats.geometric_mean(ratios)
    if gm is not None:
        out.append(f"Geometric mean of B/A over {len(ratios)} matching points: {gm:.3f}"
                   f" ({stats.speed_words(gm)}); significant: {n_faster} faster, {n_slower} slower;"
                   f" not significant: {n_ns}.")
        out.append("")
    if only_a or only_b:
        out.append(f"Points only in A: {len(only_a)}; only in B: {len(only_b)} (not compared).")
        out.append("")
    out += boundtext.comparison_lines(boundshare.share(a), boundshare.share(b))
    return "\n".join(out).rstrip("\n") + "\n"


def point_comparisons(a: Run, b: Run) -> list[tuple]:
    """(group, [point]) per non-idle load group of A: each point measured in both runs as a dict
    with row, load, a and b (the Cells), ci (B's req/s over A's, stats.ratio_ci, or None without
    successful repetitions on a side) and verdict ("significant", "not significant[ (too few
    reps: ...)]" or "no data"); render/export.py exports the same list."""
    out = []
    for group, loads in a.load_groups():
        if group[2]:
            continue  # idle points have no req/s
        points = []
        for row in a.rows.values():
            for ld in loads:
                ca, cb = a.cell(row.key, ld.lid), b.cell(row.key, ld.lid)
                if ca is None or cb is None:
                    continue
                va, vb = ca.rps(), cb.rps()
                ci = stats.ratio_ci(vb, va, seed_name=f"{row.key}|{ld.lid.path}|{ld.lid.pipeline}|{ld.lid.key}") \
                    if va and vb else None
                if ci is None:
                    verdict = "no data"
                elif not ci.enough_reps:
                    verdict = f"not significant (too few reps: {ci.n_den} and {ci.n_num})"
                else:
                    verdict = "significant" if ci.significant else "not significant"
                points.append({"row": row, "load": ld, "a": ca, "b": cb, "ci": ci, "verdict": verdict})
        out.append((group, points))
    return out
