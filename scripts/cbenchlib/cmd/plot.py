"""`cbench plot RUN`: PNG and SVG charts of a run into RUN/charts/ (reads results only)."""
from __future__ import annotations

import sys

from ..render import charts
from .common import load_run


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", help="run directory, or a run id under results/runs/")
    parser.add_argument("--out", metavar="DIR", help="write charts here instead of RUN/charts/")


def plot_run(r, out_dir=None):
    """charts.plot_run; matplotlib is imported only when charts are drawn."""
    return charts.plot_run(r, out_dir)


def run(args) -> int:
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
