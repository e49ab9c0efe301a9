"""Families of concurrency models, and the verdict of one decision-table cell: the families ranked
by their best member, the winner's margin over the next family and over the worst, and the
members equivalent to the winner.

A family is what a user chooses between (event loop, thread per connection, worker pool,
processes, fibers, completion); a model is one implementation of it. MODEL_FAMILY declares each
model's family (cbench-server --list names the models); a row run with --processes N > 1 is in
the processes family whatever its model; instruments (the floors) are never ranked.
Only cbench-server's model rows (the C++ stack, format/published.row_stack) are ranked: a Ruby
row (a replica or a Ruby server) differs from them in its runtime (an interpreter, its GVL, its
own parser), not only in its concurrency model, so ranking it beside them would credit the
runtime to a family; the other peers (nginx, h2o) are whole servers, not models, for the same
reason. row_family says which rows are ranked.

Every comparison is a ratio with a 95% interval, paired by block when both rows recorded blocks
(stats.ratio_ci), oriented so that > 1 is the better row's advantage, and gets one verdict:
- "equivalent within M": the two one-sided tests pass against the metric's margin M (the 90%
  interval lies inside it; format/metrics.py declares M): a tie is an answer;
- "wins": not equivalent, and the interval excludes 1 in the better row's favour;
- "undecided (why)": neither.
Equivalence is tested first, so a difference inside the margin is never a win however narrow its
interval.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import findings, stats, verdict
from ..format.published import STACK_CPP, row_stack

EVENT_LOOP, THREAD_PER_CONNECTION, WORKER_POOL = "event loop", "thread per connection", "worker pool"
PROCESSES, FIBERS, COMPLETION = "processes", "fibers", "completion"
FAMILIES = (EVENT_LOOP, THREAD_PER_CONNECTION, WORKER_POOL, PROCESSES, FIBERS, COMPLETION)
UNCLASSIFIED = "unclassified"  # a model missing from MODEL_FAMILY: ranked, and named as such

# model -> family. The family is the programming model a user writes to, the unit that holds a
# waiting connection: a callback or pull loop on readiness (event loop), a thread (thread per
# connection), a queue of ready connections handed to workers (worker pool), a stack written
# forward (fibers), a completion handler after the kernel or library did the I/O (completion).
MODEL_FAMILY = {
    "epoll-reactor": EVENT_LOOP,
    "multi-reactor": EVENT_LOOP,
    "pull-loop": EVENT_LOOP,
    "selector": EVENT_LOOP,
    "libuv": EVENT_LOOP,
    "thread-per-connection": THREAD_PER_CONNECTION,
    "blocking-pool": THREAD_PER_CONNECTION,  # a connection holds one of N threads while it is open
    "worker-pool": WORKER_POOL,
    "selector-pool": WORKER_POOL,
    "fiber": FIBERS,
    "asio-coro": FIBERS,  # stackless, but written forward one coroutine per connection like a fiber
    "io-uring": COMPLETION,
    "asio": COMPLETION,  # completion handlers (the proactor interface), whatever Asio polls with
}
INSTRUMENTS = frozenset({"floor", "floor-uring"})  # measuring floors, not models: never ranked

WINS, EQUIVALENT, UNDECIDED = "wins", "equivalent", "undecided"


def family_of(model: str | None, processes) -> str | None:
    """The family of a model row (None: an instrument, never ranked)."""
    if model is None or model in INSTRUMENTS:
        return None
    if isinstance(processes, int) and not isinstance(processes, bool) and processes > 1:
        return PROCESSES
    return MODEL_FAMILY.get(model, UNCLASSIFIED)


def row_family(kind: str | None, model: str | None, processes) -> str | None:
    """The family of a run row, or None when it is never ranked: not a cbench-server model (a Ruby
    row, another peer) or an instrument."""
    if kind != "model" or row_stack(kind, model) != STACK_CPP:
        return None
    return family_of(model, processes)


@dataclass(frozen=True)
class Entry:
    """One row's repetitions of the cell's metric (values and their blocks, None when unrecorded)."""
    key: str
    family: str
    values: tuple
    blocks: tuple

    @property
    def median(self) -> float:
        return stats.median(list(self.values))


@dataclass(frozen=True)
class Verdict:
    word: str
    ci: stats.RatioCI | None
    why: str = ""  # for UNDECIDED


def compare(better: Entry, worse: Entry, higher: bool, margin: float) -> Verdict:
    """The verdict of BETTER against WORSE (the interval is better's advantage, > 1 in its favour)."""
    a, b = (better, worse) if higher else (worse, better)
    ci = stats.ratio_ci(list(a.values), list(b.values), blocks_num=list(a.blocks), blocks_den=list(b.blocks))
    if ci is None or not ci.enough_reps:
        return Verdict(UNDECIDED, ci, f"too few repetitions for an interval (need {stats.MIN_REPS_FOR_CI} each)")
    if stats.tost_equivalent(ci, margin)[0]:
        return Verdict(EQUIVALENT, ci)
    if ci.lo > 1.0:
        return Verdict(WINS, ci)
    n = stats.reps_to_decide(ci, margin)
    return Verdict(UNDECIDED, ci, f"the interval includes 1 and leaves the margin; {verdict.reps_text(n)}")


@dataclass(frozen=True)
class Ranking:
    families: tuple        # the best Entry of each family, best first
    next: Verdict | None   # the winner's best against the next family's best
    worst: Verdict | None  # against the worst family's best (None with fewer than 3 families)
    equivalent: tuple      # keys of other rows equivalent to the winner within the margin

    @property
    def word(self) -> str | None:
        return self.next.word if self.next else None


def rank(entries: list[Entry], higher: bool, margin: float) -> Ranking | None:
    """Families ranked by their best member (by median); None without entries."""
    if not entries:
        return None
    ordered = sorted(entries, key=lambda e: e.median, reverse=higher)
    best: dict[str, Entry] = {}
    for e in ordered:
        best.setdefault(e.family, e)
    fams = tuple(best.values())
    top = fams[0]
    nxt = compare(top, fams[1], higher, margin) if len(fams) > 1 else None
    worst = compare(top, fams[-1], higher, margin) if len(fams) > 2 else None
    eq = tuple(e.key for e in ordered if e is not top and compare(top, e, higher, margin).word == EQUIVALENT)
    return Ranking(fams, nxt, worst, eq)


def cell_text(r: Ranking, unit: str, fmt, margin_text: str) -> str:
    """The cell: the verdict first, the winner with its figure, the next and worst families. An
    equivalence shows the 90% interval (the one the two one-sided tests put inside the margin);
    the others the 95% one."""
    top = r.families[0]
    fig = f"`{top.key}` ({fmt(top.median)} {unit})"
    if r.next is None:
        return f"{top.family} only: {fig}"
    second = r.families[1]
    worst = ""
    if r.worst is not None:
        w = r.families[-1]
        worst = f"; {findings.fmt_ci(r.worst.ci)}x the worst, {w.family} (`{w.key}`)"
    others = [f"`{k}`" for k in r.equivalent if k != second.key]
    if r.next.word == EQUIVALENT:
        iv = findings.fmt_ci(r.next.ci.at_confidence(1.0 - 2.0 * stats.ALPHA))
        also = f"; also equivalent: {', '.join(others)}" if others else ""
        return (f"{top.family} and {second.family} equivalent within {margin_text}: {fig},"
                f" {iv}x `{second.key}` (90% interval){worst}{also}")
    vs = f"{findings.fmt_ci(r.next.ci)}x the next family, {second.family} (`{second.key}`)"
    eq = f"; equivalent within {margin_text}: {', '.join(others)}" if others else ""
    if r.next.word == WINS:
        return f"**{top.family} wins**: {fig}, {vs}{worst}{eq}"
    return f"undecided ({r.next.why}): {top.family} {fig}, {vs}{worst}{eq}"


def cite(word: str, ci: stats.RatioCI | None) -> str:
    """The verdict a comparative sentence rests on, as it cites it: "(wins; 1.12, 95% CI 1.004–1.26)";
    the interval's confidence is its own (90% for an equivalence)."""
    if ci is None or ci.lo is None or ci.hi is None:
        return f"({word}; too few repetitions for an interval)"
    return (f"({word}; {ci.ratio:.2f}, {ci.confidence * 100:g}% CI"
            f" {stats.fmt_bound(ci.lo)}–{stats.fmt_bound(ci.hi)})")


def short_text(r: Ranking, margin_text: str) -> str:
    """The cell in one clause for the summary: the verdict's words, the rows, and the citation."""
    top = r.families[0]
    if r.next is None:
        return f"{top.family} only (`{top.key}`)"
    second = r.families[1]
    if r.next.word == EQUIVALENT:
        ci = r.next.ci.at_confidence(1.0 - 2.0 * stats.ALPHA)
        return (f"{top.family} (`{top.key}`) and {second.family} (`{second.key}`) equivalent within"
                f" {margin_text} {cite(EQUIVALENT, ci)}")
    if r.next.word == WINS:
        return f"**{top.family} wins** (`{top.key}`) over {second.family} (`{second.key}`) {cite(WINS, r.next.ci)}"
    return (f"undecided between {top.family} (`{top.key}`) and {second.family} (`{second.key}`)"
            f" {cite(UNDECIDED, r.next.ci)}")
