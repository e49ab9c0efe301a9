"""The sequential stopping rule the sweep calls between blocks (`--target-ci`, `--max-repetitions`).

Contract with the executor (harness): after each block it calls
`decide(run_dir, published_name, target_ci_pct, max_repetitions[, trends=True])`; when `stop` is false it runs
one more block for what `rows` names and calls again. Each entry of `rows` is the `point_id` of
a point (row x load) a comparison needs, as recorded in points.jsonl, so only the points of
comparisons still open are repeated; the row's `row.key` when a record has no point_id (the
executor then runs every point of that row). The executor caps every point at max_repetitions
records, failed and disturbed ones included: that cap is the budget `--dry-run` prints.

Which comparisons: every comparison declared for the run's scenario (meta.json scenario_name):
- with a published table, each of its findings' comparisons at their primary load point, on the
  metric that decides there (findings.py), and on each fallback consulted with it (one declared
  "when undecided", findings.consulted) at that metric's own point: the metrics of one comparison
  form a group, and one of them decided decides the group; on each stack the findings judge (the
  C++ rows at the finding's primary point, the Ruby rows at its "ruby" block's), sized alike and
  apart; and, for
  a scenario that asks for it (sequential_trends = true: the trend is what it measures), each
  step of the published trend the scorecard judges (analysis/scorecard.py: a finding's or a
  declared effect's a/b at two successive published columns, their ratio of ratios on req/s),
  on each stack, claimed as the published step says (a rise, a fall, or flat within the
  scorecard's trend tolerance);
- the design findings of the scenario (results/findings/design.json, design.py): each ratio
  comparison, each threshold row against its value, and the best over the worst row at each
  handler cost of a convergence finding;
- the decision table's cells whose section is the scenario (decision.SHAPES): the best family's
  best row against the next family's and the worst family's, on the metric the cell ranks by.
Without any, every row's own req/s at every load point (the interval of its mean on the log scale).

Validity: each repetition is judged on its own (verdict.repetition_problem, and the comparison's
own rules: the verdict its metric decides at, wrk timeouts, requests per connection). A failed,
disturbed or otherwise invalid repetition is left out of the comparison, with its reason in the
judging, and counts for nothing here: the comparison asks for another block, so a disturbed
repetition is re-run, never averaged in, and one bad repetition never stops the sampling. What
counts is the number of valid blocks the two rows share (the paired interval's n).

The rule, per comparison, in order:
1. decided: the comparison is decided (supported / contradicted / equivalent; for a decision
   cell wins / equivalent) at a confidence corrected for the looks the design may take
   (Bonferroni over max_repetitions - PILOT_BLOCKS + 1 looks at alpha = 0.05): done. Checking a
   95% interval after every block and stopping when it excludes the null would inflate the error
   rates; the corrected level keeps the family-wise error of all looks at 5%.
2. otherwise a two-stage design on the interval's WIDTH, never on which side of the null it falls:
   the first PILOT_BLOCKS valid shared blocks are a pilot; from the pilot's spread alone it fixes
   how many blocks the comparison needs for a 95% interval of half-width target_ci_pct percent
   (stats.reps_for_half_width), raised to the count that would decide it at the pilot's effect
   and spread and the corrected level (reps_to_decide) when that count is within the cap (so that
   a comparison the budget can decide is not left "undecided, about N repetitions would decide"
   with N under the cap), capped at max_repetitions, and asks for blocks until the rows have
   that many valid ones. Stopping as soon as the running interval happens to be narrow
   would stop exactly where the spread was underestimated by chance, and such intervals
   under-cover (the simulation showed 92% coverage with outliers); a count fixed by the pilot does
   not chase the noise. The simulation test (tests/report/simulation_judging.py, ctest
   report_simulation) checks the resulting error rates and coverage.
A comparison no valid repetition of a row can enter (e.g. req/s where every repetition was
client-bound, so no number of blocks makes it decide) asks for nothing and says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from scipy import stats as sps

from . import decision as decision_table, design, findings, runload, scorecard, stats
from ..format import published
from .labelindex import LabelIndex
from .runload import Cell


@dataclass
class Decision:
    stop: bool
    reason: str
    rows: list[str] = field(default_factory=list)


# The stacks whose findings' comparisons are sized, and how a comparison's name says its stack
# (the C++ rows' names stay as they were before Ruby rows existed).
STACKS = (published.STACK_CPP, published.STACK_RUBY)
STACK_SUFFIX = {published.STACK_CPP: "", published.STACK_RUBY: " on the Ruby rows"}

# Blocks of the pilot stage: 4 gives a spread estimate with 3 degrees of freedom, enough to size
# the second stage to within a factor of about 2, at the cost of 4 rounds every comparison needs.
PILOT_BLOCKS = 4


@dataclass(frozen=True)
class Claim:
    """What decides a comparison: a/b `direction` ("greater", "less") than null_ratio, or
    "equivalent" within margin; a directional claim with a margin is also decided by a tie."""
    direction: str
    null_ratio: float = 1.0
    margin: float | None = None


@dataclass
class Comparison:
    """One declared comparison the rule sizes: its cells (b None: a threshold, a against the
    constant `value`), how to read a cell's valid (values, blocks), and its claim."""
    name: str
    a: Cell
    b: Cell | None
    values: Callable[[Cell], tuple[list, list]]
    claim: Claim
    value: float = 1.0
    # Comparisons of one group judge one claim on several metrics (a finding's comparison and the
    # fallbacks consulted with it): one of them decided decides the group, and the rest stop too.
    group: str = ""

    def is_decided(self, n_looks: int) -> bool:
        return (self.a is not None and self.measurable() and self.have() >= PILOT_BLOCKS
                and self.claim.direction != "none" and decided(self.ci(), self.claim, n_looks))

    def pairs(self) -> tuple[dict, dict] | tuple[list, None]:
        """({block: [values]} of a, of b), or (values of a, None) for a threshold."""
        va, ba = self.values(self.a)
        if self.b is None:
            return va, None
        vb, bb = self.values(self.b)
        return _by_block(va, ba), _by_block(vb, bb)

    def ci(self, blocks_limit: int | None = None) -> stats.RatioCI | None:
        """The interval over the valid repetitions, or over the first BLOCKS_LIMIT valid blocks
        the rows share (the pilot); None without values."""
        a, b = self.pairs()
        if b is None:
            vals = a[:blocks_limit] if blocks_limit else a
            return stats.ratio_ci(vals, [self.value] * len(vals)) if vals else None
        common = sorted(k for k in set(a) & set(b) if k is not None)
        if common:
            keep = common[:blocks_limit] if blocks_limit else common
            return stats.paired_log_ratio({k: a[k] for k in keep}, {k: b[k] for k in keep}) \
                or _welch(a, b, blocks_limit)
        return _welch(a, b, blocks_limit)

    def have(self) -> int:
        """Valid repetitions the comparison can use: the blocks both rows share (paired), else
        the fewer of the two rows' valid repetitions."""
        a, b = self.pairs()
        if b is None:
            return len(a)
        common = [k for k in set(a) & set(b) if k is not None]
        if common:
            return len(common)
        return min(sum(len(v) for v in a.values()), sum(len(v) for v in b.values()))

    def measurable(self) -> bool:
        """Whether a row has any valid repetition at all (else more blocks of the same kind will
        most likely not make one: every repetition so far was invalid for this comparison)."""
        a, b = self.pairs()
        return bool(a) and (b is None or bool(b))

    def point_ids(self) -> list[str]:
        out = []
        for c in (self.a, self.b):
            if c is None:
                continue
            pid = next((p.get("point_id") for p in c.points if p.get("point_id")), None)
            out.append(pid or c.row.key)
        return out


