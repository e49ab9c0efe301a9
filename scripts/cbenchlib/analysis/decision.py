"""The decision table at the top of REPORT.md: for each workload shape, which family of models
wins on throughput, on memory and (where an open-loop latency-curve run exists) on capacity at a
p99 target, by how much with the 95% interval, and the mechanism, every cell generated from the
reference run of the shape's section and linked to it. A shape whose section has no reference run
says "not yet run". Nothing here is typed by hand except the shapes (which section, which load
point, which points may decide) and their one-line mechanisms, which carry no number.

A model's entry is its best row (highest median req/s, lowest median peak RSS) among the run's
ranked rows (families.family_of: `kind = "model"`, without --gvl, no instrument) at the shape's
point; families are ranked by their best entry and the verdict is families.compare's against the
metric's declared margin (format/metrics.py). Throughput decides only at the points a shape
allows (server-bound ones for a tiny handler): when a row whose points were bound by the load
generator (client-bound or both-saturated, so its rate is a lower bound of the server's) served
more than the best row that may decide, the cell says "undecided by req/s" and ranks by server CPU
per request instead. That CPU figure is the fixed-rate one when the run has a fixed-rate load of
the shape (the same path, connections and threads, every row offered one open-loop rate below all
their capacities: format/loadgen.py), which then also decides where req/s is merely undecided;
the cell shows its spread beside the saturated figure's, and a row overloaded at the fixed rate is
not judged. Without a fixed-rate load the saturated CPU per request ranks. Memory is judged among the rows that reach the shape's throughput. Picking
both from the same repetitions that estimate their ratio leans the ratio away from one: a "wins"
is to be read with that in mind; an "undecided" is conservative.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

from scipy import stats as sps

from . import design, families, latencycurve, stats
from ..format import loadgen, metrics as registry, reportrefs, verdict
from ..format.published import STACK_RUBY, row_stack
from .runload import Cell, Run, RunError, fixed_rate_load, load_run
from ..format.loadpoint import dig

NOT_YET_RUN = "not yet run"
# The mechanism column explains a decided comparison; a row that decided nothing explains nothing.
UNDECIDED_MECHANISM = "— (the comparison it would explain did not decide)"


@dataclass(frozen=True)
class Shape:
    name: str
    section: str            # results/reference-runs.toml section
    path_prefix: str        # the load point's path: exact, or a prefix when it ends in "=" (a parameter)
    pick: str               # "largest": the last path in the run's order; "first": the first
    connections: int | None  # the load point's connections (None: the run's most)
    decide_at: tuple        # point verdicts whose req/s may decide throughput
    mechanism: str          # one line, no number
    idle: bool = False
    pipeline: bool = False


# Verdicts at which the load generator's CPU was saturated: the rate is a lower bound of the server's.
GENERATOR_BOUND = ("client-bound", "both-saturated")
ANY_OK = ("server-bound", "client-bound", "both-saturated", "kernel-bound", "unclear")
SHAPES = (
    Shape("tiny handler", "ever-table", "/", "first", 64, ("server-bound",),
          "per-request overhead decides: fewer system calls and no hand-off between threads"),
    Shape("CPU-bound handler", "handler-cpu", "/spin?us=", "largest", 64, ("server-bound",),
          "the handler's CPU is the bound; the model's overhead becomes a small share of it"),
    Shape("blocking handler", "handler-blocking", "/sleep?ms=10", "first", 64, ANY_OK,
          "a sleeping request holds its thread: concurrency is the number of threads or processes"),
    Shape("many idle connections", "idle-connections", "", "largest", None, ANY_OK,
          "an idle connection costs a buffer in an event loop, a stack in a thread", idle=True),
    Shape("pipelined", "plaintext-pipelined", "/plaintext", "first", None, ("server-bound",),
          "batched reads and writes: the cost per request is what a batch amortises", pipeline=True),
    Shape("large responses", "large-responses", "/bytes?n=", "largest", None, ANY_OK,
          "copies and partial writes dominate; memory depends on buffering per connection"),
)


def path_matches(path: str, spec: str) -> bool:
    return path.startswith(spec) if spec.endswith("=") else path == spec


def _median(vals):
    return stats.median(vals) if vals else None


def _vals(cell: Cell, path: str, verdicts: tuple | None = None,
          refusal: Callable[[dict], str | None] | None = None) -> tuple[list[float], list]:
    """(values, blocks) of a metric over the cell's repetitions that may decide, each judged on its
    own (verdict.repetition_problem: not failed, not disturbed, a verdict VERDICTS lists; an idle
    repetition that did not hold its connections measured something else); a block is None when
    unrecorded. A repetition that may not decide is left out, never its point. REFUSAL(point) says
    why a repetition may not decide the cell at all (None: it may): a fixed-rate repetition that
    was overloaded shows the common rate at or above this row's capacity, so leaving it out would
    keep only the lucky repetitions; one refused repetition keeps the whole cell from deciding."""
    out, blocks = [], []
    if refusal is not None and any(refusal(p) for p in cell.ok_points):
        return [], []
    for p in cell.points:
        if verdict.repetition_problem(p, verdicts) is not None:
            continue
        held, want = registry.dig(p, "idle.connections_held"), registry.dig(p, "idle.connections")
        if isinstance(held, int) and isinstance(want, int) and held < want:
            continue
        v = registry.dig(p, path)
        if v is None and path == "wrk.req_per_s":
            req, dur = registry.dig(p, "wrk.requests"), registry.dig(p, "wrk.duration_us")
            v = req / (dur / 1e6) if req and dur else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            out.append(float(v))
            b = p.get("block")
            blocks.append(b if isinstance(b, int) and not isinstance(b, bool) else None)
    return out, blocks


def shape_load(run: Run, shape: Shape):
    """The shape's load point in the run, or None."""
    loads = [ld for ld in run.loads.values() if ld.lid.idle == shape.idle and not ld.lid.open_loop
             and (shape.idle or path_matches(ld.lid.path, shape.path_prefix))
             and (shape.idle or (ld.lid.pipeline > 1) == shape.pipeline)]
    if shape.connections is not None:
        loads = [ld for ld in loads if ld.connections == shape.connections] or loads
    elif not shape.idle and loads:
        most = max(ld.connections or 0 for ld in loads)
        loads = [ld for ld in loads if (ld.connections or 0) == most]
    if not loads:
        return None
    return loads[-1] if shape.pick == "largest" else loads[0]


