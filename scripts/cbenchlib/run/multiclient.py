"""Several load generators against one server: how a point's load is divided between the client
hosts, and the arithmetic that turns each generator's own result into one point.
generators.Generators.run_on_clients starts one generator per client host behind a start gate
(gate.GATE_SCRIPT), releases them together, and merge_clients calls `merge` and `merge_results`.

Division of the load. The point's -c is the number of connections the server sees, the variable
of every table, whichever machines open them: it is split evenly between the client hosts
(`split_connections`; the first hosts take one more when it does not divide). Each host runs
the point's -t threads (its own CPUs: threads are per-generator parallelism), at most its share
of connections (wrk and cbench-load need threads <= connections). An open-loop rate is split in
proportion to the connections. A point with fewer connections than client hosts is refused.

The shared window. Each generator runs from `started_s` to `ended_s` on the harness's monotonic
clock: the start is the time its gate was released, as the gate read it on its own host when
that host shares the harness's clock (this machine, a namespace), else (ssh) the time the
harness sent the release byte, off by the one-way delay; the end is when the harness saw it
exit. The start skew is the spread of the starts; the window all generators share runs from
the last start to the first end. wrk reports only totals over its own run, so the requests
inside the shared window cannot be counted, only estimated: assuming each generator's rate is
steady over its run (the warm-up is over before the measured run starts), a generator's share
is its own rate (requests over its own measured duration, else over its wall time) times the
window, at most its total. The error of that assumption is confined to the unshared part of
each run, `unshared_fraction` = 1 - window / wall; `bounded` is False when any generator's
exceeds MAX_UNSHARED_FRACTION (then the sum is not trusted: generators.mark_window marks the point's verdict
WINDOW_UNBOUNDED, so no table or claim uses it as a throughput).

Latency: wrk prints percentiles, not its histogram, and percentiles of different generators
cannot be merged (the p99 of a union is not a function of the parts' p99s), so a wrk point
keeps them per generator and says so (`latency_merged: False`; only min and max merge).
cbench-load prints its histogram (`latency_histogram_us`, log buckets of <= 1% relative error):
the buckets are summed and the percentiles read from the sum (`latency_merged: True`).

Client-bound is judged per host: a generator whose CPU utilisation reaches verdict.SATURATED
on its own host makes the point client-bound, whatever the others did."""
from __future__ import annotations

import math

from ..format import verdict

# 5% of a 10 s run is 0.5 s of skew: far more than SSH start skew (milliseconds), so exceeding
# it means a generator started late or stalled, not noise.
MAX_UNSHARED_FRACTION = 0.05

# The verdict of a point whose generators did not share enough of their runs (bounded False).
# Readers mark verdicts other than server-bound, and only server-bound decides a claim.
WINDOW_UNBOUNDED = "window-unbounded"