@dataclass
class TrendStep(Comparison):
    """One step of a published trend: (a/b at the later column) over (a/b at the earlier), the
    scorecard's ratio of ratios. a, b are the earlier column's cells, a2, b2 the later's; the
    two columns' effects are estimated apart (their blocks are not the same requests)."""
    a2: Cell | None = None
    b2: Cell | None = None

    def _sides(self) -> tuple[Comparison, Comparison]:
        return (Comparison("", self.a, self.b, self.values, self.claim),
                Comparison("", self.a2, self.b2, self.values, self.claim))

    def ci(self, blocks_limit: int | None = None) -> stats.RatioCI | None:
        early, late = self._sides()
        return scorecard.ratio_of_ratios(late.ci(blocks_limit), early.ci(blocks_limit))

    def have(self) -> int:
        return min(side.have() for side in self._sides())

    def measurable(self) -> bool:
        return all(side.measurable() for side in self._sides())

    def point_ids(self) -> list[str]:
        return [i for side in self._sides() for i in side.point_ids()]


def _by_block(vals: list, blocks: list) -> dict:
    out: dict = {}
    for v, b in zip(vals, blocks):
        out.setdefault(b, []).append(v)
    return out


def _welch(a: dict, b: dict, limit: int | None) -> stats.RatioCI | None:
    va = [v for vs in a.values() for v in vs][:limit] if limit else [v for vs in a.values() for v in vs]
    vb = [v for vs in b.values() for v in vs][:limit] if limit else [v for vs in b.values() for v in vs]
    return stats.welch_log_ratio(va, vb) if va and vb else None


