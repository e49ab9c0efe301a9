"""`cbench plot RUN`: PNG and SVG charts of a run into RUN/charts/ (reads results only).
`cbench plot --overview [--out DIR]`: the report's four overview charts (render/overview.py) from
the reference set listed in results/reference-runs.toml, into report/charts/ by default."""
from __future__ import annotations

import os
import sys

from ..format.paths import REPO_ROOT, RESULTS_DIR
from ..render import charts, overview, reportgen
from .common import err, load_run

OVERVIEW_OUT = os.path.join(REPO_ROOT, "report", "charts")
REFERENCE_RUNS = os.path.join(RESULTS_DIR, "reference-runs.toml")


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", nargs="?", help="run directory, or a run id under results/runs/")
    parser.add_argument("--out", metavar="DIR", help="write charts here instead of RUN/charts/"
                        " (with --overview: instead of report/charts/)")
    parser.add_argument("--overview", action="store_true",
                        help="draw the report's four overview charts from the reference set (no RUN)")
    parser.add_argument("--config", metavar="TOML", default=REFERENCE_RUNS,
                        help="with --overview: the reference set (default results/reference-runs.toml)")


def plot_run(r, out_dir=None):
    """charts.plot_run; matplotlib is imported only when charts are drawn."""
    return charts.plot_run(r, out_dir)


def run_overview(args) -> int:
    try:
        config = reportgen.read_config(args.config)
    except reportgen.ReportError as exc:
        print(f"cbench plot: {exc}", file=sys.stderr)
        return 1
    out = args.out or OVERVIEW_OUT
    for c in overview.write_overview(overview.reference_runs(config, REPO_ROOT), out):
        print(f"wrote {c['png']}, .svg: {c['title']}")
    return 0


def run(args) -> int:
    if args.overview:
        if args.run:
            return err("plot", "--overview draws from the reference set; give no RUN")
        return run_overview(args)
    if not args.run:
        return err("plot", "give a RUN (or --overview)")
    r = load_run("plot", args.run)
    if r is None:
        return 1
    try:
        cs = plot_run(r, args.out)
    except OSError as exc:
        print(f"cbench plot: cannot write {exc.filename or args.out or 'charts'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"cbench plot: matplotlib is missing ({exc}); install Debian's python3-matplotlib"
              " (scripts/deps.sh) and run with /usr/bin/python3", file=sys.stderr)
        return 1
    for w in cs.written:
        print(f"wrote {cs.out_dir}/{w['name']}.png, .svg: {w['title']}")
    for s in cs.skipped:
        print(f"skipped {s['name']}: {s['reason']}")
    if not cs.written:
        print("cbench plot: the run has no data for any chart", file=sys.stderr)
    return 0
