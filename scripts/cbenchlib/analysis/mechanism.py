"""The mechanism behind a published finding, from a run's counters.

A finding in results/published/<name>.json may declare
    "mechanism": {"figures": [NAME, ...], "note": "..."}
and `compare --published` (pubcompare.py) then prints, right after that finding's verdict, one
column per measured row the finding compares (every row carrying one of its comparisons'
labels) and one line per figure, at the finding's primary load point: the median over the cell's
ok repetitions. Nothing is judged here: these figures say *why* the judged metric came out as it
did (connects and closes per request, TIME_WAIT, system calls and CPU per request, and for a
keep-alive row how many connections were served at all).

FIGURES below: name -> (what it is, how it is read from one point, format). A figure a point did
not record is "—" (a model that counts no accepts, a run without kernel counters); nothing is
estimated in its place.

Stacks: the figures explain a verdict, and a verdict is judged on one stack's rows
(format/published.row_stack), so each stack gets its own table, right after its own verdict:
the C++ rows (cbench-server's stand-ins) at the finding's primary point, after "**Verdict:";
the Ruby rows (the original stack) at the point the finding's "ruby" block declares, after
"**Verdict on the Ruby rows:", headed as the Ruby rows'. A Ruby Unicorn and a C++ blocking-pool
row both carry the label "Unicorn", but their counters come from different programs: one table
over both would set them side by side as if they were one row's variants, and a reader of the
C++ mechanism would read a Ruby figure as a C++ one. Rows of any other peer (nginx) are in
neither table, as no verdict judges them. The declared "note" explains the C++ rows (it names
their models and flags), so only the C++ table carries it. A finding whose "ruby" block declares it not
measurable, or a run without Ruby rows for its labels, has no Ruby table (its Ruby verdict
already says why).
"""
from __future__ import annotations

import statistics

from .findingdecl import DeclarationError
from ..format import metrics as registry
from .runload import Cell, Run, column_label
from ..format.loadpoint import canonical_label, dig
from ..format.published import STACK_CPP, STACK_RUBY, row_stack

NO_FIGURE = "—"


_ACCEPTS = registry.get("derived.counters_per_req.accepts")
_CLOSES = registry.get("derived.counters_per_req.closes")


def _server_counter(p: dict, counter: registry.Metric) -> float | None:
    """A server counter per request, or None when the model counts none of its counters (every
    value 0: asio-coro, worker-pool count nothing; a 0 there is not a measurement)."""
    cp = dig(p, counter.path.rsplit(".", 1)[0])  # all the counters, to tell "counts none" from 0
    if not isinstance(cp, dict) or not any(cp.values()):
        return None
    return cp.get(counter.name)


def _counted(p: dict, counter: registry.Metric) -> float | None:
    """A server counter's count in the window: per request × requests (cluster workers summed)."""
    per = _server_counter(p, counter)
    req = registry.dig(p, "wrk.requests")
    return per * req if isinstance(per, (int, float)) and isinstance(req, (int, float)) else None


def _accepted(p: dict) -> float | None:
    """Connections accepted in the window: the server's own count, else the kernel's PassiveOpens."""
    n = _counted(p, _ACCEPTS)
    return n if n is not None else registry.dig(p, "kernel.deltas.PassiveOpens")


def _requests_per_connection(p: dict) -> float | None:
    n, req = _accepted(p), registry.dig(p, "wrk.requests")
    return req / n if n and isinstance(req, (int, float)) else None


def _accepted_share(p: dict) -> float | None:
    """Accepted connections per connection wrk offered (64 at -c64): 1 when wrk connected once per
    connection, about processes/connections when keep-alive connections wait behind busy workers,
    far above 1 when every request reconnects."""
    n, offered = _accepted(p), dig(p, "load.connections")
    return n / offered if n is not None and offered else None


def _worker_cpu_shares(p: dict) -> str | None:
    """Each worker's share of the workers' CPU in the window, in percent ("25/25/26/24")."""
    ws = dig(p, "server.cluster.workers")
    if not ws:
        return None
    cpu = [(w.get("cpu_user_s") or 0) + (w.get("cpu_sys_s") or 0) for w in ws]
    total = sum(cpu)
    return "/".join(f"{100 * c / total:.0f}" for c in cpu) if total > 0 else None