def looks(max_repetitions: int) -> int:
    """How many times the rule may look at a comparison after its pilot: once per block from
    the pilot's end to the cap."""
    return max(1, max_repetitions - PILOT_BLOCKS + 1)


def decided(ci: stats.RatioCI | None, claim: Claim, n_looks: int) -> bool:
    """Whether the comparison is decided at confidence 1 - ALPHA / n_looks (see the module
    docstring): the corrected interval excludes the null (directional), or lies wholly outside
    the margin (equivalence), or the two one-sided tests pass against the margin at ALPHA / n_looks."""
    if ci is None or not ci.enough_reps or ci.log_se is None:
        return False
    alpha = stats.ALPHA / n_looks
    if claim.margin is not None and claim.margin > 1.0 and stats.tost_equivalent(ci, claim.margin, alpha)[0]:
        return True
    strict = ci.at_confidence(1.0 - alpha)
    if claim.direction == "equivalent":
        m = claim.margin or 1.0
        return strict.lo > m or strict.hi < 1.0 / m
    return strict.lo > claim.null_ratio or strict.hi < claim.null_ratio


def reps_to_decide(pilot: stats.RatioCI | None, claim: Claim, n_looks: int, cap: int) -> int | None:
    """The fewest blocks, above the pilot's and at most cap, that would decide the comparison as
    decided() does if the pilot's effect and spread held (the spread scaled as stats._sizes does:
    per block when paired, per row otherwise); None when no count up to cap would, or the claim
    decides nothing. Fixed from the pilot alone: it never chases a running interval."""
    if claim.direction == "none" or pilot is None or not pilot.log_sd or pilot.ratio <= 0:
        return None
    alpha, d = stats.ALPHA / n_looks, math.log(pilot.ratio)
    paired = pilot.method == "paired-t"
    for n in range(max(2, min(pilot.n_num, pilot.n_den) + 1), cap + 1):
        se = pilot.log_sd / math.sqrt(n) if paired else pilot.log_sd * math.sqrt(2.0 / n)
        df = n - 1.0 if paired else 2.0 * n - 2.0
        two, one = float(sps.t.ppf(1.0 - alpha / 2.0, df)), float(sps.t.ppf(1.0 - alpha, df))
        if claim.margin is not None and claim.margin > 1.0 and abs(d) + one * se < math.log(claim.margin):
            return n  # the two one-sided tests pass against the margin
        if claim.direction == "equivalent":
            if abs(d) - two * se > math.log(claim.margin or 1.0):
                return n  # wholly outside the margin
        elif abs(d - math.log(claim.null_ratio)) > two * se:
            return n  # excludes the null
    return None


