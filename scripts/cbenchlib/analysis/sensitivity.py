"""What a calibration's trials say about a metric's sensitivity: rates with exact intervals, and
the smallest effect a design detects with 80% power.

A trial measures A, A again (A/A) and A with injected effects (A/B), each in the same paired
blocks as the regression gate, and judges each pair by its 95% paired interval of B/A:
- A/A false positive: the interval excludes 1 (either side);
- A/B detection: the interval lies wholly above 1 (the injected effect is a slowdown).
Rates are k of n trials with a Clopper-Pearson 95% interval (scipy.stats.binomtest).

The smallest effect detected with 80% power is stated twice:
- observed: the smallest injected effect detected in at least 80% of its trials;
- planned: from the spread of the A/A trials' block differences (their pooled sd of a block's
  log difference), the effect at which the one-sided t test that "interval wholly above 1" is
  (level 2.5%, n - 1 degrees of freedom) has 80% power, from the noncentral t distribution
  (scipy.stats.nct). It assumes normal block differences with that sd; the observed rates check it.

The paired interval assumes a trial's blocks are independent. The A/A trials test that: if they
are, the variance of the trials' mean log differences is the pooled block variance / blocks; a
component shared by a trial's blocks (the host drifting over the time a trial takes) makes it
larger, and the interval too narrow by the square root of the ratio. `between_trial` states the
ratio with its F test (scipy.stats.f: trials - 1 and trials x (blocks - 1) degrees of freedom),
and the shared component itself: the between-trial variance of the mean log difference, estimated
by the method of moments (the trial means' variance less the blocks' prediction, at least 0: the
estimator of DerSimonian and Laird's tau squared).

An interval that is to hold beyond its own sitting must carry that component (stats.widen). The
rates it would give are stated cross-validated (`widened`): each trial is judged with its intervals
widened by the component estimated from the other trials (leave one out), so that no trial's
verdict uses its own spread twice. The regression gate widens its intervals by a calibration's
component the same way.
"""
from __future__ import annotations

import math
import statistics

import numpy as np
import scipy.stats as sps
from scipy.optimize import brentq

from . import stats

POWER = 0.8            # the conventional power an effect "is detected with"
CONFIDENCE = stats.CONFIDENCE
# A noncentrality beyond which the power is 1 within 1e-14 at any df >= 1 (the t
# quantile at 2.5% and 1 df is 12.7; at 1 df and noncentrality 100 the power is 1 - 4e-15); scipy
# returns nan from about 5,000 on.
NC_CERTAIN = 1e3


def rate(k: int, n: int) -> dict:
    """{"k", "n", "ci": [lo, hi]}: k of n with its exact (Clopper-Pearson) 95% interval."""
    if n <= 0:
        return {"k": 0, "n": 0, "ci": [0.0, 1.0]}
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return {"k": k, "n": n, "ci": [float(ci.low), float(ci.high)]}


def false_positive(ci: stats.RatioCI | None) -> bool:
    """An A/A trial's verdict: its interval excludes 1 on either side."""
    return ci is not None and ci.enough_reps and ci.significant


def detected(ci: stats.RatioCI | None) -> bool:
    """An A/B trial's verdict: its interval lies wholly above 1 (B is shown slower)."""
    return ci is not None and ci.enough_reps and ci.lo > 1.0


def power(effect_pct: float, log_sd: float, blocks: int) -> float:
    """Probability that a paired 95% interval over BLOCKS blocks lies wholly above 1 when B/A is
    1 + effect_pct/100 and a block's log difference has sd LOG_SD (noncentral t)."""
    if blocks < 2:
        return 0.0
    df = blocks - 1
    crit = stats.t_quantile(0.5 + CONFIDENCE / 2.0, df)
    if log_sd <= 0:
        return 1.0 if effect_pct > 0 else 0.0
    nc = math.log1p(effect_pct / 100.0) * math.sqrt(blocks) / log_sd
    if nc > NC_CERTAIN:  # scipy's nct returns nan this far out; the power is 1 to double precision
        return 1.0
    with np.errstate(invalid="ignore", divide="ignore"):  # scipy 1.10's boost nct warns at every nc; its values are right (a non-finite one raises below)
        p = float(sps.nct.sf(crit, df, nc))
    if not math.isfinite(p):
        raise ValueError(f"noncentral t power undefined at nc {nc:g}, df {df}")
    return p


def min_detectable_pct(log_sd: float | None, blocks: int, target: float = POWER) -> float | None:
    """The effect (%) detected with power TARGET at LOG_SD and BLOCKS; None when the spread is
    unknown or fewer than 2 blocks; 0.0 when the spread is 0."""
    if log_sd is None or blocks < 2:
        return None
    if log_sd <= 0:
        return 0.0
    hi = 1.0
    while power(hi, log_sd, blocks) < target:
        hi *= 2.0
        if hi > 1e6:
            return None
    return float(brentq(lambda e: power(e, log_sd, blocks) - target, 0.0, hi, xtol=1e-6))


