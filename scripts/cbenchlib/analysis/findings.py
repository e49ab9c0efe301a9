"""The published findings, each declared in its table's data before any run, judged from a run.

A finding (results/published/<name>.json, "findings") names the rows it compares (a over b),
its primary load point (where the server, not wrk, is the bound on a 2-core machine), its
claimed direction (a/b "greater" or "less" than a null ratio, or "equivalent" within a
margin), the published magnitude, and the metrics it is judged on. The verdict comes from the
first listed metric that can decide at the primary point, on the repetitions that may decide,
each judged on its own (repetitions.py: a failed or disturbed repetition, or one whose verdict the
metric may not decide at, is left out with its reason; the metric decides when each row keeps two):
- req/s decides only on server-bound repetitions (never client-bound, both-saturated,
  error-bound or unclear ones);
- CPU per request decides only where wrk, not the server, was saturated (client-bound): where the
  server is saturated it is about 1/throughput and adds nothing to req/s;
- system calls and context switches per request decide wherever the repetition did not fail;
- a metric declared "<metric>@fixed-rate" (findingdecl.at_fixed_rate: server CPU per request with
  every row offered one open-loop rate below their capacities) is read at the run's fixed-rate
  load of the primary point's shape, not at the primary point, and decides only where every
  repetition of both rows kept the offered rate (repetitions.py); without such a load it cannot
  decide and the next declared metric may. Open-loop loads are nobody's secondary point: their
  req/s is the offered rate.
A fallback declared "when": "undecided" is consulted also where the metrics before it could decide
and stayed undecided (findings.consulted): where k > 1 metrics are so consulted for a comparison,
each is judged at ALPHA / k (a (1 - ALPHA / k) interval, the equivalence tests at ALPHA / k;
Bonferroni) and the first in declared order that decides gives the verdict, so the chance that any
of the k looks decides wrongly stays at ALPHA, paid for with a wider interval for each. Only a
metric that measures the claim's own quantity is so declared (server CPU per request at a fixed
rate, where the row's capacity on its one server CPU is about 1 / that cost): a proxy such as
system calls per request never overrides a req/s that could decide and did not. Where one metric is
consulted, it is judged at ALPHA.
The first metric carries the finding's claim (its direction, null ratio, margin). Every later
metric is a fallback, a stand-in for the same claim where the first cannot decide, and declares
its own direction and no-effect value beside it, with its reason: a cost per request is better
when lower, the opposite sense of req/s, and a req/s multiple such as "more than twice" is a
different number on another metric (or none). A fallback never inherits the claim's direction or
null ratio; one that does not declare them, or whose direction contradicts its metric's sense, is
refused when the finding is loaded. The verdict names the metric that decided and its no-effect
value.
A comparison may be an equivalence sub-claim ("direction": "equivalent" beside it, with its reason:
a tie is expected, e.g. two designs with the same bound), judged for equivalence within its margin
or its metric's registered one; a directional claim against 1 takes its metric's registered margin
too, so a tie within it reads "equivalent", an answer. The finding's verdict combines its
directional comparisons and its sub-claims (verdict.py: one comparison that contradicts the claim at the
family's level contradicts the finding; support needs every comparison).
Verdict words, exactly: supported (the 95% interval excludes the null in the claimed direction),
contradicted (excludes it in the other), equivalent (both one-sided tests pass against the
margin), undecided (with the reason: how wide the interval is, and how many repetitions would
decide it at the observed spread). Beside it, the magnitude check against the published ratio.
Secondary load points are shown with Holm-corrected one-sided tests. Nothing here knows what
the answer should be.
Stacks: a finding is judged on one stack's rows at a time (format/published.row_stack), never on
a mix: the C++ rows (cbench-server's stand-ins) at the finding's primary point, the Ruby rows
(the original stack: Ruby 3.1, its GVL, nio4r / Ever / the Ruby servers) at the point its "ruby"
block declares, chosen by label on that stack whatever their gvl flag. A finding with no Ruby
rows to judge reads "not measured" with the reason (no Ruby rows in the run, none for its
comparisons, or declared not measurable on Ruby), never an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import stats
from ..format.published import STACK_CPP, STACK_RUBY, Published, row_stack
from . import findingdecl
from .findingdecl import METRICS, Declared, MetricSpec, declared_findings
from .repetitions import can_decide, cell_values, cell_verdicts, effect, excluded  # noqa: F401 (their readers import them from here)
from .labelindex import LabelIndex
from .verdict import (CONTRADICTED, EQUIVALENT, NO_DATA, SUPPORTED, UNDECIDED, VERDICT_WORDS,  # noqa: F401 (readers import them from here)
                      Decision, combine_claims, combine_comparisons, decide, fmt_ci)
from .runload import Cell, Load, Row, Run, column_label, fixed_rate_load
from ..format.loadpoint import canonical_label

# The Ruby rows' word where a finding cannot be judged on them (no Ruby rows, none for its
# comparisons, or declared not measurable on Ruby); the reason says which and what would measure it.
NOT_MEASURED = "not measured"
NO_RUBY_ROWS = "no Ruby rows in this run"
STACK_NAMES = {STACK_RUBY: "Ruby rows", STACK_CPP: "C++ rows"}
# A malformed declaration, under the name the readers of findings (compare, tests) catch it by.
DeclarationError = findingdecl.DeclarationError


def published_path(pub) -> str:
    """The path of a published table's columns (the first column's; default /)."""
    cols = (pub.doc.get("columns") or []) if pub is not None else []
    return (cols[0].get("path") if cols and isinstance(cols[0], dict) else None) or "/"


def magnitude_check(ci: stats.RatioCI | None, published: float | None) -> str:
    if published is None:
        return "no published magnitude"
    if ci is None:
        return f"published {published:.2f}; not measured"
    if not ci.enough_reps:
        return f"published {published:.2f}; measured {ci.ratio:.2f} (no interval)"
    if ci.lo <= published <= ci.hi:
        return f"published {published:.2f} lies inside the measured interval {fmt_ci(ci)}"
    return (f"published {published:.2f} lies outside the measured interval {fmt_ci(ci)}: the measured effect"
            f" is {ci.ratio / published:.2f}x the published one")


@dataclass
class PointEffect:
    load: Load
    ci: stats.RatioCI | None
    p_one_sided: float | None = None
    p_other: float | None = None
    p_adj: float | None = None
    p_adj_other: float | None = None
    can: bool = True
    why_not: str = ""
    excluded: list = field(default_factory=list)  # "<row> repetition N: why" left out of ci

    def mark(self) -> str:
        if not self.can:
            return "·"
        if self.p_adj is not None and self.p_adj < stats.ALPHA:
            return "✓"
        if self.p_adj_other is not None and self.p_adj_other < stats.ALPHA:
            return "✗"
        return "~"


@dataclass
class MetricResult:
    spec: MetricSpec
    primary: PointEffect | None
    decision: Decision
    secondary: list = field(default_factory=list)


@dataclass
class Line:
    """One comparison of a finding: run row a over run row b."""
    name: str
    a: Row
    b: Row
    published: float | None
    results: list  # MetricResult per declared metric
    decision: Decision  # from the first metric that can decide at the primary point
    decided_by: str | None
    magnitude: str
    decided_spec: MetricSpec | None = None  # the deciding metric's claim (its own, for a fallback)
    comp: dict | None = None  # the declared comparison this line judges
    tie: bool = False  # an equivalence sub-claim (findingdecl.is_tie): "equivalent" is its success
    consulted: list = field(default_factory=list)  # the MetricResults consulted (findings.consulted)

    @property
    def looks(self) -> int:
        """How many metrics were consulted, each judged at ALPHA / looks (verdict.decide)."""
        return max(1, len(self.consulted))

    @property
    def claim(self) -> tuple | None:
        """(direction, null ratio, margin) the deciding metric judged it on, or None."""
        s = self.decided_spec
        return (s.direction, s.null_ratio, s.margin) if s is not None else None

    def decided_text(self) -> str:
        """"decided on <metric>[, a fallback]: claim a/b < 0.5, no-effect value 0.5", or ""."""
        return self.decided_spec.decided_text() if self.decided_spec is not None else ""


@dataclass
class Finding:
    decl: Declared
    lines: list = field(default_factory=list)
    missing: list = field(default_factory=list)  # comparison names without rows
    overall: Decision = None

    @property
    def fid(self) -> str:
        return self.decl.fid

    @property
    def title(self) -> str:
        return self.decl.title


def stack_of(r: Row) -> str:
    """The stack a run row runs on (format/published.row_stack)."""
    return row_stack(r.kind, r.model)


def rows_for(idx: "LabelIndex", spec, gvl: bool, stack: str = STACK_CPP) -> list[Row]:
    """The run rows a comparison side names, on one stack only: by label (or by fields) and gvl;
    a Ruby row is taken whatever its gvl flag, as Ruby always holds its GVL."""
    gvls = (False, True) if stack == STACK_RUBY else (gvl,)
    if isinstance(spec, str):
        rows = [r for g in gvls for r in idx.by_label.get((canonical_label(spec), g)) or []]
    else:
        rows = [r for r in idx.run.rows.values() if _has_fields(r, spec) and r.gvl in gvls]
    return [r for r in rows if stack_of(r) == stack]


def side_rows(idx: "LabelIndex", comp: dict, side: str, gvl: bool, stack: str = STACK_CPP) -> list[Row]:
    """The rows of one side ("a" or "b") of a declared comparison: rows_for, less the rows its
    "exclude_a" / "exclude_b" fields name (rows of the side's label that the claim does not mean)."""
    excl = comp.get(f"exclude_{side}")
    return [r for r in rows_for(idx, comp[side], gvl, stack) if not (excl and _has_fields(r, excl))]


def _has_fields(r: Row, fields: dict) -> bool:
    """True when the row has every field of FIELDS with its value (a Row attribute or its raw field)."""
    return all(getattr(r, k, r.raw.get(k)) == v for k, v in fields.items())


def _spec_name(spec) -> str:
    return spec if isinstance(spec, str) else " ".join(f"{k}={v}" for k, v in spec.items())


def published_ratio(pub: Published, comp: dict, column: str | None) -> float | None:
    if comp.get("published_ratio") is not None:
        return float(comp["published_ratio"])
    if column is None or not isinstance(comp["a"], str) or not isinstance(comp["b"], str):
        return None
    ra, rb = pub.row(comp["a"]), pub.row(comp["b"])
    if ra is None or rb is None or column not in pub.columns:
        return None
    j = pub.columns.index(column)
    ca, cb = ra.cells[j], rb.cells[j]
    return ca.req_per_s / cb.req_per_s if ca and cb else None


def judge_metric(run: Run, a: Row, b: Row, spec: MetricSpec, primary: Load | None,
                 secondary: list[Load]) -> MetricResult:
    """The effect of one metric at the primary point (the verdict) and at the secondary points
    (one-sided p values in the claimed direction and against it, Holm-corrected over them)."""
    prim = None
    decision = Decision(UNDECIDED, "the primary load point was not measured for both rows")
    if primary is not None:
        ca, cb = run.cell(a.key, primary.lid), run.cell(b.key, primary.lid)
        if ca is not None and cb is not None:
            ci = effect(ca, cb, spec.metric, decide_only=True)
            ok, why = can_decide(ca, cb, spec.metric)
            if ok and ci is None:  # e.g. no perf on the machine: the next declared metric may decide
                ok, why = False, f"{METRICS[spec.metric][1]} was not recorded at the primary point for both rows"
            allowed = METRICS[spec.metric][2]
            prim = PointEffect(primary, ci, can=ok, why_not=why, excluded=excluded(ca, allowed) + excluded(cb, allowed))
            if not ok:
                decision = Decision(UNDECIDED, why, ci)
            else:
                decision = decide(ci, spec.direction, spec.null_ratio, spec.margin)
    secs = []
    for ld in secondary:
        ca, cb = run.cell(a.key, ld.lid), run.cell(b.key, ld.lid)
        if ca is None or cb is None:
            continue
        ci = effect(ca, cb, spec.metric, decide_only=True)
        ok, why = can_decide(ca, cb, spec.metric)
        pe = PointEffect(ld, ci, can=ok, why_not=why)
        if ci is not None and ci.log_se is not None and ok and spec.direction != "equivalent":
            alt, other = ("greater", "less") if spec.direction == "greater" else ("less", "greater")
            pe.p_one_sided, pe.p_other = ci.p_value(spec.null_ratio, alt), ci.p_value(spec.null_ratio, other)
        secs.append(pe)
    for attr, adj in (("p_one_sided", "p_adj"), ("p_other", "p_adj_other")):
        for pe, p in zip(secs, stats.holm([getattr(pe, attr) for pe in secs])):
            setattr(pe, adj, p)
    return MetricResult(spec, prim, decision, secs)


def consulted(results: list[MetricResult]) -> list[MetricResult]:
    """The metrics consulted for one comparison, in declared order: the first that can decide at
    the primary point, and after it each that can decide and is declared "when": "undecided"
    (findingdecl.WHEN_UNDECIDED), up to the first that is not (a default fallback is consulted only
    where every metric before it cannot decide). Where k > 1 are consulted, each is re-judged at
    ALPHA / k (verdict.decide's looks, Bonferroni): the first of them that decides gives the
    verdict, and the chance that any of the k decides wrongly stays at ALPHA."""
    out = []
    for r in results:
        if r.primary is None or not r.primary.can:
            continue
        if out and not r.spec.when_undecided:
            break
        out.append(r)
    if len(out) > 1:
        for r in out:
            r.decision = decide(r.primary.ci, r.spec.direction, r.spec.null_ratio, r.spec.margin, looks=len(out))
    return out


def judged_on(lines: list[Line]) -> str:
    """Which metrics judged the comparisons, each with its no-effect value and how many it judged:
    "judged on system calls/request, a fallback (no-effect value 0.5), in 2 of 4", or ""."""
    groups: dict[tuple, int] = {}
    for ln in lines:
        s = ln.decided_spec
        if s is not None:
            k = (METRICS[s.metric][1] + (", a fallback" if s.fallback else ""), s.no_effect_text())
            groups[k] = groups.get(k, 0) + 1
    if not groups:
        return ""
    return "judged on " + "; ".join(f"{name} ({ne}), in {n} of {len(lines)}" for (name, ne), n in groups.items())


def combine(lines: list[Line]) -> Decision:
    """The finding's verdict over its comparisons (combine_claims), the reason ending with the
    metrics that judged them (judged_on)."""
    dec = combine_claims(lines)
    on = judged_on(lines)
    if on:
        dec.reason = f"{dec.reason}; {on}"
    return dec


class Analysis:
    """All declared findings of a published table, judged from one run on one stack's rows:
    the C++ rows (default) at each finding's primary point, or the Ruby rows at its declared
    "ruby" primary point. A finding that cannot be judged on the Ruby rows reads NOT_MEASURED
    with the reason (never an error)."""

    def __init__(self, run: Run, pub: Published | None = None, stack: str = STACK_CPP):
        self.run = run
        self.pub = pub
        self.stack = stack
        self.idx = LabelIndex(run)
        self.findings: list[Finding] = []
        has_rows = any(stack_of(r) == stack for r in run.rows.values())
        if pub is not None:
            for d in declared_findings(pub):
                if stack == STACK_RUBY and not has_rows:
                    self.findings.append(Finding(d, overall=Decision(NOT_MEASURED, NO_RUBY_ROWS)))
                else:
                    self.findings.append(self._judge(d))

    @property
    def has_data(self) -> bool:
        return any(f.lines for f in self.findings)

    def _loads_by_key(self) -> dict[tuple[str, str], Load]:
        """(path, load key) -> load, for pipeline-1 loads; the key both as the sweep writes it
        ("-t4 -c64 /spin?us=10") and without its path ("-t4 -c64"), as a table column names it."""
        out = {}
        for ld in self.run.loads.values():
            if not ld.lid.idle and not ld.lid.open_loop and ld.lid.pipeline == 1:
                out.setdefault((ld.lid.path, column_label(ld)), ld)
                out[(ld.lid.path, ld.lid.key)] = ld
        return out

    def _judge(self, d: Declared) -> Finding:
        f = Finding(d)
        sd = d.on_stack(self.stack)
        if sd.why_not:
            f.overall = Decision(NOT_MEASURED, sd.why_not)
            return f
        loads = self._loads_by_key()
        primary = loads.get((sd.primary_path, sd.primary_load))
        secondary = []
        for ld in loads.values():
            if ld is not primary and ld not in secondary:
                secondary.append(ld)
        for comp in sd.comparisons:
            gvl = bool(comp.get("gvl"))
            ga, gb = bool(comp.get("gvl_a", gvl)), bool(comp.get("gvl_b", gvl))
            ras, rbs = side_rows(self.idx, comp, "a", ga, self.stack), side_rows(self.idx, comp, "b", gb, self.stack)
            name = (f"{_spec_name(comp['a'])}{' --gvl' if ga else ''} / {_spec_name(comp['b'])}"
                    f"{' --gvl' if gb else ''}")
            if not ras or not rbs:
                f.missing.append(name)
                continue
            # One stack's rows only (rows_for): a pair differs in the design the finding names,
            # never in the language and runtime.
            pairs = [(a, b) for a in ras for b in rbs if a.key != b.key]
            pr = published_ratio(self.pub, comp, d.published_column)
            specs = findingdecl.comparison_specs(d, comp)
            for a, b in pairs:
                results = [self._judge_spec(a, b, m, primary, secondary) for m in specs]
                able = consulted(results)
                deciding = next((r for r in able if r.decision.word != UNDECIDED), able[0] if able else None)
                if deciding is None:
                    dec = results[0].decision if results else Decision(UNDECIDED, "no metric")
                    if results and results[0].primary is not None:
                        dec = Decision(UNDECIDED, "no declared metric can decide at the primary point: "
                                       + "; ".join(r.primary.why_not for r in results if r.primary), None)
                    by, by_spec = None, None
                else:
                    dec, by, by_spec = deciding.decision, deciding.spec.metric, deciding.spec
                # Published magnitudes are req/s ratios: checked against the measured req/s effect.
                rps = next((r for r in results if r.spec.metric == "req_per_s"), None)
                rps_ci = rps.primary.ci if rps is not None and rps.primary is not None else None
                mag = magnitude_check(rps_ci, pr) if rps is not None else "no published magnitude for these metrics"
                if pr is not None and sd.primary_path != published_path(self.pub):
                    mag = (f"published {pr:.2f} is for GET {published_path(self.pub)}, the primary point is GET"
                           f" {sd.primary_path}: magnitudes are compared only at matching points (the"
                           " reproduction scorecard compares them on the published path)")
                f.lines.append(Line(f"{a.display()} / {b.display()}", a, b, pr, results, dec, by, mag,
                                    decided_spec=by_spec, comp=comp, tie=findingdecl.is_tie(comp),
                                    consulted=able))
        f.overall = combine(f.lines)
        if self.stack == STACK_RUBY and not f.lines:
            f.overall = Decision(NOT_MEASURED, "the run has no Ruby rows for " + ", ".join(f.missing))
        return f

    def _judge_spec(self, a: Row, b: Row, spec: MetricSpec, primary: Load | None, secondary: list) -> MetricResult:
        """judge_metric at the primary point, or for a metric read at a fixed rate
        (findingdecl.at_fixed_rate) at the run's fixed-rate load of the primary point's shape
        (runload.fixed_rate_load), its only point."""
        if not findingdecl.at_fixed_rate(spec.metric):
            return judge_metric(self.run, a, b, spec, primary, secondary)
        fixed = fixed_rate_load(self.run, primary) if primary is not None else None
        res = judge_metric(self.run, a, b, spec, fixed, [])
        if fixed is None:
            res.decision = Decision(UNDECIDED, "the run has no fixed-rate load of the primary point's shape")
        return res


def budget_note(run: Run, f: Finding) -> str:
    """Why more repetitions within the run's budget could not decide an undecided finding: the
    closest undecided comparison's repetitions needed (at its observed effect and spread) against
    the run's cap per row (meta.json "sequential"), with the valid repetitions it had; "" for a
    decided finding, or a run without a sequential budget."""
    if f.overall is None or f.overall.word != UNDECIDED:
        return ""
    seq = run.meta.get("sequential") or {}
    cap = seq.get("max_repetitions")
    open_lines = [ln for ln in f.lines if ln.decision.word == UNDECIDED]
    if not cap or not open_lines:
        return ""
    needs = [ln.decision.reps_needed for ln in open_lines if ln.decision.reps_needed]
    valid = [min(ln.decision.ci.n_num, ln.decision.ci.n_den) for ln in open_lines if ln.decision.ci is not None]
    span = (f"{min(valid)}" if min(valid) == max(valid) else f"{min(valid)} to {max(valid)}") if valid else ""
    had = f" (they had {span} valid repetitions per row)" if valid else ""
    if not needs:
        return (f"budget: no undecided comparison has an interval to size more repetitions from (their"
                f" repetitions may not decide, for the reasons above){had}, so more of the same within the"
                f" run's cap of {cap} would not decide it")
    if min(needs) > cap:
        need = f"about {min(needs)}" if min(needs) <= stats.MAX_REPS_SEARCH else f"more than {stats.MAX_REPS_SEARCH}"
        return (f"budget: the closest undecided comparison needs {need} repetitions per row at its observed"
                f" effect and spread, more than the run's cap of {cap}{had}: more repetitions within the"
                " budget could not decide it")
    return (f"budget: the closest undecided comparison needs about {min(needs)} repetitions per row, within the"
            f" run's cap of {cap}{had}; the run stopped ({seq.get('stopped')})"
            " before it had them valid (left-out repetitions count towards the cap)")


def summary_rows(an: Analysis) -> list[tuple[str, str, str]]:
    """(finding, scope, verdict text) for report summaries and tests."""
    return [(f"{f.fid}. {f.title}", "primary", f.overall.text()) for f in an.findings]


@dataclass
class Spread:
    """Run-to-run spread of one metric over a run: |a - b| / mean(a, b) over every pair of
    repetitions of every point (row x load) that has at least two."""
    metric: str
    n_points: int
    n_pairs: int
    median: float | None
    p90: float | None


SPREAD_METRICS = ("req_per_s", "server_cpu_us_per_req", "syscalls_per_req", "ctx_switches_per_req")


def run_spread(run: Run, metrics: tuple = SPREAD_METRICS) -> list[Spread]:
    """Each metric's spread between repetitions (median and 90th percentile of the relative
    differences), for REPORT.md to state from the runs rather than by hand."""
    out = []
    for m in metrics:
        diffs, n_points = [], 0
        for cell in run.cells.values():
            if cell.load.lid.idle:
                continue
            vals, _blocks = cell_values(cell, m)
            if len(vals) >= 2:
                n_points += 1
                diffs += stats.relative_differences(vals)
        out.append(Spread(m, n_points, len(diffs), stats.percentile(diffs, 0.5), stats.percentile(diffs, 0.9)))
    return out
