"""Small statistics for repetitions: medians, spread, a bootstrap CI of a ratio of medians.

Pure functions on lists of floats; deterministic (the bootstrap is seeded from its inputs'
name, so the same comparison always prints the same interval).
"""
from __future__ import annotations

import math
import random
import statistics
import zlib
from dataclasses import dataclass

# Fewer repetitions than this on either side and a ratio is reported as "too few reps":
# one value has no spread at all.
MIN_REPS_FOR_CI = 2
# From this many repetitions on both sides the interval is a bootstrap of the medians; below it
# (2 repetitions: a bootstrap of the median of 2 values can only resample 3 distinct medians)
# it is a Welch t interval on log req/s, where the median of 2 is their mean.
MIN_REPS_FOR_BOOTSTRAP = 3
# Resamples per interval: enough for stable 2.5/97.5 percentiles at 2 decimals, fast enough
# for a few hundred comparisons within the test budget.
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


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


# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (standard tables).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042]


def t975(df: float) -> float:
    """t quantile for a 95% two-sided interval; fractional df rounds down (wider, conservative)."""
    d = max(1, int(math.floor(df)))
    if d <= 30:
        return _T975[d - 1]
    return 2.000 if d <= 60 else (1.980 if d <= 120 else 1.960)


@dataclass(frozen=True)
class RatioCI:
    """Ratio of medians num/den with a 95% interval; lo/hi are None when reps are too few."""
    ratio: float
    lo: float | None
    hi: float | None
    n_num: int
    n_den: int
    method: str = "bootstrap"  # or "welch-t" (2 repetitions), or "none"

    @property
    def enough_reps(self) -> bool:
        return self.lo is not None

    @property
    def significant(self) -> bool:
        """True when the interval excludes 1 (both sides had enough repetitions)."""
        return self.lo is not None and (self.lo > 1.0 or self.hi < 1.0)

    def direction(self) -> int:
        """+1 if significantly above 1, -1 if significantly below, 0 if not significant."""
        if not self.significant:
            return 0
        return 1 if self.lo > 1.0 else -1

    def above(self, threshold: float) -> bool:
        return self.lo is not None and self.lo > threshold

    def below(self, threshold: float) -> bool:
        return self.hi is not None and self.hi < threshold


def ratio_ci(num: list[float], den: list[float], seed_name: str = "",
             resamples: int = BOOTSTRAP_RESAMPLES) -> RatioCI | None:
    """median(num)/median(den) with a percentile-bootstrap 95% interval.

    Returns None when either side is empty or the denominator median is 0. The random
    generator is seeded from seed_name so output is reproducible.
    """
    if not num or not den:
        return None
    m_den = median(den)
    if m_den == 0:
        return None
    ratio = median(num) / m_den
    if len(num) < MIN_REPS_FOR_CI or len(den) < MIN_REPS_FOR_CI:
        return RatioCI(ratio, None, None, len(num), len(den), "none")
    if len(num) < MIN_REPS_FOR_BOOTSTRAP or len(den) < MIN_REPS_FOR_BOOTSTRAP:
        return _welch_log_ratio(num, den, ratio)
    rng = random.Random(zlib.crc32(seed_name.encode("utf-8")))
    samples = []
    for _ in range(resamples):
        a = statistics.median(rng.choices(num, k=len(num)))
        b = statistics.median(rng.choices(den, k=len(den)))
        if b > 0:
            samples.append(a / b)
    if not samples:
        return RatioCI(ratio, None, None, len(num), len(den), "none")
    samples.sort()
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo = samples[int(math.floor(alpha * (len(samples) - 1)))]
    hi = samples[int(math.ceil((1.0 - alpha) * (len(samples) - 1)))]
    return RatioCI(ratio, lo, hi, len(num), len(den))


def _welch_log_ratio(num: list[float], den: list[float], ratio: float) -> RatioCI:
    """Welch t interval of mean(log num) - mean(log den), exponentiated around the median ratio.

    Used with 2 repetitions, where the median is the mean; values must be positive.
    """
    if min(num) <= 0 or min(den) <= 0:
        return RatioCI(ratio, None, None, len(num), len(den), "none")
    la, lb = [math.log(x) for x in num], [math.log(x) for x in den]
    va, vb = statistics.variance(la) / len(la), statistics.variance(lb) / len(lb)
    se = math.sqrt(va + vb)
    denom = (va * va / (len(la) - 1) if va else 0.0) + (vb * vb / (len(lb) - 1) if vb else 0.0)
    df = (va + vb) ** 2 / denom if denom > 0 else float(len(la) + len(lb) - 2)
    half = t975(df) * se
    return RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), len(num), len(den), "welch-t")


def interval_method_text() -> str:
    return (f"95% interval (a bootstrap of the medians, {BOOTSTRAP_RESAMPLES} seeded resamples, when both"
            f" sides have {MIN_REPS_FOR_BOOTSTRAP} or more repetitions; a Welch t interval on log req/s when"
            f" one has {MIN_REPS_FOR_CI})")


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
