"""The soak's judgement of one model: does its RSS, thread count or descriptor count grow under
sustained churn, and are its descriptors back to the baseline once the load stops?

Growth: a least-squares line (scipy.stats.linregress) through the samples of the load phase
after the warm-up, with a 95% interval on its slope (t quantile on its n-2 degrees of freedom).
Samples a second apart are not independent (RSS moves in allocator steps and stays there; the
connections open at one sample are mostly open at the next), and a line through dependent samples
has an interval that is too narrow: a flat series with one step reads as a significant slope.
So a window of at least BATCHES x MIN_BATCH_SAMPLES samples (the reference soak's minutes) is cut
into BATCHES contiguous batches and the line goes through the batches' means (time, value), with
BATCHES-2 degrees of freedom (batch means: a batch much longer than the series' memory makes its
mean nearly independent of the next one's); a shorter window (the short soak's seconds) keeps the
per-sample line, and its bound (below) is what decides there.
A metric does not grow when its interval includes zero, lies below zero, or lies within the
metric's declared practical bound (BOUNDS); it grows when its whole interval lies above the bound
(the growth is real and larger than any allowance); between the two (a real slope whose interval
straddles the bound) it is undecided: reported with the reason, not failed, since the window
cannot tell a slope at the bound from one above it and only a longer soak can (a gate that failed
there would fail bounded models by chance: descriptors move by a few with the connections open at
each sample, and a 6 s window of such samples gives intervals several times the bound wide). On a
short soak (the 12 s per model of `make
test`) the intervals are narrow enough that allocator noise can make a tiny slope significant,
and there the bound is what decides: a slope that is real but below the bound is no leak worth
failing a build for. The bound over a window is max(rate, step / window) (Bound): a few seconds
cannot tell an allocator's last heap step from growth, so the short soak catches fast leaks (a
few bytes per request or connection) and the 10-minute reference soak, where the rate decides,
the slow ones.
Why a bound and not zero: a model that starts a thread per connection grows its RSS in steps of
about 256 KiB under churn for as long as the soak lasts, and most of it is glibc's per-thread
arenas, not the server's (results/diagnostics/20261205T201730Z-soak-arenas: the same 4-minute
soak of thread-per-connection with and without MALLOC_ARENA_MAX=1); a real slope far below any
leak of a byte per connection.

Descriptors after the load: the last settled sample must be within FD_TOLERANCE of the baseline
sample (the listening sockets, epoll/io_uring/event descriptors a model opens at start).
"""
from __future__ import annotations

import dataclasses
import enum

from scipy import stats as sps

from .stats import t975

MIN_SAMPLES = 3              # a line through fewer has no interval
BATCHES = 10                 # batch means of a long window (module docstring): 8 degrees of freedom
MIN_BATCH_SAMPLES = 5        # per batch, so that a window of 50 samples or more is batched
FD_TOLERANCE = 2             # a lazily opened per-thread descriptor or two is no leak
KIB = 1024
# A surprise or two (a reset racing a close under saturation) is not a failure; a share is.
ERRORS_ALLOWED = 5
ERROR_SHARE_ALLOWED = 0.01


@dataclasses.dataclass(frozen=True)
class Bound:
    """The practical bound on a metric's growth, with the reason for its size: per_s over a long
    window, and step, the change a window may show without any trend (the metric's granularity).
    Over a window of W seconds the bound is max(per_s, step / W): on the reference soak's minutes
    per_s decides, on the short soak's seconds step does (a window shorter than a few of the
    metric's steps cannot tell settling from growth; the reference soak is where slow growth shows)."""
    metric: str
    unit: str
    per_s: float
    step: float
    reason: str

    def allowed_per_s(self, window_s: float) -> float:
        return max(self.per_s, self.step / window_s) if window_s > 0 else self.per_s


BOUNDS = {
    "rss_bytes": Bound("rss_bytes", "B/s", 1024 * KIB / 60.0, 2048 * KIB,
                       "1 MiB per minute: a leak of even 16 bytes per request at the soak's tens of "
                       "thousands of requests per second is far above it. Step 2 MiB: malloc grows its "
                       "arenas' heaps in steps of 128 KiB and more, and blocking-pool's 17 threads add "
                       "about 2.3 MiB in such steps over the first 8-10 s before RSS levels off"),
    "fds": Bound("fds", "fd/s", 6 / 60.0, 4,
                 "6 per minute: a descriptor leaked per churned connection (thousands a second) is far "
                 "above it. Step 4: the connections in flight at a sample move the count by a few; "
                 "a leak of any size also shows in the count after the load"),
    "threads": Bound("threads", "threads/s", 6 / 60.0, 4,
                     "6 per minute: a thread leaked per connection is far above it. Step 4: a "
                     "thread-per-connection model moves with the connections open at each sample"),
}
# Sample field -> (metric, multiplier to the metric's unit).
FIELDS = {"rss_kb": ("rss_bytes", KIB), "fds": ("fds", 1), "threads": ("threads", 1)}


class Growth(enum.Enum):
    FLAT = "flat"                    # the interval includes zero
    WITHIN_BOUND = "within bound"    # significant, but the whole interval is inside the bound
    FALLS = "falls"                  # significant and negative: no growth (connections in flight
                                     # at the samples, or memory returned)
    GROWS = "grows"                  # the whole interval lies above the bound
    UNDECIDED = "undecided"          # significant, and the interval straddles the bound
    TOO_FEW = "too few samples"


