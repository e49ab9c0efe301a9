"""The sequential stopping rule the sweep calls between blocks (`--target-ci`, `--max-repetitions`).

Contract with the executor (harness): after each block it calls
`decide(run_dir, published_name, target_ci_pct, max_repetitions)`; when `stop` is false it runs
one more block for what `rows` names and calls again. Each entry of `rows` is the `point_id` of
the point (row x load) that needs it, as recorded in points.jsonl, so only the primary point of a
comparison is repeated; the row's `row.key` when a record has no point_id (the executor then
runs every point of that row).

The rule is a two-stage design on the interval's WIDTH, never on which side of the null it falls
(stopping when "significant" would inflate the error rates): the first PILOT_BLOCKS blocks are a
pilot; from the pilot's spread alone it fixes how many blocks the comparison needs for a 95%
interval of half-width target_ci_pct percent (stats.reps_for_half_width), capped at
max_repetitions, and asks for blocks until the rows have that many. Stopping as soon as the
running interval happens to be narrow would stop exactly where the spread was underestimated by
chance, and such intervals under-cover (the simulation showed 92% coverage with outliers); a
count fixed by the pilot does not chase the noise. The simulation test
(tests/report/simulation_judging.py, ctest report_simulation) checks the resulting error rates and coverage.

Which intervals: with a published table, each declared finding's comparisons at their primary
load point, on the metric that decides there (findings.py), on each stack the findings judge: the
C++ rows at the finding's primary point and the Ruby rows at its "ruby" block's (a finding not
measured on Ruby adds nothing there); the two stacks' comparisons are sized alike and apart, as
their rows are different rows. A comparison where no declared metric
can decide (e.g. req/s at a client-bound point) asks for nothing, since more blocks cannot help.
Without one, every row's own req/s at every load point (the interval of its mean on the log scale).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from . import findings, runload, stats
from ..format import published


@dataclass
class Decision:
    stop: bool
    reason: str
    rows: list[str] = field(default_factory=list)


# The stacks whose findings' comparisons are sized, and how a comparison's name says its stack
# (the C++ rows' names stay as they were before Ruby rows existed).
STACKS = (published.STACK_CPP, published.STACK_RUBY)
STACK_SUFFIX = {published.STACK_CPP: "", published.STACK_RUBY: " on the Ruby rows"}

# Blocks of the pilot stage: 4 gives a spread estimate with 3 degrees of freedom, enough to size
# the second stage to within a factor of about 2, at the cost of 4 rounds every comparison needs.
PILOT_BLOCKS = 4


def _pilot(run: runload.Run) -> runload.Run:
    """The run restricted to its first PILOT_BLOCKS blocks (or repetitions, in runs without blocks)."""
    def first(p: dict) -> bool:
        b = p.get("block")
        b = b if isinstance(b, int) else p.get("rep")
        return isinstance(b, int) and b < PILOT_BLOCKS
    return runload.Run(run.dir, run.meta, [p for p in run.points if first(p)], False)


def _reps(run: runload.Run, row_key: str, lid) -> int:
    c = run.cell(row_key, lid)
    if c is None:
        return 0
    blocks = {p.get("block") for p in c.ok_points}
    if None in blocks or not blocks:
        return len(c.ok_points)
    return len(blocks)


def _single_reps_needed(values: list[float], target_pct: float) -> int | None:
    """Repetitions for the 95% t interval of one row's mean log value to be ±target_pct wide."""
    if len(values) < stats.MIN_REPS_FOR_CI or min(values) <= 0:
        return None
    sd = statistics.stdev([math.log(v) for v in values])
    for n in range(2, stats.MAX_REPS_SEARCH + 1):
        if stats.t975(n - 1) * sd / math.sqrt(n) <= math.log(1.0 + target_pct / 100.0):
            return n
    return stats.MAX_REPS_SEARCH + 1


def decide(run_dir: str, published_name: str | None, target_ci_pct: float, max_repetitions: int) -> Decision:
    """Whether the run has sampled enough (see the module docstring); never raises on a run that
    has no points yet (it then asks for every row)."""
    run = runload.load_run(run_dir)
    need: list[str] = []
    notes: list[str] = []
    capped: list[str] = []
    checked = 0

    def want(row_key: str, lid, what: str, needed: int | None) -> None:
        """Ask for a block for row_key unless it has `needed` repetitions (None: pilot unfinished)."""
        nonlocal checked
        checked += 1
        have = _reps(run, row_key, lid)
        goal = max_repetitions if needed is None else min(max(needed, PILOT_BLOCKS), max_repetitions)
        if needed is None and have >= PILOT_BLOCKS:
            goal = max_repetitions  # a pilot without a usable spread: sample to the cap
        if have >= goal:
            if needed is None or needed > max_repetitions:
                capped.append(f"{what} at {max_repetitions} repetitions")
            return
        c = run.cell(row_key, lid)
        pid = next((p.get("point_id") for p in (c.points if c else []) if p.get("point_id")), None)
        ident = pid or row_key
        if ident not in need:
            need.append(ident)

    pilot = _pilot(run)
    if published_name:
        pub = published.load_published(published_name)
        for stack in STACKS:
            for f in findings.Analysis(pilot, pub, stack=stack).findings:
                for ln in f.lines:
                    res = next((r for r in ln.results if r.primary is not None and r.primary.can), None)
                    name = f"finding {f.fid} {ln.name}{STACK_SUFFIX[stack]}"
                    if res is None:
                        notes.append(f"{name}: no declared metric can decide at the primary point;"
                                     " more blocks would not help")
                        continue
                    ci = res.primary.ci
                    pilot_done = ci is not None and min(ci.n_num, ci.n_den) >= PILOT_BLOCKS
                    needed = stats.reps_for_half_width(ci, target_ci_pct) if pilot_done else None
                    what = f"{name} ({findings.METRICS[res.spec.metric][1]})"
                    for key in (ln.a.key, ln.b.key):
                        want(key, res.primary.load.lid, what, needed)
    else:
        for (key, lid), c in run.cells.items():
            if lid.idle:
                continue
            pc = pilot.cell(key, lid)
            vals = pc.rps() if pc is not None else []
            needed = _single_reps_needed(vals, target_ci_pct) if len(vals) >= PILOT_BLOCKS else None
            want(key, lid, f"{key} {lid.key}", needed)

    tail = ("; " + "; ".join(notes)) if notes else ""
    if need:
        return Decision(False, f"{len(need)} row(s) need another block: the pilot ({PILOT_BLOCKS} blocks) is"
                        f" unfinished, or its spread needs more blocks for ±{target_ci_pct:g}% (at most"
                        f" {max_repetitions})" + tail, need)
    if capped:
        return Decision(True, f"stopped at --max-repetitions {max_repetitions} with intervals still wider than"
                        f" ±{target_ci_pct:g}%: " + "; ".join(capped) + tail, [])
    if checked == 0:
        return Decision(True, "nothing to sample: no comparison of the run has rows" + tail, [])
    return Decision(True, f"every comparison has the blocks its pilot asked for ±{target_ci_pct:g}%"
                    f" ({checked} checked)" + tail, [])