# ---------------------------------------------------------------- the declared comparisons
def stack_analyses(run: runload.Run, pub_name: str) -> dict[str, findings.Analysis]:
    """A published table's findings judged on each stack's rows: what published_comparisons and
    trend_comparisons both read (judged once per look)."""
    pub = published.load_published(pub_name)
    return {stack: findings.Analysis(run, pub, stack=stack) for stack in STACKS}


def published_comparisons(run: runload.Run, pub_name: str,
                          analyses: dict | None = None) -> tuple[list[Comparison], list[str]]:
    """(comparisons, notes) of a published table's findings on each stack (module docstring);
    ANALYSES: stack_analyses(run, pub_name), when the caller has it."""
    analyses = analyses or stack_analyses(run, pub_name)
    out, notes = [], []
    for stack in STACKS:
        for f in analyses[stack].findings:
            for ln in f.lines:
                name = f"finding {f.fid} {ln.name}{STACK_SUFFIX[stack]}"
                # Every metric consulted (findings.consulted: the first that can decide, and the
                # fallbacks declared "when undecided" after it), each sized at its own point.
                ress = list(ln.consulted)
                if not ress:  # no metric decides yet: the first whose rows have a valid repetition
                    ress = [r for r in ln.results if r.primary is not None
                            and _published_cmp(run, ln, r).measurable()][:1]
                if not ress:
                    notes.append(f"{name}: no valid repetition of a row for any declared metric at the"
                                 " primary point; more blocks would not help")
                    continue
                for res in ress:
                    c = _published_cmp(run, ln, res)
                    c.name = f"{name} ({findings.METRICS[res.spec.metric][1]})"
                    c.group = name if len(ress) > 1 else ""
                    out.append(c)
    return out, notes


def trend_comparisons(run: runload.Run, pub_name: str, analyses: dict | None = None) -> list[Comparison]:
    """Each step of each published trend the scorecard judges, on each stack (module docstring):
    a step with both columns published and all four cells measured; ANALYSES as
    published_comparisons."""
    pub = published.load_published(pub_name)
    analyses = analyses or stack_analyses(run, pub_name)
    tol = float((pub.doc.get("scorecard") or {}).get("trend_tolerance") or scorecard.DEFAULT_TREND_TOLERANCE)
    path = scorecard.published_path(pub)
    loads = dict(zip(pub.columns, scorecard.published_loads(run, pub, path)))
    allowed = findings.METRICS["req_per_s"][2]
    out, idx = [], LabelIndex(run)
    for stack in STACKS:
        lines = [(f"finding {f.fid}", ln.a, ln.b, ln.comp) for f in analyses[stack].findings for ln in f.lines]
        for eff in (pub.doc.get("scorecard") or {}).get("effects") or []:
            lines += [(f"effect {eff['id']}", a, b, comp) for a, b, comp in scorecard.effect_lines(run, idx, eff, stack)]
        for what, a, b, comp in lines:
            cols = [e for e in scorecard.column_effects(run, pub, a, b, comp) if e.published is not None]
            for e1, e2 in zip(cols, cols[1:]):
                l1, l2 = loads.get(e1.column), loads.get(e2.column)
                cells = [run.cell(k, ld.lid) if ld is not None else None for ld in (l1, l2) for k in (a.key, b.key)]
                if any(c is None for c in cells):
                    continue
                step = e2.published / e1.published
                claim = (Claim("greater", 1.0, tol) if step > tol else Claim("less", 1.0, tol) if step < 1.0 / tol
                         else Claim("equivalent", 1.0, tol))
                out.append(TrendStep(f"{what} trend {a.key} / {b.key}, {e1.column} → {e2.column} (published"
                                     f" ×{step:.2f}){STACK_SUFFIX[stack]}", cells[0], cells[1],
                                     lambda c, al=allowed: findings.cell_values(c, "req_per_s", al), claim,
                                     a2=cells[2], b2=cells[3]))
    return out


