"""The share of a run's points that were server-bound: how much of a run can rank servers by
req/s at all (only a server-bound point's req/s speaks for the server: format/verdict.py).

A point is one (row, load) cell of a closed-loop load: idle points run no generator and open-loop
points are offered a rate below the server's capacity on purpose, so neither has a throughput
bound to judge and neither is counted. A point counts as server-bound when it has at least one
repetition and every repetition, failed ones included, was judged server-bound
(verdict.point_verdict, which re-reads older records with today's rules). The share is also
split by the generator that drove the point, since the published columns stay on wrk while the
other scenarios use cbench-load (format/loadgen.DEFAULT_GENERATOR).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..format.loadpoint import measured
from ..format.verdict import SERVER_BOUND, point_verdict
from .runload import Cell, Run


@dataclass(frozen=True)
class Count:
    """server_bound of points."""
    server_bound: int = 0
    points: int = 0

    @property
    def fraction(self) -> float | None:
        return self.server_bound / self.points if self.points else None

    def plus(self, bound: bool) -> "Count":
        return Count(self.server_bound + bound, self.points + 1)


@dataclass(frozen=True)
class Share:
    """A run's server-bound points: overall and per generator (generator name -> Count)."""
    total: Count = Count()
    by_generator: dict = field(default_factory=dict)


def counted(cell: Cell) -> bool:
    """Whether the cell is a closed-loop load point with at least one repetition."""
    lid = cell.load.lid
    return bool(cell.points) and not lid.idle and not lid.open_loop


def cell_server_bound(cell: Cell) -> bool:
    """Every repetition recorded, and every one measured and server-bound."""
    return bool(cell.points) and all(measured(p) and point_verdict(p) == SERVER_BOUND for p in cell.points)


def share(run: Run) -> Share:
    """The run's Share over its counted cells."""
    total, by_gen = Count(), {}
    for cell in run.cells.values():
        if not counted(cell):
            continue
        bound = cell_server_bound(cell)
        total = total.plus(bound)
        gen = cell.load.lid.generator
        by_gen[gen] = by_gen.get(gen, Count()).plus(bound)
    return Share(total, dict(sorted(by_gen.items())))


def pooled(shares: list[Share]) -> Share:
    """Several runs' shares added together (a reference set's figure)."""
    total, by_gen = Count(), {}
    for s in shares:
        total = Count(total.server_bound + s.total.server_bound, total.points + s.total.points)
        for g, c in s.by_generator.items():
            old = by_gen.get(g, Count())
            by_gen[g] = Count(old.server_bound + c.server_bound, old.points + c.points)
    return Share(total, dict(sorted(by_gen.items())))