# cbench-load's histogram: the bucket that holds everything above 1000 s starts here
# (backends/loadgen/histogram.h kMaxTrackedUs); its value is the recorded max.
OVERFLOW_BUCKET_LOW_US = 1e9
PERCENTILES = (("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999))


def split_connections(connections: int, hosts: int) -> list[int]:
    """Each host's share of a point's connections: even, the first hosts one more when it does
    not divide. Raises ValueError when some host would get none."""
    if hosts < 1 or connections < hosts:
        raise ValueError(f"{connections} connections cannot be split between {hosts} client hosts "
                         "(each needs at least one)")
    base, extra = divmod(connections, hosts)
    return [base + (1 if i < extra else 0) for i in range(hosts)]


def shared_window(spans: list[tuple[float, float]]) -> dict:
    """{"skew_s", "start_s", "end_s", "window_s"} of (start, end) spans on one clock; window_s
    is 0 when they share no time."""
    starts, ends = [a for a, _ in spans], [b for _, b in spans]
    start, end = max(starts), min(ends)
    return {"skew_s": max(starts) - min(starts), "start_s": start, "end_s": end,
            "window_s": max(0.0, end - start)}


def merge(generators: list[dict]) -> dict:
    """One point from per-generator results, each {"host", "started_s", "ended_s", "requests",
    "errors", "cpu_util", "latency_us"} and optionally "duration_s" (the generator's own
    measured run, which its rate is taken over). Returns requests and errors within the shared
    window (estimated, see the module docstring), their plain sums over the whole runs, the
    summed rate, the window and skew, per-generator figures, and the client-bound judgement per
    host."""
    if not generators:
        raise ValueError("no generators")
    w = shared_window([(g["started_s"], g["ended_s"]) for g in generators])
    per, requests, errors, bounded = [], 0.0, 0.0, w["window_s"] > 0
    for g in generators:
        wall = g["ended_s"] - g["started_s"]
        own = g.get("duration_s") or wall
        share = min(1.0, w["window_s"] / own) if own > 0 else 0.0
        unshared = 1.0 - (w["window_s"] / wall if wall > 0 else 0.0)
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
            "requests_sum": sum(g["requests"] for g in generators),
            "errors_sum": sum(g["errors"] for g in generators),
            "req_per_s": round(requests / w["window_s"], 1) if w["window_s"] > 0 else None,
            "bounded": bounded,
            "max_unshared_fraction": round(max(p["unshared_fraction"] for p in per), 6),
            "client_bound_hosts": [p["host"] for p in per if p["client_bound"]],
            "latency_merged": False,
            "latency_note": "wrk's percentiles cannot be merged across generators; see generators[].latency_us"}


def merge_histograms(histograms: list[list]) -> list[list]:
    """The sum of cbench-load histograms ([[low_us, high_us, count]], the same bucket bounds on
    every generator), sorted by bucket."""
    counts: dict[tuple[float, float], int] = {}
    for h in histograms:
        for low, high, n in h:
            counts[(low, high)] = counts.get((low, high), 0) + n
    return [[low, high, n] for (low, high), n in sorted(counts.items())]


def percentiles(buckets: list[list], min_us: float, max_us: float) -> dict:
    """Percentiles of a cbench-load histogram, read as cbench-load reads its own (the bucket
    that holds the rank; its geometric midpoint, clamped to the recorded min and max)."""
    total = sum(n for _, _, n in buckets)
    out = {}
    for name, q in PERCENTILES:
        if total == 0:
            out[name] = None
            continue
        rank = max(1, math.ceil(q * total))
        seen, value = 0, max_us
        for low, high, n in buckets:
            seen += n
            if seen >= rank:
                value = max_us if low >= OVERFLOW_BUCKET_LOW_US else math.sqrt(max(low, 1.0) * high)
                break
        out[name] = round(min(max(value, min_us), max_us), 3)
    return out


def merge_results(results: list[dict], merged: dict) -> dict:
    """SCHEMA.md's "wrk" object of a point measured from several client hosts, from each
    generator's own (wrk.parse / loadgen.parse) and `merge`'s answer: requests, errors, bytes
    and non-2xx summed over the whole runs (what the server answered between its /proc
    samples); req_per_s the merged rate over the shared window; duration_us the longest
    generator's own; latency merged where the generator gives a histogram, else min and max
    only (percentiles null, per host in record.clients.generators)."""
    first = results[0]
    out = {k: v for k, v in first.items()
           if k not in ("latency_series", "latency_histogram_us", "send_lag_us", "latency_us_overloaded")}
    out["requests"] = sum(r["requests"] for r in results)
    out["errors"] = {k: sum(r["errors"].get(k, 0) for r in results) for k in first["errors"]}
    out["bytes"] = sum(r.get("bytes") or 0 for r in results)
    out["non_2xx"] = sum(r.get("non_2xx") or 0 for r in results)
    out["duration_us"] = max(r.get("duration_us") or 0 for r in results)
    out["req_per_s"] = merged["req_per_s"] if merged["req_per_s"] is not None else 0.0
    out["hosts"] = len(results)
    lats = [r.get("latency_us") or {} for r in results]
    mins = [x["min"] for x in lats if x.get("min") is not None]
    maxes = [x["max"] for x in lats if x.get("max") is not None]
    lat = {k: None for k in first.get("latency_us") or {}}
    lat["min"], lat["max"] = (min(mins) if mins else None), (max(maxes) if maxes else None)
    hists = [r.get("latency_histogram_us") for r in results]
    if all(isinstance(h, list) for h in hists) and mins and maxes:
        buckets = merge_histograms(hists)
        out["latency_histogram_us"] = buckets
        overloaded = any(r.get("overloaded") for r in results)
        if not overloaded:
            lat.update(percentiles(buckets, lat["min"], lat["max"]))
            total = sum(n for _, _, n in buckets)
            means = [(x.get("mean"), r["requests"]) for x, r in zip(lats, results)]
            if total and all(m is not None for m, _ in means) and sum(n for _, n in means):
                lat["mean"] = round(sum(m * n for m, n in means) / sum(n for _, n in means), 3)
        out["latency_merged"] = True
        out["latency_note"] = ("percentiles of the summed histograms of every generator"
                               + ("; overloaded: percentiles omitted" if overloaded else ""))
    else:
        out["latency_merged"] = False
        out["latency_note"] = (f"{first.get('generator', 'wrk')} gives percentiles, not a histogram, and "
                               "percentiles cannot be merged across generators: see "
                               "clients.generators[].latency_us (min and max are the generators' extremes)")
    out["latency_us"] = lat
    for key in ("overloaded", "generator_bound"):
        if key in first:
            out[key] = any(r.get(key) for r in results)
    for key in ("rate_offered", "unfinished"):
        if key in first and all(isinstance(r.get(key), (int, float)) for r in results):
            out[key] = sum(r[key] for r in results)
    if isinstance(first.get("errors_detail"), dict):
        out["errors_detail"] = {k: sum((r.get("errors_detail") or {}).get(k, 0) for r in results)
                                for k in first["errors_detail"]}
    return out
