"""`cbench compare`: a run against a published table, or run B against run A (reads results only).
--format csv|json exports the same comparison's numbers (render/export.py). Exit status 3: two
runs' environments differ (without --force)."""
from __future__ import annotations

import sys

from ..analysis import findings, replicas, runload, scorecard
from ..format import published
from ..format.published import STACK_CPP, STACK_RUBY
from ..render import export, pubcompare, replication, reportgen, runcompare, tables
from .common import err, write_output


def add_arguments(parser) -> None:
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="one run (with --published) or two runs A B (B is compared with A);"
                             " a directory or a run id under results/runs/")
    parser.add_argument("--published", metavar="NAME",
                        help="compare one run with results/published/NAME.json (e.g. ever)")
    parser.add_argument("--replication", action="store_true",
                        help="RUN_A RUN_B ...: the same published findings judged on each run (one machine"
                             " each) side by side; with --published NAME, else the table whose rows the first"
                             " run carries")
    parser.add_argument("--latency", choices=sorted(tables.LATENCY_STATS), default="max",
                        help="latency statistic shown beside req/s with --published (default: max)")
    parser.add_argument("--force", action="store_true",
                        help="compare two runs even if their environments differ (the output says how)")
    parser.add_argument("--format", choices=export.FORMATS, default="md",
                        help="md: Markdown (default); csv or json: the numbers, intervals and verdicts with"
                             " the run's identity (results/SCHEMA.md); not with --replication")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the comparison to FILE")


def _replication(args) -> tuple[int, str]:
    if len(args.runs) < 2:
        return err("compare", "--replication takes two or more runs"), ""
    if args.format != "md":
        return err("compare", "--replication prints Markdown only (--format md)"), ""
    runs = [runload.load_run(x) for x in args.runs]
    if args.published:
        pub = published.load_published(args.published)
    else:
        pubs = reportgen.matching_published(runs[0])
        if not pubs:
            return err("compare", "the first run carries no published row labels; give --published NAME"), ""
        pub = pubs[0]
    return 0, replication.render_replication(runs, pub)


def _published(args) -> tuple[int, str]:
    if len(args.runs) != 1:
        return err("compare", "--published takes exactly one RUN"), ""
    r = runload.load_run(args.runs[0])
    pub = published.load_published(args.published)
    an = findings.Analysis(r, pub)  # first: a badly declared finding is refused before anything else
    why = pubcompare.unmatched_message(r, pub)
    if why:
        print(f"cbench compare: {why}", file=sys.stderr)
        return 1, ""
    if args.format == "md":
        return 0, pubcompare.render_published_comparison(r, pub, latency=args.latency, findings_first=True)
    ruby = findings.Analysis(r, pub, stack=STACK_RUBY)
    scores = scorecard.scorecard(r, pub, {STACK_CPP: an, STACK_RUBY: ruby})
    records = (export.scorecard_records(scores, replicas.fidelity(r, pub)) + export.finding_records(an)
               + export.finding_records(ruby) + export.published_records(r, pub, pubcompare.published_cells(r, pub)))
    return 0, export.dump(records, export.run_identity(r), args.format, kind="published-comparison",
                          published=pub.name)


def _two_runs(args) -> tuple[int, str]:
    if len(args.runs) != 2:
        return err("compare", "give two runs (A B), or one run with --published NAME"), ""
    a, b = (runload.load_run(x) for x in args.runs)
    diffs = runcompare.env_differences(a, b)
    if diffs and not args.force:
        print(runcompare.refusal_message(a, b, diffs), file=sys.stderr)
        return 3, ""
    if args.format == "md":
        return 0, runcompare.render_run_comparison(a, b, forced_diffs=diffs)
    return 0, export.dump(export.run_comparison_records(runcompare.point_comparisons(a, b)), export.run_identity(b),
                          args.format, kind="run-comparison", baseline=export.run_identity(a),
                          forced_env_differences=[list(map(str, d)) for d in diffs or []])


def run(args) -> int:
    try:
        if args.replication:
            rc, text = _replication(args)
        elif args.published:
            rc, text = _published(args)
        else:
            rc, text = _two_runs(args)
    except (runload.RunError, published.PublishedError, findings.DeclarationError) as exc:
        # DeclarationError: a finding declared incompletely (e.g. a fallback metric without its own
        # direction and no-effect value) is refused with the finding named, never judged.
        print(f"cbench compare: {exc}", file=sys.stderr)
        return 1
    if rc:
        return rc
    sys.stdout.write(text)
    return write_output("compare", args.output, text) if args.output else 0
