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
# a bootstrap of the median of 2 values can only ever resample 3 distinct medians.
MIN_REPS_FOR_CI = 3
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


@dataclass(frozen=True)
class RatioCI:
    """Ratio of medians num/den with a bootstrap interval; lo/hi are None when reps are too few."""
    ratio: float
    lo: float | None
    hi: float | None
    n_num: int
    n_den: int

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
        return RatioCI(ratio, None, None, len(num), len(den))
    rng = random.Random(zlib.crc32(seed_name.encode("utf-8")))
    samples = []
    for _ in range(resamples):
        a = statistics.median(rng.choices(num, k=len(num)))
        b = statistics.median(rng.choices(den, k=len(den)))
        if b > 0:
            samples.append(a / b)
    if not samples:
        return RatioCI(ratio, None, None, len(num), len(den))
    samples.sort()
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo = samples[int(math.floor(alpha * (len(samples) - 1)))]
    hi = samples[int(math.ceil((1.0 - alpha) * (len(samples) - 1)))]
    return RatioCI(ratio, lo, hi, len(num), len(den))


def speed_words(ratio: float) -> str:
    """"1.42x faster" for ratio 1.42, "1.10x slower" for ratio 1/1.10, "same speed" at 1.00."""
    if ratio <= 0 or not math.isfinite(ratio):
        return "n/a"
    if round(ratio, 2) == 1.0 and round(1 / ratio, 2) == 1.0:
        return "same speed"
    if ratio >= 1.0:
        return f"{ratio:.2f}x faster"
    return f"{1.0 / ratio:.2f}x slower"
