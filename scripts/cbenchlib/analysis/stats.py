"""Statistics for repetitions: medians, spread, and the effect of one row against another as a
ratio estimated on the log scale with a 95% interval, over scipy.stats (no hand-typed tables).

Effects are ratios num/den of a per-repetition figure (req/s, CPU per request, ...):
- paired (block-matched): when both sides carry the same block numbers (the sweep runs the
  compared rows of one load point in adjacent slots of one block), the interval is a t
  interval of the mean per-block log difference; pairing removes what drifts between blocks;
- Welch: otherwise (old runs have no blocks), a Welch t interval of mean(log num) - mean(log den).
Equivalence is two one-sided tests (TOST) against a margin; several load points of one finding
are corrected with Holm's step-down method; rates from trials get Clopper-Pearson intervals.
All pure functions, deterministic.
"""
from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

# Fewer repetitions than this on either side and a ratio has no interval: one value has no spread.
MIN_REPS_FOR_CI = 2
CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
def median(values: list[float]) -> float:
    return float(statistics.median(values))


def cv_percent(values: list[float]) -> float | None:
    """Coefficient of variation (sample stdev / mean) in percent; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean == 0:
        return None
    return 100.0 * statistics.stdev(values) / mean


def geometric_mean(ratios: list[float]) -> float | None:
    good = [r for r in ratios if r > 0 and math.isfinite(r)]
    if not good:
        return None
    return math.exp(sum(math.log(r) for r in good) / len(good))


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """Student's t quantile at probability p with (possibly fractional) df, from scipy (cached:
    the same few quantiles are asked for thousands of times by the sequential rule)."""
    return float(sps.t.ppf(p, df))


@functools.lru_cache(maxsize=64)
def _t_quantiles(p: float, df: tuple) -> np.ndarray:
    return sps.t.ppf(p, np.array(df))


def t975(df: float) -> float:
    """t quantile for a 95% two-sided interval (scipy; fractional df kept as it is)."""
    return t_quantile(0.975, max(df, 1e-9))


@dataclass(frozen=True)
class RatioCI:
    """Effect num/den on the log scale: ratio = exp(mean log difference), a two-sided interval at
    `confidence`; lo/hi are None when repetitions are too few. `log_se`, `df` and `log_sd` (the
    spread of one repetition on the log scale: per side for Welch, of a block difference for
    paired) let callers test against other nulls and size further sampling. `trial_log_var` is the
    between-sitting variance `widen` added to log_se**2 (0: the interval is the blocks' own)."""
    ratio: float
    lo: float | None
    hi: float | None
    n_num: int
    n_den: int
    method: str = "welch-t"  # "welch-t", "paired-t" or "none"
    log_se: float | None = None
    df: float | None = None
    log_sd: float | None = None
    confidence: float = CONFIDENCE
    trial_log_var: float = 0.0

    @property
    def enough_reps(self) -> bool:
        return self.lo is not None

    @property
    def significant(self) -> bool:
        """True when the interval excludes 1."""
        return self.lo is not None and (self.lo > 1.0 or self.hi < 1.0)

    def direction(self) -> int:
        """+1 if significantly above 1, -1 if significantly below, 0 otherwise."""
        if not self.significant:
            return 0
        return 1 if self.lo > 1.0 else -1

    def above(self, threshold: float) -> bool:
        return self.lo is not None and self.lo > threshold

    def below(self, threshold: float) -> bool:
        return self.hi is not None and self.hi < threshold

    @property
    def half_width_pct(self) -> float | None:
        """Half the interval's width relative to the ratio, in percent: (sqrt(hi/lo) - 1) * 100
        (the interval is symmetric on the log scale, so this is exp(t * se) - 1)."""
        if self.lo is None or self.lo <= 0:
            return None
        return (math.sqrt(self.hi / self.lo) - 1.0) * 100.0

    def p_value(self, null_ratio: float = 1.0, alternative: str = "two-sided") -> float | None:
        """p of the t test of log ratio against log(null_ratio): "two-sided", "greater" or "less"."""
        if self.log_se is None or self.df is None:
            return None
        if self.log_se == 0:
            d = math.log(self.ratio) - math.log(null_ratio)
            one = 0.0 if d > 0 else (1.0 if d < 0 else 0.5)
            if alternative == "greater":
                return one
            if alternative == "less":
                return 1.0 - one if d != 0 else 0.5
            return 0.0 if d != 0 else 1.0
        tstat = (math.log(self.ratio) - math.log(null_ratio)) / self.log_se
        if alternative == "greater":
            return float(sps.t.sf(tstat, self.df))
        if alternative == "less":
            return float(sps.t.cdf(tstat, self.df))
        return float(2.0 * sps.t.sf(abs(tstat), self.df))

    def at_confidence(self, confidence: float) -> "RatioCI":
        """The same estimate with an interval at another confidence level."""
        if self.log_se is None or self.df is None:
            return self
        half = t_quantile(0.5 + confidence / 2.0, self.df) * self.log_se
        return RatioCI(self.ratio, self.ratio * math.exp(-half), self.ratio * math.exp(half), self.n_num,
                       self.n_den, self.method, self.log_se, self.df, self.log_sd, confidence, self.trial_log_var)


def widen(ci: RatioCI | None, trial_log_var: float | None) -> RatioCI | None:
    """A paired interval widened by a component its blocks share and the next sitting does not
    (a calibration's between-trial variance of the mean log difference): log_se**2 grows by
    TRIAL_LOG_VAR, the df stay the blocks' (n - 1). Anything else, or a variance of 0 or None, is
    returned as it is."""
    if ci is None or ci.method != "paired-t" or ci.log_se is None or ci.df is None or not trial_log_var \
            or trial_log_var <= 0:
        return ci
    return replace(ci, log_se=math.sqrt(ci.log_se ** 2 + trial_log_var),
                   trial_log_var=ci.trial_log_var + trial_log_var).at_confidence(ci.confidence)


def _logs(values: list[float]) -> list[float] | None:
    if not values or min(values) <= 0:
        return None
    return [math.log(x) for x in values]


def welch_log_ratio(num: list[float], den: list[float], confidence: float = CONFIDENCE) -> RatioCI | None:
    """Welch t interval of mean(log num) - mean(log den), exponentiated; None when a side is empty
    or has a value <= 0; no interval (method "none") below MIN_REPS_FOR_CI on a side."""
    la, lb = _logs(num), _logs(den)
    if la is None or lb is None:
        return None
    ratio = math.exp(statistics.fmean(la) - statistics.fmean(lb))
    if len(la) < MIN_REPS_FOR_CI or len(lb) < MIN_REPS_FOR_CI:
        return RatioCI(ratio, None, None, len(la), len(lb), "none")
    sa2, sb2 = statistics.variance(la), statistics.variance(lb)
    va, vb = sa2 / len(la), sb2 / len(lb)
    se = math.sqrt(va + vb)
    denom = (va * va / (len(la) - 1)) + (vb * vb / (len(lb) - 1))
    df = (va + vb) ** 2 / denom if denom > 0 else float(len(la) + len(lb) - 2)
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    pooled_sd = math.sqrt((sa2 + sb2) / 2.0)
    return RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), len(la), len(lb), "welch-t",
                   se, df, pooled_sd, confidence)


