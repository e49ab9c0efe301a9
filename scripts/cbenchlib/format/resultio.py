"""The one owner of the run-directory format (results/SCHEMA.md), in both directions.

Writing: `RunWriter` creates meta.json (replaced atomically: write a temporary file, rename)
and appends points.jsonl one line per finished repetition (flushed and fsynced, SIGINT and
SIGTERM held off while a line is written). `new_point` is the skeleton of a point record: the
record's top-level field names live here and nowhere else.

Reading: `read_meta` and `read_points` are the only functions that read those files; the sweep
(--resume) and every reader (runload, hence table/compare/plot/report) call them.

The torn-line rule (one rule, for everyone): a line is complete when it ends with a newline.
Only the last line can be incomplete (an append cut short by a crash or a full disk); it is
*torn*: readers skip it and `--resume` cuts it off before appending. Every complete line must
be one JSON object; anything else (a complete line that does not parse, an incomplete line
before the last) is damage that no append can cause, and raises ResultsFormatError naming the
file and the line. Blank lines are skipped.
"""
from __future__ import annotations

import datetime
import json
import os
import signal
from typing import NamedTuple

from . import scenario

SCHEMA_VERSION = 1
META_FILE = "meta.json"
POINTS_FILE = "points.jsonl"
LOGS_DIR = "logs"
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class ResultsFormatError(Exception):
    """A run file that breaks the format; the message names the path (and line)."""


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime.datetime:
    """The inverse of utc_now (timezone-aware); raises ValueError."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def utc_stamp() -> str:
    """Compact UTC time for directory names: 20261122T101500Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# -- the point record ---------------------------------------------------------------------
def new_point(point_id: str, rep: int, seq: int, block: int, row: dict, load: dict) -> dict:
    """A point record before measurement: every top-level field SCHEMA.md lists, unmeasured.

    `rep` counts the point's repetitions (0-based); `block` is the round it ran in (the initial
    rounds are blocks 0..repetitions-1, each extra block of a sequential design the next one),
    so analyses pair rows by block; `seq` is the slot in the run's order.
    """
    return {
        "point_id": point_id, "rep": rep, "block": block, "seq": seq,
        "row": row, "load": load,
        "status": "ok", "failure": None, "wrk": None, "server": None, "client": None,
        "derived": None, "idle": None, "verdict": None, "verdict_evidence": None,
        "commands": {"server": None, "client": None, "warmup": None},
        "logs": {}, "started_utc": utc_now(), "ended_utc": None,
    }


def point_block(point: dict) -> int | None:
    """The block a record ran in; runs written before blocks existed ran one round per
    repetition, so their `rep` is their block."""
    b = point.get("block", point.get("rep"))
    return b if isinstance(b, int) and not isinstance(b, bool) else None


def completed(points: list[dict]) -> set[tuple[str, int]]:
    """(point_id, rep) pairs already recorded (ok or failed): what --resume skips."""
    return {(p["point_id"], p["rep"]) for p in points if "point_id" in p and "rep" in p}


# -- reading ------------------------------------------------------------------------------
class PointsRead(NamedTuple):
    points: list[dict]      # complete lines, in file order
    torn: bool              # a torn last line was skipped
    complete_bytes: int     # length of the file's complete part (where a torn line begins)


