"""`cbench report RUN`: write RUN/report.md; `cbench report --root`: regenerate REPORT.md (the summary)
and its pages under report/ from REPORT.md.in (without a template, only REPORT.md's marked sections).

Reads results only (plots a run's charts first when they are missing, which also only reads).
"""
from __future__ import annotations

import os
import sys

from ..render import reportgen, tables
from .common import alias, load_run, write_output


def add_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN", nargs="?",
                        help="run directory, or a run id under results/runs/ (not with --root)")
    parser.add_argument("--latency", choices=sorted(tables.LATENCY_STATS), default="max",
                        help="latency statistic in the tables (default: max, as published)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw missing charts")
    parser.add_argument("--root", action="store_true",
                        help="regenerate REPORT.md and report/*.md from REPORT.md.in and results/reference-runs.toml")
    parser.add_argument("--config", default=reportgen.DEFAULT_CONFIG,
                        help="with --root: section -> run directory map (default: results/reference-runs.toml)")
    parser.add_argument("--report", default=reportgen.DEFAULT_REPORT,
                        help="with --root: the file to regenerate (default: REPORT.md at the repo root)")
    parser.add_argument("--template", default=None,
                        help="with --root: the template to render (default: REPORT.md.in beside the report"
                             " when it exists; without one, only the marked sections are regenerated)")
    parser.add_argument("-o", "--output", metavar="FILE", dest="out", default=None,
                        help="with --root: write the whole rendering, as one file, to FILE instead of the pages (its links"
                             " stay relative to --report's directory); for looking at a render without"
                             " changing REPORT.md")
    alias(parser, "--out", "out")  # the old spelling: --out names a directory in every other verb
    parser.add_argument("--check", action="store_true",
                        help="with --root: write nothing; exit 1 if the file is out of date")
    parser.add_argument("--allow-synthetic", action="store_true",
                        help="with --root: accept synthetic fixture runs (tests only; never for REPORT.md)")


def run_root(args) -> int:
    if args.allow_synthetic and os.path.abspath(args.report) == os.path.abspath(reportgen.DEFAULT_REPORT):
        print("cbench report: --allow-synthetic is for tests on another file; fixtures never go into"
              f" {reportgen.DEFAULT_REPORT}", file=sys.stderr)
        return 2
    template = args.template or (args.report + ".in")
    if os.path.exists(template) and not args.out:
        return run_pages(args, template)
    def render():
        config = reportgen.read_config(args.config)
        root = os.path.dirname(os.path.abspath(args.report))
        text = ""
        if os.path.exists(args.report):
            with open(args.report, encoding="utf-8") as f:
                text = f.read()
        if os.path.exists(template):
            with open(template, encoding="utf-8") as f:
                new, _ = reportgen.render_template(f.read(), config, args.allow_synthetic, root,
                                                   os.path.relpath(template))
        else:
            with open(args.report, encoding="utf-8") as f:
                text = f.read()
            reportgen.check_markers(text, args.report)
            new = reportgen.regenerate(text, config, args.allow_synthetic, root)
        return config, text, new

    rendered = _rendered(args.report, render)
    if rendered is None:
        return 1
    config, text, new = rendered
    names = reportgen.section_names(new)
    unknown = [n for n in config if n not in names]
    for n in unknown:
        print(f"cbench report: warning: {args.config} lists section {n!r} but {args.report} has no markers for it",
              file=sys.stderr)
    if args.check:
        if new != text:
            print(f"cbench report: {args.report} is out of date; run `cbench report --root`", file=sys.stderr)
            return 1
        print(f"{args.report}: up to date ({len(names)} generated sections)")
        return 0
    if args.out:
        if write_output("report", args.out, new):
            return 1
        print(f"{args.report}: rendered to {args.out} ({args.report} not changed)")
    elif new != text and write_output("report", args.report, new):
        return 1
    for n in names:
        run_dir = ((config.get(n) or {}).get("run") or "not yet run") if n != reportgen.DECISION_TABLE \
            else "generated from every section's reference run"
        print(f"{args.report}: section {n}: {run_dir}")
    return 0


def run_pages(args, template: str) -> int:
    """REPORT.md (the summary) and its pages under report/, written beside --report; with
    --check, exit 1 when any of them differs from what would be written."""
    root = os.path.dirname(os.path.abspath(args.report))

    def render():
        config = reportgen.read_config(args.config)
        with open(template, encoding="utf-8") as f:
            return reportgen.render_pages(f.read(), config, args.allow_synthetic, root, os.path.relpath(template))

    pages = _rendered(template, render)
    if pages is None:
        return 1
    pages[os.path.basename(args.report)] = pages.pop("REPORT.md")
    stale = [p for p, text in pages.items() if _read(os.path.join(root, p)) != text]
    if args.check:
        for p in stale:
            print(f"cbench report: {p} is out of date; run `cbench report --root`", file=sys.stderr)
        print(f"{args.report}: {len(pages) - len(stale)} of {len(pages)} pages up to date")
        return 1 if stale else 0
    for p in stale:
        os.makedirs(os.path.dirname(os.path.join(root, p)), exist_ok=True)
        if write_output("report", os.path.join(root, p), pages[p]):
            return 1
    print(f"{args.report}: {len(stale)} of {len(pages)} pages rewritten ({', '.join(stale) or 'none'})")
    return 0


def _rendered(read_path: str, render):
    """render()'s result, or None after printing why not: a file it could not read (named as
    READ_PATH, the file the command was asked to render) or the ReportError it raised."""
    try:
        return render()
    except OSError as exc:
        print(f"cbench report: {read_path}: cannot read ({exc.strerror})", file=sys.stderr)
    except reportgen.ReportError as exc:
        print(f"cbench report: {exc}", file=sys.stderr)
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def run(args) -> int:
    if args.root:
        if args.run:
            print("cbench report: --root takes no RUN (runs come from the config)", file=sys.stderr)
            return 2
        return run_root(args)
    if not args.run:
        print("cbench report: give RUN, or --root", file=sys.stderr)
        return 2
    r = load_run("report", args.run)
    if r is None:
        return 1
    path = reportgen.write_run_report(r, args.latency, plot=not args.no_plot)
    print(f"wrote {path}")
    return 0
