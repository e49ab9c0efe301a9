"""What several `cbench` verbs share: how a verb reports an error, how results record a path,
how a verb that reads a run opens it, how it writes an output file, and the argument types whose
limits are the scenario format's (format/scenario_types.py), so a flag accepts what a scenario
file accepts and no more."""
from __future__ import annotations

import argparse
import os
import sys

from ..analysis import runload
from ..format import loadgen, scenario_types
from ..format.paths import repo_relative

__all__ = ["err", "load_run", "repo_relative", "run_dir", "write_output", "alias", "bounded_int",
           "bounded_float", "DURATION_S", "WARMUP_S", "REPETITIONS", "THREADS", "CONNECTIONS",
           "PIPELINE", "WRK_THREADS"]

# Exit statuses (scripts/cbench's docstring): 2 the command could not start (a bad argument),
# 1 it ran and failed (a run it cannot read, no matching data, an output it cannot write).
EXIT_USAGE, EXIT_FAILED = 2, 1


def err(verb: str, msg: str) -> int:
    """Print `cbench verb: msg` on stderr; returns 2, the status of a command that could not start."""
    print(f"cbench {verb}: {msg}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def load_run(verb: str, run: str):
    """runload.load_run(run), or None after printing `cbench verb: why` on stderr. A path (with a
    directory part) is only looked at as given."""
    if os.sep in run and not os.path.isdir(run):
        print(f"cbench {verb}: {run}: no such run directory", file=sys.stderr)
        return None
    try:
        return runload.load_run(run)
    except runload.RunError as exc:
        print(f"cbench {verb}: {exc}", file=sys.stderr)
        return None


def run_dir(arg: str) -> str:
    """A run argument as a directory: the path as given when it names a directory or has a
    directory part (results/runs/X stays results/runs/X), else a run id under results/runs/."""
    if os.path.isdir(arg) or os.sep in arg:
        return arg
    return os.path.join(runload.RUNS_DIR, arg)


def write_output(verb: str, path: str, text: str) -> int:
    """Write text to path; 0, or 1 after printing `cbench verb: cannot write PATH: reason`."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        print(f"cbench {verb}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def alias(p, old: str, dest: str) -> None:
    """A deprecated spelling of an option: hidden from --help, still accepted (scripts keep working).
    It sets the same dest as the canonical option and leaves it alone when not given."""
    p.add_argument(old, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def _bounded(kind, lo, hi, what: str):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {lo:g}..{hi:g} (the scenario format's limit)")
        return v
    parse.__name__ = what  # argparse names the type in its messages
    return parse


def bounded_int(lo: int, hi: int):
    """An argparse type: an integer in lo..hi."""
    return _bounded(int, lo, hi, "whole number")


def bounded_float(lo: float, hi: float):
    """An argparse type: a number in lo..hi."""
    return _bounded(float, lo, hi, "number")


# The scenario format's limits as argument types.
DURATION_S = bounded_int(1, scenario_types.MAX_DURATION_S)
WARMUP_S = bounded_float(0, scenario_types.MAX_DURATION_S)
REPETITIONS = bounded_int(1, scenario_types.MAX_REPETITIONS)


def ALTERNATE_MS(text: str) -> int:  # noqa: N802 - an argparse type, named like the others
    """0 (rows one after the other) or a turn length within loadgen's alternate_ms bounds."""
    v = bounded_int(0, loadgen.ALTERNATE_MS_MAX)(text)
    if 0 < v < loadgen.ALTERNATE_MS_MIN:
        raise argparse.ArgumentTypeError(f"expected 0 or {loadgen.ALTERNATE_MS_MIN} to {loadgen.ALTERNATE_MS_MAX} ms, got {v}")
    return v
THREADS = bounded_int(1, scenario_types.MAX_THREADS)
CONNECTIONS = bounded_int(1, scenario_types.MAX_CONNECTIONS)
PIPELINE = bounded_int(1, scenario_types.MAX_PIPELINE)
WRK_THREADS = bounded_int(1, scenario_types.MAX_WRK_THREADS)
