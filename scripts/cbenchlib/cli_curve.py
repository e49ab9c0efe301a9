"""`cbench curve RUN`: the latency-against-offered-load chart and the capacity table of a run
with open-loop cbench-load points (scenarios/latency-curve.toml). Reads results only."""
from __future__ import annotations

import os
import sys

from . import latencycurve


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory, or a run id under results/runs/")
    parser.add_argument("--target-ms", type=float, default=latencycurve.DEFAULT_TARGET_US / 1000,
                        help="p99 target for the capacity figure (default: 10 ms)")


def run(args) -> int:
    run_dir = args.run if os.path.isdir(args.run) else os.path.join("results", "runs", args.run)
    try:
        paths, text = latencycurve.write_run(run_dir, args.target_ms * 1000)
    except (OSError, ValueError) as exc:
        print(f"cbench curve: {exc}", file=sys.stderr)
        return 1
    print(text)
    for p in paths:
        print(f"wrote {p}")
    return 0
