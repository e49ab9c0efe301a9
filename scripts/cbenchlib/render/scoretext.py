"""The reproduction scorecard, the fidelity claims and the replicas beside the published table, as
Markdown for `cbench compare RUN --published NAME` (analysis/scorecard.py and analysis/replicas.py
judge; this module only words it)."""
from __future__ import annotations

from ..analysis import findings, replicas, scorecard
from ..analysis.scorecard import ASPECTS, STACK_ORDER
from ..format.published import STACK_RUBY, Published

STACK_TITLE = {STACK_RUBY: "Ruby rows (original stack)", "cpp": "C++ models (stand-ins)"}


def render_scorecard(scores: list[scorecard.EffectScore], h: str) -> list[str]:
    """The scorecard table (verdicts first), then what each effect's C++ models leave out."""
    out = [f"{h}# Reproduction scorecard", "",
           "Each published effect, on the Ruby rows (Ruby 3.1, its GVL, the published examples' replicas) and on"
           " the C++ models: DIRECTION (the finding's verdict; for a scorecard effect, a/b on the claimed side"
           " of 1 at every column), MAGNITUDE (the published ratio inside the measured 95% interval), TREND"
           " (successive published columns, rises and falls beyond the declared tolerance reproduced by"
           " intervals on the same side; analysis/scorecard.py states the rule). Each cell: yes, no, undecided"
           " or not measured (with why), n/a where the published table gives nothing to check.", "",
           "| Effect | Rows | Verdict | Direction | Magnitude | Trend |", "|---|---|---|---|---|---|"]
    for es in scores:
        for s in STACK_ORDER:
            cells = [_cell(es.scores[s][a]) for a in ASPECTS]
            verdict = (f"**{es.verdicts[s]}**" if es.verdicts[s] else "—") + verdict_mark(es, s)
            out.append(f"| {es.eid}. {es.title} | {STACK_TITLE[s]} | {verdict} | " + " | ".join(cells) + " |")
    notes = [n for s in STACK_ORDER for n in defect_notes(scores, s, STACK_TITLE[s])]
    out += ([""] + notes if notes else []) + ["", "What the C++ models do not model, per effect:", ""]
    out += [f"- {es.eid}. {es.title}: {es.not_modelled or 'not declared'}" for es in scores]
    lines = [es for es in scores if es.counters_line]
    if lines:
        out += ["", "What the Ruby rows' mechanism counters say, per effect (analysis/scorecard.py:"
                " counters_line):", ""]
        out += [f"- {es.eid}. {es.title}: {es.counters_line}" for es in lines]
    return out + [""]


DEFECT_MARK = "※"  # the tables' marks (†, ‡, §, ¤, ∅) are taken


def mark(carried: list | None) -> str:
    """" ※" after a verdict whose comparisons hold rows measured with a declared defect, else ""."""
    return f" {DEFECT_MARK}" if carried else ""


def verdict_mark(es: scorecard.EffectScore, stack: str) -> str:
    """mark() for an effect's verdict on STACK."""
    return mark(es.defects.get(stack))


def defect_notes(scores: list[scorecard.EffectScore], stack: str, stack_name: str) -> list[str]:
    """One line per defect (results/defects.toml) that rows of the effects on STACK carry: which
    effects, which rows, which commit fixed what, and where the rows with the fix are."""
    out = []
    seen = []
    for es in scores:
        seen += [d for d in es.defects.get(stack) or [] if d not in seen]
    for d in seen:
        ids = [es.eid for es in scores if d in (es.defects.get(stack) or [])]
        out.append(defect_line(d, f"{', '.join(ids)} on the {stack_name} hold rows"))
    return out


def defect_line(d, lead: str) -> str:
    """The one wording of a declared defect (format/defects.py) beside the verdicts it marks."""
    where = f"; with the fix: `{d.diagnostic}`" if d.diagnostic else ""
    return (f"{DEFECT_MARK} {lead} ({', '.join(d.models)}) measured before `{d.short_fix}` fixed a defect:"
            f" {d.what}; the verdicts describe the defect, not the design{where}.")


def _cell(sc: scorecard.Score) -> str:
    """A cell word in bold with its reason after it (table pipes escaped)."""
    return (f"**{sc.word}**" + (f" ({sc.why})" if sc.why else "")).replace("|", "\\|")


def render_fidelity(fids: list[replicas.Fidelity], h: str) -> list[str]:
    out = []
    for fi in fids:
        d = fi.decl
        out += [f"{h}# Fidelity {d.get('id', '')}: {d.get('title', '')}", "", f"Claim: {d.get('claim', '')}", ""]
        if d.get("note"):
            out += [d["note"], ""]
        out += ["| Ruby row | Column | Ruby / single (95% CI) | C++ point used | C++ / single (95% CI) | Judgement |",
                "|---|---|---|---|---|---|"]
        for ln in fi.lines:
            out.append(f"| {ln.row} | {ln.column} | {findings.fmt_ci(ln.ruby_ci) or '—'} | {ln.cpp_point or '—'} |"
                       f" {findings.fmt_ci(ln.cpp_ci) or '—'} | **{ln.decision.word}**"
                       + (f" ({ln.decision.reason})" if ln.decision.reason else "") + " |")
        out += ["", f"**Fidelity: {fi.overall.word}** ({fi.overall.reason}).", ""]
    return out


def render_normalised(rows: list[replicas.NormRow], pub: Published, h: str) -> list[str]:
    """Each published row beside its replica and its model, all divided by their family's single
    thread at the same column, with 95% intervals."""
    out = [f"{h}# Published, Ruby replica and C++ model, each ÷ its family's single thread", "",
           "Per published row and column: the published ratio; the Ruby replica's and the C++ model's ratio"
           " (without and with the emulated GVL) to their own stack's single-thread row at the same column, a"
           " 95% interval (paired by block where recorded). § req/s may not decide at that point (not"
           " server-bound in some repetition); — no such row or point.", "",
           "| Row | Column | Published | Ruby replica | C++ | C++ --gvl |", "|---|---|---|---|---|---|"]
    for nr in rows:
        for j, col in enumerate(pub.columns):
            pubtxt = f"{nr.published[j]:.2f}" if nr.published[j] is not None else "—"
            cells = [_norm_cell(side, j) for side in (nr.ruby, nr.cpp, nr.cpp_gvl)]
            out.append(f"| {nr.label} ÷ {nr.base} | {col} | {pubtxt} | " + " | ".join(cells) + " |")
    return out + [""]


def _norm_cell(side: list | None, j: int) -> str:
    if side is None or side[j].ci is None:
        return "—"
    return findings.fmt_ci(side[j].ci) + ("" if side[j].can else " §")
