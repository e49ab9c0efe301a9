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
from dataclasses import dataclass, field

from ..analysis import findings, stats
from ..format import calibration, reportrefs, resultio
from ..analysis.runload import Cell, Run, load_run, RunError
from ..format.loadpoint import dig

# metric name -> (dotted path in a point, scale, unit format)
METRICS = {
    "rps": ("wrk.req_per_s", 1.0, "int"),
    "cpu": ("derived.server_cpu_us_per_req", 1.0, "us"),
    "user": ("derived.server_user_us_per_req", 1.0, "us"),
    "sys": ("derived.server_sys_us_per_req", 1.0, "us"),
    "syscalls": ("derived.syscalls_per_req", 1.0, "f2"),
    "ctx": ("derived.ctx_switches_per_req", 1.0, "f3"),
    "p99": ("wrk.latency_us.p99", 1e-3, "ms"),
    "max": ("wrk.latency_us.max", 1e-3, "ms"),
    "server_util": ("derived.server_cpu_util", 100.0, "pct"),
    "client_util": ("derived.client_cpu_util", 100.0, "pct"),
    "rss_mb": ("server.rss_peak_kb", 1.0 / 1024, "f0"),
    "softirq_server": ("machine.softirq_frac.server", 100.0, "pct"),
    "steal_server": ("machine.steal_frac.server", 100.0, "pct"),
    # The server's mechanism counters per request (backends/server/counters.h, issue 14).
    "dispatches": ("derived.counters_per_req.dispatches", 1.0, "f3"),
    "dup": ("derived.counters_per_req.duplicate_dispatches", 1.0, "f3"),
    "suppressed": ("derived.counters_per_req.suppressed_duplicates", 1.0, "f2"),
    "empty_reads": ("derived.counters_per_req.empty_reads", 1.0, "f3"),
    "wakeups": ("derived.counters_per_req.wakeups", 1.0, "f3"),
    "rearms": ("derived.counters_per_req.rearms", 1.0, "f3"),
    "poll_rounds": ("derived.counters_per_req.poll_rounds", 1.0, "f3"),
    "ring_enters": ("derived.counters_per_req.ring_enters", 1.0, "f3"),
}


class TemplateError(Exception):
    """A template that cannot be rendered; the message names the line and the problem."""


@dataclass
class Claim:
    """A rendered quantified statement ("every ...", a range) and how to re-check it."""
    kind: str            # "range" (f_range), "verdicts" (f_bound) or "undisturbed" (f_disturbed)
    text: str
    section: str
    check: object        # callable(run of `section`) -> str | None (None: holds; else what is wrong)


@dataclass
class Use:
    """One rendered placeholder: its text, and the cells it read (figures or verdicts)."""
    index: int
    source: str
    text: str
    section: str
    figures: set = field(default_factory=set)    # {(row key, load key)}
    verdicts: set = field(default_factory=set)
    line: int = 0


# unit format (the third field of METRICS) -> how a figure is printed; "ms" switches to seconds.
_FORMATS = {"int": "{:.0f}", "us": "{:.2f}", "f2": "{:.2f}", "f3": "{:.3f}", "f0": "{:.0f}", "pct": "{:.0f}%"}


def fmt(value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.2f} ms"
    return _FORMATS.get(unit, "{:g}").format(value)


def _unit_suffix(unit: str) -> str:
    return {"us": " µs"}.get(unit, "")