def _kernel_bound(p: dict) -> float:
    return 1.0 if registry.dig(p, "kernel.bound") else 0.0


# name -> (label, reader of one point, format: "f3", "f2", "f1", "f0", "us", "ms", "text", "share").
# Every figure reads registered metrics (format/metrics.py); the labels and formats are this
# table's own (a figure line says more than the metric's label, and prints us with one decimal).
FIGURES = {
    "accepts_per_req": ("connections accepted per request (server's count)",
                        lambda p: _server_counter(p, _ACCEPTS), "f3"),
    "closes_per_req": ("connections closed per request (server's count)",
                       lambda p: _server_counter(p, _CLOSES), "f3"),
    "kernel_accepts_per_req": ("connections accepted per request (kernel PassiveOpens)",
                               lambda p: registry.dig(p, "kernel.accepts_per_req"), "f3"),
    "time_wait_per_req": ("sockets entering TIME_WAIT per request (kernel TW)",
                          lambda p: registry.dig(p, "kernel.time_wait_per_req"), "f3"),
    "port_time_wait": ("TIME_WAIT sockets on the server's port at the end",
                       lambda p: registry.dig(p, "kernel.levels.port_tw.after"), "f0"),
    "syscalls_per_req": ("system calls per request", lambda p: registry.dig(p, "derived.syscalls_per_req"), "f2"),
    "server_cpu_us_per_req": ("server CPU per request", lambda p: registry.dig(p, "derived.server_cpu_us_per_req"), "us"),
    "connections_accepted": ("connections accepted in the window", _accepted, "f0"),
    "accepted_per_offered": ("accepted per connection wrk opened", _accepted_share, "f2"),
    "requests_per_connection": ("requests per accepted connection", _requests_per_connection, "f1"),
    "latency_p50": ("latency p50 (completed requests)", lambda p: registry.dig(p, "wrk.latency_us.p50"), "ms"),
    "latency_p99": ("latency p99 (completed requests)", lambda p: registry.dig(p, "wrk.latency_us.p99"), "ms"),
    "worker_cpu_shares": ("each worker's share of the CPU, %", _worker_cpu_shares, "text"),
    "kernel_bound": ("repetitions bounded by a kernel limit", _kernel_bound, "share"),
}


class MechanismError(DeclarationError):
    """A malformed "mechanism" declaration (a kind of malformed finding)."""


def declared(finding_doc: dict) -> list[str]:
    """The figure names a finding's JSON declares ([] without "mechanism"); raises on an unknown one."""
    mech = finding_doc.get("mechanism") or {}
    names = list(mech.get("figures") or [])
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise MechanismError(f"finding {finding_doc.get('id')!r}: unknown mechanism figure(s) "
                             f"{', '.join(unknown)} (known: {', '.join(FIGURES)})")
    return names


def _fmt(v, kind: str) -> str:
    if v is None:
        return NO_FIGURE
    if kind == "text":
        return str(v)
    if kind == "us":
        return f"{v:.1f} us"
    if kind == "ms":
        return f"{v / 1000:.2f} ms"
    return f"{v:.{kind[1]}f}"


def cell_figure(cell: Cell, name: str) -> str:
    """One figure of a cell: the median over its ok repetitions (text figures: the first rep's;
    kernel_bound: "k of n")."""
    _label, read, kind = FIGURES[name]
    pts = cell.ok_points
    vals = [read(p) for p in pts]
    if kind == "text":
        return next((str(v) for v in vals if v is not None), NO_FIGURE)
    if kind == "share":
        return f"{int(sum(vals))} of {len(vals)}" if vals else NO_FIGURE
    nums = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return _fmt(statistics.median(nums), kind) if nums else NO_FIGURE


def _primary_load(run: Run, path: str, key: str):
    for ld in run.loads.values():
        if not ld.lid.idle and ld.lid.pipeline == 1 and ld.lid.path == path and key in (column_label(ld), ld.lid.key):
            return ld
    return None


def _rows(run: Run, comparisons: list, stack: str) -> list:
    """Measured rows of one stack carrying a label of the comparisons, in the comparisons' order
    (a, b, ...)."""
    labels = []
    for comp in comparisons:
        for side in ("a", "b"):
            lab = comp.get(side)
            if isinstance(lab, str) and canonical_label(lab) not in labels:
                labels.append(canonical_label(lab))
    rows = []
    for lab in labels:
        rows += [r for r in run.rows.values() if r.label and canonical_label(r.label) == lab
                 and row_stack(r.kind, r.model) == stack]
    return rows


