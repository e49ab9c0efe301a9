"""What a run has recorded, and so what of its plan is still to run: the resume logic. A
(point, repetition) recorded once, ok or failed, is never run again (resultio.completed)."""
from __future__ import annotations

from ..format import resultio


class Ledger:
    """The records of one run in file order, read at open and appended as points finish."""

    def __init__(self, records: list[dict] | None = None):
        self.records: list[dict] = list(records or [])
        self.done: set = resultio.completed(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def todo(self, slots: list) -> list:
        """The slots whose (point, repetition) is not recorded yet, in their order."""
        return [x for x in slots if (x.point.id, x.rep) not in self.done]

    def add(self, record: dict) -> None:
        self.records.append(record)
        self.done.add((record["point_id"], record["rep"]))

    def reps_of(self, point) -> int:
        """How many repetitions of point are recorded: its next repetition index."""
        return sum(1 for r in self.records if r.get("point_id") == point.id)

    def next_block(self) -> int:
        return max((resultio.point_block(r) or 0 for r in self.records), default=-1) + 1

    def next_seq(self) -> int:
        return max((r.get("seq", -1) for r in self.records), default=-1) + 1