@dataclass
class Cellout:
    text: str
    word: str | None = None     # families.WINS, EQUIVALENT or UNDECIDED (None: nothing compared)
    best: str | None = None     # the best row's key, winner or not
    value: float | None = None  # its median
    short: str = ""             # the verdict in one clause with its citation (families.short_text)


def _model_rows(run: Run, ld):
    """(family, cell) of the ranked rows at the load point: cbench-server model rows without --gvl
    whose model has a family (families.row_family: instruments, Ruby rows and other peers are
    never ranked)."""
    for r in run.rows.values():
        fam = families.row_family(r.kind, r.model, r.raw.get("processes")) if not r.gvl else None
        c = run.cell(r.key, ld.lid) if fam else None
        if c is not None:
            yield fam, c


def _entries(run: Run, ld, path: str, verdicts: tuple | None, higher: bool, only=None,
             refusal=None) -> list[families.Entry]:
    """Each model's best row (by median) at the point that may decide, as ranking entries (a model
    run with --processes is another family's, so its best row is apart); ONLY: the row keys
    allowed (None: every row); REFUSAL: as _vals."""
    best: dict[tuple, families.Entry] = {}
    for fam, c in _model_rows(run, ld):
        if only is not None and c.row.key not in only:
            continue
        v, b = _vals(c, path, verdicts, refusal)
        if not v:
            continue
        e = families.Entry(c.row.key, fam, tuple(v), tuple(b))
        cur = best.get((fam, c.row.model))
        if cur is None or (e.median > cur.median if higher else e.median < cur.median):
            best[(fam, c.row.model)] = e
    return list(best.values())


def _winner(run: Run, ld, path: str, verdicts: tuple | None, unit: str, fmt, only=None, refusal=None) -> Cellout:
    higher = registry.get(path).better == registry.HIGHER
    entries = _entries(run, ld, path, verdicts, higher, only, refusal)
    if not entries:
        seen = sorted({p.get("verdict") or "unclear" for _f, c in _model_rows(run, ld) for p in c.ok_points})
        return Cellout(f"no point may decide (verdicts {', '.join(seen) or 'none'}; this shape decides at"
                       f" {', '.join(verdicts) if verdicts else 'any'} points)")
    top = (max if higher else min)(entries, key=lambda e: e.median)
    margin, margin_text = registry.equivalence_margin(path, top.median, ld.idle_connections or ld.connections)
    ranking = families.rank(entries, higher, margin)
    return Cellout(families.cell_text(ranking, unit, fmt, margin_text), ranking.word, top.key, top.median,
                   families.short_text(ranking, margin_text))


