"""Reports: a run's report.md, and the root REPORT.md.

The root REPORT.md is rendered from the template REPORT.md.in (reporttpl: placeholders in the
prose, IF REFERENCE blocks), then its sections between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->` are regenerated from the run directory that
results/reference-runs.toml maps each name to (reportrefs: the one place that resolves it; each
section has its own run). Every generated section names the run directory its numbers come from. Without a template (tests' own files) only the marked sections change.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections import Counter

from ..analysis import boundshare, decision, findings, latencycurve, micro
from . import costaccount as account_text
from . import boundtext, calibration_table, crosscheck_table, designtext, findingstext, microreport, pubcompare, reportpages, reporttpl, summary, tables
from .charts import plot_run, read_index
from ..format import calibration, published, reportrefs
from ..format import costs as costs_format
from ..analysis.runload import Run, load_run, RunError
from ..format.paths import REPO_ROOT

DEFAULT_CONFIG = os.path.join(REPO_ROOT, "results", "reference-runs.toml")
DEFAULT_REPORT = os.path.join(REPO_ROOT, "REPORT.md")
DEFAULT_TEMPLATE = os.path.join(REPO_ROOT, "REPORT.md.in")
# A marker is a whole line of its own, so prose may quote the marker syntax inline.
_SECTION = re.compile(r"^(<!-- BEGIN GENERATED: (?P<name>[A-Za-z0-9_.-]+) -->\n)(?P<body>.*?)"
                      r"^(<!-- END GENERATED: (?P=name) -->)$", re.S | re.M)


DECISION_TABLE = "decision-table"  # the generated section built from all reference runs (decision.py)
SOAK_KIND = "soak"  # meta.json "kind" of a `cbench soak` run directory (results/soak/<id>)
SOAK_SUMMARY = "summary.md"  # the soak's own table and verdicts, written when it finishes
# Where a scenario's run directories are made, when not under results/runs (a placeholder names it).
RUN_PARENTS = {SOAK_KIND: "results/soak", "calibrate": "results/calibration"}


class ReportError(Exception):
    """A report that cannot be generated; the message names the file and the problem."""


# ---------------------------------------------------------------- a run's report
def matching_published(run: Run) -> list[published.Published]:
    """Published tables (results/published/*.json) with at least one row label this run carries."""
    return published.matching(r.label for r in run.rows.values())


def latency_curve_lines(run: Run, rel: str) -> list[str]:
    """Markdown lines of the open-loop curve (latencycurve.table: capacity at the p99 target and
    each offered rate's percentiles) for a run with open-loop cbench-load points, with a link to
    the chart `cbench curve RUN` draws when it exists; empty for any other run."""
    curves = latencycurve.curve_points(run.points)
    if not curves:
        return []
    out = ["### Latency against offered load (open loop, cbench-load)", "",
           latencycurve.table(curves, latencycurve.DEFAULT_TARGET_US)]
    if os.path.exists(os.path.join(run.dir, "latency-curve.png")):
        out += [f"Chart: [p50, p99 and p99.9 against offered load]({rel}/latency-curve.png)"
                f" ([SVG]({rel}/latency-curve.svg)), drawn by `scripts/cbench curve {rel}`.", ""]
    return out


def verdict_summary(run: Run) -> list[str]:
    verdicts = Counter()
    failed = 0
    for p in run.points:
        if p.get("status", "ok") != "ok":
            failed += 1
        else:
            verdicts[p.get("verdict") or "unclear"] += 1
    n_cells = len(run.cells)
    parts = [f"{n} {v}" for v, n in sorted(verdicts.items())]
    line = (f"{len(run.points)} repetitions over {n_cells} points ({len(run.rows)} rows × their loads):"
            f" {', '.join(parts) or 'none ok'}; {failed} failed.")
    return [line]


def chart_links(run: Run, link_prefix: str = "") -> list[str]:
    idx = read_index(run.dir)
    if not idx:
        return ["No charts (run `cbench plot` on the run)."]
    out = []
    for w in idx.get("written", []):
        png = next((f for f in w["files"] if f.endswith(".png")), None)
        svg = next((f for f in w["files"] if f.endswith(".svg")), None)
        if png:
            out.append(f"- [{w['title']}]({link_prefix}{png})" + (f" ([SVG]({link_prefix}{svg}))" if svg else ""))
    skipped = idx.get("skipped", [])
    if skipped:  # one line, however many: why a chart is missing is detail, not a list to scroll
        out.append(f"- not drawn ({len(skipped)}): " + "; ".join(f"`{s['name']}` ({s['reason']})" for s in skipped) + ".")
    return out


def ensure_charts(run: Run) -> None:
    if read_index(run.dir) is None:
        plot_run(run)


def run_report(run: Run, latency: str = "max") -> str:
    """The text of RUN/report.md: header, verdicts, tables, published comparison, charts."""
    if micro.is_micro_run(run):  # a `cbench micro` run: Google Benchmark results, no points
        return microreport.run_report(run, chart_links(run))
    out = [f"# Report of run {run.run_id}", ""] + tables.run_header(run) + [""]
    out += ["## Points and verdicts", ""] + verdict_summary(run) + [""]
    out += [boundtext.run_line(boundshare.share(run)), ""]
    out += ["## Tables", "", tables.render_run_tables(run, latency, heading_level=3, with_header=False)]
    pubs = matching_published(run)
    for pub in pubs:
        out.append(pubcompare.render_published_comparison(run, pub, latency, heading_level=2))
    if not pubs:
        an = findings.Analysis(run)
        if an.has_data:
            out.append(findingstext.render_findings(an, 2))
    designed = designtext.render_for_run(run)  # the scenario's findings in results/findings/design.json
    if designed:
        out += ["## Design findings", "", designed]
    out += ["## Charts", ""] + chart_links(run) + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_run_report(run: Run, latency: str = "max", plot: bool = True) -> str:
    if plot:
        ensure_charts(run)
    path = os.path.join(run.dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(run_report(run, latency))
    return path


# ---------------------------------------------------------------- root REPORT.md
def read_config(path: str) -> dict:
    """results/reference-runs.toml: {section name: {"run": dir or "", ...}}; raises ReportError."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror})")
    except tomllib.TOMLDecodeError as exc:
        raise ReportError(f"{path}: {exc}")
    sections = doc.get("sections", {})
    if not isinstance(sections, dict):
        raise ReportError(f"{path}: key 'sections' must be a table of [sections.NAME]")
    for name, sec in sections.items():
        if not isinstance(sec, dict) or not isinstance(sec.get("run", ""), str):
            raise ReportError(f"{path}: [sections.{name}] needs run = \"results/runs/<id>\" (or \"\" if not yet run)")
    return sections


def placeholder(name: str, sec: dict | None) -> str:
    what = (sec or {}).get("scenario", name)
    kept = (sec or {}).get("kept")
    if kept:
        where = (sec or {}).get("kept_machine")
        return (f"_Not yet remade on this machine._ The run of scenario `{what}` kept in `{kept}/`"
                + (f" was made on another machine ({where})" if where else " was made on another machine")
                + " and from another commit than this report's reference set; it is kept for"
                f" `cbench compare --replication`, and none of its numbers is part of this report."
                f" After remaking the sweep here from the reference commit, set"
                f" `[sections.{name}] run = \"results/runs/<id>\"` and run `make report`.\n")
    parent = RUN_PARENTS.get(what, "results/runs")
    return (f"_Not yet run._ No reference run of scenario `{what}` is listed for this section in"
            f" `results/reference-runs.toml`; after the sweep on the reference machine, set"
            f" `[sections.{name}] run = \"{parent}/<id>\"` and run `make report`."
            " No numbers are shown until then.\n")


def section_text(name: str, sec: dict | None, allow_synthetic: bool = False, root: str = REPO_ROOT) -> str:
    """Generated markdown for one REPORT.md section (between its markers)."""
    full = reportrefs.resolve(sec, root)
    if full is None:
        return placeholder(name, sec)
    run_dir = sec["run"]
    if calibration.is_calibration_dir(full):
        return calibration_text(full, os.path.relpath(os.path.abspath(full), os.path.abspath(root)))
    try:
        run = load_run(full)
    except RunError as exc:
        raise ReportError(f"section {name}: {exc}")
    if run.synthetic and not allow_synthetic:
        raise ReportError(f"section {name}: {run_dir} is synthetic test data (meta.json \"synthetic\": true);"
                          " fixtures never go into REPORT.md")
    rel = os.path.relpath(os.path.abspath(run.dir), os.path.abspath(root))
    kind = run.meta.get("kind")
    if kind == SOAK_KIND:
        return soak_text(name, run.dir, rel)
    if kind == costs_format.KIND:
        return costs_text(name, run.dir, rel)
    ensure_charts(run)
    if micro.is_micro_run(run):
        return microreport.section_body(run, rel, chart_links(run, link_prefix=f"{rel}/"))
    latency = (sec or {}).get("latency", "max")
    out = [f"Every number in this section comes from run directory `{rel}/`"
           f" (run `{run.run_id}`; regenerate with `make report`).", ""]
    out += tables.run_header(run)[2:] + [""]
    out += verdict_summary(run) + [""]
    # Points driven by several generators (scenario generator-crosscheck): their side-by-side
    # table first (empty for runs with one generator per point).
    out += crosscheck_table.render(run, heading_level=3)
    out += latency_curve_lines(run, rel)
    out.append(tables.render_run_tables(run, latency, heading_level=3, with_header=False))
    for pub in matching_published(run):
        out.append(pubcompare.render_published_comparison(run, pub, latency, heading_level=3))
    designed = designtext.render_for_run(run)  # results/findings/design.json's findings
    if designed:
        out.append(designed)
    out += [f"Charts (from `{rel}/charts/`):", ""] + chart_links(run, link_prefix=f"{rel}/") + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def _demote(text: str) -> str:
    """TEXT with every heading one level down: a generated section sits under its own `## `."""
    return re.sub(r"(?m)^(#+) ", r"#\1 ", text)


def soak_text(name: str, run_dir: str, rel: str) -> str:
    """A soak section: the soak's own summary (every model's growth slopes and verdict)."""
    try:
        with open(os.path.join(run_dir, SOAK_SUMMARY), encoding="utf-8") as f:
            body = f.read()
    except OSError:
        raise ReportError(f"section {name}: {rel}/{SOAK_SUMMARY} is missing (the soak did not finish)")
    return (f"Every number in this section comes from `{rel}/{SOAK_SUMMARY}` (`cbench soak`; its samples in"
            f" `{rel}/samples.jsonl`; regenerate with `make report`).\n\n" + _demote(body).rstrip("\n") + "\n")


def costs_text(name: str, run_dir: str, rel: str) -> str:
    """A costs section: the run's account.md when `cbench costs` wrote one (with --cpu-from and
    --micro), else its counts per row from costs.jsonl."""
    try:
        _meta, records = costs_format.read_run(run_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ReportError(f"section {name}: {rel}/{costs_format.FILE} unreadable ({exc})")
    path = os.path.join(run_dir, "account.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            body, source = f.read(), f"`{rel}/account.md` (counts from `{rel}/{costs_format.FILE}`)"
    else:
        body, source = account_text.report(records, None, None), f"`{rel}/{costs_format.FILE}`"
    return (f"Every number in this section comes from {source} (`cbench costs`; regenerate with"
            " `make report`).\n\n" + _demote(body).rstrip("\n") + "\n")


def _rate(entry: dict) -> str:
    k, n = entry["k"], entry["n"]
    lo, hi = entry["ci"]
    return f"{k} of {n} ({k / n:.0%}; 95% Clopper-Pearson interval {lo:.0%} to {hi:.0%})"


def calibration_text(cal_dir: str, rel: str) -> str:
    """The calibration section, every figure read from CAL_DIR/calibration.json."""
    try:
        c = calibration.read(cal_dir)
        if c.get("version") == calibration.VERSION:
            return _calibration_entries_text(c, rel)
        fp = c["aa_false_positive"]
        det = {str(pct): v for pct, v in calibration.detections(c).items()}
    except (calibration.CalibrationError, KeyError) as exc:
        raise ReportError(f"section calibration: {rel}/calibration.json unreadable ({exc})")
    hand = c.get("handicaps_ns", {})
    out = [f"Every number in this section comes from `{rel}/calibration.json` (regenerate with"
           " `make report`).", "",
           f"- The row's server CPU per request at the calibration point: {c['cpu_us_per_req']:.2f} µs;"
           " handicaps " + ", ".join(f"{k} = {v} ns" for k, v in hand.items()) + ".",
           f"- Design: {c['trials']} trials, {c['repetitions']} repetitions of {c['duration_s']} s per row"
           " and trial in shuffled order, without sequential blocks (calibrate's default). This is a"
           " smaller design than ever-table's primary comparisons get (2 s runs, up to"
           " max_repetitions blocks), so these rates bound that design's sensitivity from below.",
           f"- A/A false-positive rate (any verdict but undecided on the same server twice): {_rate(fp)}."]
    for pct in sorted(det, key=int):
        out.append(f"- A/B detection rate at +{pct}% CPU per request (verdict supported): {_rate(det[pct])}.")
    smallest = calibration.smallest_detected(c, calibration.ESTABLISHED_RATE)
    out.append("- The smallest handicap detected in at least 80% of trials: "
               + (f"+{smallest}%." if smallest is not None else "none of those tried."))
    return "\n".join(out) + "\n"


def _calibration_entries_text(c: dict, rel: str) -> str:
    """The calibration section of a version-2 calibration.json: one paragraph per metric@load."""
    d = c.get("design", {})
    out = [f"Every number in this section comes from `{rel}/calibration.json` (regenerate with"
           " `make report`).", "",
           f"- Design: {d.get('trials')} trials per metric, each {d.get('blocks')} blocks paired by block:"
           f" {d.get('why', '')}."]
    for key, e in calibration.entries(c).items():
        det = "; ".join(f"+{p}%: {_rate(v)}" for p, v in e["detection"].items())
        sm, plan = e.get("smallest_detected_pct"), e.get("planned_80pct_power_pct")
        out.append(f"- `{key}`: A/A false positives {_rate(e['aa_false_positive'])}; detected {det};"
                   " smallest effect detected in at least 80% of trials: "
                   + (f"+{sm}%" if sm is not None else "none of those tried")
                   + "; effect detected with 80% power at the A/A spread: "
                   + (f"+{plan:.2f}%." if plan is not None else "unknown.")
                   + calibration_table.blocks_sentence(e))
        b = e.get("aa_between_trial")
        if b:
            out[-1] += (f" The A/A trials' means vary {b['variance_ratio']:.2f}x what their blocks' spread predicts"
                        f" (F test p {b['p']:.2g}): "
                        + (f"a trial's blocks share a component, so its paired interval is about"
                           f" {b['interval_scale']:.2f}x too narrow." if b["p"] < 0.05 else
                           "no sign that a trial's blocks share a component."))
        w = e.get("widened")
        if w:
            wdet = "; ".join(f"+{p}%: {_rate(v)}" for p, v in w["detection"].items())
            out[-1] += (" With each trial's intervals widened by the between-trial variance of the other trials"
                        f" (what the regression gate does with a calibration): A/A false positives"
                        f" {_rate(w['aa_false_positive'])}; detected {wdet}.")
    return "\n".join(out) + "\n"


def render_template(template_text: str, config: dict, allow_synthetic: bool = False,
                    root: str = REPO_ROOT, name: str = "REPORT.md.in"):
    """(REPORT.md text, renderer) from REPORT.md.in: the reference set checked, placeholders
    filled, then the marked sections generated. Raises ReportError."""
    try:
        reporttpl.check_reference_set(config, root)
        rd = reporttpl.Renderer(config, root)
        text = rd.render(template_text)
    except reporttpl.TemplateError as exc:
        raise ReportError(f"{name}: {exc}")
    check_markers(text, name)
    return regenerate(text, config, allow_synthetic, root), rd


def render_pages(template_text: str, config: dict, allow_synthetic: bool = False,
                 root: str = REPO_ROOT, name: str = "REPORT.md.in") -> dict[str, str]:
    """{path relative to ROOT: text}: REPORT.md (the summary) and every page under report/, from
    the full rendering of the template (render_template). Raises ReportError."""
    full, _ = render_template(template_text, config, allow_synthetic, root, name)
    pages = reportpages.split(full)
    pages[f"{reportpages.PAGES_DIR}/replication.md"] = summary.replication_page(root)
    titles = {p: reportpages.page_title(pages, p) for p in pages}
    try:
        head = summary.render(config, root, pages, titles, allow_synthetic)
    except RunError as exc:
        raise ReportError(str(exc))
    return {"REPORT.md": head, **pages}


def regenerate(report_text: str, config: dict, allow_synthetic: bool = False, root: str = REPO_ROOT) -> str:
    """REPORT.md text with every marked section regenerated; text outside markers unchanged."""

    def repl(m: re.Match) -> str:
        name = m.group("name")
        if name == DECISION_TABLE:  # generated from every section's run, not one
            try:
                return m.group(1) + decision.render(config, root, allow_synthetic=allow_synthetic) + m.group(4)
            except RunError as exc:
                raise ReportError(str(exc))
        return m.group(1) + section_text(name, config.get(name), allow_synthetic, root) + m.group(4)

    return _SECTION.sub(repl, report_text)


def section_names(report_text: str) -> list[str]:
    return [m.group("name") for m in _SECTION.finditer(report_text)]


def check_markers(report_text: str, path: str) -> None:
    """Raise ReportError when BEGIN/END markers do not pair up (an edit broke one)."""
    begins = re.findall(r"^<!-- BEGIN GENERATED: ([^ ]+) -->$", report_text, re.M)
    ends = re.findall(r"^<!-- END GENERATED: ([^ ]+) -->$", report_text, re.M)
    paired = section_names(report_text)
    for n in begins + ends:
        if n not in paired:
            raise ReportError(f"{path}: marker for section {n!r} has no matching BEGIN/END pair")
    if len(begins) != len(set(begins)):
        raise ReportError(f"{path}: a section name appears in more than one BEGIN marker")