def _stack_decl(finding_doc: dict, stack: str) -> tuple[dict, list] | None:
    """(primary point, comparisons) the finding declares on a stack; None where it is not measured
    on it (no "ruby" block with comparisons)."""
    if stack == STACK_CPP:
        return finding_doc.get("primary") or {}, finding_doc.get("comparisons") or []
    rb = finding_doc.get("ruby") or {}
    if not rb.get("comparisons") or rb.get("not_measurable"):
        return None
    return rb.get("primary") or {}, rb["comparisons"]


def render(run: Run, finding_doc: dict, heading_level: int = 3, stack: str = STACK_CPP) -> list[str]:
    """The mechanism block of one finding on one stack's rows (markdown lines; [] when it declares
    none, and on the Ruby stack also when the finding is not measured there or the run has no Ruby
    rows for it)."""
    names = declared(finding_doc)
    decl = _stack_decl(finding_doc, stack)
    if not names or decl is None:
        return []
    prim, comparisons = decl
    rows = _rows(run, comparisons, stack)
    if stack == STACK_RUBY and not rows:
        return []
    h = "#" * heading_level
    on = " on the Ruby rows (the original stack)" if stack == STACK_RUBY else ""
    out = [f"{h} Mechanism of finding {finding_doc.get('id')}{on}, from the counters", ""]
    note = (finding_doc.get("mechanism") or {}).get("note")
    if note and stack == STACK_CPP:
        out += [note, ""]
    ld = _primary_load(run, prim.get("path", "/"), prim.get("load", ""))
    if ld is None or not rows:
        return out + [f"Not measured: the run has no {'rows for this finding' if ld else 'primary load point'}"
                      f" (GET {prim.get('path')} `{prim.get('load')}`).", ""]
    cells = [run.cell(r.key, ld.lid) for r in rows]
    out += [f"At the primary point GET {ld.lid.path} `{column_label(ld)}`, median over each cell's ok"
            " repetitions; — where the point did not record the figure (a model that counts no accepts,"
            " no kernel counters).", ""]
    out.append("| Figure | " + " | ".join(r.display() for r in rows) + " |")
    out.append("|---" * (len(rows) + 1) + "|")
    for name in names:
        out.append(f"| {FIGURES[name][0]} | "
                   + " | ".join(cell_figure(c, name) if c is not None else NO_FIGURE for c in cells) + " |")
    out.append("")
    return out


# The verdict line each stack's block follows (render/findingstext.py writes them).
VERDICT_LINE = {STACK_CPP: "**Verdict:", STACK_RUBY: "**Verdict on the Ruby rows:"}


def _insert(lines: list[str], head: int, h: str, block: list[str], verdict_line: str) -> None:
    """Put block right after the finding's verdict line (and its blank line) on the block's stack,
    or at the end of the finding's section when that verdict is not in the text."""
    end = next((i for i in range(head + 1, len(lines)) if lines[i].startswith(f"{h} Finding ")), len(lines))
    at = next((i for i in range(head + 1, end) if lines[i].startswith(verdict_line)), None)
    if at is None:
        lines[end:end] = block
    else:
        lines[at + 2:at + 2] = block  # after the verdict and its blank line


def insert_after_verdicts(findings_text: str, run: Run, pub_doc: dict, heading_level: int) -> str:
    """findings.render_findings' text with each finding's mechanism block on the C++ rows right
    after its "**Verdict: ...**" line and its block on the Ruby rows right after its "**Verdict on
    the Ruby rows: ...**" line (findings without a declared mechanism are left as they are)."""
    lines = findings_text.split("\n")
    h = "#" * (heading_level + 1)
    for f in pub_doc.get("findings") or []:
        head = next((i for i, ln in enumerate(lines) if ln.startswith(f"{h} Finding {f.get('id')}:")), None)
        if head is None:
            continue
        for stack in (STACK_CPP, STACK_RUBY):
            block = render(run, f, heading_level + 2, stack)
            if block:
                _insert(lines, head, h, block, VERDICT_LINE[stack])
    return "\n".join(lines)
