"""The regression gate's rule: one model's candidate against its baseline, measured side by side
in paired blocks, judged as a non-inferiority test against 1 + threshold; and which metrics a
calibration shows can catch that threshold.

Per metric, the slowdown is candidate/baseline of a cost (instructions or CPU per request), or
baseline/candidate of a throughput (req/s), with its 95% interval paired by block (findings.effect
for a sweep's cells, paired_slowdown for instructions measured block by block). The verdict:
- pass: the whole interval lies below 1 + threshold: the candidate is shown to be at most
  threshold slower (non-inferiority established, not merely "no difference seen");
- fail: the whole interval lies above 1 + threshold; or the candidate failed repetitions its
  baseline did not; or a candidate point was error-bound (its cost is error handling, and a
  candidate that errors where it should serve is not a pass);
- undecided: anything else: the interval straddles 1 + threshold, too few blocks, or points the
  metric cannot judge. Undecided is not a pass (the gate fails closed); it comes with the number of
  blocks that would decide it at the observed ratio and spread.
A model is judged on every chosen metric: it fails when one fails, passes when all pass, and is
undecided otherwise.

With a calibration, each metric's interval is widened by the between-trial variance its A/A trials
measured (analysis/sensitivity.py: a component the blocks of one sitting share, which their spread
does not show), and the calibration's widened detection rates say which metrics catch the threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import findings, stats
from .runload import Cell
from ..format import calibration, loadgen

PASS, FAIL, UNDECIDED = "pass", "FAIL", "undecided"
# Where a gate metric is measured (the load of its calibration entry, format/calibration.py's
# "<metric>@<load>"): callgrind over a fixed number of requests; the sweep's saturated point; the
# sweep's fixed-rate load (every row offered one open-loop rate below all their capacities, the
# rows taking turns in one window: run/alternating.py).
CALLGRIND, SATURATED, FIXED_RATE = calibration.CALLGRIND, calibration.SATURATED, calibration.FIXED_RATE


@dataclass(frozen=True)
class GateMetric:
    """One metric the gate can judge. `field`: the point's metric name (findings.effect's);
    `sense`: +1 a higher value is a slower candidate (a cost per request), -1 a lower one is (a
    throughput); `allowed`: the point verdicts at which it measures the server's cost (None: not a
    sweep metric; FIXED_RATE loads ask loadgen.fixed_rate_refusal instead); `load`: where it is
    measured, which is also the load a calibration entry must have been measured at to speak for
    it."""
    field: str
    sense: int
    allowed: tuple | None
    load: str
    label: str


INSTRUCTIONS = "instructions_per_req"
FIXED_CPU = calibration.entry_key("server_cpu_us_per_req", FIXED_RATE)
# Instructions per request come from callgrind over a fixed number of requests (run/costs.py), a
# count that a busy machine does not move; CPU per request at saturation is the server's cost
# whatever bounds a sweep point (error-bound points excepted) but is confounded with how cheaply
# the generator drives each server; req/s only where the server is the bound; CPU per request at a
# fixed rate is the server's own cost, each baseline next to its candidate in 0.5 s turns of one
# window so that both see the same host (+5% caught in 40 of 40 calibration trials on this
# machine, results/calibration/20261205T233019Z-calibrate).
METRICS = {
    INSTRUCTIONS: GateMetric(INSTRUCTIONS, +1, None, CALLGRIND, "instructions/request"),
    "server_cpu_us_per_req": GateMetric("server_cpu_us_per_req", +1,
                                        ("server-bound", "client-bound", "both-saturated", "unclear"),
                                        SATURATED, "server CPU/request"),
    "req_per_s": GateMetric("req_per_s", -1, ("server-bound",), SATURATED, "req/s"),
    FIXED_CPU: GateMetric("server_cpu_us_per_req", +1, (), FIXED_RATE, "server CPU/request at a fixed rate"),
}
SWEEP_METRICS = tuple(m for m, g in METRICS.items() if g.allowed is not None)
# Without a calibration the gate judges on these, in this order: instructions per request, the one
# metric whose A/A spread (callgrind repeats single-threaded models within 0.21%) lets 3 blocks
# tell +10% from none, so that an unchanged candidate passes and a 10% slower one does not.
DEFAULT_METRICS = (INSTRUCTIONS,)
METRIC_NAMES = {m: g.label for m, g in METRICS.items()}
ERROR_BOUND = "error-bound"
# The blocks estimate searches up to this many; beyond it the observed ratio is too close to
# 1 + threshold for any practical run to decide.
MAX_BLOCKS = stats.MAX_REPS_SEARCH


@dataclass
class MetricVerdict:
    metric: str
    gate: str
    reason: str
    ci: stats.RatioCI | None = None
    blocks_needed: int | None = None  # undecided only: blocks per row that would decide it


def slowdown(base: Cell, cand: Cell, metric: str) -> stats.RatioCI | None:
    """The candidate's slowdown on sweep METRIC with its interval: > 1 is slower, whatever the metric's sense."""
    g = METRICS[metric]
    return findings.effect(cand, base, g.field) if g.sense > 0 else findings.effect(base, cand, g.field)


def refusals(base: Cell, cand: Cell, metric: str) -> list[str]:
    """Why points of the two cells may not judge METRIC (empty: every one may): a verdict outside
    the metric's `allowed`, or at a fixed-rate load loadgen.fixed_rate_refusal's reason (overloaded:
    the rate was not fixed)."""
    g = METRICS[metric]
    if g.load == FIXED_RATE:
        out = []
        for c in (base, cand):
            for p in c.ok_points:
                why = loadgen.fixed_rate_refusal(p)
                if why and why not in out:
                    out.append(why)
        return out
    verdicts = {v for c in (base, cand) for v in findings.cell_verdicts(c)}
    return sorted(v for v in verdicts if v not in g.allowed)


def blocks_to_decide(ci: stats.RatioCI | None, limit: float) -> int | None:
    """Blocks per row (more than were measured) at which the 95% interval would lie wholly on one
    side of LIMIT if the ratio and the spread stayed as observed: the smallest n with
    t(0.975, n-1) * sqrt(sd^2 / n + v) < |log(limit) - log(ratio)| (sd of a block's log difference,
    Welch's per-side sd counting twice; v the trial variance the interval was widened by, which
    more blocks do not shrink). None when the spread is unknown; MAX_BLOCKS + 1 when no
    count up to MAX_BLOCKS would."""
    if ci is None or ci.log_sd is None:
        return None
    distance = abs(math.log(limit) - math.log(ci.ratio))
    sd = ci.log_sd * (1.0 if ci.method == "paired-t" else math.sqrt(2.0))
    for n in range(max(2, min(ci.n_num, ci.n_den) + 1), MAX_BLOCKS + 1):
        if stats.t975(n - 1) * math.sqrt(sd * sd / n + ci.trial_log_var) < distance:
            return n
    return MAX_BLOCKS + 1


def blocks_text(n: int | None) -> str:
    if n is None:
        return "the spread is unknown (fewer than 2 blocks): rerun with more --repetitions"
    if n > MAX_BLOCKS:
        return (f"more than {MAX_BLOCKS} blocks would be needed: the observed ratio is too close to"
                " the threshold to decide")
    return f"about {n} blocks (--repetitions {n}) would decide it at the observed ratio and spread"


def paired_slowdown(base: dict, cand: dict) -> stats.RatioCI | None:
    """candidate/baseline of a cost measured outside a sweep ({block: value} per side), paired by block."""
    return stats.paired_log_ratio({b: [v] for b, v in cand.items()}, {b: [v] for b, v in base.items()})


def judge_metric(base: Cell, cand: Cell, metric: str, threshold_pct: float,
                 trial_log_var: float = 0.0) -> MetricVerdict:
    """One sweep metric's verdict for a model whose cells both exist, its interval widened by
    TRIAL_LOG_VAR (trial_variances)."""
    ci = slowdown(base, cand, metric)
    bad = refusals(base, cand, metric)
    if bad:
        where = ("open-loop points that kept the offered rate" if METRICS[metric].load == FIXED_RATE
                 else f"{', '.join(METRICS[metric].allowed)} points")
        return MetricVerdict(metric, UNDECIDED, f"not judged: points were {', '.join(bad)}"
                             f" (it judges only at {where})", stats.widen(ci, trial_log_var))
    return judge_interval(metric, ci, threshold_pct, trial_log_var)


def judge_interval(metric: str, ci: stats.RatioCI | None, threshold_pct: float,
                   trial_log_var: float | None = None) -> MetricVerdict:
    """The non-inferiority verdict of a slowdown interval against 1 + threshold, the interval first
    widened by TRIAL_LOG_VAR (trial_variances; None or 0: as it is)."""
    ci = stats.widen(ci, trial_log_var)
    limit = 1.0 + threshold_pct / 100.0
    if ci is None or not ci.enough_reps:
        n = ci.n_num if ci else 0
        return MetricVerdict(metric, UNDECIDED, f"{n} block(s) measured: no interval; rerun with"
                             f" --repetitions {stats.MIN_REPS_FOR_CI} or more", ci)
    iv = findings.fmt_ci(ci)
    if ci.hi < limit:
        return MetricVerdict(metric, PASS, f"{iv} lies below {limit:g}", ci)
    if ci.lo > limit:
        return MetricVerdict(metric, FAIL, f"{iv} lies above {limit:g}", ci)
    n = blocks_to_decide(ci, limit)
    return MetricVerdict(metric, UNDECIDED, f"{iv} includes {limit:g}; {blocks_text(n)}", ci, n)


def judge_model(pairs: dict, metrics: tuple[str, ...], threshold_pct: float,
                outside: tuple = (), trial_log_var: dict | None = None) -> tuple[str, str, list]:
    """(gate, reason, [MetricVerdict]) of one model: failures and error-bound candidate points
    first, then every sweep metric in METRICS, then the verdicts OUTSIDE the sweep (instructions).
    PAIRS: {load (SATURATED, FIXED_RATE): (baseline cell, candidate cell)} for each sweep load
    measured, empty when no sweep metric was asked for. TRIAL_LOG_VAR: {metric: variance} the
    intervals are widened by (trial_variances)."""
    if not pairs:
        return combine(list(outside))
    for base, cand in pairs.values():
        nb, nc = len(base.ok_points), len(cand.ok_points)
        tb, tc = len(base.points), len(cand.points)
        if nc < tc and nb == tb:
            return FAIL, f"the candidate failed {tc - nc} of {tc} repetitions, the baseline none", []
        errs = findings.cell_verdicts(cand).count(ERROR_BOUND)
        if errs:
            base_errs = findings.cell_verdicts(base).count(ERROR_BOUND)
            return FAIL, (f"{errs} of {nc} candidate points were error-bound (the baseline's: {base_errs}"
                          f" of {nb})"), []
    per = [judge_metric(*pairs[METRICS[m].load], m, threshold_pct, (trial_log_var or {}).get(m, 0.0))
           for m in metrics if m in SWEEP_METRICS]
    return combine(per + list(outside))


def combine(per: list) -> tuple[str, str, list]:
    """A model's gate from its metrics' verdicts: FAIL if one fails, pass if all pass (and there is
    one), undecided otherwise; the reason quotes the verdicts that decided it."""
    if not per:
        return UNDECIDED, "no metric was measured", per
    gates = [v.gate for v in per]
    gate = FAIL if FAIL in gates else PASS if all(g == PASS for g in gates) else UNDECIDED
    reason = "; ".join(f"{METRIC_NAMES[v.metric]}: {v.reason}" for v in per if v.gate == gate)
    return gate, reason, per


def blocks_needed(per: list) -> int | None:
    """The blocks an undecided model needs: the most any of its undecided metrics needs (None when
    one's spread is unknown)."""
    ns = [v.blocks_needed for v in per if v.gate == UNDECIDED]
    return None if not ns or None in ns else max(ns)


def entry_of(metric: str) -> str:
    """The calibration entry ("<metric>@<load>") that speaks for a gate metric's measurement."""
    g = METRICS[metric]
    return calibration.entry_key(g.field, g.load)


def trial_variances(cal: dict | None) -> dict[str, float]:
    """{metric: between-trial variance of the mean log difference} from a calibration's entries at
    the gate's loads (METRICS) that measured one above 0: what the gate widens each interval by."""
    out = {}
    ents = calibration.entries(cal) if cal else {}
    for metric, g in METRICS.items():
        v = calibration.trial_log_var(ents.get(entry_of(metric)))
        if v is not None:
            out[metric] = v
    return out


def calibrated_metrics(cal: dict, threshold_pct: float) -> tuple[list[str], str]:
    """(metrics the calibration shows catch a regression of THRESHOLD_PCT, a sentence saying so):
    a gate metric whose entry at the gate's load (METRICS) detected some effect <= the threshold in
    at least 80% of its trials (calibration.ESTABLISHED_RATE), instructions first. The rates are
    the widened ones (sensitivity.widened) where the entry has them: the gate judges that way."""
    found, said = [], []
    ents = calibration.entries(cal)
    for metric, g in METRICS.items():
        e = ents.get(entry_of(metric))
        if e is None:
            continue
        det = (e.get("widened") or {}).get("detection") or e["detection"]
        hits = [float(p) for p, v in det.items()
                if float(p) <= threshold_pct and v["n"] and v["k"] / v["n"] >= calibration.ESTABLISHED_RATE]
        rate_txt = ", ".join(f"+{p}%: {v['k']}/{v['n']}" for p, v in det.items()) or "no effect tried"
        said.append(f"{METRIC_NAMES[metric]} at {g.load} ({rate_txt})")
        if hits:
            found.append(metric)
    mine = {entry_of(m) for m in METRICS}
    others = sorted(k for k in ents if k not in mine)
    tail = f"; not measured by the gate: {', '.join(others)}" if others else ""
    if found:
        return found, (f"the calibration detected +{threshold_pct:g}% or less in >= "
                       f"{calibration.ESTABLISHED_RATE:.0%} of its trials on {', '.join(METRIC_NAMES[m] for m in found)}"
                       f" ({'; '.join(said)}){tail}")
    return [], (f"the calibration shows no metric the gate measures catching +{threshold_pct:g}% in >= "
                f"{calibration.ESTABLISHED_RATE:.0%} of its trials ({'; '.join(said) or 'no entry'}){tail}")