def read_points(path: str) -> PointsRead:
    """Every record of a points.jsonl under the torn-line rule above (a missing file is empty).
    Raises ResultsFormatError on damage."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return PointsRead([], False, 0)
    points: list[dict] = []
    pos = 0
    lineno = 0
    while pos < len(data):
        lineno += 1
        end = data.find(b"\n", pos)
        if end < 0:
            return PointsRead(points, True, pos)  # the last line, unterminated: torn
        raw = data[pos:end]
        pos = end + 1
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ResultsFormatError(f"{path}:{lineno}: malformed line ({exc}); only a torn "
                                     "(unterminated) last line is tolerated") from None
        if not isinstance(obj, dict):
            raise ResultsFormatError(f"{path}:{lineno}: not a JSON object")
        points.append(obj)
    return PointsRead(points, False, len(data))


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_meta(run_dir: str) -> dict:
    """meta.json of a run directory; raises ResultsFormatError naming the path."""
    path = os.path.join(run_dir, META_FILE)
    try:
        meta = read_json(path)
    except (OSError, ValueError) as exc:
        raise ResultsFormatError(f"{path}: cannot read ({exc})") from None
    if not isinstance(meta, dict):
        raise ResultsFormatError(f"{path}: not a JSON object")
    return meta


# -- writing ------------------------------------------------------------------------------
def new_run_dir(parent: str, scenario_name: str) -> str:
    """Create and return parent/<UTC time>-<scenario>[-N] (never reuses a directory)."""
    os.makedirs(parent, exist_ok=True)
    base = f"{utc_stamp()}-{scenario_name}"
    for n in range(1, 1000):
        path = os.path.join(parent, base if n == 1 else f"{base}-{n}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        os.mkdir(os.path.join(path, LOGS_DIR))
        return path
    raise RuntimeError(f"cannot create a run directory under {parent}")


def write_json_atomic(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunWriter:
    """Owns one run directory's meta.json and points.jsonl (absolute paths)."""

    def __init__(self, run_dir: str):
        self.run_dir = os.path.abspath(run_dir)
        self.meta_path = os.path.join(self.run_dir, META_FILE)
        self.points_path = os.path.join(self.run_dir, POINTS_FILE)
        self.logs_dir = os.path.join(self.run_dir, LOGS_DIR)
        os.makedirs(self.logs_dir, exist_ok=True)
        self.meta: dict = {}

    def write_meta(self, meta: dict) -> None:
        self.meta = meta
        write_json_atomic(self.meta_path, meta)

    def load_meta(self) -> dict:
        self.meta = read_meta(self.run_dir)
        return self.meta

    def update_meta(self, **fields) -> None:
        self.meta.update(fields)
        write_json_atomic(self.meta_path, self.meta)

    def read_points(self) -> PointsRead:
        return read_points(self.points_path)

    def append_point(self, point: dict) -> None:
        """Append one line and make it durable; signals are held off meanwhile."""
        line = json.dumps(point, separators=(",", ":"), allow_nan=False) + "\n"
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
        try:
            with open(self.points_path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def repair_tail(self) -> bool:
        """Cut a torn last line off points.jsonl (the rule above); True if something was cut.
        Raises ResultsFormatError on damage (resume refuses a damaged run)."""
        got = self.read_points()
        if not got.torn:
            return False
        with open(self.points_path, "rb+") as f:
            f.truncate(got.complete_bytes)
            f.flush()
            os.fsync(f.fileno())
        return True


# -- scenario order -----------------------------------------------------------------------
def order_meta(row_keys: list[str], load_keys: list[str]) -> dict:
    """meta.json's `order`: the scenario's row keys and load keys in file order (the order in
    which tables list them), recorded by the sweep so that readers need no scenario parser."""
    return {"rows": list(row_keys), "loads": list(load_keys)}


def scenario_order(meta: dict) -> tuple[dict[str, int], dict[str, int]]:
    """(row key -> index, load key -> index) of a run; empty maps when unknown.

    From meta.json's `order`; a run written before it existed has only `scenario_text`, which
    is then parsed by the scenario format's own parser (scenario.py, which runs nothing)."""
    order = meta.get("order")
    if isinstance(order, dict) and isinstance(order.get("rows"), list) \
            and isinstance(order.get("loads"), list):
        return ({k: i for i, k in enumerate(order["rows"])},
                {k: i for i, k in enumerate(order["loads"])})
    rows: dict[str, int] = {}
    loads: dict[str, int] = {}
    text = meta.get("scenario_text")
    if isinstance(text, str) and text.strip():
        try:
            sc = scenario.parse(text, meta.get("scenario_file") or "meta.json scenario_text")
            rows = {r.key: i for i, r in enumerate(sc.rows)}
            for lds in sc.load_sets.values():
                for ld in lds:
                    loads.setdefault(ld.key, len(loads))
                    # A load that named no generator in a text this old was driven by wrk, the
                    # default then, whose keys name no generator: its records carry that key.
                    loads.setdefault(ld.key.replace(f" [{ld.generator}]", "", 1), loads[ld.key])
        except Exception:  # noqa: BLE001 - an older or foreign format means "no order"
            rows, loads = {}, {}
    return rows, loads
