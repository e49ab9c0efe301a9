"""The cost account: each row's measured server CPU per request as instructions, system calls and
context switches, each at a price, with the residual shown.

    account = instructions/request x p_instr + sum over types (syscalls/request x p_type)
              + switches/request x p_switch
    residual = measured CPU/request - account

The counts come from a costs run (format/costs.py: callgrind, strace, rusage over a fixed number
of one-connection requests); the measured CPU per request from a sweep's points at one load
column, the median over its repetitions (`measured_cpu`), which should be the load the counts
were taken at (-t1 -c1: one connection, one request at a time, as `cbench costs` drives it).

The prices of system calls and switches come from the microbenchmarks (`micro_prices`, from a
`cbench micro` run); the instruction price is the least-squares fit (scipy.optimize.lsq_linear,
non-negative) of what the rows' CPU leaves once their system calls and switches are paid. By
default the fit has a second term, a base cost per request common to every row: the kernel work
a request costs beyond the micro prices (the micro prices a system call on a socket pair, not
TCP over loopback with the peer's wake-up on the other CPU), which would otherwise be charged to
instructions and make their price meaningless. `with_base=False` fits the instruction price
alone. A second fit (`free_fit`) lets all three prices float, as a check of the micro prices:
where it disagrees, the residuals say which rows pull it.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import lsq_linear

from ..format import metrics

CPU_PATH = "derived.server_cpu_us_per_req"
INSTR_PATH = "derived.instructions_per_req"
SYSCALLS_BY_TYPE_PATH = "derived.syscalls_by_type_per_req"
SWITCHES_PATH = "derived.ctx_switches_per_req"

# Micro benchmarks a price is read from (analysis/micro.py run names).
WRITE_READ = "BM_Loop_WriteRead/real_time"        # one write + one read on a socket pair
EPOLL_ROUND = "BM_Loop_Epoll/idle:10/real_time"   # the same plus one epoll_wait
FUTEX_ROUND_TRIP = "BM_Wakeup_Futex/real_time"    # two wakes, two switches (both threads on one CPU)
DEFAULT_PRICE = "*"                               # the price of a system call type not named


@dataclass
class Prices:
    """Microseconds per event: per system call type (DEFAULT_PRICE for the rest), per switch, per
    instruction (the fit), with where each came from."""
    syscall_us: dict
    switch_us: float
    instr_us: float | None = None
    base_us: float | None = None   # per request, every row alike; None: fitted (0.0: none)
    sources: dict = field(default_factory=dict)

    def syscall(self, name: str) -> float:
        return self.syscall_us.get(name, self.syscall_us[DEFAULT_PRICE])


@dataclass
class Line:
    """One row of the account."""
    key: str
    measured_us: float | None
    instructions: float | None
    syscalls: dict
    switches: float | None
    instr_part_us: float | None = None
    syscall_part_us: float | None = None
    switch_part_us: float | None = None
    base_part_us: float = 0.0

    @property
    def account_us(self) -> float | None:
        parts = (self.instr_part_us, self.syscall_part_us, self.switch_part_us)
        return None if None in parts else sum(parts) + self.base_part_us

    @property
    def residual_us(self) -> float | None:
        a = self.account_us
        return None if a is None or self.measured_us is None else self.measured_us - a

    @property
    def complete(self) -> bool:
        return None not in (self.measured_us, self.instructions, self.switches) and bool(self.syscalls)


def micro_prices(ns_per_op: dict) -> Prices:
    """Prices (us) from {benchmark run name: ns per op}: a socket read or write (and any type not
    priced on its own) is half of WRITE_READ; an epoll_wait is EPOLL_ROUND less WRITE_READ; a
    switch is half of FUTEX_ROUND_TRIP (each direction: a futex wake, a futex wait, one switch).
    KeyError names a benchmark the run lacks."""
    for name in (WRITE_READ, EPOLL_ROUND, FUTEX_ROUND_TRIP):
        if ns_per_op.get(name) is None:
            raise KeyError(f"the micro run has no {name}")
    io = ns_per_op[WRITE_READ] / 2 / 1000
    epoll = max(0.0, (ns_per_op[EPOLL_ROUND] - ns_per_op[WRITE_READ]) / 1000)
    return Prices({DEFAULT_PRICE: io, "epoll_wait": epoll}, ns_per_op[FUTEX_ROUND_TRIP] / 2 / 1000,
                  sources={DEFAULT_PRICE: f"{WRITE_READ} / 2", "epoll_wait": f"{EPOLL_ROUND} - {WRITE_READ}",
                           "switch": f"{FUTEX_ROUND_TRIP} / 2"})


def measured_cpu(points: list[dict], load_key: str) -> dict[str, float]:
    """{row key: median server CPU us/request} over the repetitions of LOAD_KEY that recorded it."""
    by: dict[str, list[float]] = {}
    for p in points:
        if (p.get("load") or {}).get("key") != load_key or p.get("status") != "ok":
            continue
        v = metrics.dig(p, CPU_PATH)
        if isinstance(v, (int, float)) and v > 0:
            by.setdefault(p["row"]["key"], []).append(float(v))
    return {k: statistics.median(v) for k, v in by.items()}


def measured_counts(points: list[dict], load_key: str) -> dict[str, tuple[float, float]]:
    """{row key: (system calls, context switches) per request}, medians over the ok points of
    LOAD_KEY that recorded both: the counts at a load other than the costs run's."""
    by: dict[str, list[tuple[float, float]]] = {}
    for p in points:
        if (p.get("load") or {}).get("key") != load_key or p.get("status") != "ok":
            continue
        sc, sw = metrics.dig(p, "derived.syscalls_per_req"), metrics.dig(p, SWITCHES_PATH)
        if isinstance(sc, (int, float)) and isinstance(sw, (int, float)):
            by.setdefault(p["row"]["key"], []).append((float(sc), float(sw)))
    return {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in by.items()}


