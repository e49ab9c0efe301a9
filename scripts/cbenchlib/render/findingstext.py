"""The published findings of a run as markdown: what analysis/findings.py judged, in words."""
from __future__ import annotations

from ..analysis import scorecard, stats
from ..analysis.findings import METRICS, NO_DATA, NOT_MEASURED, Analysis, budget_note, fmt_ci
from ..format.published import STACK_RUBY
from ..analysis.runload import column_label
from . import scoretext


def render_findings(an: Analysis, heading_level: int = 2, ruby: Analysis | None = None) -> str:
    """Each finding's claim, declaration, comparisons and verdict on the C++ rows (`an`), then,
    given `ruby` (the same table judged on the Ruby rows), its verdict on the Ruby rows."""
    h = "#" * heading_level
    out: list[str] = []
    if not an.findings:
        out += [f"{h} Published findings", "", "No published table with declared findings applies to this run.", ""]
        return "\n".join(out)
    out += [f"{h} Published findings, judged from run `{an.run.run_id}`", "",
            "Each finding was declared in the published table's data before any run: its primary load point"
            " (where the server, not wrk, is the bound on a 2-core machine), its claimed direction, its margin"
            " where it claims no real difference, its published magnitude and its metrics. Effects are ratios"
            f" (row a / row b) with a {stats.interval_method_text()}. The verdict comes from the first"
            " listed metric that can decide at the primary point (req/s only at server-bound points; CPU per"
            " request only where wrk, not the server, was saturated; server CPU per request at a fixed rate at"
            " the run's fixed-rate load of the primary point's shape, every row offered one open-loop rate below"
            " their capacities, only where every repetition of both rows kept that rate; system calls and"
            " context switches per request wherever the point did not fail). A metric after the first is a fallback, judged against"
            " its own declared direction and no-effect value (a cost per request is better when lower, the"
            " opposite sense of req/s), never the first metric's, and is consulted only where the earlier ones"
            " cannot decide, unless it is declared \"when undecided\" (a metric of the claim's own quantity:"
            " server CPU per request at a fixed rate, on one server CPU about 1 / capacity), consulted also"
            " where they could and stayed undecided; the k metrics so consulted for a comparison are each"
            " judged at 5% / k (a 1 - 0.05 / k interval, the equivalence tests at 0.05 / k; Bonferroni), so"
            " that the chance that any of them decides wrongly stays at 5%. Each comparison's verdict names"
            " the metric that decided, its no-effect value and, where k > 1, its level: *supported* (the interval excludes the null in the"
            " claimed direction), *contradicted* (in the other direction), *equivalent* (both one-sided tests"
            " pass against the margin), *undecided* (with how wide the interval is and how many repetitions"
            " would decide it). Secondary load points: ✓ / ✗ the one-sided test in / against the claimed"
            " direction passes at 5% after Holm's correction over that comparison's secondary points, ~ neither,"
            " · the metric cannot decide there. A finding's verdict over its k comparisons: supported where"
            " every comparison supports it; contradicted where one contradicts it with one-sided p under"
            " 0.025 / k, divided again by the number of metrics that could decide that comparison"
            " (Bonferroni: the claim is made at each comparison and falls with one); else undecided.", ""]
    for f in an.findings:
        d = f.decl
        m0 = d.metrics[0]
        out += [f"{h}# Finding {d.fid}: {d.title}", "", f"Claim: {d.claim}", "",
                f"Declared: primary load point GET {d.primary_path} `{d.primary_load}`; claim {m0.claim_text()}"
                f" on {METRICS[m0.metric][1]} ({m0.no_effect_text()})"
                + ("; where it cannot decide, in order:" if len(d.metrics) > 1 else "."), ""]
        fallbacks = d.metrics[1:]
        if fallbacks:
            out += [f"- fallback {METRICS[m.metric][1]}: claim {m.claim_text()} ({METRICS[m.metric][3]} is"
                    f" better; {m.no_effect_text()}"
                    f"{'; consulted also where the metrics before it stay undecided' if m.when_undecided else ''}):"
                    f" {m.reason}" for m in fallbacks] + [""]
        if d.note:
            out += [d.note, ""]
        if not f.lines:
            out += [f"**{NO_DATA}**: the run has no rows for "
                    + ", ".join(f"`{n}`" for n in f.missing) + ".", ""]
        else:
            out += _lines_table(f, d.primary_path)
            out += ["", f"**Verdict: {f.overall.word}** ({f.overall.reason}).{_budget(an, f)}", ""]
        if ruby is not None:
            out += _ruby_verdict(next(g for g in ruby.findings if g.fid == d.fid), ruby)
    return "\n".join(out)


def _lines_table(f, primary_path: str) -> list[str]:
    """A finding's comparisons: one table line per metric, then one verdict line per comparison."""
    out = ["| Comparison (a / b) | Metric | Primary point: effect (95% CI) | Verdict | Secondary points |",
           "|---|---|---|---|---|"]
    for ln in f.lines:
        for r in ln.results:
            prim = fmt_ci(r.primary.ci) if r.primary and r.primary.ci else "not measured"
            secs = " ".join(f"{column_label(pe.load)}{'' if pe.load.lid.path == primary_path else ' ' + pe.load.lid.path}:"
                            f" {fmt_ci(pe.ci)} {pe.mark()}" for pe in r.secondary if pe.ci)
            metric = f"{METRICS[r.spec.metric][1]} ({r.spec.claim_text()})"
            out.append(f"| {ln.name} | {metric} | {prim} | {r.decision.text()} | {secs} |")
    out.append("")
    for ln in f.lines:
        by = f" ({ln.decided_text()})" if ln.decided_spec is not None else ""
        tie = f" An equivalence sub-claim (a tie expected): {(ln.comp or {}).get('reason', '')}." if ln.tie else ""
        res = next((r for r in ln.results if ln.decided_spec is not None and r.spec is ln.decided_spec), None)
        left = res.primary.excluded if res is not None and res.primary is not None else []
        left_text = f" Left out at the primary point: {'; '.join(left)}." if left else ""
        out.append(f"- {ln.name}: **{ln.decision.word}**{by}: {ln.decision.reason}. Magnitude: {ln.magnitude}."
                   + tie + left_text)
    if f.missing:
        out.append(f"- {NO_DATA} for " + ", ".join(f"`{n}`" for n in f.missing) + ".")
    return out


def _budget(an: Analysis, f) -> str:
    """The budget sentence after an undecided verdict (findings.budget_note), or ""."""
    note = budget_note(an.run, f)
    return f" {note[0].upper()}{note[1:]}." if note else ""


def _ruby_verdict(g, an: Analysis) -> list[str]:
    """The finding judged on the Ruby rows: one line when not measured, else its comparisons too."""
    if g.overall.word == NOT_MEASURED:
        return [f"**Verdict on the Ruby rows: {NOT_MEASURED}** ({g.overall.reason}).", ""]
    sd = g.decl.on_stack(STACK_RUBY)
    carried = scorecard.carried(scorecard.defects_of(an.run), scorecard.compared_rows(g))
    notes = [scoretext.defect_line(d, "Rows of these comparisons") for d in carried]
    return ([f"On the Ruby rows (the original stack), primary load point GET {sd.primary_path} `{sd.primary_load}`:", ""]
            + _lines_table(g, sd.primary_path)
            + ["", f"**Verdict on the Ruby rows: {g.overall.word}**{scoretext.mark(carried)}"
               f" ({g.overall.reason}).{_budget(an, g)}", ""]
            + [n for note in notes for n in (note, "")])
