"""`cbench table RUN`: tables of a run in the published format (reads results only), as
Markdown, or as CSV or JSON (render/export.py: one record per cell, the values the Markdown shows)."""
from __future__ import annotations

import os
import sys

from ..render import export, tables
from .common import load_run, write_output


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory, or a run id under results/runs/")
    parser.add_argument("--latency", choices=sorted(tables.LATENCY_STATS), default="max",
                        help="latency statistic in parentheses (default: max, as in the published table)")
    parser.add_argument("--format", choices=export.FORMATS, default="md",
                        help="md: the Markdown tables (default); csv or json: one record per cell with its"
                             " median, interval and verdicts (results/SCHEMA.md, 'Exported tables')")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="also write the output to FILE ('-' for stdout only; 'run' for RUN/tables.md,"
                             " .csv or .json)")


def run(args) -> int:
    r = load_run("table", args.run)
    if r is None:
        return 1
    if args.format == "md":
        text = tables.render_run_tables(r, latency=args.latency)
    else:
        text = export.dump(export.table_records(r, latency=args.latency), export.run_identity(r), args.format)
    sys.stdout.write(text)
    if args.output and args.output != "-":
        path = os.path.join(r.dir, f"tables.{args.format}") if args.output == "run" else args.output
        return write_output("table", path, text)
    return 0
