"""`cbench html`: write report/index.html, the report as one self-contained page (REPORT.md and the
generated pages under report/, with their charts inlined; render/htmlview.py). Reads files only.

Exit status 1 when a page embeds an image that does not exist (the page is still written, with
the gap marked, so it can be looked at) or when the output cannot be written."""
from __future__ import annotations

import os
import sys

from ..format.paths import REPO_ROOT
from ..render import htmlview
from .common import EXIT_FAILED, write_output

VERB = "html"


def add_arguments(parser) -> None:
    parser.add_argument("--root", default=REPO_ROOT,
                        help="the directory holding REPORT.md and report/ (default: the repository)")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="the HTML file to write (default: ROOT/report/index.html)")


def run(args) -> int:
    report = os.path.join(args.root, htmlview.REPORT_NAME)
    if not os.path.isfile(report):
        print(f"cbench {VERB}: {report}: no REPORT.md to convert (make report writes it)", file=sys.stderr)
        return EXIT_FAILED
    out = args.output or os.path.join(args.root, htmlview.DEFAULT_OUTPUT)
    if not args.output:
        os.makedirs(os.path.dirname(out), exist_ok=True)  # report/ before the detail pages exist
    view = htmlview.build(args.root, out)
    status = write_output(VERB, out, view.html)
    if status:
        return status
    print(f"cbench {VERB}: {out}: {len(view.charts)} charts inlined from {len(htmlview.pages(args.root))} pages")
    for rel in view.missing:
        print(f"cbench {VERB}: {rel}: embedded in the report but missing", file=sys.stderr)
    return EXIT_FAILED if view.missing else 0
