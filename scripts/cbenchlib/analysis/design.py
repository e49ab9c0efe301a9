"""The design findings ("the other half" of threads or events), declared before any run
in results/findings/design.json and judged from a run by the statistics of findings.py / stats.py.

Where published findings (findings.py) compare rows of a published table, these compare
concurrency designs on the workloads where the answer may flip: blocking handlers, CPU-bound
handlers, extra server threads on one server CPU, large responses. A finding names its
scenario, and is one of two kinds:

- "ratio": comparisons of row a over row b (rows matched by fields: model, threads, processes,
  queues, gvl, extra_args), at one load path, on one metric, with a claimed direction against a null
  ratio (or equivalence within a margin; a comparison declaring "direction": "equivalent" is an
  equivalence sub-claim, a tie expected: findingdecl.design_claim). With "bound": "concurrency" the
  expected ratio of a blocking handler is shown beside the measured one: a design with
  concurrency limit L serves at most L x 1000/ms req/s (see concurrency_limit).
- "threshold": each row matched by a spec in "rows", at one load, against a declared value of the
  metric (e.g. at most 0.5 system calls per request): the interval of the row's values over the
  value (a one-sample Welch interval on the logs) judged against 1 in the claimed direction.
- "convergence": over every model row of the run, at each load path of a family
  (e.g. /spin?us=N), the best over the worst row's req/s with its interval, judged for
  equivalence within the margin; the finding is the smallest handler cost from which every
  larger measured cost is equivalent.

Each finding lists mechanism metrics (memory, context switches, threads) shown beside its
verdict; one that no producer writes (format/metrics.py NOT_MEASURED, e.g. partial writes, which
cbench-server does not count) shows "not measured", one a point did not record "not recorded". A repetition decides nothing (it is left out on its own, and marked) when it failed
or was disturbed, when its verdict is not one decide_at allows, when wrk counted timeouts, or when
fewer than min_requests_per_connection requests per connection completed; a ratio finding on req/s
that declares "conservative_errors" (with its reason) lets repetitions with failed requests enter
on the side its claim says is higher, where they can only weigh against it (conservative_side). Verdict words and the "undecided" reason
with the repetitions that would decide come from findings.decide: nothing here knows the answer.
A finding's "load" picks its path's load by fields (LOAD_FIELDS; default pipeline 1); a comparison's
"load_a"/"load_b" replace it per side, so a row may face itself under another generator.
Rows: only cbench-server's model rows (`kind` "model", the C++ stack of format/published.row_stack)
are compared unless a spec names a "kind" (the floors are "instrument" rows), matched by fields, never by label: a Ruby row (a peer) carrying the same published
label as a C++ row is never one of a comparison's sides nor a convergence row, as these findings
are about the C++ designs, and a label never merges rows.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field

from . import findingdecl, findings, stats
from .runload import Cell, Row, Run
from ..format import metrics as registry, verdict
from ..format.paths import REPO_ROOT
from ..format.loadpoint import dig

DESIGN_PATH = os.path.join(REPO_ROOT, "results", "findings", "design.json")

# metric -> (how to get it from a point, what it is): the names a design finding or its mechanism
# line may use, each reading registered metrics (format/metrics.py) and, for a registered one,
# named by the registry's label. A name in registry.NOT_MEASURED reads nothing and shows "not
# measured" (no producer writes it).
def _direct(path: str) -> tuple:
    m = registry.get(path)
    return (lambda p: registry.dig(p, m.path), m.label)


METRICS = {
    "req_per_s": _direct("wrk.req_per_s"),
    "rss_kib_per_conn": (lambda p: _per_conn(registry.dig(p, "server.rss_peak_kb"), p), "peak RSS KiB per connection"),
    "rss_mib": (lambda p: _scale(registry.dig(p, "server.rss_peak_kb"), 1 / 1024), "peak RSS MiB"),
    "ctx_switches_per_req": _direct("derived.ctx_switches_per_req"),
    "server_cpu_us_per_req": _direct("derived.server_cpu_us_per_req"),
    "syscalls_per_req": _direct("derived.syscalls_per_req"),
    "server_threads": _direct("server.threads"),
    "client_cpu_us_per_req": (lambda p: _client_cpu_us_per_req(p), "client CPU us/request"),
    "p50_ms": (lambda p: _scale(registry.dig(p, "wrk.latency_us.p50"), 1 / 1000), "p50 latency ms"),
    "p99_ms": (lambda p: _scale(registry.dig(p, "wrk.latency_us.p99"), 1 / 1000), "p99 latency ms"),
}
METRICS.update({name: (lambda p: None, label) for name, (label, _why) in registry.NOT_MEASURED.items()})
FAILURE_VERDICTS = ("error-bound",)


def _scale(v, k):
    return v * k if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _client_cpu_us_per_req(p):
    u, s, req = dig(p, "client.cpu_user_s"), dig(p, "client.cpu_sys_s"), dig(p, "wrk.requests")
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (u, s, req)) and req > 0
    return (u + s) * 1e6 / req if ok else None


def _per_conn(v, p):
    c = dig(p, "load.connections")
    return v / c if isinstance(v, (int, float)) and isinstance(c, (int, float)) and c > 0 else None


class DeclarationError(Exception):
    """A finding in design.json that cannot be judged as declared (the message names it)."""


def load_declarations(path: str = DESIGN_PATH) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    for i, d in enumerate(doc.get("findings") or []):
        where = f"{path}: finding {i} ({d.get('id')!r})"
        for k in ("id", "title", "claim", "scenario", "kind", "metric"):
            if k not in d:
                raise DeclarationError(f"{where}: missing field {k!r}")
        if d["kind"] not in ("ratio", "convergence", "threshold"):
            raise DeclarationError(f"{where}: kind {d['kind']!r}")
        if "metrics" in d or "fallback" in d:
            # A design finding is judged on its one metric; a fallback would need its own direction
            # and no-effect value (as findings.py's published findings declare them) and is not read.
            raise DeclarationError(f"{where}: a design finding judges one \"metric\"; it takes no fallback metrics")
        for m in [d["metric"]] + list(d.get("mechanism") or []):
            if m not in METRICS:
                raise DeclarationError(f"{where}: unknown metric {m!r}")
        if d["kind"] == "ratio" and (not d.get("comparisons") or "path" not in d):
            raise DeclarationError(f"{where}: a ratio finding needs a path and comparisons")
        for c in d.get("comparisons") or []:
            if "direction" in c and (c["direction"] != "equivalent" or not c.get("reason")
                                     or not (c.get("margin") or findingdecl.registry_margin(d["metric"]))):
                raise DeclarationError(f"{where}: a comparison may declare only \"direction\": \"equivalent\""
                                       " (a tie expected), with its \"reason\" and a \"margin\" unless the"
                                       " metric registers one")
        if "conservative_errors" in d and (d["kind"] != "ratio" or d["metric"] != "req_per_s"
                                           or not isinstance(d["conservative_errors"], str)
                                           or not d["conservative_errors"].strip()):
            raise DeclarationError(f"{where}: \"conservative_errors\" (its reason, a text) applies only to a"
                                   " ratio finding on req_per_s")
        if d["kind"] == "threshold" and (not d.get("rows") or "path" not in d
                                         or not isinstance(d.get("value"), (int, float)) or d["value"] <= 0):
            raise DeclarationError(f"{where}: a threshold finding needs rows, a path and a value > 0")
        for sel in [d.get("load")] + [c.get(k) for c in d.get("comparisons") or [] for k in ("load_a", "load_b")]:
            if sel is not None and (not isinstance(sel, dict) or set(sel) - set(LOAD_FIELDS)):
                raise DeclarationError(f"{where}: a load selector takes only {', '.join(LOAD_FIELDS)}")
        if (d.get("direction", "greater") == "equivalent" or d["kind"] == "convergence") and not d.get("margin"):
            raise DeclarationError(f"{where}: an equivalence claim needs a margin")
        out.append(d)
    return out


def for_scenario(scenario: str, path: str = DESIGN_PATH) -> list[dict]:
    return [d for d in load_declarations(path) if d["scenario"] == scenario]


# ---------------------------------------------------------------- the bound of a blocking handler
def concurrency_limit(model: str | None, threads: int | None, processes: int | None, connections: int) -> int:
    """How many sleeping requests a design serves at once: one per connection for
    thread-per-connection, one per thread (worker-pool's workers, blocking-pool's threads, a
    single loop's one thread) otherwise, times the processes of cluster mode; never more than
    the connections that send them."""
    per_process = connections if model == "thread-per-connection" else max(1, threads or 1)
    return max(1, min(connections, per_process * max(1, processes or 1)))


def sleep_ms(path: str) -> float | None:
    m = re.search(r"[?&]ms=(\d+(?:\.\d+)?)", path)
    return float(m.group(1)) if m else None


def row_limit(row: Row, connections: int) -> int:
    return concurrency_limit(row.model, row.threads, _as_int(row.raw.get("processes")), connections)


def _as_int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def expected_sizing(limit: int, ms: float, connections: int, duration_s: float) -> tuple[float, float]:
    """(requests per connection a run of duration_s completes, the longest expected wait in s)
    for a blocking handler of ms milliseconds at concurrency limit `limit`."""
    rate = limit * 1000.0 / ms
    return duration_s * rate / connections, (connections / limit) * ms / 1000.0


# ---------------------------------------------------------------- judging
def _matches(row: Row, spec: dict) -> bool:
    for k, v in spec.items():
        have = getattr(row, k) if hasattr(row, k) and k != "raw" else row.raw.get(k)
        if k == "processes":
            have = row.raw.get("processes")
        if (list(have) if isinstance(have, tuple) else have) != v:  # extra_args: tuple here, list in JSON
            return False
    return True


LOAD_FIELDS = ("pipeline", "wrk_threads", "connections", "generator")


def _load_matches(lid, sel: dict | None) -> bool:
    sel = {"pipeline": 1, **(sel or {})}
    return all(getattr(lid, k) == v for k, v in sel.items())


def load_text(sel: dict | None) -> str:
    sel = {"pipeline": 1, **(sel or {})}
    return ", ".join(f"{k} {v}" for k, v in sel.items())


def cell_at(run: Run, row: Row, path: str, sel: dict | None = None) -> Cell | None:
    """The cell of row at the load of this path whose fields match sel (default: pipeline 1)."""
    for ld in run.loads.values():
        if ld.lid.path == path and not ld.lid.idle and _load_matches(ld.lid, sel):
            c = run.cell(row.key, ld.lid)
            if c is not None:
                return c
    return None


def point_problem(p: dict, decl: dict, errors_enter: bool = False) -> str | None:
    """Why a repetition decides nothing for this finding, or None. ERRORS_ENTER (conservative_side):
    a repetition whose requests failed (error-bound, wrk timeouts) enters all the same."""
    allowed = decl.get("decide_at")
    allowed = tuple(allowed) + (FAILURE_VERDICTS if errors_enter else ()) if allowed else None
    why = verdict.repetition_problem(p, allowed)
    if why is not None:
        return why
    if not errors_enter and (p.get("verdict") or "unclear") in FAILURE_VERDICTS:
        return p.get("verdict")
    if not errors_enter and (dig(p, "wrk.errors.timeout") or 0) > 0:
        return "wrk timeouts"
    need = decl.get("min_requests_per_connection")
    req, conns = dig(p, "wrk.requests"), dig(p, "load.connections")
    if need and isinstance(req, (int, float)) and isinstance(conns, (int, float)) and conns > 0 and req / conns < need:
        return f"{req / conns:.1f} requests per connection (< {need})"
    return None


def conservative_side(decl: dict, direction: str) -> str | None:
    """The side ("a" or "b") whose repetitions with failed requests may enter a comparison, or None.
    A finding declaring "conservative_errors" (its reason beside it) on req/s lets them enter on the
    side its claim says is higher (a for "greater", b for "less"): failed requests are not counted,
    so such a repetition understates that row's req/s and can only move the ratio against the
    claim; a claim supported with it would be supported without it. A row whose design starves
    some connections (a pool of fewer threads than keep-alive connections) is then judged on what
    it served instead of never. Never for an equivalence claim, which errors could bias either way."""
    if not decl.get("conservative_errors") or decl["metric"] != "req_per_s":
        return None
    return {"greater": "a", "less": "b"}.get(direction)


def values(cell: Cell, metric: str, decl: dict, errors_enter: bool = False) -> tuple[list[float], list, list[str]]:
    """(values, blocks, problems) of a metric over a cell's repetitions that may decide
    (ERRORS_ENTER: point_problem's)."""
    get = METRICS[metric][0]
    vals, blocks, probs = [], [], []
    for p in cell.points:
        why = point_problem(p, decl, errors_enter)
        if why:
            probs.append(f"repetition {p.get('rep')}: {why}")
            continue
        v = get(p)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            vals.append(float(v))
            b = p.get("block")
            blocks.append(b if isinstance(b, int) and not isinstance(b, bool) else None)
    return vals, blocks, probs


def mechanism_median(cell: Cell | None, metric: str) -> float | None:
    if cell is None:
        return None
    vs = [METRICS[metric][0](p) for p in cell.ok_points]
    vs = [float(v) for v in vs if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return stats.median(vs) if vs else None


@dataclass
class Comparison:
    name: str
    a: Row
    b: Row
    ci: stats.RatioCI | None
    decision: findings.Decision
    bound: float | None = None
    marks: list = field(default_factory=list)
    mechanism: dict = field(default_factory=dict)  # metric -> (median a, median b)
    a_conns: int = 1
    tie: bool = False  # an equivalence sub-claim (findingdecl.design_claim): "equivalent" is its success
    cells: tuple | None = None  # (cell a, cell b) judged (a threshold's b is a's cell)
    claim: tuple = ("greater", 1.0, None)  # (direction, null ratio, margin) it was judged on
    errors_side: str | None = None  # conservative_side: the side whose failed requests may enter
    entered: list = field(default_factory=list)  # "<row> repetition N: why" that entered there all the same


@dataclass
class ConvergencePoint:
    cost: float
    path: str
    best: Row
    worst: Row
    ci: stats.RatioCI | None
    decision: findings.Decision


@dataclass
class Result:
    decl: dict
    comparisons: list = field(default_factory=list)
    points: list = field(default_factory=list)  # ConvergencePoint, for kind convergence
    missing: list = field(default_factory=list)
    overall: findings.Decision | None = None
    threshold: float | None = None  # convergence: the smallest cost from which all are equivalent


def judge(run: Run, decl: dict) -> Result:
    if decl["kind"] == "threshold":
        return _judge_threshold(run, decl)
    return _judge_ratio(run, decl) if decl["kind"] == "ratio" else _judge_convergence(run, decl)


def _rows(run: Run, spec: dict) -> list[Row]:
    return [r for r in run.rows.values() if (r.kind == "model" or "kind" in spec) and _matches(r, spec)]


def _judge_threshold(run: Run, decl: dict) -> Result:
    """Each matched row's values over the declared value, judged against 1 (a one-sample interval:
    the value side has no spread)."""
    res = Result(decl)
    path, metric, value = decl["path"], decl["metric"], float(decl["value"])
    direction = decl.get("direction", "less")
    for spec in decl["rows"]:
        rows = _rows(run, spec)
        if not rows:
            res.missing.append(_spec(spec))
        for a in rows:
            ca = cell_at(run, a, path, decl.get("load"))
            if ca is None:
                res.missing.append(f"{a.key} at {path} ({load_text(decl.get('load'))})")
                continue
            va, _ba, pa = values(ca, metric, decl)
            ci = stats.ratio_ci(va, [value] * len(va)) if va else None
            dec = findings.decide(ci, direction, 1.0)
            if ci is None:
                dec = findings.Decision(findings.UNDECIDED, "no repetition may decide: " + "; ".join(pa))
            mech = {m: (mechanism_median(ca, m), None) for m in decl.get("mechanism") or []}
            res.comparisons.append(Comparison(f"{a.key} / {value:g}", a, a, ci, dec, None,
                                              [f"{a.key} {m}" for m in pa], mech, ca.load.connections or 1,
                                              cells=(ca, ca), claim=(direction, 1.0, None)))
    res.overall = findings.combine_comparisons(res.comparisons)
    return res


def _judge_ratio(run: Run, decl: dict) -> Result:
    res = Result(decl)
    path, metric = decl["path"], decl["metric"]
    for comp in decl["comparisons"]:
        direction, null, margin = findingdecl.design_claim(decl, comp)
        ras, rbs = _rows(run, comp["a"]), _rows(run, comp["b"])
        name = f"{_spec(comp['a'])} / {_spec(comp['b'])}"
        sel_a, sel_b = comp.get("load_a", decl.get("load")), comp.get("load_b", decl.get("load"))
        pairs = [(a, b) for a in ras for b in rbs if a.key != b.key or sel_a != sel_b]
        if not pairs:
            res.missing.append(name)
            continue
        for a, b in pairs:
            ca, cb = cell_at(run, a, path, sel_a), cell_at(run, b, path, sel_b)
            if ca is None or cb is None:
                res.missing.append(f"{a.key} / {b.key} at {path} ({load_text(sel_a)}; {load_text(sel_b)})")
                continue
            side = conservative_side(decl, direction)
            va, ba, pa = values(ca, metric, decl, side == "a")
            vb, bb, pb = values(cb, metric, decl, side == "b")
            ci = stats.ratio_ci(va, vb, blocks_num=ba, blocks_den=bb) if va and vb else None
            marks = [f"{a.key} {m}" for m in pa] + [f"{b.key} {m}" for m in pb]
            entered = [f"{r.key} repetition {p.get('rep')}: {point_problem(p, decl)}"
                       for r, c, s_ in ((a, ca, "a"), (b, cb, "b")) if side == s_ for p in c.points
                       if point_problem(p, decl) and not point_problem(p, decl, True)]
            dec = findings.decide(ci, direction, null, margin)
            if ci is None:
                dec = findings.Decision(findings.UNDECIDED, "no repetition may decide: " + "; ".join(marks))
            bound = None
            if decl.get("bound") == "concurrency":
                conns = ca.load.connections or 1
                bound = row_limit(a, conns) / row_limit(b, conns)
            mech = {m: (mechanism_median(ca, m), mechanism_median(cb, m)) for m in decl.get("mechanism") or []}
            cname = f"{a.key} / {b.key}" if sel_a == sel_b else \
                f"{a.key} ({load_text(sel_a)}) / {b.key} ({load_text(sel_b)})"
            if direction == "equivalent" and decl.get("direction", "greater") != "equivalent":
                cname += " (tie expected)"
            res.comparisons.append(Comparison(cname, a, b, ci, dec, bound, marks, mech,
                                              ca.load.connections or 1, comp.get("direction") == "equivalent",
                                              (ca, cb), (direction, null, margin), side, entered))
    res.overall = findings.combine_comparisons(res.comparisons)
    return res


def _cost(path: str, prefix: str) -> float | None:
    if not path.startswith(prefix):
        return None
    try:
        return float(path[len(prefix):])
    except ValueError:
        return None


def _judge_convergence(run: Run, decl: dict) -> Result:
    res = Result(decl)
    prefix, metric, margin = decl["path_prefix"], decl["metric"], float(decl["margin"])
    paths = sorted({ld.lid.path for ld in run.loads.values() if _cost(ld.lid.path, prefix) is not None},
                   key=lambda p: _cost(p, prefix))
    rows = [r for r in run.rows.values() if r.kind == "model" and not (decl.get("exclude_gvl") and r.gvl)]
    problems: set[str] = set()
    for path in paths:
        meds = []
        for r in rows:
            c = cell_at(run, r, path)
            if c is None:
                continue
            v, b, probs = values(c, metric, decl)
            problems.update(pr.split(": ", 1)[-1] for pr in probs)
            if v:
                meds.append((stats.median(v), r, v, b))
        if len(meds) < 2:
            continue
        meds.sort(key=lambda t: t[0])
        (_, worst, vw, bw), (_, best, vb, bb) = meds[0], meds[-1]
        ci = stats.ratio_ci(vb, vw, blocks_num=bb, blocks_den=bw)
        res.points.append(ConvergencePoint(_cost(path, prefix), path, best, worst, ci,
                                           findings.decide(ci, "equivalent", 1.0, margin)))
    if not res.points and paths:
        res.overall = findings.Decision(findings.UNDECIDED, f"at no handler cost do two rows have repetitions"
                                        f" that may decide (they were: {', '.join(sorted(problems)) or 'unmeasured'})")
        return res
    if not res.points:
        res.overall = findings.Decision(findings.NO_DATA, "the run has no point of this family")
        return res
    # The threshold: the smallest measured cost from which every larger measured cost is equivalent.
    thr = None
    for cp in reversed(res.points):
        if cp.decision.word != findings.EQUIVALENT:
            break
        thr = cp.cost
    res.threshold = thr
    top = res.points[-1]
    if thr is not None:
        res.overall = findings.Decision(findings.SUPPORTED, f"best/worst within ±{(margin - 1) * 100:.0f}% from"
                                        f" {thr:g} {decl.get('cost_unit', '')} on".replace("  ", " "))
    elif top.decision.word == findings.UNDECIDED:
        res.overall = findings.Decision(findings.UNDECIDED, "at the largest measured cost: " + top.decision.reason,
                                        top.ci, top.decision.reps_needed)
    else:
        res.overall = findings.Decision(findings.CONTRADICTED, "the best and worst rows still differ by more than"
                                        f" ±{(margin - 1) * 100:.0f}% at the largest measured cost", top.ci)
    return res


def _spec(spec: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in spec.items())


def scenario_of(run: Run) -> str | None:
    """The scenario a run was made from (meta.json scenario_name, else the run id's tail)."""
    name = run.meta.get("scenario_name")
    if name:
        return name
    m = re.match(r"^\d{8}T\d{6}Z-(.+)$", run.run_id)
    return m.group(1) if m else None