# ---------------------------------------------------------------- statistics
def effect(ca: Cell, cb: Cell, a: list[float], b: list[float]):
    """(ratio, lo, hi, method words) from stats.ratio_ci: paired over blocks when both cells'
    repetitions record their block (and metric values line up with them), Welch otherwise."""
    blocks_a = [resultio.point_block(p) for p in ca.ok_points] if len(a) == len(ca.ok_points) else None
    blocks_b = [resultio.point_block(p) for p in cb.ok_points] if len(b) == len(cb.ok_points) else None
    ci = stats.ratio_ci(a, b, blocks_num=blocks_a, blocks_den=blocks_b)
    if ci is None:
        return (float("nan"), None, None, "")
    return (ci.ratio, ci.lo, ci.hi, {"paired-t": "paired", "welch-t": "Welch"}.get(ci.method, ci.method))


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
    text = f"{fmt(lo, unit)} to {fmt(hi, unit)}{_unit_suffix(unit)}"

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

    The words are chosen by the 95% Welch interval of the ratio A/B on the log scale (lower: the
    interval is below 1); the ratio and its interval follow in parentheses."""
    ca, cb = rd.cell(section, row_a, load, use), rd.cell(section, row_b, load, use)
    a, b = rd.metric_values(ca, metric), rd.metric_values(cb, metric)
    r, lo, hi, how = effect(ca, cb, a, b)
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


def f_design(rd: Renderer, use: Use, section, what):
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


def f_env(rd: Renderer, use: Use, section, path):
    """{{env SEC | dotted.path}}: a field of the run's meta.json env (e.g. versions.wrk)."""
    v = dig(rd.run(section).env, path)
    if v is None:
        raise rd.err(f"run {rd.run(section).run_id} records no env.{path}")
    return str(v)


def f_runref(rd: Renderer, use: Use, section):
    """{{runref SEC}}: the run directory, as a code span."""
    return f"`{rd.run(section).rel_dir()}`"


def f_disturbed(rd: Renderer, use: Use, section):
    """{{disturbed SEC}}: which repetitions other processes disturbed (from verdict evidence)."""
    r = rd.run(section)
    hits = []
    for p in r.points:
        ev = p.get("verdict_evidence") or ""
        if "DISTURBED" in ev:
            other = dig(p, "machine.other_cpu_util")
            share = f", {other * 100:.0f}% of a CPU used by other processes" if isinstance(other, (int, float)) else ""
            hits.append(f"`{p['row']['key']}` at `{p['load']['key']}` repetition {p.get('rep')}{share}")
    if not hits:
        text = "no repetition of this run was disturbed"
        rd.claims.append(Claim("undisturbed", text, section,
                               lambda run: None if not any("DISTURBED" in (p.get("verdict_evidence") or "")
                                                           for p in run.points) else "a point is disturbed"))
        return text
    return (f"{len(hits)} of {len(r.points)} repetitions were disturbed (" + "; ".join(hits) +
            "); they are kept and flagged")


def f_method(rd: Renderer, use: Use, section):
    """{{method SEC}}: how the statistics module builds every interval (its own words)."""
    return stats.interval_method_text()


def f_provenance(rd: Renderer, use: Use, section):
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


def f_softirq(rd: Renderer, use: Use, section, row_a, row_b, load):
    """{{softirq SEC | A | B | LOAD}}: does counting the server CPU's whole busy time (softirq
    included) instead of the server process's CPU time change the A/B comparison?"""
    probe = Use(-1, "", "", section)
    ca, cb = rd.cell(section, row_a, load, probe), rd.cell(section, row_b, load, probe)

    def undisturbed(c):
        # The CPU's busy time includes other processes' work: only undisturbed points count.
        return [p for p in c.ok_points if "DISTURBED" not in (p.get("verdict_evidence") or "")]

    def per_req_busy(c):
        out = []
        for p in undisturbed(c):
            busy = dig(p, "machine.busy_frac.server")
            win, req = dig(p, "server.window_s"), dig(p, "wrk.requests")
            if isinstance(busy, (int, float)) and win and req:
                out.append(busy * win * 1e6 / req)
        return out

    def softirq(c):
        v = [x for x in (dig(p, "machine.softirq_frac.server") for p in undisturbed(c)) if isinstance(x, (int, float))]
        return f"{statistics.median(v) * 100:.1f}%" if v else "not recorded"

    ba, bb = per_req_busy(ca), per_req_busy(cb)
    if not any(dig(p, "machine.busy_frac.server") is not None for p in ca.ok_points + cb.ok_points):
        return (f"The reference run predates this record (its points have no `machine.busy_frac`), so"
                f" this report cannot yet show whether `{row_a}` against `{row_b}` at `{load}` changes with it.")
    if not ba or not bb:
        return (f"Every repetition of `{row_a}` or `{row_b}` at `{load}` was disturbed, so the CPU's busy"
                " time (which includes other processes' work) cannot be compared.")
    use.figures |= probe.figures
    cpu_a = [p["derived"]["server_cpu_us_per_req"] for p in undisturbed(ca)]
    cpu_b = [p["derived"]["server_cpu_us_per_req"] for p in undisturbed(cb)]
    r, lo, hi, _ = effect(ca, cb, cpu_a, cpu_b)  # lengths differ from ok_points when disturbed: Welch
    r2, lo2, hi2, _ = effect(ca, cb, ba, bb)
    return (f"At `{load}`, softirq time was {softirq(ca)} of the server CPU for `{row_a}` and"
            f" {softirq(cb)} for `{row_b}`; server CPU per request `{row_a}`/`{row_b}` is"
            f" {_ratio_text(r, lo, hi)} from the server process's CPU time and {_ratio_text(r2, lo2, hi2)}"
            f" from the server CPU's busy time (softirq included), over the undisturbed repetitions: "
            + softirq_words(row_a, row_b, (r, lo, hi), (r2, lo2, hi2)) + ".")


