"""Load generators other than wrk: cbench-load (the project's own, closed and open loop) and
h2load (nghttp2-client, --h1): their vocabulary, scenario keys, key suffixes, the parsers of their
output into SCHEMA.md's "wrk" object, and which points share the closed-loop peak an open-loop
rate_fraction is a fraction of; and the fixed-rate loads (rate_common_fraction): one offered rate
common to every row compared at the load, resolved from a closed-loop pilot of each row as a
fraction of the lowest peak, and how that resolution is recorded. Running them (argv, binaries,
the peak's and the pilots' measurement) is run/generators.py's.

A load that names no generator gets DEFAULT_GENERATOR, cbench-load: on this two-CPU machine it
spends about two thirds of wrk's CPU per request, so more points are bound by the server rather
than by the generator. Loads that reproduce a published table's columns name generator = "wrk"
(the published tables were measured with wrk). Keys still name every generator but wrk
(key_suffix), so a published column's key is the published table's and a record written before
the default changed keeps its key.

The record's "wrk" object keeps its name whichever generator filled it, so tables and readers
need no change; its "generator" field says which one did. Extra fields from cbench-load:
mode, rate_offered, overloaded, latency_series (per-second p50/p99), send_lag_us,
generator_bound, cpu_us_per_request, unfinished, errors_detail, connections (asked for) and
connections_unserved (connections that sent a request and got no response in the whole run: a
server that serves a few connections and starves the rest shows it here, not in the errors;
absent from older cbench-load output).

Overloaded points (open loop, offered more than served: cbench-load completes < 90% of the
offered rate) have no steady state: their headline percentiles measure the run's length, so
latency_us's percentiles are set to null (kept in latency_us_overloaded) and latency_series
says how latency grew; percentile tables then skip them as they skip any null.
"""
from __future__ import annotations

import dataclasses
import json
import re

GENERATORS = ("wrk", "cbench-load", "h2load")
DEFAULT_GENERATOR = "cbench-load"
# The generator keys do not name (key_suffix): the published tables' and every record's from
# before the default changed; a record without a "generator" field was driven by it.
UNNAMED_GENERATOR = "wrk"
ARRIVALS = ("constant", "poisson")
LATENCY_KEYS = ("min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99.9", "p99.99")


# alternate_ms's bounds: below 50 ms a turn is mostly the server waking up and the generator's
# start-up skew (a few ms); above 10 s turns are as far apart as rows run one after the other.
ALTERNATE_MS_MIN, ALTERNATE_MS_MAX = 50, 10_000


class LoadgenOutputError(ValueError):
    """The generator's output could not be read (it died, or printed something unexpected)."""