def _faster_undeciding(run: Run, ld, verdicts: tuple, than: float | None) -> list[tuple[float, Cell]]:
    """Ranked rows whose points may not decide throughput (a repetition's verdict is outside
    VERDICTS) but whose median req/s is above THAN (None: any), fastest first. A client-bound or
    both-saturated rate is a lower bound of what the server could serve, so such a row may be
    faster than every row that may decide."""
    out = []
    for _fam, c in _model_rows(run, ld):
        if _vals(c, "wrk.req_per_s", verdicts)[0]:
            continue  # it decides
        if any((p.get("verdict") or "unclear") not in set(verdicts) | set(GENERATOR_BOUND) for p in c.ok_points):
            continue  # an error-bound or unclear repetition: its rate is no lower bound of the server's
        v = _vals(c, "wrk.req_per_s")[0]
        if v and (than is None or _median(v) > than):
            out.append((_median(v), c))
    return sorted(out, key=lambda t: -t[0])


def _throughput(run: Run, ld, sh: Shape) -> Cellout:
    """The throughput cell. When a row that may not decide served more than the best row that
    may, req/s names no winner: the cell says so and ranks the families by server CPU per request
    instead (over every repetition: the server's cost per request does not need the server to be
    the bound), the figure that separates models when the load generator is the limit; the cell's
    word is then that ranking's."""
    thr = _winner(run, ld, "wrk.req_per_s", sh.decide_at, "req/s", _f0)
    faster = _faster_undeciding(run, ld, sh.decide_at, thr.value)
    fixed = fixed_rate_load(run, ld)
    if not faster:
        if fixed is None or thr.word in (families.WINS, families.EQUIVALENT):
            return thr
        cpu = _fixed_rate_cpu(run, ld, fixed)
        return Cellout(f"undecided by req/s ({thr.text}). {cpu.text}", cpu.word,
                       short=f"req/s undecided; by server CPU per request at a fixed rate: {cpu.short or cpu.text}")
    m, c = faster[0]
    verdicts = "/".join(sorted({p.get("verdict") or "unclear" for p in c.ok_points}))
    more = f" and {len(faster) - 1} more row{'s' if len(faster) > 2 else ''}" if len(faster) > 1 else ""
    if thr.best:
        why = (f"`{c.row.key}` ({_f0(m)} req/s, {verdicts}){more} served more than the fastest row that may"
               f" decide, `{thr.best}` ({_f0(thr.value)} req/s), at points where the load generator may have"
               " been the bound")
    else:
        why = (f"no row may decide; `{c.row.key}` ({_f0(m)} req/s, {verdicts}){more} ran at points where the"
               " load generator may have been the bound")
    if fixed is not None:
        cpu = _fixed_rate_cpu(run, ld, fixed)
        return Cellout(f"undecided by req/s: {why}. {cpu.text}", cpu.word,
                       short=f"req/s undecided (the load generator may have been the bound); by server CPU per"
                             f" request at a fixed rate: {cpu.short or cpu.text}")
    cpu = _winner(run, ld, "derived.server_cpu_us_per_req", None, "µs server CPU per request", _f2)
    return Cellout(f"undecided by req/s: {why}. By server CPU per request: {cpu.text}", cpu.word,
                   short=f"req/s undecided (the load generator may have been the bound); by server CPU per"
                         f" request: {cpu.short or cpu.text}")


def _spread_pct(run: Run, ld, refusal=None) -> float | None:
    """The median over the ranked rows at LD of each row's coefficient of variation (sample
    standard deviation / mean) of server CPU per request across its repetitions, in percent."""
    cvs = []
    for _fam, c in _model_rows(run, ld):
        v, _b = _vals(c, registry.FIXED_RATE_CPU, None, refusal)
        if len(v) >= 2:
            cvs.append(float(sps.variation(v, ddof=1)) * 100.0)
    return stats.median(cvs) if cvs else None