def _published_cmp(run: runload.Run, ln, res) -> Comparison:
    lid = res.primary.load.lid
    metric = res.spec.metric
    allowed = findings.METRICS[metric][2]
    return Comparison("", run.cell(ln.a.key, lid), run.cell(ln.b.key, lid),
                      lambda c, m=metric, al=allowed: findings.cell_values(c, m, al),
                      Claim(res.spec.direction, res.spec.null_ratio, res.spec.margin))


def design_comparisons(run: runload.Run, scenario: str | None) -> tuple[list[Comparison], list[str]]:
    """(comparisons, notes) of the scenario's design findings (design.json)."""
    out, notes = [], []
    try:
        decls = design.for_scenario(scenario) if scenario else []
    except (OSError, design.DeclarationError) as exc:
        return [], [f"design findings unreadable: {exc}"]
    for d in decls:
        metric = d["metric"]

        def vals(c, d=d, metric=metric, entering=None):
            """A cell's valid (values, blocks); ENTERING: the cell whose failed requests enter
            (design.conservative_side)."""
            v, b, _probs = design.values(c, metric, d, c is entering)
            return v, b
        res = design.judge(run, d)
        if d["kind"] == "convergence":
            for cp in res.points:
                ca, cb = design.cell_at(run, cp.best, cp.path), design.cell_at(run, cp.worst, cp.path)
                if ca is not None and cb is not None:
                    out.append(Comparison(f"design finding {d['id']} best/worst at {cp.path}", ca, cb, vals,
                                          Claim("equivalent", 1.0, float(d["margin"]))))
            continue
        for comp in res.comparisons:
            if comp.cells is None:
                continue
            ca, cb = comp.cells
            direction, null, margin = comp.claim
            if d["kind"] == "threshold":
                out.append(Comparison(f"design finding {d['id']} {comp.name}", ca, None, vals,
                                      Claim(direction, 1.0, None), float(d["value"])))
            else:
                entering = {"a": ca, "b": cb}.get(comp.errors_side)
                out.append(Comparison(f"design finding {d['id']} {comp.name}", ca, cb,
                                      lambda c, e=entering, f=vals: f(c, entering=e), Claim(direction, null, margin)))
    return out, notes


def decision_comparisons(run: runload.Run, scenario: str | None) -> list[Comparison]:
    """The decision table's comparisons of the scenario's shapes: the best family's best row
    against the next and the worst family's, oriented so that > 1 favours the best."""
    out = []
    for sh in decision_table.SHAPES:
        if sh.section != scenario:
            continue
        sr = decision_table.shape_ranking(run, sh)
        if sr is None or sr.ranking is None or len(sr.ranking.families) < 2:
            continue
        fams = sr.ranking.families
        verdicts = None if sr.metric != "wrk.req_per_s" else sh.decide_at
        for other, what in ((fams[1], "next"), (fams[-1], "worst")):
            if what == "worst" and len(fams) < 3:
                continue
            best, worse = run.cell(fams[0].key, sr.load.lid), run.cell(other.key, sr.load.lid)
            a, b = (best, worse) if sr.higher else (worse, best)
            out.append(Comparison(f"decision cell \"{sh.name}\": {fams[0].key} against the {what} family's"
                                  f" {other.key} ({sr.metric})", a, b,
                                  lambda c, path=sr.metric, v=verdicts: decision_table._vals(c, path, v),
                                  Claim("greater", 1.0, sr.margin)))
    return out


