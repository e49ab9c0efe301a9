"""The generator cross-check table: per point, req/s from wrk, cbench-load (closed
loop) and h2load --h1 side by side, each with its 95% interval, and whether the three agree
within 10%. Reads a run only (scenario generator-crosscheck, or any run whose loads differ only
by `generator`); never runs anything.

A point is one server row at one (path, pipeline, client threads, connections); its three cells
are the loads that differ only by generator. Agreement is judged per pair of generators (wrk and
cbench-load, wrk and h2load, cbench-load and h2load) on the ratio of their req/s, with
stats.ratio_ci (paired over blocks when recorded, Welch otherwise):
- "yes": every pair is equivalent within 10% (stats.tost_equivalent at margin 1.1, i.e. the
  pair's 90% interval lies inside 1/1.1 .. 1.1);
- "no": some pair's 95% interval lies wholly outside 1/1.1 .. 1.1;
- "undecided": neither (too few repetitions or too much spread to tell).
Agreement is only expected where the server, not a client, is the limit; a generator's cell that
is not server-bound carries its verdict's mark and the legend names it, and the summary line
counts only the points where every generator's every repetition was server-bound.

Where a ratio comes from (decompose): per repetition, req/s = requests / the generator's window,
and requests / the server's window = the server's busy share x its CPUs / its CPU per request.
So a ratio of req/s between two generators is exactly the product of three ratios (geometric
means over the repetitions): how busy the server was, the inverse of the server CPU it spent per
request, and the two windows' ratio (the generator's own clock against the server's sampling
window: wrk's includes its start-up and connection set-up). Beside them each generator's client
CPU says which generator could not keep the server busy. pooled_ratio pools a pair's paired
repetitions over a set of points, so the table can say, from the run, whether the generators
disagree where every repetition was server-bound or only where a generator was the bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..format import resultio
from ..format.loadpoint import dig
from ..format.verdict import SATURATED
from . import stats
from .runload import Cell, Load, Run

GENERATOR_ORDER = ("wrk", "cbench-load", "h2load")
MARGIN = 1.1  # "agree within 10%"
AGREE, DIFFER, UNDECIDED = "yes", "no", "undecided"


def generator_of(load: Load) -> str:
    return load.lid.generator


def point_key(load: Load) -> tuple:
    """What a load is apart from its generator (loadpoint.LoadId.apart_from_generator)."""
    return load.lid.apart_from_generator()


def point_label(load: Load) -> str:
    label = f"-t{load.wrk_threads} -c{load.connections}"
    if load.lid.pipeline > 1:
        label += f" -p{load.lid.pipeline}"
    if load.lid.path != "/":
        label += f" {load.lid.path}"
    return label


def groups(run: Run) -> list[tuple[str, tuple, dict[str, Cell]]]:
    """(row key, point key, {generator: cell}) for every point measured by at least two
    generators, rows in run order, points in load order."""
    by_point: dict[tuple, dict[str, Load]] = {}
    for ld in run.loads.values():
        if ld.lid.idle or ld.lid.open_loop or ld.lid.read_rate_bps is not None:
            continue  # idle, open-loop and slow-reader loads have no closed-loop twin to compare with
        by_point.setdefault(point_key(ld), {})[generator_of(ld)] = ld
    out = []
    for row_key in run.rows:
        for pk, loads in by_point.items():
            cells = {g: run.cell(row_key, ld.lid) for g, ld in loads.items()}
            cells = {g: c for g, c in cells.items() if c is not None and c.rps()}
            if len(cells) >= 2:
                out.append((row_key, pk, dict(sorted(cells.items(), key=lambda kv: _gen_pos(kv[0])))))
    return out


def _gen_pos(g: str) -> int:
    return GENERATOR_ORDER.index(g) if g in GENERATOR_ORDER else len(GENERATOR_ORDER)


def mean_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """(mean, lo, hi): the 95% t interval of the mean; lo/hi None below 2 values."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None, None
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    half = stats.t975(len(values) - 1) * sd / math.sqrt(len(values))
    return m, m - half, m + half


def fmt_interval(values: list[float]) -> str:
    m, lo, hi = mean_interval(values)
    if lo is None:
        return f"{m:.0f} (n={len(values)})"
    return f"{m:.0f} ({lo:.0f}–{hi:.0f})"


def pair_ci(num: Cell, den: Cell):
    a, b = num.rps(), den.rps()
    blocks_a = [resultio.point_block(p) for p in num.ok_points] if len(a) == len(num.ok_points) else None
    blocks_b = [resultio.point_block(p) for p in den.ok_points] if len(b) == len(den.ok_points) else None
    return stats.ratio_ci(a, b, blocks_num=blocks_a, blocks_den=blocks_b)