def lines(records: list[dict], measured: dict[str, float],
          counts: dict[str, tuple[float, float]] | None = None) -> list[Line]:
    """One Line per costs record, in record order, with the measured CPU of its row key (None if
    absent). With COUNTS (measured_counts), a row's system calls and switches are those of the
    measured points, the calls split by type in the costs run's proportions."""
    out = []
    for r in records:
        key = r["row"]["key"]
        by_type = dict(metrics.dig(r, SYSCALLS_BY_TYPE_PATH) or {})
        switches = metrics.dig(r, SWITCHES_PATH)
        if counts is not None:
            total = sum(by_type.values())
            if key in counts and total > 0:
                by_type = {name: n * counts[key][0] / total for name, n in by_type.items()}
                switches = counts[key][1]
            else:
                by_type, switches = {}, None
        out.append(Line(key, measured.get(key), metrics.dig(r, INSTR_PATH), by_type, switches))
    return out


def _fixed_part(line: Line, prices: Prices) -> tuple[float, float]:
    sys_us = sum(n * prices.syscall(name) for name, n in line.syscalls.items())
    return sys_us, line.switches * prices.switch_us


def fit_instruction_price(rows: list[Line], prices: Prices, with_base: bool = True) -> tuple[float, float]:
    """(instruction price, base per request) in us, non-negative, minimising the squared residuals
    of the complete rows with system calls and switches at PRICES; the base is 0.0 unless
    WITH_BASE. ValueError with too few complete rows."""
    ok = [ln for ln in rows if ln.complete]
    if len(ok) < (2 if with_base else 1):
        raise ValueError(f"{len(ok)} rows have both their counts and a measured CPU per request: too few to fit")
    a = np.array([[ln.instructions] + ([1.0] if with_base else []) for ln in ok], dtype=float)
    b = np.array([ln.measured_us - sum(_fixed_part(ln, prices)) for ln in ok], dtype=float)
    x = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    return float(x[0]), float(x[1]) if with_base else 0.0


def free_fit(rows: list[Line]) -> tuple[float, float, float]:
    """(us per instruction, per system call of any type, per switch), all three fitted,
    non-negative, on the complete rows: the check of the micro prices."""
    ok = [ln for ln in rows if ln.complete]
    if len(ok) < 3:
        raise ValueError(f"a three-price fit needs three complete rows, got {len(ok)}")
    a = np.array([[ln.instructions, sum(ln.syscalls.values()), ln.switches] for ln in ok], dtype=float)
    b = np.array([ln.measured_us for ln in ok], dtype=float)
    x = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    return float(x[0]), float(x[1]), float(x[2])


def account(records: list[dict], measured: dict[str, float], prices: Prices,
            counts: dict[str, tuple[float, float]] | None = None) -> tuple[list[Line], Prices]:
    """The lines priced, and PRICES with the fitted instruction price and base (those it lacks:
    instr_us None is fitted; base_us None is fitted with it, 0.0 means no base). COUNTS: as lines."""
    rows = lines(records, measured, counts)
    if prices.instr_us is None:
        n = sum(ln.complete for ln in rows)
        prices.instr_us, base = fit_instruction_price(rows, prices, with_base=prices.base_us is None)
        what = "instruction price and base per request" if prices.base_us is None else "instruction price"
        prices.sources["instruction"] = f"least-squares fit of the {what} over {n} rows"
        if prices.base_us is None:
            prices.base_us = base
            prices.sources["base"] = prices.sources["instruction"]
    for ln in rows:
        ln.base_part_us = prices.base_us or 0.0
        if ln.instructions is not None:
            ln.instr_part_us = ln.instructions * prices.instr_us
        if ln.syscalls and ln.switches is not None:
            ln.syscall_part_us, ln.switch_part_us = _fixed_part(ln, prices)
    return rows, prices