# -- scenario keys ----------------------------------------------------------------------------
def check_load(fail, where: str, values: dict) -> dict:
    """Validates a load's generator keys (generator, arrivals, rate, rate_fraction,
    rate_common_fraction); returns the Load fields they set. fail(key, problem) raises the
    scenario error."""
    gen = values.get("generator", DEFAULT_GENERATOR)
    if gen not in GENERATORS:
        fail(f"{where}.generator", f"expected one of {', '.join(GENERATORS)}, got {gen!r}")
    rate, fraction = values.get("rate"), values.get("rate_fraction")
    common = values.get("rate_common_fraction")
    # A common fraction below 1 only: the point of a fixed rate is that no compared row is saturated.
    for key, v, lo, hi in (("rate", rate, 1e-3, 1e8), ("rate_fraction", fraction, 1e-3, 100.0),
                           ("rate_common_fraction", common, 1e-3, COMMON_FRACTION_MAX)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi):
            fail(f"{where}.{key}", f"expected a number in [{lo:g}, {hi:g}], got {v!r}")
    if sum(v is not None for v in (rate, fraction, common)) > 1:
        fail(where, "give one of rate, rate_fraction and rate_common_fraction, not several")
    if (rate is not None or fraction is not None or common is not None) and gen != "cbench-load":
        fail(f"{where}.generator", "open loop (rate, rate_fraction, rate_common_fraction) needs generator = "
             "\"cbench-load\" (wrk and h2load stamp requests at submission: they are not "
             "coordinated-omission-free)")
    arrivals = values.get("arrivals", "constant")
    if arrivals not in ARRIVALS:
        fail(f"{where}.arrivals", f"expected one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    read_rate = values.get("read_rate")  # slow readers: bytes/s per connection
    if read_rate is not None:
        if isinstance(read_rate, bool) or not isinstance(read_rate, (int, float)) or not 1 <= read_rate <= 1e12:
            fail(f"{where}.read_rate", f"expected bytes/s per connection in [1, 1e12], got {read_rate!r}")
        if gen != "cbench-load":
            fail(f"{where}.generator", "read_rate (slow readers) needs generator = \"cbench-load\"")
    # Rows of the load measured in turns of alternate_ms within one shared window (run/alternating.py).
    alternate = values.get("alternate_ms")
    if alternate is not None:
        if isinstance(alternate, bool) or not isinstance(alternate, int) or not ALTERNATE_MS_MIN <= alternate <= ALTERNATE_MS_MAX:
            fail(f"{where}.alternate_ms", f"expected whole milliseconds in [{ALTERNATE_MS_MIN}, {ALTERNATE_MS_MAX}], got {alternate!r}")
        if gen != "cbench-load" or (rate is None and fraction is None and common is None):
            fail(f"{where}.alternate_ms", "alternation needs an open loop (rate, rate_fraction or "
                 "rate_common_fraction) with generator = \"cbench-load\" (its --duty)")
    return {"generator": gen, "rate": None if rate is None else float(rate),
            "alternate_ms": alternate,
            "rate_fraction": None if fraction is None else float(fraction),
            "rate_common_fraction": None if common is None else float(common), "arrivals": arrivals,
            "read_rate": None if read_rate is None else float(read_rate)}


def key_suffix(load) -> str:
    """What a load's key and id add for a generator other than wrk, or an open-loop rate."""
    s = ""
    if load.generator != UNNAMED_GENERATOR:
        s += f" [{load.generator}]"
    if load.rate_fraction is not None:
        s += f" @{load.rate_fraction:g}xpeak"
    elif getattr(load, "rate_common_fraction", None) is not None:
        s += f" @{load.rate_common_fraction:g}xmin-peak"
    elif load.rate is not None:
        s += f" @{load.rate:g}/s"
    if load.arrivals != "constant":
        s += f" {load.arrivals}"
    if getattr(load, "read_rate", None) is not None:
        s += f" read {load.read_rate:.0f}B/s"
    if getattr(load, "alternate_ms", None) is not None:
        s += f" alt{load.alternate_ms}ms"
    return s


# -- parsing --------------------------------------------------------------------------------------
def parse(generator: str, stdout: str, pipeline: int = 1) -> dict:
    """SCHEMA.md's "wrk" object from a non-wrk generator's stdout. Raises LoadgenOutputError."""
    if generator == "h2load":
        return _parse_h2load(stdout, pipeline)
    return _parse_cbench_load(stdout, pipeline)


def _parse_cbench_load(stdout: str, pipeline: int) -> dict:
    start = stdout.find("{")
    try:
        d = json.loads(stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError as exc:
        raise LoadgenOutputError(f"cbench-load JSON unreadable: {exc}") from None
    if not isinstance(d, dict) or "latency_us" not in d:
        raise LoadgenOutputError("cbench-load printed no JSON")
    e = d["errors"]
    lat = {k: d["latency_us"].get(k) for k in LATENCY_KEYS}
    lat["stdev"] = None  # not computed: the histogram is the record
    out = {
        "generator": "cbench-load", "source": "cbench-load", "mode": d["mode"],
        "requests": d["requests"], "duration_us": round(d["duration_s"] * 1e6), "bytes": d["bytes_read"],
        # wrk's error kinds, mapped: a lost or closed request is a read error; non-2xx is status.
        "errors": {"connect": e["connect"], "read": e["read"] + e["closed"] + e["malformed"],
                   "write": 0, "status": d["non2xx"], "timeout": 0},
        "errors_detail": e, "latency_us": lat, "req_per_s": d["rate_achieved"], "non_2xx": d["non2xx"],
        "pipeline": pipeline, "latency_is_per_batch": False, "latency_co_corrected": False,
        "latency_from": "intended send time" if d["mode"] == "open" else "send time",
        "rate_offered": d["rate_offered"], "arrivals": d["arrivals"], "overloaded": d["overloaded"],
        "unfinished": d["unfinished"], "send_lag_us": d["send_lag_us"],
        "send_lag_bound_us": d["send_lag_bound_us"], "generator_bound": d["generator_bound"],
        "cpu_us_per_request": d["cpu_us_per_request"], "latency_series": d["latency_series"],
        "latency_histogram_us": d["latency_histogram_us"],
        "connections": d.get("connections"), "connections_unserved": d.get("connections_unserved"),
        # Which engine ran (epoll or uring; None from a build before --engine): its CPU per
        # request differs, so a client CPU figure is read with it.
        "engine": d.get("engine"),
    }
    if d.get("duty"):  # --duty: served in turns; rate_achieved is over the on-time
        out["duty"] = d["duty"]
    if d["overloaded"]:
        out["latency_us_overloaded"] = dict(lat)
        for k in ("mean", "p50", "p75", "p90", "p99", "p99.9", "p99.99"):
            lat[k] = None
        out["latency_note"] = ("overloaded: offered more than served, no steady state; percentiles "
                               "omitted (see latency_series for how latency grew)")
    return out


_H2_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s),")
_H2_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored, (\d+) timeout")
_H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_H2_TRAFFIC = re.compile(r"traffic: \S+ \((\d+)\) total")
_H2_TIME = re.compile(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)")
_US = {"us": 1.0, "ms": 1e3, "s": 1e6}


def _parse_h2load(stdout: str, pipeline: int) -> dict:
    fin, req, st = _H2_FINISHED.search(stdout), _H2_REQUESTS.search(stdout), _H2_STATUS.search(stdout)
    if not (fin and req and st):
        raise LoadgenOutputError("h2load printed no summary (finished/requests/status codes lines)")
    duration_us = float(fin.group(1)) * _US[fin.group(2)]
    succeeded, failed, errored, timeout = (int(req.group(i)) for i in (4, 5, 6, 7))
    non2xx = sum(int(st.group(i)) for i in (2, 3, 4))
    lat = {k: None for k in LATENCY_KEYS}
    t = _H2_TIME.search(stdout)
    if t:
        v = [float(t.group(i)) * _US[t.group(i + 1)] for i in (1, 3, 5, 7)]
        lat.update(min=v[0], max=v[1], mean=v[2], stdev=v[3])
    traffic = _H2_TRAFFIC.search(stdout)
    return {
        "generator": "h2load", "source": "h2load", "mode": "closed", "requests": succeeded,
        "duration_us": round(duration_us), "bytes": int(traffic.group(1)) if traffic else 0,
        "errors": {"connect": 0, "read": errored, "write": 0, "status": non2xx, "timeout": timeout},
        "errors_detail": {"failed": failed, "errored": errored, "timeout": timeout},
        "latency_us": lat, "req_per_s": round(succeeded / (duration_us / 1e6), 2) if duration_us else 0.0,
        "non_2xx": non2xx, "pipeline": pipeline, "latency_is_per_batch": False,
        "latency_co_corrected": False, "latency_note": "h2load prints no percentiles (min/max/mean/sd only)",
    }


# -- open loop at a fraction of the peak (measured by run/generators.Peaks) ----------------------
def peak_key(point) -> str:
    """Points that share a peak: the same server row, path, connections and threads."""
    ld = point.load
    return f"{point.row.id} / t{ld.wrk_threads}c{ld.connections}p{ld.pipeline} {ld.path}"


# -- fixed rate: one offered rate for every row compared at a load (run/generators.Pilots) -------
# A fixed-rate load (rate_common_fraction = F) offers every row that runs it the same open-loop
# rate: F x the lowest closed-loop peak among those rows, each peak measured by a pilot run before
# the first block. Below every compared row's capacity neither the server nor the generator is
# saturated, so the server's CPU per request is its own cost at that rate, not confounded with how
# cheaply the generator drives it. F is at most COMMON_FRACTION_MAX: at the lowest row's peak that
# row would be saturated again.
COMMON_FRACTION_MAX = 0.9
# meta.json's key for the resolutions, {load id: resolution}; a point at a fixed-rate load carries
# its load's resolution as `common_rate` and the resolved rate as load.rate.
COMMON_RATES_META_KEY = "common_rates"


def is_fixed_rate(load_record: dict | None) -> bool:
    """Whether a points.jsonl `load` object is a fixed-rate load (rate_common_fraction given)."""
    return isinstance(load_record, dict) and load_record.get("rate_common_fraction") is not None


def fixed_rate_refusal(point: dict) -> str | None:
    """Why a fixed-rate point's record cannot decide a comparison, or None when it may: it failed,
    it was not an open-loop run, or it was overloaded (completed less than 90% of the offered rate:
    the rate was not fixed, the server was saturated) or error-bound (more than 1% errors)."""
    if point.get("status", "ok") != "ok":
        return "failed"
    w = point.get("wrk") if isinstance(point.get("wrk"), dict) else {}
    if w.get("mode") != "open":
        return "not an open-loop run"
    if w.get("overloaded"):
        return (f"overloaded: {w.get('req_per_s') or 0:.0f} of {w.get('rate_offered') or 0:.0f} req/s offered"
                " completed")
    if point.get("verdict") == "error-bound":
        return "error-bound"
    return None


def common_rate_key(point) -> str:
    """Points that share one common rate: the same load (every row that runs it is compared)."""
    return point.load.id


def pilot_point(point):
    """The closed-loop run a fixed-rate point's pilot measures: its row on its load's shape
    (generator, threads, connections, pipeline, path), with no rate."""
    return dataclasses.replace(point, load=dataclasses.replace(point.load, rate=None, rate_fraction=None,
                                                               rate_common_fraction=None))


def fixed_rate_groups(points) -> dict:
    """{common_rate_key: (fraction, [points in file order])} of the fixed-rate points."""
    out: dict = {}
    for p in points:
        if not p.load.is_idle and p.load.rate_common_fraction is not None:
            out.setdefault(common_rate_key(p), (p.load.rate_common_fraction, []))[1].append(p)
    return out


def resolve_common_rate(fraction: float, pilots: dict, resolved_utc: str) -> dict:
    """The resolution of one fixed-rate load: FRACTION x the lowest pilot peak. PILOTS maps each
    compared row's key to its pilot ({"req_per_s": ..., ...}, or {"failed": reason} for a row whose
    pilot could not run: it is left out of the minimum, and its fixed-rate points are judged by
    their own `overloaded` flag). Raises ValueError when no pilot measured a peak."""
    peaks = {k: v["req_per_s"] for k, v in pilots.items()
             if isinstance(v.get("req_per_s"), (int, float)) and v["req_per_s"] > 0}
    if not peaks:
        raise ValueError("no compared row's pilot measured a peak")
    lowest = min(peaks, key=lambda k: (peaks[k], k))
    return {"fraction": fraction, "rate_per_s": round(fraction * peaks[lowest], 3),
            "lowest_row": lowest, "lowest_req_per_s": peaks[lowest],
            "rows_measured": len(peaks), "rows_failed": sorted(k for k in pilots if k not in peaks),
            "pilots": dict(pilots), "resolved_utc": resolved_utc}