def _fixed_rate_cpu(run: Run, ld, fixed) -> Cellout:
    """The CPU cell decided at the fixed-rate load FIXED: families ranked by server CPU per
    request over the repetitions loadgen.fixed_rate_refusal lets decide, with the offered rate
    (and where it came from), the rows not judged (overloaded, error-bound) and the spread of the
    fixed-rate figure beside the saturated one's at LD."""
    refusal = loadgen.fixed_rate_refusal
    cpu = _winner(run, fixed, registry.FIXED_RATE_CPU, None, "µs server CPU per request", _f2, refusal=refusal)
    rates = sorted({r for _f, c in _model_rows(run, fixed) for p in c.ok_points
                    for r in [dig(p, "common_rate.rate_per_s") or dig(p, "load.rate")] if isinstance(r, (int, float))})
    lowest = next((dig(p, "common_rate.lowest_row") for _f, c in _model_rows(run, fixed) for p in c.ok_points
                   if dig(p, "common_rate.lowest_row")), None)
    frac = fixed.lid.rate_common_fraction
    rate = (f"{_f0(rates[0])} req/s offered to every row" if len(rates) == 1 else
            f"{_f0(rates[0])}-{_f0(rates[-1])} req/s offered" if rates else "offered rate unrecorded")
    source = f", {frac:g} x the lowest pilot peak" + (f" (`{lowest}`)" if lowest else "")
    refused = [f"`{c.row.key}` ({why})" for _f, c in _model_rows(run, fixed)
               for why in [next((w for w in map(refusal, c.ok_points) if w), None)] if why]
    not_judged = f"; not judged: {', '.join(refused)}" if refused else ""
    sat, fix = _spread_pct(run, ld), _spread_pct(run, fixed, refusal)
    spread = ("; spread (median CV of a row's repetitions): "
              + (f"{fix:.1f}%" if fix is not None else "n/a") + " at the fixed rate against "
              + (f"{sat:.1f}%" if sat is not None else "n/a") + " saturated")
    return Cellout(f"By server CPU per request at a fixed rate ({rate}{source}; `{fixed.lid.key}`): "
                   f"{cpu.text}{not_judged}{spread}", cpu.word, cpu.best, cpu.value, cpu.short)


def _memory(run: Run, ld, sh: Shape) -> Cellout:
    """The memory cell, judged only among the rows that reach the shape's throughput: a row the
    fastest one (highest median req/s) beats on req/s (families.compare says "wins": beyond the
    req/s margin, the interval above 1) is not judged, since serving less it holds fewer requests
    in flight and its smaller memory answers nothing. An error-bound repetition (its requests
    failed or timed out: the row did not serve the shape's load) enters neither the throughput it
    is compared on nor its memory, and a row with no other repetition is not judged (named in the
    cell), so that it can neither win memory nor, as the runner-up, keep the cell from deciding.
    Idle connections serve nothing: every row that held them is judged."""
    if sh.idle:
        return _winner(run, ld, "idle.bytes_per_conn", None, "bytes per idle connection", _f0)
    served, failing = [], []
    for fam, c in _model_rows(run, ld):
        v, b = _vals(c, "wrk.req_per_s", ANY_OK)
        if v:
            served.append(families.Entry(c.row.key, fam, tuple(v), tuple(b)))
        elif _vals(c, "wrk.req_per_s")[0]:
            failing.append(c.row.key)
    if not served:
        return Cellout("no row served requests without errors")
    fastest = max(served, key=lambda e: e.median)
    margin, _text = registry.equivalence_margin("wrk.req_per_s", fastest.median)
    only = {e.key for e in served if e is fastest or families.compare(fastest, e, True, margin).word != families.WINS}
    mem = _winner(run, ld, "server.rss_peak_kb", ANY_OK, "MiB peak RSS", _mib, only)
    left = len(served) - len(only)
    rows_reach = "rows that reach" if len(only) != 1 else "row that reaches"
    among = (f" (judged among the {len(only)} {rows_reach} the highest req/s,"
             f" {_f0(fastest.median)} of `{fastest.key}`; {left} slower row{'s' if left != 1 else ''} not judged)"
             if left else "")
    if failing:
        among += f" (not judged, every repetition error-bound: {', '.join(f'`{k}`' for k in failing)})"
    return Cellout(mem.text + among, mem.word, mem.best, mem.value, mem.short)


def _f0(v):
    return f"{v:.0f}"


def _f2(v):
    return f"{v:.2f}"


def _mib(v):
    return f"{v / 1024:.1f}"