def paired_log_ratio(num: dict, den: dict, confidence: float = CONFIDENCE) -> RatioCI | None:
    """t interval of the mean per-block log difference log num[b] - log den[b] over the blocks both
    sides have ({block: value}; a block's several values are reduced to their mean log first).
    None with fewer than 2 common blocks or a value <= 0 (callers then fall back to Welch)."""
    common = sorted(set(num) & set(den))
    if len(common) < MIN_REPS_FOR_CI:
        return None
    diffs = []
    for b in common:
        la, lb = _logs(list(num[b])), _logs(list(den[b]))
        if la is None or lb is None:
            return None
        diffs.append(statistics.fmean(la) - statistics.fmean(lb))
    n = len(diffs)
    d = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    se = sd / math.sqrt(n)
    df = float(n - 1)
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    ratio = math.exp(d)
    return RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), n, n, "paired-t", se, df, sd,
                   confidence)


def ratio_ci(num: list[float], den: list[float], seed_name: str = "",
             blocks_num: list | None = None, blocks_den: list | None = None,
             confidence: float = CONFIDENCE) -> RatioCI | None:
    """The effect num/den with its interval: paired by block when both block lists are given, every
    value has a block and at least 2 blocks are common; Welch otherwise. seed_name is accepted for
    old callers (nothing is random any more)."""
    if blocks_num is not None and blocks_den is not None and len(blocks_num) == len(num) \
            and len(blocks_den) == len(den) and None not in blocks_num and None not in blocks_den:
        by_a: dict = {}
        by_b: dict = {}
        for b, v in zip(blocks_num, num):
            by_a.setdefault(b, []).append(v)
        for b, v in zip(blocks_den, den):
            by_b.setdefault(b, []).append(v)
        paired = paired_log_ratio(by_a, by_b, confidence)
        if paired is not None:
            return paired
    return welch_log_ratio(num, den, confidence)


