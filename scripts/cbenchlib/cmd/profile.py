"""`cbench profile RUN`: each point's server CPU by where it goes, from `cbench sweep --profile`.

    scripts/cbench profile results/runs/<id>                       # every profiled point
    scripts/cbench profile <id> --load "-t4 -c64 /spin?us=10" --top 8

Reads the run's profile/ directory only (profiling.py records it; the classifier of symbols is
cpubreakdown.py's, shared with `cbench breakdown`). Runs nothing.
"""
from __future__ import annotations

import sys

from ..run import profiling
from ..format import runlogs
from .common import bounded_int, run_dir as resolve_run_dir


def add_arguments(p) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory, or a run id under results/runs/")
    p.add_argument("--load", metavar="KEY", help="only this load, as the sweep names it (e.g. '-t4 -c64 /spin?us=10')")
    p.add_argument("--top", type=bounded_int(1, 1000), default=5, help="leaf symbols per group (default 5)")


def run(args) -> int:
    run_dir = resolve_run_dir(args.run)
    if not runlogs.exists(run_dir, f"{profiling.PROFILE_DIR}/{profiling.INDEX_NAME}"):
        print(f"cbench profile: {run_dir} has no {profiling.PROFILE_DIR}/{profiling.INDEX_NAME} "
              "(record one with `scripts/cbench sweep SCENARIO --profile`)", file=sys.stderr)
        return 1
    print(profiling.render(run_dir, args.top, args.load))
    return 0
