"""The pilots of a sweep's fixed-rate loads (loads with rate_common_fraction; format/loadgen.py):
which closed-loop runs resolve each load's common rate before the first block, what the dry run
says of them and how long they take. The rate itself is resolved by loadgen.resolve_common_rate
once the pilots have run (run/sweepexec.py); planning only lists them."""
from __future__ import annotations

import dataclasses

from ..format import loadgen
from .estimate import estimate_s


@dataclasses.dataclass(frozen=True)
class FixedRateLoad:
    """One fixed-rate load: its common-rate key (loadgen.common_rate_key), the declared fraction,
    and (row key, pilot key) of every row compared at it, in file order."""
    key: str
    fraction: float
    rows: tuple


@dataclasses.dataclass
class PilotPlan:
    loads: list                   # FixedRateLoad, in file order
    pilots: dict                  # pilot key (loadgen.peak_key) -> the closed-loop Point it runs

    def __bool__(self) -> bool:
        return bool(self.loads)

    def estimate_s(self, settings, available, overheads=None) -> float:
        """Every pilot once: a repetition of its closed-loop point (warm-up, duration, overhead)."""
        return sum(estimate_s(p, settings, available, overheads) for p in self.pilots.values())

    def summary(self, settings, available, fmt, overheads=None) -> str:
        """The dry run's and the summary's line: how many pilots, for which loads, what they cost."""
        if not self.loads:
            return ""
        fractions = ", ".join(sorted({f"{ld.fraction:g}" for ld in self.loads}))
        return (f"fixed rate: {len(self.loads)} load{'s' if len(self.loads) != 1 else ''} at one offered rate for"
                f" all their rows ({fractions} x the lowest closed-loop peak among them), resolved first by"
                f" {len(self.pilots)} pilot run{'s' if len(self.pilots) != 1 else ''} (cbench-load closed loop,"
                f" one per row and load shape, warm-up + duration), about"
                f" {fmt(self.estimate_s(settings, available, overheads))}; the rates go into meta.json ({loadgen.COMMON_RATES_META_KEY})")


def plan_pilots(points: list) -> PilotPlan:
    """The pilots the points' fixed-rate loads need: one per row and load shape, shared by every
    fixed-rate load of that shape (two fractions of one load need one peak per row)."""
    loads, pilots = [], {}
    for key, (fraction, members) in loadgen.fixed_rate_groups(points).items():
        rows = []
        for p in members:
            pilot = loadgen.pilot_point(p)
            pkey = loadgen.peak_key(pilot)
            pilots.setdefault(pkey, pilot)
            rows.append((p.row.key, pkey))
        loads.append(FixedRateLoad(key, fraction, tuple(rows)))
    return PilotPlan(loads, pilots)
