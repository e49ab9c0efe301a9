"""`cbench table RUN`: markdown tables of a run in the published format (reads results only)."""
from __future__ import annotations

import os
import sys

from ..render import tables
from .common import load_run


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory, or a run id under results/runs/")
    parser.add_argument("--latency", choices=sorted(tables.LATENCY_STATS), default="max",
                        help="latency statistic in parentheses (default: max, as in the published table)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="also write the tables to FILE ('-' for stdout only; 'run' for RUN/tables.md)")


def run(args) -> int:
    r = load_run("table", args.run)
    if r is None:
        return 1
    text = tables.render_run_tables(r, latency=args.latency)
    sys.stdout.write(text)
    if args.output and args.output != "-":
        path = os.path.join(r.dir, "tables.md") if args.output == "run" else args.output
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return 0
