"""The one owner of a `cbench calibrate` directory's format, in both directions.

A calibration directory holds `calibration.json` (the summary written by `cbench calibrate`) and
the trials' sweep runs under `runs/`. The summary's fields: `cpu_us_per_req` (the row's server CPU
per request at the calibration point), `handicaps_ns` ({"5%": ns, ...}), `trials`, `repetitions`,
`duration_s`, `elapsed_s`, `aa_false_positive` and one `ab_detection_B<pct>` per handicap, each a
rate {"k": detected, "n": trials, "ci": [lo, hi]} (95% Clopper-Pearson).
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
    return cal


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