def _capacity(config: dict, root: str, shape: Shape, loader) -> str:
    """Capacity at the p99 target from the latency-curve section's open-loop points on this
    shape's path, or why there is none."""
    full = reportrefs.run_dir(config, "latency-curve", root)
    if full is None:
        return "no latency-curve run"
    try:
        run = loader(full)
    except RunError:
        return "no latency-curve run"
    pts = [p for p in run.points if path_matches(str(dig(p, "load.path") or ""), shape.path_prefix)]
    curves = latencycurve.curve_points(pts)
    if not curves:
        return "no open-loop point on this path"
    target = latencycurve.DEFAULT_TARGET_US
    caps = sorted(((latencycurve.capacity(e, target), k) for k, e in curves.items()),
                  key=lambda t: t[0]["capacity"] or 0, reverse=True)
    (c1, k1) = caps[0]
    rest = f"; next `{caps[1][1]}` {caps[1][0]['text']}" if len(caps) > 1 else ""
    return (f"`{k1}` {c1['text']} at p99 < {target / 1000:g} ms{rest}"
            f" ([run]({run.rel_dir()}/))")


def _design_verdicts(run: Run) -> str:
    """The verdicts of the run's design findings (results/findings/design.json), for the mechanism cell."""
    try:
        decls = design.for_scenario(design.scenario_of(run))
    except (OSError, design.DeclarationError):
        return ""
    parts = []
    for d in decls:
        r = design.judge(run, d)
        thr = f", from {r.threshold:g} {d.get('cost_unit', '')}".rstrip() if r.threshold is not None else ""
        parts.append(f"design finding {d['id']}: {r.overall.word}{thr}")
    return f" ({'; '.join(parts)})" if parts else ""


def ruby_rows(run: Run) -> list[str]:
    """The keys of the run's Ruby rows, which are never ranked (families.row_family)."""
    return [r.key for r in run.rows.values() if row_stack(r.kind, r.model) == STACK_RUBY]


def not_ranked_lines(table: list[dict]) -> list[str]:
    """One note line per shape whose run has Ruby rows: they are left out of its ranking, and why."""
    out = []
    for r in table:
        if r.get("not_ranked"):
            out.append(f"Not ranked in \"{r['shape']}\": the Ruby rows of {os.path.basename(r['run'])} ("
                       + ", ".join(f"`{k}`" for k in r["not_ranked"]) + "): a different runtime (Ruby's"
                       " interpreter and its GVL) is not a concurrency model, so they are never ranked"
                       " against the C++ models; the findings judge them on their own.")
    return out


def rows(config: dict, root: str, loader=load_run, allow_synthetic: bool = False) -> list[dict]:
    out = []
    for sh in SHAPES:
        sec = config.get(sh.section) or {}
        # A row that decided nothing explains nothing: the mechanism is set only where a cell decided.
        row = {"shape": sh.name, "mechanism": UNDECIDED_MECHANISM, "section": sh.section}
        full = reportrefs.resolve(sec, root)
        if full is None:
            row.update(throughput=NOT_YET_RUN, memory=NOT_YET_RUN, capacity=NOT_YET_RUN, run=None)
            out.append(row)
            continue
        try:
            run = loader(full)
        except RunError as exc:
            row.update(throughput=f"unreadable run ({exc})", memory="", capacity="", run=None)
            out.append(row)
            continue
        if run.synthetic and not allow_synthetic:
            raise RunError(f"decision table, section {sh.section}: {sec['run']} is synthetic test data;"
                           " fixtures never go into REPORT.md")
        row["not_ranked"] = ruby_rows(run)
        ld = shape_load(run, sh)
        if ld is None:
            row.update(throughput="the run has no point of this shape", memory="", capacity="", run=run.rel_dir())
            out.append(row)
            continue
        where = f"`{ld.lid.key}`" + (f" GET `{ld.lid.path}`" if ld.lid.path and ld.lid.path not in ld.lid.key else "")
        thr = Cellout("idle connections serve no requests") if sh.idle else _throughput(run, ld, sh)
        mem = _memory(run, ld, sh)
        # The mechanism explains what the shape is about: throughput, or memory for idle connections.
        decided = (mem.word if sh.idle else thr.word) in (families.WINS, families.EQUIVALENT)
        row.update(throughput=thr.text, memory=mem.text, words=(thr.word, mem.word), capacity=_capacity(config, root, sh, loader),
                   run=run.rel_dir(), point=where, shorts=(thr.short or thr.text, mem.short or mem.text),
                   mechanism=(sh.mechanism if decided else UNDECIDED_MECHANISM) + _design_verdicts(run))
        out.append(row)
    return out


