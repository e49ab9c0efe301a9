"""`cbench curve RUN`: the latency-against-offered-load chart and the capacity table of a run
with open-loop cbench-load points (scenarios/latency-curve.toml), and the side-by-side table of
the generators (wrk, cbench-load, h2load) for closed-loop points that more than one drove
(scenarios/generator-crosscheck.toml). Reads results only."""
from __future__ import annotations

import os
import sys

from ..analysis import crosscheck, latencycurve
from ..render import crosscheck_table
from ..format import resultio
from .common import load_run, run_dir as resolve_run_dir


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory, or a run id under results/runs/")
    parser.add_argument("--target-ms", type=float, default=latencycurve.DEFAULT_TARGET_US / 1000,
                        help="p99 target for the capacity figure (default: 10 ms)")


def run(args) -> int:
    run_dir = resolve_run_dir(args.run)
    try:
        points = resultio.read_points(os.path.join(run_dir, resultio.POINTS_FILE)).points
    except (OSError, resultio.ResultsFormatError) as exc:
        print(f"cbench curve: {exc}", file=sys.stderr)
        return 1
    wrote = []
    if latencycurve.curve_points(points):
        try:
            paths, text = latencycurve.write_run(run_dir, args.target_ms * 1000)
        except OSError as exc:
            print(f"cbench curve: cannot write in {run_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(text)
        wrote += paths
    loaded = load_run("curve", run_dir)
    if loaded is None:
        return 1
    if crosscheck.groups(loaded):
        path, text = crosscheck_table.write_run(loaded)
        print(text)
        wrote.append(path)
    if not wrote:
        print(f"cbench curve: {run_dir}: neither open-loop points nor points driven by several generators",
              file=sys.stderr)
        return 1
    for p in wrote:
        print(f"wrote {p}")
    return 0
