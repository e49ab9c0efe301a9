"""`cbench compare`: a run against a published table, or run B against run A (reads results only)."""
from __future__ import annotations

import sys

from ..analysis import findings, runload
from ..render import pubcompare, runcompare, tables
from ..format import published
from ..render import reportgen


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
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the comparison to FILE")


def run(args) -> int:
    try:
        if args.replication:
            if len(args.runs) < 2:
                print("cbench compare: --replication takes two or more runs", file=sys.stderr)
                return 2
            runs = [runload.load_run(x) for x in args.runs]
            if args.published:
                pub = published.load_published(args.published)
            else:
                pubs = reportgen.matching_published(runs[0])
                if not pubs:
                    print("cbench compare: the first run carries no published row labels; give --published NAME",
                          file=sys.stderr)
                    return 2
                pub = pubs[0]
            text = pubcompare.render_replication(runs, pub)
        elif args.published:
            if len(args.runs) != 1:
                print("cbench compare: --published takes exactly one RUN", file=sys.stderr)
                return 2
            r = runload.load_run(args.runs[0])
            pub = published.load_published(args.published)
            text = pubcompare.render_published_comparison(r, pub, latency=args.latency)
        else:
            if len(args.runs) != 2:
                print("cbench compare: give two runs (A B), or one run with --published NAME", file=sys.stderr)
                return 2
            a, b = (runload.load_run(x) for x in args.runs)
            diffs = runcompare.env_differences(a, b)
            if diffs and not args.force:
                print(runcompare.refusal_message(a, b, diffs), file=sys.stderr)
                return 3
            text = runcompare.render_run_comparison(a, b, forced_diffs=diffs)
    except (runload.RunError, published.PublishedError, findings.DeclarationError) as exc:
        # DeclarationError: a finding declared incompletely (e.g. a fallback metric without its own
        # direction and no-effect value) is refused with the finding named, never judged.
        print(f"cbench compare: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0
