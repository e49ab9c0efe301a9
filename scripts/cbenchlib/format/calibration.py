"""The one owner of a `cbench calibrate` directory's format, in both directions.

A calibration directory holds `calibration.json` (the summary written by `cbench calibrate`) and
the trials' sweep runs under `runs/` (and callgrind's work files under `instructions/`).

Version 2 (`"version": 2`): `design` (what was calibrated: model, path, loads, blocks, windows,
handicaps), `elapsed_s`, and `metrics`: {"<metric>@<load>": entry}, where metric is a gate metric
name (analysis/gate.py: instructions_per_req, server_cpu_us_per_req, req_per_s) and load names
where it was measured (callgrind, saturated, fixed-rate). An entry (analysis/sensitivity.py):
`trials`, `blocks`, `aa_false_positive` (a rate), `detection` ({"<effect %>": rate}),
`smallest_detected_pct` (smallest effect detected in >= 80% of trials, or null),
`block_log_sd` and `planned_80pct_power_pct` (the effect detected with 80% power at that spread),
`aa_between_trial` (the A/A trials' test of independent blocks, or null: `variance_ratio`, `p`,
`df`, `interval_scale`, `trial_lag1_corr`, `trial_log_var`: the between-trial variance of the mean
log difference, which the regression gate widens its intervals by), `widened` (null, or
`aa_false_positive`, `detection` and `smallest_detected_pct` with each trial's intervals widened by
the other trials' `trial_log_var`); each absent from calibrations written before it existed.
A rate is {"k": count, "n": trials, "ci": [lo, hi]} (95% Clopper-Pearson).

Version 1 (no "version"): one metric (`metric`, else req/s) at a saturated point: `cpu_us_per_req`,
`handicaps_ns`, `trials`, `repetitions`, `duration_s`, `aa_false_positive` and one
`ab_detection_B<pct>` per handicap; `entries` reads it as {"req_per_s@saturated": entry}.
"""
from __future__ import annotations

import json
import os

FILE = "calibration.json"
RUNS_DIR = "runs"
_DETECTION_PREFIX = "ab_detection_B"
# A handicap the calibration "establishes": detected in at least this share of its trials (the
# conventional 80% power), used by the report and by the regression gate's default threshold.
ESTABLISHED_RATE = 0.8


class CalibrationError(Exception):
    """An unreadable or incomplete calibration.json; the message names the file and the problem."""


def is_calibration_dir(path: str) -> bool:
    """A `cbench calibrate` directory: it holds calibration.json."""
    return os.path.exists(os.path.join(path, FILE))


def trial_runs(path: str) -> list[str]:
    """The trials' sweep run directories, sorted; empty when there are none."""
    d = os.path.join(path, RUNS_DIR)
    return sorted(os.path.join(d, n) for n in os.listdir(d)) if os.path.isdir(d) else []


def env_run_dir(path: str) -> str | None:
    """The run directory whose meta.json records the environment (commit, machine) of PATH: PATH
    itself, or for a calibration directory its first trial's sweep (a calibration records none of
    its own); None for a calibration without trials."""
    if not is_calibration_dir(path):
        return path
    runs = trial_runs(path)
    return runs[0] if runs else None


def detection_key(pct: int) -> str:
    return f"{_DETECTION_PREFIX}{pct}"


def read(cal_dir: str) -> dict:
    """calibration.json of CAL_DIR, every rate in it checked to be {k, n, ci}; raises
    CalibrationError. Which fields a reader needs is the reader's to check."""
    path = os.path.join(cal_dir, FILE)
    try:
        with open(path, encoding="utf-8") as f:
            cal = json.load(f)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: unreadable ({exc})") from None
    if not isinstance(cal, dict):
        raise CalibrationError(f"{path}: not a JSON object")
    for key, v in cal.items():
        if (key.startswith(_DETECTION_PREFIX) or key == "aa_false_positive") and not _is_rate(v):
            raise CalibrationError(f"{path}: {key} is not a rate {{k, n, ci}}")
    if cal.get("version") == VERSION:
        ms = cal.get("metrics")
        if not isinstance(ms, dict):
            raise CalibrationError(f"{path}: metrics is not an object")
        for key, e in ms.items():
            ok = isinstance(e, dict) and _is_rate(e.get("aa_false_positive")) \
                and isinstance(e.get("detection"), dict) and all(map(_is_rate, e["detection"].values()))
            if not ok:
                raise CalibrationError(f"{path}: metrics.{key} lacks aa_false_positive or detection rates")
    return cal


