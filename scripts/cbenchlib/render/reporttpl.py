"""REPORT.md.in -> REPORT.md: every measured figure in the analysis prose comes from a run.

The template is markdown with three constructs; nothing else in it may carry a measured number
(tests/report/test_report_template.py checks the template for hand-typed figures):

- `{{FUNC SECTION | ARG | ...}}` placeholders, filled from the run that
  results/reference-runs.toml gives SECTION (the same map the generated tables use). Arguments
  are separated by " | ". The functions are in FUNCS below; each one reads points.jsonl through
  runload (medians over the ok repetitions of a cell), records which (row, load) cells it read
  and whether it read their figures or their verdicts (the mutation test uses that), and the
  claims it makes with "every", "all" or a range (the claims test re-checks each against its own
  section's run: Renderer.check_claims; the sections of one report come from different runs).
- `<!-- IF REFERENCE: SECTION -->` ... `<!-- ELSE -->` ... `<!-- END IF -->` (no nesting): the
  first part when SECTION has a reference run, the second otherwise.
- The generated sections between `<!-- BEGIN GENERATED: name -->` / `<!-- END GENERATED: name -->`
  markers, which reportgen fills after the placeholders.

A placeholder that names a section without a run, a row or load point the run lacks, or a metric
it did not record, fails the rendering with a TemplateError that names the template line.
Comparative words come from `cmp`: the 95% interval of the ratio from stats.ratio_ci (log scale,
paired over blocks when recorded, Welch otherwise), so a claim the data stop supporting changes
its words.
"""
from __future__ import annotations

import math
import re
import statistics

from ..analysis import findings
from ..format import calibration, reportrefs
from ..analysis.runload import Cell, Run, load_run, RunError
from .tplbase import METRICS, Claim, TemplateError, Use, unit_suffix, effect, fmt
from .tplfacts import f_design, f_disturbed, f_disturbed_list, f_env, f_finding, f_method, f_provenance, f_runref
from .tplsoftirq import f_softirq


def pair_spread(run: Run, metric: str) -> tuple[float, float, int] | None:
    """(median, 90th percentile, points) of |a-b|/mean(a,b) between repetitions, from
    findings.run_spread (the one computation of a run's spread) for the findings metric that reads
    the same field as this template metric."""
    path = METRICS[metric][0]
    names = [name for name, spec in findings.METRICS.items() if spec[0] == path]
    if not names:
        raise TemplateError(f"spread: metric {metric!r} is not one findings.run_spread measures")
    s = findings.run_spread(run, (names[0],))[0]
    if s.median is None:
        return None
    return (s.median, s.p90, s.n_points)