def own_rate_comparisons(run: runload.Run) -> list[Comparison]:
    """Without declared comparisons: each row's own req/s at each load point, against 1 (its
    interval's width is what is sized; it decides nothing)."""
    out = []
    for (key, lid), c in run.cells.items():
        if lid.idle:
            continue
        out.append(Comparison(f"{key} {lid.key}", c, None, lambda cell: findings.cell_values(cell, "req_per_s"),
                              Claim("none"), 1.0))
    return out


# ---------------------------------------------------------------- the rule
def decide(run_dir: str, published_name: str | None, target_ci_pct: float, max_repetitions: int,
           trends: bool = False) -> Decision:
    """Whether the run has sampled enough (see the module docstring); never raises on a run that
    has no points yet (it then asks for every row)."""
    run = runload.load_run(run_dir)
    scenario = design.scenario_of(run)
    comps: list[Comparison] = []
    notes: list[str] = []
    if published_name:
        analyses = stack_analyses(run, published_name)
        c, n = published_comparisons(run, published_name, analyses)
        comps += c + (trend_comparisons(run, published_name, analyses) if trends else [])
        notes += n
    c, n = design_comparisons(run, scenario)
    comps += c
    notes += n
    comps += decision_comparisons(run, scenario)
    if not comps and not published_name:
        comps = own_rate_comparisons(run)
    n_looks = looks(max_repetitions)
    need: list[str] = []
    capped, done, narrow = [], 0, 0
    is_done = [c.is_decided(n_looks) for c in comps]
    decided_groups = {c.group for c, d in zip(comps, is_done) if c.group and d}
    for cmp, cmp_done in zip(comps, is_done):
        if cmp.a is None:
            continue
        if cmp.group in decided_groups:
            done += 1
            continue
        if not cmp.measurable():
            notes.append(f"{cmp.name}: no valid repetition of a row yet; more blocks of the same kind would"
                         " most likely not help")
            continue
        have = cmp.have()
        if cmp_done:
            done += 1
            continue
        pilot = cmp.ci(PILOT_BLOCKS) if have >= PILOT_BLOCKS else None
        needed = stats.reps_for_half_width(pilot, target_ci_pct) if pilot is not None and pilot.enough_reps else None
        if needed is not None and needed < max_repetitions:
            decisive = reps_to_decide(pilot, cmp.claim, n_looks, max_repetitions)
            needed = max(needed, decisive) if decisive is not None else needed
        if needed is None:
            goal = PILOT_BLOCKS if have < PILOT_BLOCKS else max_repetitions  # no usable spread: to the cap
        else:
            goal = min(max(needed, PILOT_BLOCKS), max_repetitions)
        if have >= goal:
            if needed is None or needed > max_repetitions:
                capped.append(f"{cmp.name} at {max_repetitions} repetitions")
            else:
                narrow += 1
            continue
        for ident in cmp.point_ids():
            if ident not in need:
                need.append(ident)
    tail = ("; " + "; ".join(notes)) if notes else ""
    counts = (f"{len(comps)} comparison{'s' if len(comps) != 1 else ''}: {done} decided, {narrow} with the"
              f" blocks their pilot asked for ±{target_ci_pct:g}%")
    if need:
        return Decision(False, f"{len(need)} point(s) need another block ({counts}; the others' pilot"
                        f" ({PILOT_BLOCKS} valid blocks) is unfinished, or their spread needs more valid blocks"
                        f" for ±{target_ci_pct:g}% (at most {max_repetitions}))" + tail, need)
    if capped:
        return Decision(True, f"stopped at --max-repetitions {max_repetitions} with comparisons neither decided"
                        f" nor narrower than ±{target_ci_pct:g}% ({counts}): " + "; ".join(capped) + tail, [])
    if not comps:
        return Decision(True, "nothing to sample: no comparison of the run has rows" + tail, [])
    return Decision(True, f"every comparison is decided or has the blocks its pilot asked for ({counts})" + tail, [])
