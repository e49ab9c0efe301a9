"""REPORT.md as the answer: a summary generated from the reference set, every detail on its own
page under report/ (reportpages.py).

What was asked; the family-level decision table (analysis/decision.py) with its intervals; the
reproduction scorecard of the published effects (analysis/scorecard.py) on the Ruby rows and the
C++ models; each published finding across every run of the scenario the project holds
(render/replication.py's judging, one run at a time); four charts drawn by `cbench plot` under
report/charts/; and what this machine cannot answer, from the runs' own verdicts. Every
comparative clause cites the verdict it rests on (families.cite), and
tests/report/test_report_pages.py tests that its words agree with it.
"""
from __future__ import annotations

import glob
import os
from collections import Counter

from ..analysis import decision, families, findings, scorecard
from ..analysis.runload import Run, load_run
from ..format import published, reportrefs
from ..format.published import STACK_CPP, STACK_RUBY
from . import replication, scoretext
from .reportpages import PAGES_DIR

CHARTS = (("decision", "Decision table: the winning family per workload shape, with intervals"),
          ("reproduction", "Reproduction: each published effect against the measured interval"),
          ("cost-account", "Cost account: server CPU, system calls and switches per request, per model"),
          ("latency-load", "Latency against offered load (open loop)"))
FINDINGS_SECTION = "ever-table"
PUBLISHED = "ever"
GENERATOR_BOUND = ("client-bound", "both-saturated")


def chart(name: str, title: str) -> str:
    """An inline image of a chart `cbench plot` draws into report/charts/."""
    return f"![{title}]({PAGES_DIR}/charts/{name}.png)"


def _asked(config: dict, root: str, runs: dict[str, Run]) -> list[str]:
    envs = {(r.commit or "?")[:12] for r in runs.values()}
    machines = {r.machine_line() for r in runs.values()}
    missing = [s for s in config if reportrefs.resolve(config[s], root) is None]
    listed = len(config) - len(missing)  # every listed run, micro's too (RUNS holds the sweeps)
    return ["## What was asked", "",
            "For the same HTTP workload, how do server concurrency models compare, and why? First: why did"
            " worker threads make the Ruby servers slower than a single-threaded event loop in the table of"
            " the Ever gem's README? Every model shares one codec, one handler and byte-identical responses,"
            " so only the concurrency model differs between rows.", "",
            f"The reference set: {listed} runs listed in `results/reference-runs.toml`, from commit"
            f" {', '.join(f'`{e}`' for e in sorted(envs))} on {'; '.join(sorted(machines))}"
            + (f"; not run: {', '.join(f'`{s}`' for s in missing)}." if missing else "."), ""]


def _decision(config: dict, root: str, allow_synthetic: bool) -> list[str]:
    out = ["## Which model for which workload", "",
           "Families ranked by their best row at each shape's load point; each verdict cites the ratio best / next"
           " family and its interval (95%; 90% for an equivalence). The mechanism is given only where a cell decided.", ""]
    for r in decision.rows(config, root, allow_synthetic=allow_synthetic):
        if not r.get("shorts"):
            out.append(f"- **{r['shape']}**: {r['throughput']}")
            continue
        thr, mem = r["shorts"]
        out += [f"- **{r['shape']}** at {r['point']}:", f"  - Throughput: {thr}.", f"  - Memory: {mem}."]
        if not r["mechanism"].startswith(decision.UNDECIDED_MECHANISM):
            out.append(f"  - Why: {r['mechanism']}.")
    return out + ["", f"Every cell in full, with its rows and runs: [decision table]({PAGES_DIR}/decision.md).", ""]


def _score_word(sc: scorecard.Score) -> str:
    return sc.word if sc.word != scorecard.UNMEASURED else "not measured"


