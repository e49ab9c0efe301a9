"""wrk: its command line, and the parsing of its output into SCHEMA.md's "wrk" object.

The primary source is the JSON line printed by scripts/lua/cbench.lua's done()
("cbench-wrk-json: {...}"). If it is missing (an old or broken script, a wrk
that died before done()), the human-readable summary is parsed instead and
the result says source = "text" (no percentiles then).
"""
from __future__ import annotations

import json
import math
import os
import re

from ..format.paths import SCRIPTS_DIR

JSON_PREFIX = "cbench-wrk-json: "
LUA_SCRIPT = os.path.join(SCRIPTS_DIR, "lua", "cbench.lua")
ERROR_KEYS = ("connect", "read", "write", "status", "timeout")
LATENCY_KEYS = ("min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99.9")


class WrkOutputError(ValueError):
    """wrk's output holds neither the JSON line nor a readable summary."""


def command(wrk_bin: str, url: str, threads: int, connections: int, duration_s: int,
            timeout_s: int, pipeline: int = 1, script: str = LUA_SCRIPT) -> list[str]:
    """The wrk argv for one run. Durations are whole seconds (wrk's -d and --timeout are)."""
    return [wrk_bin, f"-t{threads}", f"-c{connections}", f"-d{int(duration_s)}s",
            "--timeout", f"{int(timeout_s)}s", "-s", script, url, "--", f"pipeline={pipeline}"]


def parse(stdout: str, pipeline: int = 1) -> dict:
    """SCHEMA.md's "wrk" object from wrk's stdout. Raises WrkOutputError."""
    data = _parse_json_line(stdout)
    if data is not None:
        result = _from_json(data)
        result["source"] = "lua"
    else:
        result = _from_text(stdout)
        result["source"] = "text"
    duration_s = result["duration_us"] / 1e6 if result["duration_us"] else 0.0
    result["req_per_s"] = round(result["requests"] / duration_s, 2) if duration_s > 0 else 0.0
    # wrk counts responses with status > 399 in errors.status (its "Non-2xx or 3xx responses").
    result["non_2xx"] = result["errors"]["status"]
    result["pipeline"] = pipeline
    result["latency_is_per_batch"] = pipeline > 1
    # wrk 4.x adds synthetic samples for slow responses ("coordinated omission"
    # correction, stats_correct) before reporting: mean, stdev and percentiles include
    # them; max and min do not change.
    result["latency_co_corrected"] = True
    note = latency_problem(result["latency_us"], pipeline)
    if note:
        for k in ("mean", "stdev", "p50", "p75", "p90", "p99", "p99.9"):
            result["latency_us"][k] = None
        result["latency_note"] = note
    return result


def latency_problem(lat: dict, pipeline: int) -> str | None:
    """Why wrk's mean/stdev/percentiles cannot be trusted for this run, or None.

    wrk's stats_correct adds synthetic samples at intervals of runtime/(responses per
    connection), without lowering its recorded minimum; its mean and percentile walks
    start at that minimum, so samples placed below it are counted in the total but never
    walked: the mean comes out low and the percentiles high or 0. Without pipelining the
    interval is about the mean latency (Little's law), above the minimum, so nothing is
    lost. With pipelining depth N it is 1/N of a batch's latency, below the minimum.
    """
    if pipeline > 1:
        return (f"wrk's mean, stdev and percentiles are not reported with pipelining (depth "
                f"{pipeline}): its coordinated-omission correction then places synthetic samples "
                "below its recorded minimum, which its mean and percentile walks skip; max is exact")
    pcts = [lat.get(k) for k in ("p50", "p75", "p90", "p99", "p99.9")]
    mx = lat.get("max")
    if mx and any(p is not None for p in pcts):
        values = [p for p in pcts if p is not None]
        if any(p == 0 for p in values) or values != sorted(values) or values[-1] > mx:
            return ("wrk's percentiles are inconsistent (zero, decreasing or above max), the mark of "
                    "samples lost below its recorded minimum by its coordinated-omission correction; "
                    "mean, stdev and percentiles dropped, max is exact")
    return None


def _parse_json_line(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(JSON_PREFIX):
            try:
                data = json.loads(line[len(JSON_PREFIX):])
            except json.JSONDecodeError:
                return None
            return data if isinstance(data, dict) else None
    return None


def _num(x, what):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or (isinstance(x, float) and not math.isfinite(x)):
        raise WrkOutputError(f"wrk JSON: {what} is not a number: {x!r}")
    return x


def _from_json(data: dict) -> dict:
    try:
        errors = {k: int(_num(data["errors"][k], f"errors.{k}")) for k in ERROR_KEYS}
        latency = {}
        for k in LATENCY_KEYS:
            v = data["latency_us"].get(k)
            latency[k] = None if v is None else float(_num(v, f"latency_us.{k}"))
        out = {"requests": int(_num(data["requests"], "requests")),
               "duration_us": int(_num(data["duration_us"], "duration_us")),
               "bytes": int(_num(data["bytes"], "bytes")),
               "errors": errors, "latency_us": latency}
    except (KeyError, TypeError, AttributeError) as exc:
        raise WrkOutputError(f"wrk JSON line lacks a field: {exc}") from None
    if "samples" in data:
        out["latency_samples"] = int(_num(data["samples"], "samples"))
    return out


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _time_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise WrkOutputError(f"wrk text: not a duration: {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def _from_text(stdout: str) -> dict:
    """Parse wrk's own summary (no percentiles without --latency; only what it prints)."""
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w*B) read", stdout, re.M)
    if not m:
        tail = stdout.strip().splitlines()[-3:]
        raise WrkOutputError("wrk output has neither the cbench JSON line nor a summary"
                             + (f"; last lines: {' | '.join(tail)}" if tail else "; it is empty"))
    requests = int(m.group(1))
    duration_us = _time_us(m.group(2))
    nbytes = float(m.group(3)) * _BYTES.get(m.group(4), 1)
    errors = dict.fromkeys(ERROR_KEYS, 0)
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    if se:
        errors.update(connect=int(se.group(1)), read=int(se.group(2)),
                      write=int(se.group(3)), timeout=int(se.group(4)))
    st = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if st:
        errors["status"] = int(st.group(1))
    latency = dict.fromkeys(LATENCY_KEYS)
    lat = re.search(r"^\s*Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", stdout, re.M)
    if lat:
        latency.update(mean=_time_us(lat.group(1)), stdev=_time_us(lat.group(2)),
                       max=_time_us(lat.group(3)))
    # With --latency wrk prints a distribution; take what it gives.
    for pct, key in (("50", "p50"), ("75", "p75"), ("90", "p90"), ("99", "p99")):
        pm = re.search(rf"^\s*{pct}%\s+([\d.]+\w+)", stdout, re.M)
        if pm:
            latency[key] = _time_us(pm.group(1))
    # The printed duration is rounded (e.g. "10.00s"); good to 10 ms.
    return {"requests": requests, "duration_us": int(duration_us), "bytes": int(nbytes),
            "errors": errors, "latency_us": latency}
