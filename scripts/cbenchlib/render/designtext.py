"""The design findings of results/findings/design.json as a report section: each finding's claim,
its comparisons with their intervals, verdicts and mechanism figures, the repetitions left out
(and those that entered with failed requests), and its verdict. The judging is analysis/design.py's;
this module only writes it out."""
from __future__ import annotations

from ..analysis import design, findings
from ..analysis.runload import Run
from ..format import metrics as registry


def _fmt(v: float | None, metric: str = "") -> str:
    if metric in registry.NOT_MEASURED:
        return "not measured"
    if v is None:
        return "not recorded"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def render(run: Run, decls: list[dict], heading_level: int = 3) -> str:
    h = "#" * heading_level
    out = []
    for d in decls:
        r = design.judge(run, d)
        out += [f"{h} Design finding {d['id']}: {d['title']}", "", f"Claim (declared before the run in"
                f" `results/findings/design.json`): {d['claim']}", ""]
        out += [d["note"], ""] if d.get("note") else []
        if d["kind"] in ("ratio", "threshold"):
            if not r.comparisons:
                out += [f"**{findings.NO_DATA}**: the run has no rows for " + ", ".join(f"`{m}`" for m in r.missing), ""]
                continue
            mech = d.get("mechanism") or []
            head = "| a / b | " + design.METRICS[d["metric"]][1] + " a/b (95% CI) |"
            sep = "|---|---|"
            if d.get("bound"):
                head += " bound (limit a / limit b) | measured / bound |"
                sep += "---|---|"
            one = d["kind"] == "threshold"  # a threshold's row is both sides: one mechanism value
            head += " verdict |" + "".join(f" {design.METRICS[m][1]}{'' if one else ' (a; b)'} |" for m in mech)
            sep += "---|" + "---|" * len(mech)
            if d["kind"] == "threshold":
                head = head.replace("| a / b |", "| row / declared value |").replace(" a/b ", " row/value ")
            at = f" ({design.load_text(d['load'])})" if d.get("load") else ""
            out += [f"At GET `{d['path']}`{at}; metric {design.METRICS[d['metric']][1]}.", "", head, sep]
            for c in r.comparisons:
                line = f"| {c.name} | {findings.fmt_ci(c.ci) if c.ci else 'no interval'} |"
                if d.get("bound"):
                    frac = f"{c.ci.ratio / c.bound:.2f}" if c.ci and c.bound else ""
                    ms, conns = design.sleep_ms(d["path"]), c.a_conns
                    rates = (f" ({design.row_limit(c.a, conns) * 1000 / ms:.0f} against {design.row_limit(c.b, conns) * 1000 / ms:.0f}"
                             " req/s)" if ms else "")
                    line += f" {c.bound:g}{rates} | {frac} |"
                line += f" {c.decision.text()} |" + "".join(f" {_fmt(c.mechanism[m][0], m)}" + (
                    "" if one else f"; {_fmt(c.mechanism[m][1], m)}") + " |" for m in mech)
                out.append(line)
            out.append("")
            marks = [m for c in r.comparisons for m in c.marks]
            if marks:
                out += ["Repetitions that decide nothing (marked): " + "; ".join(sorted(set(marks))) + ".", ""]
            entered = [m for c in r.comparisons for m in c.entered]
            if entered:
                out += ["Repetitions whose requests failed, entered on the side the claim says is higher (they"
                        " understate its req/s, so they can only weigh against the claim; the finding's"
                        " \"conservative_errors\"): " + "; ".join(sorted(set(entered))) + ".", ""]
            if r.missing:
                out += [f"{findings.NO_DATA} for " + ", ".join(f"`{m}`" for m in r.missing) + ".", ""]
        else:
            out += ["| handler cost | best row | worst row | best / worst req/s (95% CI) | within the margin? |",
                    "|---|---|---|---|---|"]
            for cp in r.points:
                out.append(f"| `{cp.path}` | {cp.best.key} | {cp.worst.key} | {findings.fmt_ci(cp.ci)} | {cp.decision.text()} |")
            out += ["", "The best and worst rows are picked from the same repetitions that estimate their ratio,"
                    " so the ratio leans away from one: an equivalence verdict is conservative.", ""]
        out += [f"**Verdict: {r.overall.word}** ({r.overall.reason}).", ""]
    return "\n".join(out)


def render_for_run(run: Run, path: str = design.DESIGN_PATH) -> str:
    """The design findings of the run's scenario, or "" when it declares none."""
    try:
        decls = design.for_scenario(design.scenario_of(run), path)
    except (OSError, design.DeclarationError):
        return ""
    return render(run, decls) if decls else ""