@dataclasses.dataclass(frozen=True)
class Slope:
    metric: str
    per_s: float
    low: float
    high: float
    n: int
    growth: Growth
    bound_per_s: float       # the bound over this slope's window (Bound.allowed_per_s)

    def to_json(self) -> dict:
        return {"metric": self.metric, "per_s": self.per_s, "low": self.low, "high": self.high,
                "n": self.n, "growth": self.growth.value, "bound_per_s": self.bound_per_s}


def slope(metric: str, times_s: list[float], values: list[float]) -> Slope:
    """The growth judgement of one metric's (time, value) samples."""
    n = len(times_s)
    if n < MIN_SAMPLES or len(set(times_s)) < 2:
        return Slope(metric, 0.0, 0.0, 0.0, n, Growth.TOO_FEW, BOUNDS[metric].per_s)
    fit_t, fit_v = batch_means(times_s, values) if n >= BATCHES * MIN_BATCH_SAMPLES else (times_s, values)
    fit = sps.linregress(fit_t, fit_v)
    half = t975(len(fit_t) - 2) * fit.stderr
    low, high = fit.slope - half, fit.slope + half
    bound = BOUNDS[metric].allowed_per_s(max(times_s) - min(times_s))
    if low <= 0.0 <= high:
        growth = Growth.FLAT
    elif high < 0.0:
        growth = Growth.FALLS
    elif high <= bound:
        growth = Growth.WITHIN_BOUND
    elif low > bound:
        growth = Growth.GROWS
    else:
        growth = Growth.UNDECIDED
    return Slope(metric, float(fit.slope), float(low), float(high), n, growth, bound)


def batch_means(times_s: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """The (time, value) means of BATCHES contiguous batches of time-ordered samples (the first
    len % BATCHES batches one sample longer)."""
    pairs = sorted(zip(times_s, values))
    size, extra = divmod(len(pairs), BATCHES)
    out_t, out_v, start = [], [], 0
    for i in range(BATCHES):
        batch = pairs[start:start + size + (1 if i < extra else 0)]
        start += len(batch)
        out_t.append(sum(t for t, _v in batch) / len(batch))
        out_v.append(sum(v for _t, v in batch) / len(batch))
    return out_t, out_v


@dataclasses.dataclass
class Verdict:
    """One model's judgement: ok, and the reasons it is not (empty when ok)."""
    model: str
    slopes: dict
    fds_baseline: int | None
    fds_after: int | None
    reasons: list

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def undecided(self) -> list[str]:
        """The slopes the window could not place against their bound: what a longer soak decides."""
        return [f"{s.metric} undecided: {s.per_s:.3g} {BOUNDS[s.metric].unit} [{s.low:.3g}, {s.high:.3g}] "
                f"straddles the bound {s.bound_per_s:.3g}; a longer soak decides"
                for s in self.slopes.values() if s.growth is Growth.UNDECIDED]

    def to_json(self) -> dict:
        return {"model": self.model, "ok": self.ok, "reasons": list(self.reasons), "undecided": self.undecided,
                "fds_baseline": self.fds_baseline, "fds_after": self.fds_after,
                "slopes": {k: s.to_json() for k, s in self.slopes.items()}}


def judge(model: str, samples: list[dict], warmup_s: float, died: str | None = None,
          answered_after: bool = True, churn_errors: int = 0, churn_requests: int = 0) -> Verdict:
    """The verdict on one model's samples (run/soak.py's fields) and what the soak observed."""
    steady = [s for s in samples if s["phase"] == "load" and s["t_s"] >= warmup_s]
    slopes = {}
    for field, (metric, scale) in FIELDS.items():
        slopes[metric] = slope(metric, [s["t_s"] for s in steady], [s[field] * scale for s in steady])
    baseline = next((s["fds"] for s in samples if s["phase"] == "baseline"), None)
    after = [s["fds"] for s in samples if s["phase"] == "after"]
    verdict = Verdict(model, slopes, baseline, after[-1] if after else None, [])
    verdict.reasons.extend(_reasons(verdict, died, answered_after, churn_errors, churn_requests))
    return verdict


def _reasons(v: Verdict, died: str | None, answered_after: bool, churn_errors: int,
             churn_requests: int) -> list[str]:
    if died:
        return [f"died: {died}"]
    reasons = [f"{s.metric} grows: {s.per_s:.3g} {BOUNDS[s.metric].unit} "
               f"[{s.low:.3g}, {s.high:.3g}], bound {s.bound_per_s:.3g}"
               for s in v.slopes.values() if s.growth is Growth.GROWS]
    if any(s.growth is Growth.TOO_FEW for s in v.slopes.values()):
        reasons.append("too few samples after the warm-up to judge growth")
    if v.fds_baseline is None or v.fds_after is None:
        reasons.append("no descriptor count before or after the load")
    elif v.fds_after > v.fds_baseline + FD_TOLERANCE:
        reasons.append(f"descriptors not back to the baseline: {v.fds_after} after the load, "
                       f"{v.fds_baseline} before (tolerance {FD_TOLERANCE})")
    if not answered_after:
        reasons.append("stopped answering: GET / after the load did not answer 200")
    if churn_requests == 0:
        reasons.append("the churn client got no answer at all")
    elif churn_errors > max(ERRORS_ALLOWED, churn_requests * ERROR_SHARE_ALLOWED):
        reasons.append(f"{churn_errors} unexpected answers or failures in {churn_requests} churn requests")
    return reasons

