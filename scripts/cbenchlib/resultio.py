"""Writing a run directory (results/SCHEMA.md), and the little reading that --resume needs.

points.jsonl is appended one line per finished repetition, flushed and fsynced,
with SIGINT/SIGTERM held off while a line is written, so an interrupted sweep
never leaves half a line (and a torn tail from a crash is cut off on resume).
meta.json is replaced atomically (write to a temporary file, rename).
"""
from __future__ import annotations

import datetime
import json
import os
import signal

SCHEMA_VERSION = 1
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_stamp() -> str:
    """Compact UTC time for directory names: 20261122T101500Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


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
        os.mkdir(os.path.join(path, "logs"))
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


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class RunWriter:
    """Owns one run directory's meta.json and points.jsonl."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.meta_path = os.path.join(run_dir, "meta.json")
        self.points_path = os.path.join(run_dir, "points.jsonl")
        self.logs_dir = os.path.join(run_dir, "logs")
        os.makedirs(self.logs_dir, exist_ok=True)
        self.meta: dict = {}

    def write_meta(self, meta: dict) -> None:
        self.meta = meta
        write_json_atomic(self.meta_path, meta)

    def update_meta(self, **fields) -> None:
        self.meta.update(fields)
        write_json_atomic(self.meta_path, self.meta)

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
        """Cut a torn last line (no trailing newline) off points.jsonl; True if something was cut."""
        try:
            with open(self.points_path, "rb+") as f:
                data = f.read()
                if not data or data.endswith(b"\n"):
                    return False
                keep = data.rfind(b"\n") + 1
                f.truncate(keep)
                return True
        except FileNotFoundError:
            return False


def read_points(path: str) -> tuple[list[dict], int]:
    """(points, number of unreadable lines skipped) from a points.jsonl; a torn last line is skipped."""
    points, bad = [], 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1
                    continue
                if isinstance(obj, dict):
                    points.append(obj)
                else:
                    bad += 1
    except FileNotFoundError:
        pass
    return points, bad


def completed(points: list[dict]) -> set[tuple[str, int]]:
    """(point_id, rep) pairs already recorded (ok or failed) — what --resume skips."""
    return {(p["point_id"], p["rep"]) for p in points if "point_id" in p and "rep" in p}
