"""`cbench html`: REPORT.md as one self-contained page, report/index.html (render/htmlview.py):
the generated text, its tables, and the charts inlined, with no network resource. Draws the
overview charts into report/charts/ first when they are missing there (from the reference set,
results/reference-runs.toml), so the page always shows them. Reads result files only."""
from __future__ import annotations

import os
import sys

from ..format.paths import REPO_ROOT
from ..render import htmlview, overview, reportgen
from .plot import OVERVIEW_OUT, REFERENCE_RUNS

REPORT_MD = os.path.join(REPO_ROOT, "REPORT.md")
INDEX_HTML = os.path.join(REPO_ROOT, "report", "index.html")


def add_arguments(parser) -> None:
    parser.add_argument("--report", metavar="MD", default=REPORT_MD, help="the Markdown to convert (default REPORT.md)")
    parser.add_argument("--charts", metavar="DIR", default=OVERVIEW_OUT,
                        help="the overview charts' folder (default report/charts/)")
    parser.add_argument("--config", metavar="TOML", default=REFERENCE_RUNS,
                        help="the reference set, to draw missing overview charts (default results/reference-runs.toml)")
    parser.add_argument("-o", "--output", metavar="FILE", default=INDEX_HTML,
                        help="the page to write (default report/index.html)")


def _ensure_overview(args) -> None:
    if all(os.path.isfile(os.path.join(args.charts, f"{name}.png")) for name, *_ in overview.OVERVIEW):
        return
    config = reportgen.read_config(args.config)
    for c in overview.write_overview(overview.reference_runs(config, REPO_ROOT), args.charts):
        print(f"wrote {c['png']}, .svg: {c['title']}")


def run(args) -> int:
    if not os.path.isfile(args.report):
        print(f"cbench html: {args.report}: no such file (make report writes REPORT.md)", file=sys.stderr)
        return 1
    try:
        _ensure_overview(args)
    except reportgen.ReportError as exc:
        print(f"cbench html: {exc}", file=sys.stderr)
        return 1
    path = htmlview.write(args.report, args.charts, args.output)
    print(f"wrote {path} ({os.path.getsize(path) // 1024} KiB, self-contained)")
    return 0
