"""Several load generators against one server (issue 18, item "several load hosts"): the
arithmetic that turns each generator's own totals into one point. Not yet wired into the sweep
(`--client-host` still takes one host); the runner is to call `merge` once it starts one wrk per
client host at the same moment.

The shared window. Each generator runs from `started_s` to `ended_s` on the harness's monotonic
clock (for an ssh host: when the harness saw the remote wrapper report the start, and saw it
exit; each off by at most the one-way delay, which the pre-sweep round trip bounds). The start
skew is the spread of the starts; the window all generators share runs from the last start to
the first end. wrk reports only totals over its own run, so the requests inside the shared
window cannot be counted, only estimated: assuming each generator's rate is steady over its run
(the warm-up is over before the measured run starts), a generator's share is its total scaled
by window / its own wall time. The error of that assumption is confined to the unshared part of
each run, `unshared_fraction` = 1 - window / wall; `bounded` is False when any generator's
exceeds MAX_UNSHARED_FRACTION (then the sum is not trusted: the point should be marked, not
used).

Latency: wrk prints percentiles, not its histogram, and percentiles of different generators
cannot be merged (the p99 of a union is not a function of the parts' p99s), so the merged point
keeps them per generator and says so (`latency_merged: False`).

Client-bound is judged per host: a generator whose CPU utilisation reaches verdict.SATURATED
on its own host makes the point client-bound, whatever the others did."""
from __future__ import annotations

from . import verdict

# 5% of a 10 s run is 0.5 s of skew: far more than SSH start skew (milliseconds), so exceeding
# it means a generator started late or stalled, not noise.
MAX_UNSHARED_FRACTION = 0.05


def shared_window(spans: list[tuple[float, float]]) -> dict:
    """{"skew_s", "start_s", "end_s", "window_s"} of (start, end) spans on one clock; window_s
    is 0 when they share no time."""
    starts, ends = [a for a, _ in spans], [b for _, b in spans]
    start, end = max(starts), min(ends)
    return {"skew_s": max(starts) - min(starts), "start_s": start, "end_s": end,
            "window_s": max(0.0, end - start)}


def merge(generators: list[dict]) -> dict:
    """One point from per-generator results, each {"host", "started_s", "ended_s", "requests",
    "errors", "cpu_util", "latency_us"}. Returns requests and errors within the shared window
    (estimated, see the module docstring), the summed rate, the window and skew, per-generator
    figures, and the client-bound judgement per host."""
    if not generators:
        raise ValueError("no generators")
    w = shared_window([(g["started_s"], g["ended_s"]) for g in generators])
    per, requests, errors, bounded = [], 0.0, 0.0, w["window_s"] > 0
    for g in generators:
        wall = g["ended_s"] - g["started_s"]
        share = w["window_s"] / wall if wall > 0 else 0.0
        unshared = 1.0 - share
        bounded = bounded and unshared <= MAX_UNSHARED_FRACTION
        requests += g["requests"] * share
        errors += g["errors"] * share
        util = g.get("cpu_util")
        per.append({"host": g["host"], "wall_s": round(wall, 6), "requests": g["requests"],
                    "errors": g["errors"], "requests_in_window": round(g["requests"] * share, 1),
                    "unshared_fraction": round(unshared, 6), "cpu_util": util,
                    "client_bound": util is not None and util >= verdict.SATURATED,
                    "latency_us": g.get("latency_us")})
    return {"generators": per, "skew_s": round(w["skew_s"], 6), "window_s": round(w["window_s"], 6),
            "requests": round(requests, 1), "errors": round(errors, 1),
            "req_per_s": round(requests / w["window_s"], 1) if w["window_s"] > 0 else None,
            "bounded": bounded,
            "client_bound_hosts": [p["host"] for p in per if p["client_bound"]],
            "latency_merged": False,
            "latency_note": "wrk's percentiles cannot be merged across generators; see generators[].latency_us"}