# ---------------------------------------------------------------- the renderer
class Renderer:
    def __init__(self, config: dict, root: str, run_loader=load_run):
        self.config = config
        self.root = root
        self._runs: dict[str, Run] = {}
        self._load = run_loader
        self.uses: list[Use] = []
        self.claims: list[Claim] = []
        self.line = 0

    # ---- inputs
    def has_run(self, section: str) -> bool:
        return reportrefs.run_dir(self.config, section, self.root) is not None

    def run(self, section: str) -> Run:
        if section in self._runs:
            return self._runs[section]
        full = reportrefs.run_dir(self.config, section, self.root)
        if full is None:
            raise self.err(f"placeholder names section {section!r}, which has no reference run"
                           " in results/reference-runs.toml (put it inside <!-- IF REFERENCE: ... -->)")
        try:
            r = self._load(full)
        except RunError as exc:
            raise self.err(f"section {section}: {exc}")
        self._runs[section] = r
        return r

    def check_claims(self) -> list[tuple[Claim, str]]:
        """(claim, what is wrong) for each rendered claim that does not hold in its own section's
        run, the run this renderer mapped that section to (each claim belongs to one section, and
        the sections of one report may come from different runs)."""
        out = []
        for c in self.claims:
            problem = c.check(self.run(c.section))
            if problem is not None:
                out.append((c, problem))
        return out

    def err(self, msg: str) -> TemplateError:
        return TemplateError(f"template line {self.line}: {msg}")

    def cell(self, section: str, row: str, load: str, use: Use, what: str = "figures") -> Cell:
        r = self.run(section)
        if row not in r.rows:
            raise self.err(f"run {r.run_id} (section {section}) has no row {row!r}; rows: {', '.join(r.rows)}")
        lid = next((l for l in r.loads if l.key == load), None)
        if lid is None:
            raise self.err(f"run {r.run_id} (section {section}) has no load point {load!r};"
                           f" loads: {', '.join(l.key for l in r.loads)}")
        c = r.cell(row, lid)
        if c is None or not c.ok_points:
            raise self.err(f"run {r.run_id} (section {section}) has no ok repetition of {row!r} at {load!r}")
        (use.figures if what == "figures" else use.verdicts).add((row, load))
        return c

    def metric_values(self, c: Cell, metric: str) -> list[float]:
        if metric not in METRICS:
            raise self.err(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
        path, scale, _ = METRICS[metric]
        vals = c.rps() if metric == "rps" else c.values(path)
        if not vals:
            raise self.err(f"{c.row.key} at {c.load.lid.key}: metric {metric} ({path}) not recorded")
        return [v * scale for v in vals]

    def median(self, c: Cell, metric: str) -> float:
        return statistics.median(self.metric_values(c, metric))

    def select(self, section: str, spec: str, use: Use, what: str = "figures") -> list[Cell]:
        """Cells matching `key=value; key=value`: load=KEY (repeatable via comma), rows=a,b,
        exclude=a,b, verdict=V (every ok repetition has verdict V), threads=N, kind=model,peer, pipeline=N."""
        r = self.run(section)
        crit = {}
        for part in spec.split(";"):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise self.err(f"selection {spec!r}: {part!r} is not key=value")
            k, v = part.split("=", 1)
            crit[k.strip()] = [x.strip() for x in v.split(",")]
        for k in crit:
            if k not in ("load", "rows", "exclude", "verdict", "threads", "kind", "path", "pipeline"):
                raise self.err(f"selection {spec!r}: unknown key {k!r}")
        for key in crit.get("rows", []):
            if key not in r.rows:
                raise self.err(f"run {r.run_id} (section {section}) has no row {key!r}")
        for key in crit.get("load", []):
            if not any(l.key == key for l in r.loads):
                raise self.err(f"run {r.run_id} (section {section}) has no load point {key!r}")
        out = []
        for (rk, lid), c in r.cells.items():
            if not c.ok_points:
                continue
            if "load" in crit and lid.key not in crit["load"]:
                continue
            if "path" in crit and lid.path not in crit["path"]:
                continue
            if "pipeline" in crit and str(lid.pipeline) not in crit["pipeline"]:
                continue
            if "rows" in crit and rk not in crit["rows"]:
                continue
            if rk in crit.get("exclude", []):
                continue
            if "threads" in crit and str(c.row.threads) not in crit["threads"]:
                continue
            if "kind" in crit and c.row.kind not in crit["kind"]:
                continue
            if "verdict" in crit:  # every ok repetition has one of the verdicts
                use.verdicts.add((rk, lid.key))
                if any(v not in crit["verdict"] for v in c.verdicts()):
                    continue
            out.append(c)
        if not out:
            raise self.err(f"selection {spec!r} matches no point of run {r.run_id} (section {section})")
        for c in out:
            (use.figures if what == "figures" else use.verdicts).add((c.row.key, c.load.lid.key))
        return out

    # ---- rendering
    def render(self, text: str) -> str:
        text = self._conditionals(text)
        out = []
        for i, line in enumerate(text.split("\n"), 1):
            self.line = self._line_of.get(i, i)
            out.append(_PLACEHOLDER.sub(self._one, line))
        return "\n".join(out)

    def _conditionals(self, text: str) -> str:
        """Resolve IF REFERENCE blocks, keeping a map from output lines to template lines."""
        lines = text.split("\n")
        keep: list[tuple[int, str]] = []
        state = None  # None outside; (section, in_else)
        for n, line in enumerate(lines, 1):
            m = _IF.match(line)
            if m:
                if state is not None:
                    raise TemplateError(f"template line {n}: IF blocks do not nest")
                state = (m.group(1), False)
                continue
            if line.strip() == "<!-- ELSE -->" and state is not None:
                state = (state[0], True)
                continue
            if line.strip() == "<!-- END IF -->":
                if state is None:
                    raise TemplateError(f"template line {n}: END IF without IF")
                state = None
                continue
            if state is not None:
                present = self.has_run(state[0])
                if present == state[1]:
                    continue
            keep.append((n, line))
        if state is not None:
            raise TemplateError(f"template: IF REFERENCE: {state[0]} is never closed")
        self._line_of = {i: n for i, (n, _) in enumerate(keep, 1)}
        return "\n".join(line for _, line in keep)

    def _one(self, m: re.Match) -> str:
        func, body = m.group(1), m.group(2)
        args = [a.strip() for a in body.split(" | ")] if body.strip() else []
        if func not in FUNCS:
            raise self.err(f"unknown placeholder function {func!r} in {m.group(0)!r}")
        if not args:
            raise self.err(f"{m.group(0)!r}: the first argument is the section")
        use = Use(len(self.uses), m.group(0), "", args[0], line=self.line)
        text = FUNCS[func](self, use, *args)
        use.text = text
        self.uses.append(use)
        return text


_PLACEHOLDER = re.compile(r"\{\{([a-z_]+) ([^{}]*)\}\}")
_IF = re.compile(r"^<!-- IF REFERENCE: ([A-Za-z0-9_.-]+) -->$")


# ---------------------------------------------------------------- functions
def f_v(rd: Renderer, use: Use, section, row, load, metric, *opt):
    """{{v SEC | ROW | LOAD | METRIC}}: the median over the cell's ok repetitions."""
    c = rd.cell(section, row, load, use)
    return fmt(rd.median(c, metric), METRICS[metric][2])


def f_diff(rd: Renderer, use: Use, section, row_a, row_b, load, metric):
    """{{diff SEC | A | B | LOAD | METRIC}}: median(A) - median(B)."""
    a = rd.median(rd.cell(section, row_a, load, use), metric)
    b = rd.median(rd.cell(section, row_b, load, use), metric)
    return fmt(a - b, METRICS[metric][2])


def f_range(rd: Renderer, use: Use, section, spec, metric):
    """{{range SEC | SELECTION | METRIC}}: "lo to hi" over the selected cells' medians.

    Every selected cell counts as read: any of them can become an extreme."""
    cells = rd.select(section, spec, use)
    unit = METRICS[metric][2]
    meds = sorted(((rd.median(c, metric), c) for c in cells), key=lambda t: t[0])
    lo, hi = meds[0][0], meds[-1][0]
    text = f"{fmt(lo, unit)} to {fmt(hi, unit)}{unit_suffix(unit)}"

    def check(run, spec=spec, metric=metric, lo=lo, hi=hi):
        sub = Renderer({section: {"run": run.dir}}, rd.root, lambda d: run)
        got = [sub.median(c, metric) for c in sub.select(section, spec, Use(-1, "", "", section))]
        if not math.isclose(min(got), lo) or not math.isclose(max(got), hi):
            return f"range {lo}-{hi} but the run's selection spans {min(got)}-{max(got)}"
        return None

    rd.claims.append(Claim("range", text, section, check))
    return text


def f_bound(rd: Renderer, use: Use, section, spec, verdict="server-bound", noun="row"):
    """{{bound SEC | SELECTION | VERDICT}}: "every row was server-bound" or "every row but X
    (1 of 2 repetitions), Y was server-bound" or "no row was ...", from the points' verdicts."""
    cells = rd.select(section, spec, use, what="verdicts")
    off = []
    for c in cells:
        vs = c.verdicts()
        n_ok = sum(1 for v in vs if v == verdict)
        if n_ok < len(vs):
            others = sorted({v for v in vs if v != verdict})
            off.append(f"`{c.row.key}` ({len(vs) - n_ok} of {len(vs)} repetitions {'/'.join(others)})")
    if not off:
        text = f"every {noun} was {verdict}"
    elif len(off) == len(cells):
        text = f"no {noun} was {verdict} in every repetition"
    elif 2 * len(off) > len(cells):
        # Most cells are exceptions: name the few that were, and the rest as exceptions.
        on = [f"`{c.row.key}`" for c in cells if all(v == verdict for v in c.verdicts())]
        text = (f"only {len(on)} of {len(cells)} {noun}s were {verdict} in every repetition ("
                + ", ".join(on) + "); not " + verdict + ": " + ", ".join(off))
    else:
        text = f"every {noun} was {verdict} except " + ", ".join(off)

    # The claim names which cells are exceptions, so the check compares the cells, not their count.
    off_cells = {(c.row.key, c.load.lid.key) for c in cells if any(v != verdict for v in c.verdicts())}
    all_cells = {(c.row.key, c.load.lid.key) for c in cells}

    def check(run, spec=spec, verdict=verdict, off_cells=off_cells, all_cells=all_cells):
        sub = Renderer({section: {"run": run.dir}}, rd.root, lambda d: run)
        cs = sub.select(section, spec, Use(-1, "", "", section), what="verdicts")
        bad = {(c.row.key, c.load.lid.key) for c in cs if any(v != verdict for v in c.verdicts())}
        got = {(c.row.key, c.load.lid.key) for c in cs}
        if bad != off_cells or got != all_cells:
            return (f"claims {len(off_cells)} of {len(all_cells)} cells not {verdict}"
                    f" ({', '.join(sorted(r for r, _ in off_cells)) or 'none'}); the run has {len(bad)}"
                    f" of {len(got)} ({', '.join(sorted(r for r, _ in bad)) or 'none'})")
        return None

    rd.claims.append(Claim("verdicts", text, section, check))
    return text


def f_cmp(rd: Renderer, use: Use, section, row_a, row_b, load, metric, lower, higher, same):
    """{{cmp SEC | A | B | LOAD | METRIC | if lower | if higher | if undecided}}: A against B.

    The words are chosen by the 95% interval of the ratio A/B on the log scale, paired by block
    (lower: the interval is below 1); the ratio and its interval follow in parentheses."""
    ca, cb = rd.cell(section, row_a, load, use), rd.cell(section, row_b, load, use)
    a, b = rd.metric_values(ca, metric), rd.metric_values(cb, metric)
    path = METRICS[metric][0]
    r, lo, hi, how = effect(ca, cb, a, b, ca.values_by_block(path)[1], cb.values_by_block(path)[1])
    if lo is None:
        words, why = same, f"{metric} ratio {r:.2f}, too few repetitions for an interval"
    else:
        words = lower if hi < 1 else higher if lo > 1 else same
        why = f"{metric} ratio {r:.2f}, 95% {how} interval {lo:.2f} to {hi:.2f}, n={len(a)}+{len(b)}"
    return f"{words} ({why})"


def f_spread(rd: Renderer, use: Use, section, metric):
    """{{spread SEC | METRIC}}: how much two repetitions of one point differ, over the run."""
    s = pair_spread(rd.run(section), metric)
    if s is None:
        return "not measurable (fewer than two repetitions per point)"
    med, q90, n = s
    # Relative differences do not change when a row's figures are scaled, so this placeholder
    # records no figure dependency (the mutation test scales figures).
    return f"a median of {med * 100:.1f}% ({q90 * 100:.0f}% at the 90th percentile, over {n} points)"


FUNCS = {"softirq": f_softirq, "method": f_method, "v": f_v, "diff": f_diff, "range": f_range, "bound": f_bound, "cmp": f_cmp,
         "spread": f_spread, "design": f_design, "env": f_env, "runref": f_runref,
         "disturbed": f_disturbed, "disturbed_list": f_disturbed_list, "finding": f_finding,
         "provenance": f_provenance}


# ---------------------------------------------------------------- provenance of the set
FINGERPRINT_FIELDS = ("cpu_model", "cpu_count", "cpu_family", "cpu_model_number", "cpu_stepping",
                      "microcode", "kernel")


def check_reference_set(config: dict, root: str, run_loader=load_run) -> list[str]:
    """Raise TemplateError unless every reference run comes from one commit and one machine.

    Returns lines describing the set (for the command's output)."""
    seen = []
    for name, sec in sorted(config.items()):
        full = reportrefs.resolve(sec, root)
        if full is None:
            continue
        d = sec["run"]
        full = calibration.env_run_dir(full)  # a calibration's trials' sweeps carry the env
        if full is None:
            raise TemplateError(f"section {name}: {d} has no sweep runs under runs/")
        try:
            r = run_loader(full)
        except RunError as exc:
            raise TemplateError(f"section {name}: {exc}")
        env = r.env
        fp = tuple((k, env.get(k)) for k in FINGERPRINT_FIELDS if k in env)
        seen.append((name, d, env.get("git_commit"), fp))
    if not seen:
        return []
    commits = {c for _, _, c, _ in seen}
    if len(commits) > 1:
        lines = "; ".join(f"{n}: {d} at {c}" for n, d, c, _ in seen)
        raise TemplateError(f"reference runs come from {len(commits)} commits ({lines}); remake them from"
                            " one commit, or move the odd ones to kept = \"...\" (shown as not yet remade)")
    # Fields recorded by only some runs (older harness) are compared where both have them.
    base = dict(seen[0][3])
    for n, d, _, fp in seen[1:]:
        for k, v in fp:
            if k in base and base[k] != v:
                raise TemplateError(f"reference runs come from different machines: {seen[0][0]} has"
                                    f" {k}={base[k]!r}, {n} ({d}) has {k}={v!r}")
    return [f"reference set: {len(seen)} runs, commit {next(iter(commits))}, " +
            ", ".join(f"{k}={v}" for k, v in seen[0][3])]
