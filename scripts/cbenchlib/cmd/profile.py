"""`cbench profile RUN`: each point's server CPU by where it goes, from `cbench sweep --profile`.

    scripts/cbench profile results/runs/<id>                       # every profiled point
    scripts/cbench profile <id> --load "-t4 -c64 /spin?us=10" --top 8

Reads the run's profile/ directory only (profiling.py records it; the classifier of symbols is
cpubreakdown.py's, shared with `cbench breakdown`). Runs nothing.
"""
from __future__ import annotations

import os

from ..run import profiling
from ..format.paths import REPO_ROOT
from ..format import runlogs


def add_arguments(p) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory, or a run id under results/runs/")
    p.add_argument("--load", metavar="KEY", help="only this load, as the sweep names it (e.g. '-t4 -c64 /spin?us=10')")
    p.add_argument("--top", type=int, default=5, help="leaf symbols per group (default 5)")


def run(args) -> int:
    run_dir = args.run if os.path.isdir(args.run) else os.path.join(REPO_ROOT, "results", "runs", args.run)
    if not runlogs.exists(run_dir, f"{profiling.PROFILE_DIR}/{profiling.INDEX_NAME}"):
        print(f"profile: {run_dir} has no {profiling.PROFILE_DIR}/{profiling.INDEX_NAME} "
              "(record one with `scripts/cbench sweep SCENARIO --profile`)")
        return 1
    print(profiling.render(run_dir, args.top, args.load))
    return 0