def _ratio_text(r, lo, hi) -> str:
    if lo is None:
        return f"{r:.2f} (one repetition a side: no interval)"
    return f"{r:.2f} (95% interval {lo:.2f} to {hi:.2f})"


def _side(r, lo, hi) -> int:
    """-1 / +1 when the ratio's interval lies below / above 1, 0 when it includes 1; without an
    interval (one repetition a side), the side of the point estimate."""
    if lo is None:
        return (r > 1) - (r < 1)
    return -1 if hi < 1 else 1 if lo > 1 else 0


# The two measures of server CPU per request that f_softirq compares, in the order of its tuples.
_MEASURES = ("the process's CPU time", "the CPU's busy time")


def softirq_words(row_a: str, row_b: str, proc: tuple, busy: tuple) -> str:
    """Whether counting the server CPU's busy time (softirq included) instead of the process's CPU
    time changes the A/B comparison of CPU per request. proc and busy are (ratio A/B, lo, hi);
    lo and hi None without an interval. Five cases, each with its own words: both measures decide
    the same way (no change); they decide opposite ways (reverses); one decides and the other
    shows no difference (changes); neither decides, and their point estimates do not lie on
    opposite sides of 1 (nothing to show), or do (then this run cannot tell). Never "does not
    change" when the two ratios lie on either side of 1."""
    sides = (_side(*proc), _side(*busy))
    less_more = {-1: "less", 1: "more"}
    if sides[0] and sides[1]:
        if sides[0] == sides[1]:
            return (f"the comparison does not change with it (by both measures `{row_a}` uses"
                    f" {less_more[sides[0]]} server CPU per request than `{row_b}`)")
        return (f"the two measures disagree and the comparison reverses with it (by {_MEASURES[0]}"
                f" `{row_a}` uses {less_more[sides[0]]} than `{row_b}`, by {_MEASURES[1]}"
                f" {less_more[sides[1]]})")
    if sides[0] or sides[1]:
        i = 0 if sides[0] else 1
        return (f"the comparison changes with it (by {_MEASURES[i]} `{row_a}` uses"
                f" {less_more[sides[i]]} than `{row_b}`; by {_MEASURES[1 - i]} no difference shows)")
    points = ((proc[0] > 1) - (proc[0] < 1), (busy[0] > 1) - (busy[0] < 1))
    if points[0] * points[1] < 0:
        return ("the two measures disagree in direction but neither shows a difference, so this run"
                " cannot tell whether counting softirq changes the comparison")
    return ("neither measure shows a difference, and they do not point opposite ways: counting softirq"
            " changes nothing this run can show")


FUNCS = {"softirq": f_softirq, "method": f_method, "v": f_v, "diff": f_diff, "range": f_range, "bound": f_bound, "cmp": f_cmp,
         "spread": f_spread, "design": f_design, "env": f_env, "runref": f_runref,
         "disturbed": f_disturbed, "provenance": f_provenance}


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
        if calibration.is_calibration_dir(full):  # its trials' sweeps carry the env
            runs = calibration.trial_runs(full)
            if not runs:
                raise TemplateError(f"section {name}: {d} has no sweep runs under runs/")
            full = runs[0]
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
