"""Report placeholders that state facts of a run rather than compare figures: its design, its
environment and provenance, which repetitions were disturbed, and how intervals are built.
Each takes the Renderer (rd), the placeholder's Use and its arguments (reporttpl.FUNCS).
"""
from __future__ import annotations

from ..analysis import families, findings, stats
from ..format import published
from ..format import metrics as registry
from ..format.loadpoint import dig
from .tplbase import Claim, Use


def f_design(rd, use: Use, section, what):
    """{{design SEC | duration_s|warmup_s|timeout_s|repetitions|min_repetitions|extended_points|points|rows}}
    from the points."""
    r = rd.run(section)
    if what == "repetitions":  # the most any point got (the sequential design's extra blocks included)
        return str(max(len(c.points) for c in r.cells.values()))
    if what == "min_repetitions":  # what every point got
        return str(min(len(c.points) for c in r.cells.values()))
    if what == "extended_points":  # points that got more than every point did
        least = min(len(c.points) for c in r.cells.values())
        return str(sum(1 for c in r.cells.values() if len(c.points) > least))
    if what == "points":
        return str(len(r.cells))
    if what == "rows":
        return str(len(r.rows))
    vals = {dig(p, f"load.{what}") for p in r.points}
    vals.discard(None)
    if len(vals) != 1:
        raise rd.err(f"design {what}: run {r.run_id} has values {sorted(vals)}; expected one")
    return f"{vals.pop():g}"


def f_env(rd, use: Use, section, path):
    """{{env SEC | dotted.path}}: a field of the run's meta.json env (e.g. versions.wrk)."""
    v = dig(rd.run(section).env, path)
    if v is None:
        raise rd.err(f"run {rd.run(section).run_id} records no env.{path}")
    return str(v)


def f_runref(rd, use: Use, section):
    """{{runref SEC}}: the run directory, as a code span."""
    return f"`{rd.run(section).rel_dir()}`"


def f_disturbed(rd, use: Use, section):
    """{{disturbed SEC}}: which repetitions other processes disturbed (from verdict evidence)."""
    r = rd.run(section)
    hits = []
    for p in r.points:
        ev = p.get("verdict_evidence") or ""
        if "DISTURBED" in ev:
            other = registry.dig(p, "machine.other_cpu_util")
            share = f", {other * 100:.0f}% of a CPU used by other processes" if isinstance(other, (int, float)) else ""
            hits.append(f"`{p['row']['key']}` at `{p['load']['key']}` repetition {p.get('rep')}{share}")
    if not hits:
        text = "no repetition of this run was disturbed"
        rd.claims.append(Claim("undisturbed", text, section,
                               lambda run: None if not any("DISTURBED" in (p.get("verdict_evidence") or "")
                                                           for p in run.points) else "a point is disturbed"))
        return text
    return (f"{len(hits)} of {len(r.points)} repetitions were disturbed ([list](#disturbed)); they are kept"
            " and flagged")


def f_disturbed_list(rd, use: Use, section):
    """{{disturbed_list SEC}}: the disturbed repetitions, one line each, under the anchor `disturbed`."""
    r = rd.run(section)
    out = ['<a id="disturbed"></a>Disturbed repetitions of the run:', ""]
    for p in r.points:
        if "DISTURBED" in (p.get("verdict_evidence") or ""):
            other = registry.dig(p, "machine.other_cpu_util")
            share = f", {other * 100:.0f}% of a CPU used by other processes" if isinstance(other, (int, float)) else ""
            out.append(f"- `{p['row']['key']}` at `{p['load']['key']}` repetition {p.get('rep')}{share}")
    return "\n".join(out) if len(out) > 2 else "No repetition of the run was disturbed."


def f_finding(rd, use: Use, section, table, fid):
    """{{finding SEC | TABLE | ID}}: a published finding's verdict in the run, with each comparison
    it rests on, cited as families.cite does."""
    an = findings.Analysis(rd.run(section), published.load_published(table))
    f = next((x for x in an.findings if str(x.fid) == fid), None)
    if f is None:
        raise rd.err(f"finding {fid!r} is not declared in results/published/{table}.json")
    load = f.decl.on_stack(an.stack).primary_load
    for ln in f.lines:  # every comparison's ratio is printed: each row's figures change the text
        use.figures.update({(ln.a.key, load), (ln.b.key, load)})
    each = "; ".join(f"`{ln.a.key}` / `{ln.b.key}` {families.cite(ln.decision.word, ln.decision.ci)}"
                     for ln in f.lines)
    return f"finding {f.fid} (\"{f.title}\") is **{f.overall.word}** in this run" + (f", by comparison: {each}" if each else "")


def f_method(rd, use: Use, section):
    """{{method SEC}}: how the statistics module builds every interval (its own words)."""
    return stats.interval_method_text()


def f_provenance(rd, use: Use, section):
    """{{provenance SEC}}: the commit and tree state the run records, as recorded."""
    env = rd.run(section).env
    commit = env.get("git_commit") or "an unrecorded commit"
    dirty = env.get("git_dirty")
    if dirty is None:
        state = "the tree state was not recorded"
    elif dirty:
        files = env.get("git_dirty_files")
        state = ("from a dirty tree" + (f" (changed: {', '.join(files)}; diff sha256 {env.get('git_diff_sha256', '?')[:12]})"
                                        if files else " (the run does not record which files differed)"))
    else:
        state = "from a clean tree"
    return f"commit `{commit[:12]}`, {state}"