def tost_equivalent(ci: RatioCI | None, margin: float, alpha: float = ALPHA) -> tuple[bool, float | None]:
    """Two one-sided tests of 1/margin < ratio < margin (margin > 1, e.g. 1.05): (both pass at
    alpha, the larger of the two one-sided p values). Equivalent to the (1 - 2 alpha) interval
    lying inside (1/margin, margin)."""
    if ci is None or ci.log_se is None or margin <= 1.0:
        return False, None
    p_lo = ci.p_value(1.0 / margin, "greater")
    p_hi = ci.p_value(margin, "less")
    p = max(p_lo, p_hi)
    return p < alpha, p


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm step-down adjusted p values (family-wise error over the given tests), same order;
    None entries are skipped and stay None."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: p_values[i])
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        adj = min(1.0, (m - rank) * p_values[i])
        running = max(running, adj)
        out[i] = running
    return out


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial proportion k/n, from scipy.stats.beta."""
    if n <= 0:
        return 0.0, 1.0
    a = (1.0 - confidence) / 2.0
    lo = 0.0 if k == 0 else float(sps.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


# Cap on "repetitions needed": beyond this a design change, not more sampling, is the answer.
MAX_REPS_SEARCH = 1000


def _sizes(ci: RatioCI, start: int):
    """Candidate repetition counts n (start..MAX_REPS_SEARCH) with the standard error and df the
    interval would have at n if the spread stayed as observed (paired: blocks; Welch: per row)."""
    n = np.arange(max(2, start), MAX_REPS_SEARCH + 1, dtype=float)
    if ci.method == "paired-t":
        return n, ci.log_sd / np.sqrt(n), n - 1.0
    return n, ci.log_sd * np.sqrt(2.0 / n), 2.0 * n - 2.0


def reps_to_decide(ci: RatioCI | None, margin: float | None = None,
                   confidence: float = CONFIDENCE) -> int | None:
    """Repetitions per row (blocks, when paired), more than were measured, that would decide the
    comparison if the effect and the spread stayed as observed: the interval excludes 1 (or, with
    a margin, both one-sided tests pass, whichever needs fewer); None when the spread is unknown;
    MAX_REPS_SEARCH + 1 when no count up to MAX_REPS_SEARCH would."""
    if ci is None or ci.log_sd is None:
        return None
    d = abs(math.log(ci.ratio))
    # Start above what was measured: the measured count did not decide it (Welch's df at the
    # measured count can be lower than the pooled df assumed here).
    n, se, df = _sizes(ci, min(ci.n_num, ci.n_den) + 1)
    if ci.log_sd == 0:
        return int(n[0])
    ok = d > _t_quantiles(0.5 + confidence / 2.0, tuple(df)) * se
    if margin is not None and margin > 1.0:
        ok |= d + _t_quantiles(confidence, tuple(df)) * se < math.log(margin)
    hits = np.nonzero(ok)[0]
    return int(n[hits[0]]) if hits.size else MAX_REPS_SEARCH + 1


def reps_for_half_width(ci: RatioCI | None, target_pct: float, confidence: float = CONFIDENCE) -> int | None:
    """Repetitions per row (blocks when paired) for the interval's half-width to be at most
    target_pct percent at the observed spread; None when unknown."""
    if ci is None or ci.log_sd is None or target_pct <= 0:
        return None
    n, se, df = _sizes(ci, min(ci.n_num, ci.n_den))
    ok = _t_quantiles(0.5 + confidence / 2.0, tuple(df)) * se <= math.log(1.0 + target_pct / 100.0)
    hits = np.nonzero(ok)[0]
    return int(n[hits[0]]) if hits.size else MAX_REPS_SEARCH + 1


def relative_differences(values: list[float]) -> list[float]:
    """|a - b| / mean(a, b) over every pair of repetitions (the run-to-run spread of one point)."""
    out = []
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            m = (values[i] + values[j]) / 2.0
            if m > 0:
                out.append(abs(values[i] - values[j]) / m)
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated q-quantile (0..1) of values; None when empty."""
    if not values:
        return None
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def interval_method_text() -> str:
    return ("95% interval of the ratio on the log scale (a paired t interval over blocks when the run"
            " recorded blocks, else a Welch t interval; quantiles from scipy.stats.t)")


def speed_words(ratio: float) -> str:
    """"1.42x faster" for ratio 1.42, "1.10x slower" for ratio 1/1.10, "same speed" at 1.00."""
    if ratio <= 0 or not math.isfinite(ratio):
        return "n/a"
    if round(ratio, 2) == 1.0 and round(1 / ratio, 2) == 1.0:
        return "same speed"
    if ratio >= 1.0:
        return f"{ratio:.2f}x faster"
    return f"{1.0 / ratio:.2f}x slower"


def fmt_bound(x: float) -> str:
    """An interval bound with two decimals, or three when two would print a bound that
    excludes 1 (or includes it) as "1.00" and so hide which side of 1 it is on."""
    text = f"{x:.2f}"
    return f"{x:.3f}" if text == "1.00" and x != 1.0 else text