VERSION = 2
LOAD_SEP = "@"
# Where an entry's metric is read, the part after LOAD_SEP (the gate's, calibration's and the
# published findings' one spelling): callgrind over a fixed number of requests; a saturated sweep
# point; a fixed-rate load (every row offered one open-loop rate below all their capacities).
CALLGRIND, SATURATED, FIXED_RATE = "callgrind", "saturated", "fixed-rate"


def entry_key(metric: str, load: str) -> str:
    return f"{metric}{LOAD_SEP}{load}"


def split_key(key: str) -> tuple[str, str]:
    """(metric, load) of an entry key; load "" when the key names none."""
    metric, _, load = key.partition(LOAD_SEP)
    return metric, load


def entries(cal: dict) -> dict[str, dict]:
    """{"<metric>@<load>": entry} of a calibration of either version; version 1 becomes one entry
    (its `metric`, else req/s, at a saturated point) with its `detection` keyed by effect %."""
    if cal.get("version") == VERSION:
        return dict(cal.get("metrics") or {})
    if "aa_false_positive" not in cal and not detections(cal):
        return {}
    return {entry_key(cal.get("metric") or "req_per_s", "saturated"): {
        "trials": cal.get("trials"), "blocks": cal.get("repetitions"),
        "aa_false_positive": cal.get("aa_false_positive") or {"k": 0, "n": 0, "ci": [0.0, 1.0]},
        "detection": {str(pct): v for pct, v in detections(cal).items()},
        "smallest_detected_pct": smallest_detected(cal, ESTABLISHED_RATE)}}


def design_blocks(cal: dict | None) -> int | None:
    """Blocks per trial of the calibrated design (version 2: design.blocks; version 1:
    repetitions), None when the file does not say."""
    if not cal:
        return None
    v = (cal.get("design") or {}).get("blocks") if cal.get("version") == VERSION else cal.get("repetitions")
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def design_duration_s(cal: dict | None) -> float | None:
    """Seconds per window of the calibrated design's wall-clock entries (version 2: the fixed-rate
    or saturated stage's duration_s; version 1: duration_s), None when it has none."""
    if not cal:
        return None
    if cal.get("version") == VERSION:
        d = cal.get("design") or {}
        v = next((d[k].get("duration_s") for k in ("fixed-rate", "saturated") if isinstance(d.get(k), dict)), None)
    else:
        v = cal.get("duration_s")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def trial_log_var(entry: dict | None) -> float | None:
    """An entry's between-trial variance of the mean log difference (`aa_between_trial`'s
    `trial_log_var`) when it measured one above 0, else None (none found, or a calibration made
    before the check existed)."""
    v = ((entry or {}).get("aa_between_trial") or {}).get("trial_log_var")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def write(cal_dir: str, summary: dict) -> str:
    """Writes calibration.json (indented, keys in the order given); returns its path."""
    path = os.path.join(cal_dir, FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return path


def detections(cal: dict) -> dict[int, dict]:
    """{handicap %: rate} of the A/B detection rates, in increasing handicap."""
    out = {int(k[len(_DETECTION_PREFIX):]): v for k, v in cal.items() if k.startswith(_DETECTION_PREFIX)}
    return dict(sorted(out.items()))


def smallest_detected(cal: dict, rate: float) -> int | None:
    """The smallest handicap (%) detected in at least RATE of its trials, or None."""
    hit = [pct for pct, v in detections(cal).items() if v["n"] and v["k"] / v["n"] >= rate]
    return min(hit) if hit else None


def _is_rate(v) -> bool:
    return isinstance(v, dict) and isinstance(v.get("k"), int) and isinstance(v.get("n"), int) \
        and isinstance(v.get("ci"), list) and len(v["ci"]) == 2