def render(config: dict, root: str, loader=load_run, allow_synthetic: bool = False) -> str:
    table = rows(config, root, loader, allow_synthetic)
    unlisted = any(r.get("run") is None for r in table)
    lines = ["Each cell is generated by `make report` from the reference run of its section (linked)"
             + ("; \"not yet run\" until that run is listed in `results/reference-runs.toml`" if unlisted else "")
             + ". The families (event loop, thread per connection, worker pool, processes, fibers, completion;"
             " analysis/families.py names each model's) are ranked by their best row (without --gvl; the"
             " floors are instruments, never ranked) at the shape's load point. The best family's best row is"
             " compared with the next family's and the worst family's: ratio best / other (> 1 = the best"
             " row's advantage) with its 95% interval, paired by block. A cell's verdict comes first:"
             " \"equivalent within\" the metric's margin when the 90% interval lies inside it (two one-sided"
             " tests; the margins are declared in format/metrics.py: 5% for req/s and CPU per request; for"
             " memory 5% or a 4 KiB page per connection under load (over the N connections for idle bytes per"
             " connection), whichever is larger), else **wins** when the 95%"
             " interval is above 1, else \"undecided\" with the reason; rows equivalent to the best one are"
             " named. req/s decides only at the points the shape allows (server-bound ones, except for"
             " blocking handlers and large responses, where the sleep or the copy is the bound); where a row"
             " bound by the load generator served more than every row that may decide, the cell says so and"
             " ranks by server CPU per request instead; where the run has a fixed-rate load of the shape (every"
             " row offered one open-loop rate, a declared fraction of the lowest closed-loop peak among them,"
             " so that neither the server nor the load generator is saturated), that CPU figure is the"
             " fixed-rate one, which also decides where req/s is undecided, shown with its spread beside the"
             " saturated figure's; a row overloaded at the fixed rate is not judged. Memory is the server's peak RSS (user memory; kernel"
             " socket buffers are not in it), judged only among the rows that reach the shape's throughput"
             " (not beaten on req/s by the fastest row beyond the req/s margin). Capacity is the highest"
             " offered rate with p99 under the target below the first breach the next rates confirm.", "",
             "| Workload shape | Load point | Throughput | Memory | Capacity at a p99 target | Mechanism | Run |",
             "|---|---|---|---|---|---|---|"]
    for r in table:
        link = f"[{os.path.basename(r['run'])}]({r['run']}/)" if r.get("run") else NOT_YET_RUN
        lines.append(f"| {r['shape']} | {r.get('point', '')} | {r['throughput']} | {r['memory']} | {r['capacity']}"
                     f" | {r['mechanism']} | {link} |")
    notes = not_ranked_lines(table)
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ShapeRanking:
    """What a shape's decision cell ranks, for a chart: the load point, the metric that decided
    (req/s, or server CPU per request when a generator-bound row served more), which side is
    better, the margin and the families' best entries ranked (families.rank)."""
    load: object
    metric: str
    higher: bool
    margin: float
    ranking: families.Ranking | None


def shape_ranking(run: Run, sh: Shape) -> ShapeRanking | None:
    """The ranking behind the shape's first decided cell (throughput; memory per idle connection
    for the idle shape), with the same fallback as _throughput; None without a load point."""
    ld = shape_load(run, sh)
    if ld is None:
        return None
    refusal = None
    if sh.idle:
        path, verdicts = "idle.bytes_per_conn", None
    else:
        path, verdicts = "wrk.req_per_s", sh.decide_at
        best = _entries(run, ld, path, verdicts, True)
        top = max((e.median for e in best), default=None)
        fixed = fixed_rate_load(run, ld)
        faster = _faster_undeciding(run, ld, sh.decide_at, top)
        if fixed is not None and (faster or _winner(run, ld, path, verdicts, "", _f0).word
                                  not in (families.WINS, families.EQUIVALENT)):
            ld, path, verdicts, refusal = fixed, registry.FIXED_RATE_CPU, None, loadgen.fixed_rate_refusal
        elif faster:
            path, verdicts = "derived.server_cpu_us_per_req", None
    higher = registry.get(path).better == registry.HIGHER
    entries = _entries(run, ld, path, verdicts, higher, refusal=refusal)
    if not entries:
        return ShapeRanking(ld, path, higher, 0.0, None)
    top = (max if higher else min)(entries, key=lambda e: e.median)
    margin, _text = registry.equivalence_margin(path, top.median, ld.idle_connections or ld.connections)
    return ShapeRanking(ld, path, higher, margin, families.rank(entries, higher, margin))
