"""`cbench compare --replication`: the same published findings judged separately on each run (one
machine each), side by side: verdict, effect and interval per machine at the primary point.
Numbers are never pooled: each run is analysed alone (findings.py, the same code as `compare
--published`) and only its verdicts and intervals are set next to the others'.

Stacks: each finding is judged on the C++ rows (cbench-server's stand-ins) and, when any of the
runs has Ruby rows (format/published.row_stack), also on the Ruby rows (the original stack) at the
point its "ruby" block declares, in a table of its own under the C++ one: the two stacks' rows are
never set in one line or one verdict. Runs without Ruby rows read exactly as before they existed.
"""
from __future__ import annotations

from ..analysis import findings
from ..analysis.runload import Run
from ..format.published import STACK_CPP, STACK_RUBY, Published

# How each stack's verdict line and heading name its rows (the C++ rows' read as they always did).
_ON = {STACK_CPP: "", STACK_RUBY: " on the Ruby rows"}


def _line_name(ln) -> str:
    """A comparison named by its rows' labels (the same on every machine), not their keys."""
    def side(r):
        return f"{r.label or r.key}{' --gvl' if r.gvl else ''}"
    return f"{side(ln.a)} / {side(ln.b)}"


def has_ruby_rows(runs: list[Run]) -> bool:
    return any(findings.stack_of(r) == STACK_RUBY for run in runs for r in run.rows.values())


def _cell(ln) -> str:
    if ln is None:
        return findings.NO_DATA
    ci = ln.decision.ci
    by = (f"{findings.METRICS[ln.decided_by][1]}, {ln.decided_spec.no_effect_text()}"
          if ln.decided_spec is not None else "—")
    word = f"**{ln.decision.word}**"
    return f"{word} {findings.fmt_ci(ci)} ({by})" if ci else word


def _stack_block(per_run: list, stack: str) -> list[str]:
    """One finding on one stack: a line per comparison, a column per run, then the verdicts."""
    out = []
    if stack == STACK_RUBY:
        if all(f.overall.word == findings.NOT_MEASURED and not f.lines for f in per_run):
            return [f"On the Ruby rows: **{findings.NOT_MEASURED}** ({per_run[0].overall.reason}).", ""]
        sd = per_run[0].decl.on_stack(STACK_RUBY)
        out += [f"On the Ruby rows (the original stack), primary load point GET {sd.primary_path}"
                f" `{sd.primary_load}`.", ""]
    out.append("| Comparison | " + " | ".join(f"run {i + 1}" for i in range(len(per_run))) + " |")
    out.append("|---" * (len(per_run) + 1) + "|")
    names = []
    for f in per_run:
        for ln in f.lines:
            if _line_name(ln) not in names:
                names.append(_line_name(ln))
    for nm in names:
        cells = [_cell(next((x for x in f.lines if _line_name(x) == nm), None)) for f in per_run]
        out.append(f"| {nm} | " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"Verdict per run{_ON[stack]}: "
               + "; ".join(f"run {i + 1}: {f.overall.word}" for i, f in enumerate(per_run)) + ".")
    if len({f.overall.word for f in per_run}) > 1:
        out.append(f"**The verdict{_ON[stack]} differs between the runs.**")
    out.append("")
    return out


def render_replication(runs: list[Run], pub: Published, heading_level: int = 1) -> str:
    """The replication report as Markdown (see the module docstring)."""
    h = "#" * heading_level
    stacks = (STACK_CPP, STACK_RUBY) if has_ruby_rows(runs) else (STACK_CPP,)
    analyses = {s: [findings.Analysis(r, pub, stack=s) for r in runs] for s in stacks}
    out = [f"{h} Replication: the findings of `{pub.name}` on {len(runs)} runs", ""]
    for i, r in enumerate(runs):
        env = r.env
        out.append(f"- Run {i + 1}: `{r.run_id}` (`{r.rel_dir()}`), scenario `{r.meta.get('scenario_name', '?')}`,"
                   f" {r.machine_line()}, commit {str(env.get('git_commit') or '?')[:12]}"
                   + (", synthetic" if r.synthetic else ""))
    scen = {r.meta.get("scenario_name") for r in runs}
    out.append("")
    if len(scen) > 1:
        out += [f"**The runs come from different scenarios ({', '.join(sorted(str(s) for s in scen))})**: their"
                " rows may differ; each is judged on its own rows.", ""]
    out += ["Each run is judged alone (findings.py, the same code as `compare --published`); nothing is pooled"
            " across runs. A verdict that differs between machines is itself a result.", ""]
    if len(stacks) > 1:
        out += ["Each finding is judged on the C++ rows and, below them, on the Ruby rows (the original stack),"
                " never on a mix of the two.", ""]
    for k, f0 in enumerate(analyses[STACK_CPP][0].findings):
        out += [f"{h}# Finding {f0.fid}: {f0.title}", "",
                f"Primary load point GET {f0.decl.primary_path} `{f0.decl.primary_load}`.", ""]
        for s in stacks:
            out += _stack_block([an.findings[k] for an in analyses[s]], s)
    return "\n".join(out).rstrip("\n") + "\n"