def blocks_for_power(log_sd: float | None, effect_pct: float, target: float = POWER) -> int | None:
    """The fewest blocks per trial (at least 2) whose paired interval detects EFFECT_PCT with
    power TARGET at LOG_SD: what a design would need to reach the target at this spread. None when
    the spread is unknown, the effect is not positive, or more than stats.MAX_REPS_SEARCH would be
    (the search cap every repetition count of the project shares)."""
    if log_sd is None or effect_pct <= 0:
        return None
    if power(effect_pct, log_sd, 2) >= target:
        return 2
    lo, hi = 2, 4  # power(lo) < target; power rises with blocks
    while power(effect_pct, log_sd, hi) < target:
        lo, hi = hi, hi * 2
        if lo >= stats.MAX_REPS_SEARCH:
            return None
        hi = min(hi, stats.MAX_REPS_SEARCH)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power(effect_pct, log_sd, mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def pooled_log_sd(cis: list[stats.RatioCI | None]) -> float | None:
    """The pooled sd of a block's log difference over paired intervals (root mean of variances)."""
    sds = [c.log_sd for c in cis if c is not None and c.log_sd is not None and c.method == "paired-t"]
    return math.sqrt(statistics.fmean(s * s for s in sds)) if sds else None


def between_trial(aa: list[stats.RatioCI | None], blocks: int) -> dict | None:
    """{"variance_ratio", "p", "df": [d1, d2], "interval_scale", "trial_lag1_corr", "trial_log_var"} of the A/A
    trials (in the order they ran): the variance of their mean log differences over what their
    blocks' pooled spread predicts (blocks independent), the one-sided F test's p (a ratio above 1
    by chance), the factor by which a trial's paired interval is too narrow (sqrt of the ratio, at
    least 1), and the lag-1 autocorrelation of consecutive trials' means (slow drift of the host
    makes it positive). None with fewer than 3 paired trials or no spread."""
    got = _trial_means(aa, blocks)
    if got is None:
        return None
    means, sd = got
    ratio = statistics.variance(means) / (sd * sd / blocks)
    d1, d2 = len(means) - 1, len(means) * (blocks - 1)
    mu = statistics.fmean(means)
    dev = [m - mu for m in means]
    lag1 = sum(a * b for a, b in zip(dev, dev[1:])) / sum(d * d for d in dev) if any(dev) else 0.0
    return {"variance_ratio": round(ratio, 4), "p": float(sps.f.sf(ratio, d1, d2)), "df": [d1, d2],
            "interval_scale": round(math.sqrt(max(1.0, ratio)), 4), "trial_lag1_corr": round(lag1, 4),
            "trial_log_var": _excess_var(means, sd, blocks)}


def _trial_means(aa: list[stats.RatioCI | None], blocks: int) -> tuple[list[float], float] | None:
    """(mean log difference of each paired A/A trial, their pooled block sd); None with fewer than
    3 paired trials, fewer than 2 blocks or no spread."""
    cis = [c for c in aa if c is not None and c.method == "paired-t" and c.log_sd is not None and c.ratio > 0]
    sd = pooled_log_sd(cis)
    if len(cis) < 3 or blocks < 2 or not sd:
        return None
    return [math.log(c.ratio) for c in cis], sd


def _excess_var(means: list[float], sd: float, blocks: int) -> float:
    """The trial means' variance beyond the blocks' prediction sd^2 / blocks, at least 0."""
    return max(0.0, statistics.variance(means) - sd * sd / blocks)


def trial_log_var(aa: list[stats.RatioCI | None], blocks: int) -> float | None:
    """The between-trial variance of the A/A trials' mean log difference beyond what their blocks'
    pooled spread predicts (method of moments, at least 0); None as between_trial's conditions."""
    got = _trial_means(aa, blocks)
    return None if got is None else _excess_var(*got, blocks)


def widened(aa: list[stats.RatioCI | None], ab: dict[int, list[stats.RatioCI | None]], blocks: int) -> dict | None:
    """{"aa_false_positive", "detection", "smallest_detected_pct"} with trial t's intervals (AA[t]
    and every AB[effect][t]: the lists are in trial order) widened by the between-trial variance of
    the other trials' A/A (leave one out); None when fewer than 4 trials can estimate it."""
    if sum(1 for c in aa if c is not None and c.method == "paired-t") < 4:
        return None
    fp, hits = 0, {pct: 0 for pct in ab}
    for t, ci in enumerate(aa):
        var = trial_log_var(aa[:t] + aa[t + 1:], blocks) or 0.0
        fp += false_positive(stats.widen(ci, var))
        for pct, cis in ab.items():
            hits[pct] += t < len(cis) and detected(stats.widen(cis[t], var))
    det = {str(pct): rate(hits[pct], len(cis)) for pct, cis in sorted(ab.items())}
    found = [pct for pct, cis in sorted(ab.items()) if cis and hits[pct] / len(cis) >= POWER]
    return {"aa_false_positive": rate(fp, len(aa)), "detection": det,
            "smallest_detected_pct": min(found) if found else None}


def summarize(aa: list[stats.RatioCI | None], ab: dict[int, list[stats.RatioCI | None]], blocks: int) -> dict:
    """One metric's calibration record (format/calibration.py's per-metric entry) from its trials:
    AA the A/A intervals, AB {effect %: A/B intervals}, BLOCKS the blocks per trial."""
    out = {"trials": len(aa), "blocks": blocks,
           "aa_false_positive": rate(sum(map(false_positive, aa)), len(aa)),
           "detection": {str(pct): rate(sum(map(detected, cis)), len(cis)) for pct, cis in sorted(ab.items())}}
    hit = [pct for pct, cis in sorted(ab.items()) if cis and sum(map(detected, cis)) / len(cis) >= POWER]
    out["smallest_detected_pct"] = min(hit) if hit else None
    sd = pooled_log_sd(aa)
    out["block_log_sd"] = sd
    mde = min_detectable_pct(sd, blocks)
    out["planned_80pct_power_pct"] = None if mde is None else round(mde, 4)
    out["aa_between_trial"] = between_trial(aa, blocks)
    out["widened"] = widened(aa, ab, blocks)
    return out