def _scorecard(run: Run, pub: published.Published) -> list[str]:
    scores = scorecard.scorecard(run, pub)
    out = ["## Reproduction of the published effects", "",
           f"Each effect of the `{pub.name}` table in the reference run `{run.run_id}`, judged at the published"
           " table's own path and columns: verdict, then DIRECTION, MAGNITUDE (the published ratio inside the"
           " measured interval) and TREND.", ""]
    for s in scorecard.STACK_ORDER:
        if scorecard.not_measured_everywhere(scores, s):
            why = next((es.scores[s]["direction"].why for es in scores if es.scores[s]["direction"].why), "")
            out += [f"On the {findings.STACK_NAMES[s]}: not measured in the reference set ({why}).", ""]
            continue
        out += [f"On the {findings.STACK_NAMES[s]}:", "", "| Effect | Verdict | Direction | Magnitude | Trend |",
                "|---|---|---|---|---|"]
        for es in scores:
            cells = [_score_word(es.scores[s][a]) for a in scorecard.ASPECTS]
            out.append(f"| {es.eid}. {es.title} | {es.verdicts[s] or '—'}{scoretext.verdict_mark(es, s)} | "
                       + " | ".join(cells) + " |")
        out.append("")
        notes = scoretext.defect_notes(scores, s, findings.STACK_NAMES[s])
        out += [n for note in notes for n in (note, "")]
        if s == STACK_RUBY:
            out += [_mechanism_line(es) for es in scores if es.counters_short] + [""]
    return out + [f"Each cell's reason, what the C++ models do not model, and the published and measured tables:"
                  f" [findings]({PAGES_DIR}/findings.md).", ""]


def _mechanism_line(es: scorecard.EffectScore) -> str:
    """One line: whether an effect with declared mechanism counters reproduced on the Ruby rows
    (scorecard.reproduced) and what the replicas' counters say of its mechanism."""
    sc = es.scores[STACK_RUBY]
    aspects = ", ".join(f"{a} {_score_word(sc[a])}" for a in scorecard.ASPECTS)
    return (f"{es.eid} on the Ruby rows: **{scorecard.reproduced(sc)}** ({aspects}); the replicas' counters:"
            f" {es.counters_short}.")


def replication_runs(root: str, scenario: str = FINDINGS_SECTION) -> list[Run]:
    """Every non-synthetic run of SCENARIO the project holds under results/runs/, oldest first."""
    runs = [load_run(d) for d in sorted(glob.glob(os.path.join(root, "results", "runs", f"*-{scenario}")))]
    return [r for r in runs if not r.synthetic]


# Runs shown in the summary's replication table (every run is on the replication page): each
# column adds about 80 characters to a finding's line, and the summary's lines stay under 400.
REPLICATION_COLUMNS = 4


def _replication(runs: list[Run], pub: published.Published) -> list[str]:
    if not runs:
        return ["## Replication across the runs the project holds", "",
                f"The project holds no `{FINDINGS_SECTION}` run under `results/runs/`.", ""]
    held = len(runs)
    runs = runs[-REPLICATION_COLUMNS:]  # the summary's lines stay short however many runs are held
    which = (f"each of the {held}" if held == len(runs)
             else f"each of the {len(runs)} most recent of the {held}")
    analyses = [findings.Analysis(r, pub) for r in runs]
    out = ["## Replication across the runs the project holds", "",
           f"Each finding judged alone on {which} `{FINDINGS_SECTION}` runs (C++ rows, nothing pooled);"
           " a cell cites the first comparison that reads the finding's decided verdict, else the first decided"
           " one, else the first.", "",
           "| Finding | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " |",
           "|---" * (len(runs) + 1) + "|"]
    for k, f0 in enumerate(analyses[0].findings):
        cells = [_finding_cell(an.findings[k]) for an in analyses]
        out.append(f"| {f0.fid}. {f0.title} | " + " | ".join(cells) + " |")
    out += [""] + [f"Run {i + 1}: `{r.run_id}`, {r.machine_line()}." for i, r in enumerate(runs)]
    return out + ["", f"Every comparison of every run: [replication]({PAGES_DIR}/replication.md).", ""]


def _finding_cell(f) -> str:
    same = [x for x in f.lines if x.decision.word == f.overall.word != findings.UNDECIDED and x.decision.ci]
    ln = same[0] if same else next((x for x in f.lines if x.decision.word != findings.UNDECIDED),
                                   f.lines[0] if f.lines else None)
    if ln is None or ln.decision.ci is None:
        return f"**{f.overall.word}**"
    if ln.decision.word == f.overall.word:
        return f"**{f.overall.word}** {families.cite(ln.decision.word, ln.decision.ci)}"
    return f"**{f.overall.word}** overall; one comparison {families.cite(ln.decision.word, ln.decision.ci)}"


