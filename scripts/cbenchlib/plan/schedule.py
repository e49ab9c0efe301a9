"""The order a sweep runs its points in: the initial blocks (one round each, every point once)
and the extra blocks of the sequential design, each a seeded order of its points."""
from __future__ import annotations

import dataclasses
import random

from ..format import scenario


@dataclasses.dataclass(frozen=True)
class Slot:
    """One repetition of one point in the run's order."""
    seq: int            # position in the run's order (new slots of extra blocks continue it)
    block: int          # the round: initial blocks 0..repetitions-1, then extra blocks
    rep: int            # the point's repetition index
    point: scenario.Point


def block_order(points: list, block: int, order: str, seed: int) -> list:
    """The points of one block (round) in run order.

    blocked: grouped by load, so the rows compared at one load (the pairs the analysis makes)
    run in adjacent slots, minutes apart at most, and drift of the machine between blocks
    cancels out of a within-block comparison; the loads, and the rows within each load, in a
    seeded shuffle that differs per block. shuffled: one seeded shuffle of every point.
    interleaved: file order."""
    rng = random.Random(seed * 1_000_003 + block)
    if order == "interleaved":
        return list(points)
    if order == "shuffled":
        out = list(points)
        rng.shuffle(out)
        return out
    groups: dict[str, list] = {}
    for p in points:
        groups.setdefault(p.load.id, []).append(p)
    keys = list(groups)
    rng.shuffle(keys)
    out = []
    for k in keys:
        members = list(groups[k])
        rng.shuffle(members)
        out.extend(members)
    return out


def schedule(points: list, repetitions: int, order: str, seed: int) -> list[Slot]:
    """The initial blocks in run order: block b runs every point once, as its repetition b."""
    out: list[Slot] = []
    for block in range(repetitions):
        out.extend(Slot(len(out), block, block, p) for p in block_order(points, block, order, seed))
    return out


def points_for(wanted: list[str], points: list) -> list:
    """The scenario points an extra block runs for Decision.rows (point ids "<row id> / <load
    id>" name that point; row keys or row ids name every point of the row), in scenario order."""
    want = set(wanted)
    return [p for p in points if p.id in want or p.row.id in want or p.row.key in want]


@dataclasses.dataclass(frozen=True)
class ExtraBlock:
    """The next extra block for the rows a stopping rule asked for, or why there is none."""
    block: int
    slots: list          # Slot, in run order; empty when stop is set
    asked: int           # points asked for that are under the repetition cap
    stop: str | None     # "max-repetitions" | "no-such-rows": nothing to run
    why: str             # stop's explanation


def extra_block(rows: list[str], points: list, ledger, settings) -> ExtraBlock:
    """The extra block after what ledger (plan.ledger.Ledger) has recorded: the points of rows
    still under settings.repetitions_cap, at most settings.sequential_points of them, each as
    its next repetition, numbered on from the last recorded seq and block."""
    cap = settings.repetitions_cap
    named = points_for(rows, points)
    chosen = [q for q in named if ledger.reps_of(q) < cap]
    block = ledger.next_block()
    if not chosen:
        if named:
            return ExtraBlock(block, [], 0, "max-repetitions",
                              f"every point it needs has {cap} repetitions (--max-repetitions)")
        return ExtraBlock(block, [], 0, "no-such-rows",
                          f"none of the rows it named is in the scenario: {', '.join(rows)[:300]}")
    run = chosen[:settings.sequential_points]
    seq0 = ledger.next_seq()
    slots = [Slot(seq0 + i, block, ledger.reps_of(q), q)
             for i, q in enumerate(block_order(run, block, settings.order, settings.seed))]
    return ExtraBlock(block, slots, len(chosen), None, "")