def pair_agreement(ci) -> str:
    if ci is None:
        return UNDECIDED
    if stats.tost_equivalent(ci, MARGIN)[0]:
        return AGREE
    if ci.lo is not None and (ci.lo > MARGIN or ci.hi < 1.0 / MARGIN):
        return DIFFER
    return UNDECIDED


def agreement(cells: dict[str, Cell]) -> str:
    """yes / no / undecided over every pair of generators (see the module docstring)."""
    gens = list(cells)
    verdicts = [pair_agreement(pair_ci(cells[b], cells[a]))
                for i, a in enumerate(gens) for b in gens[i + 1:]]
    if DIFFER in verdicts:
        return DIFFER
    return AGREE if all(v == AGREE for v in verdicts) else UNDECIDED


def fmt_ratio(ci) -> str:
    if ci is None or not math.isfinite(ci.ratio):
        return "n/a"
    if ci.lo is None:
        return f"{ci.ratio:.3f}"
    return f"{ci.ratio:.3f} ({ci.lo:.3f}–{ci.hi:.3f})"


def server_bound(cells: dict[str, Cell]) -> bool:
    return all(c.ok_points and not c.not_server_bound() for c in cells.values())


@dataclass(frozen=True)
class Decomposition:
    """num / den of two generators' cells at one point: req/s = busy x 1/cost x window
    (geometric means over the repetitions; None where a figure is missing)."""
    rps: float
    busy: float | None      # server CPU utilisation
    cost: float | None      # server CPU per request
    window: float | None    # requests per server window / requests per generator window
    client_num: float | None  # mean client CPU utilisation (share of the client CPUs)
    client_den: float | None
    client_bound_num: int    # repetitions whose client CPU reached verdict.SATURATED
    client_bound_den: int
    reps_num: int
    reps_den: int
    # What a server left idle by its generator pays per request (an idle event loop blocks in
    # epoll_wait and is woken: more calls and switches per request): means, num then den.
    syscalls: tuple = (None, None)
    switches: tuple = (None, None)


def _gmean(values: list[float]) -> float | None:
    vals = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals and len(vals) == len(values) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def decompose(num: Cell, den: Cell) -> Decomposition | None:
    """The ratio num/den of req/s split into the server's busy share, its CPU per request and
    the measurement windows; None when either cell has no req/s."""
    a, b = num.rps(), den.rps()
    if not a or not b:
        return None
    ga, gb = _gmean(a), _gmean(b)
    if not ga or not gb:
        return None
    rps = ga / gb
    busy = _ratio(_gmean(num.values("derived.server_cpu_util")), _gmean(den.values("derived.server_cpu_util")))
    cost = _ratio(_gmean(num.values("derived.server_cpu_us_per_req")), _gmean(den.values("derived.server_cpu_us_per_req")))
    window = rps / (busy / cost) if busy and cost else None

    def client(c: Cell) -> tuple[float | None, int]:
        vals = c.values("derived.client_cpu_util")
        return _mean(vals), sum(v >= SATURATED for v in vals)

    (cn, bn), (cd, bd) = client(num), client(den)
    both = (lambda path: (_mean(num.values(path)), _mean(den.values(path))))
    return Decomposition(rps, busy, cost, window, cn, cd, bn, bd, len(a), len(b),
                         both("derived.syscalls_per_req"), both("derived.ctx_switches_per_req"))


def _pairs(cell: Cell) -> dict:
    out: dict = {}
    for p in cell.ok_points:
        v = dig(p, "wrk.req_per_s")
        if isinstance(v, (int, float)) and v > 0:
            out.setdefault(resultio.point_block(p), []).append(float(v))
    return out


def pooled_ratio(pairs: list[tuple[Cell, Cell]]):
    """The ratio num/den pooled over several points: the mean of the paired log ratios of every
    (point, block) both cells measured, with its t interval (stats.paired_log_ratio); None when
    fewer than two pairs (or a repetition without a block)."""
    by_num: dict = {}
    by_den: dict = {}
    for k, (num, den) in enumerate(pairs):
        pn, pd = _pairs(num), _pairs(den)
        if None in pn or None in pd:
            return None
        for b in set(pn) & set(pd):
            by_num[(k, b)], by_den[(k, b)] = pn[b], pd[b]
    return stats.paired_log_ratio(by_num, by_den) if len(by_num) >= 2 else None