def _glance() -> list[str]:
    """The four charts, before any link into report/ (so that the summary shows them)."""
    out = ["## At a glance", "", "The decision table, the reproduction of the published effects, what each model"
           " pays per request, and latency against offered load (drawn by `cbench plot` from the same runs):", ""]
    for name, title in CHARTS:
        out += [chart(name, title), ""]
    return out


def _costs() -> list[str]:
    return ["## What each model pays per request, and how latency grows with load", "",
            f"The figures behind the last two charts: [findings]({PAGES_DIR}/findings.md), [latency curve]({PAGES_DIR}/latency-curve.md),"
            f" [microbenchmarks]({PAGES_DIR}/micro.md).", ""]


def _bounds(runs: dict[str, Run], config: dict, root: str, allow_synthetic: bool) -> list[str]:
    out = ["## What this machine cannot answer, and why", "",
           "A req/s figure speaks for the server only where the server was the bound. Share of each reference"
           " run's repetitions where the load generator's CPU was saturated (client-bound or both-saturated):", ""]
    for name, r in runs.items():
        v = Counter(p.get("verdict") or "unclear" for p in r.points if p.get("status", "ok") == "ok")
        n = sum(v.values())
        if n:
            gen = sum(v[x] for x in GENERATOR_BOUND)
            out.append(f"- `{name}`: {gen} of {n} ({gen / n:.0%}) generator-bound, {v['unclear']} unclear,"
                       f" {v['server-bound']} server-bound.")
    table = decision.rows(config, root, allow_synthetic=allow_synthetic)
    undecided = [(r["shape"], w) for r in table for w in r.get("words", ()) if w == families.UNDECIDED]
    out += ["", f"Decision cells left undecided: {len(undecided)}"
            + (" (" + "; ".join(sorted({s for s, _ in undecided})) + "); each cell's reason and the repetitions that"
               f" would decide it are on the [decision page]({PAGES_DIR}/decision.md)." if undecided else "."), ""]
    return out


def reference_runs(config: dict, root: str) -> dict[str, Run]:
    """{section: Run} of the sections whose run is a run directory (not calibration)."""
    out = {}
    for name, sec in config.items():
        full = reportrefs.resolve(sec, root)
        if full is not None and os.path.exists(os.path.join(full, "points.jsonl")):
            out[name] = load_run(full)
    return out


def render(config: dict, root: str, pages: dict[str, str], page_titles: dict[str, str],
           allow_synthetic: bool = False) -> str:
    """REPORT.md: the summary, then the list of pages."""
    runs = reference_runs(config, root)
    pub = published.load_published(PUBLISHED)
    out = ["# concurrency-bench: the answer", "",
           "Generated by `make report` from the reference set (`results/reference-runs.toml`) and `REPORT.md.in`;"
           " no number in it is typed by hand. Each section's detail is on its own page under `report/`.", ""]
    out += _asked(config, root, runs)
    out += _glance()
    out += _decision(config, root, allow_synthetic)
    if FINDINGS_SECTION in runs:
        out += _scorecard(runs[FINDINGS_SECTION], pub)
    out += _replication(replication_runs(root), pub)
    out += _costs()
    out += _bounds(runs, config, root, allow_synthetic)
    out += ["## Every page", ""] + [f"- [{page_titles[p]}]({p})" for p in pages]
    return "\n".join(out).rstrip("\n") + "\n"


def replication_page(root: str) -> str:
    """report/replication.md: render/replication.py's report over every run of the scenario."""
    pub = published.load_published(PUBLISHED)
    runs = replication_runs(root)
    body = (replication.render_replication(runs, pub, heading_level=2) if runs else
            f"The project holds no `{FINDINGS_SECTION}` run under `results/runs/`.\n")
    return ("# concurrency-bench report: Replication across the runs the project holds\n\nGenerated by `make report` from every"
            f" `{FINDINGS_SECTION}` run under `results/runs/`. [Back to the summary](../REPORT.md).\n\n" + body)
