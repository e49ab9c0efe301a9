"""Markdown tables of a run in the published format: `63775 (4.27ms)`.

One table per (path, pipeline) group of loads, one row per row key (rows of two stacks that carry
one label are two rows, each named with its stack: labelindex.stack_display), one column per load
key; a companion table gives the spread over repetitions. Cells that were not server-bound, and
failed points, are marked with a legend. Pure text: no I/O beyond what the caller passes in.
"""
from __future__ import annotations

import math

from ..analysis import stats
from ..analysis.labelindex import stack_display
from ..format import metrics as registry
from ..analysis.runload import Cell, Load, Run, column_label, group_title

# Marks for cells whose repetitions were not all server-bound; each table's legend names them.
VERDICT_MARKS = {"client-bound": "†", "error-bound": "‡", "unclear": "§", "both-saturated": "¤",
                 "kernel-bound": "♯"}  # a kernel TCP limit, not the model (kernelnet.py)
OTHER_VERDICT_MARK = "¶"  # a verdict this reader does not know (the schema may grow)
FAILED_MARK = "✗"
# An unhardened row (Row.hardening) that did not answer the post-check once its load stopped: its
# window is kept, and what its design does after the load is a finding (run/runner.py).
UNANSWERED_MARK = "∅"

# latency statistic -> (dotted path in a point, what it is): a view of the registry (format/metrics.py).
LATENCY_STATS = {stat: (m.path, m.label) for stat, m in (
    ("max", registry.get("wrk.latency_us.max")), ("p50", registry.get("wrk.latency_us.p50")),
    ("p99", registry.get("wrk.latency_us.p99")), ("mean", registry.get("wrk.latency_us.mean")))}


def fmt_latency_us(us: float | None) -> str:
    """Latency as wrk prints it (units.c format_time_us): 2 decimals in us, ms, s, m or h."""
    if us is None or not math.isfinite(us):
        return "?"
    n = float(us)
    if n >= 1_000_000.0:
        n /= 1_000_000.0
        units, scale = ["s", "m", "h"], 60.0
    else:
        units, scale = ["us", "ms", "s"], 1000.0
    i = 0
    while i + 1 < len(units) and n >= scale:
        n /= scale
        i += 1
    return f"{n:.2f}{units[i]}"


def fmt_rps(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def verdict_mark(verdict: str) -> str:
    return VERDICT_MARKS.get(verdict, OTHER_VERDICT_MARK)


class Legend:
    """Collects the marks used in one table so the legend names only those."""

    def __init__(self):
        self.verdicts: dict[str, list[str]] = {}
        self.failures: list[str] = []
        self.unanswered: list[str] = []
        self.answered: list[str] = []

    def mark_cell(self, cell: Cell, where: str, ignore: tuple = ()) -> str:
        marks = ""
        n_ok = len(cell.ok_points)
        for v in cell.not_server_bound():
            if v in ignore:
                continue
            count = cell.verdicts().count(v)
            marks += verdict_mark(v)
            self.verdicts.setdefault(v, []).append(f"{where} ({count}/{n_ok})")
        checks = [p["post_check"] for p in cell.ok_points if isinstance(p.get("post_check"), dict)]
        silent = [c for c in checks if "failed" in c]
        if silent:
            marks += UNANSWERED_MARK
            waits = sorted({c["waited_s"] for c in silent if isinstance(c.get("waited_s"), (int, float))})
            waited = f", waited {'/'.join(f'{w:g}' for w in waits)} s" if waits else ""
            self.unanswered.append(f"{where} ({len(silent)}/{n_ok}{waited})")
        # An unhardened design's answer time after its load is part of the finding (the backlog
        # its design queued); a hardened row's is the post-check's business, not the table's.
        late = [p["post_check"]["answered_ms"] for p in cell.ok_points
                if (p.get("row") or {}).get("hardening") and isinstance(p.get("post_check"), dict)
                and isinstance(p["post_check"].get("answered_ms"), (int, float))]
        if late:
            self.answered.append(f"{where} ({fmt_latency_us(stats.median(late) * 1000.0)},"
                                 f" {len(late)}/{n_ok})")
        failed = cell.failed_points
        if failed:
            marks += FAILED_MARK
            reasons = []
            for p in failed:
                r = (p.get("failure") or {}).get("reason") if isinstance(p.get("failure"), dict) else None
                r = r or "no reason recorded"
                if r not in reasons:
                    reasons.append(r)
            self.failures.append(f"{where}: {len(failed)} of {len(cell.points)} repetitions failed"
                                 f" ({'; '.join(reasons)})")
        return marks

    def render(self) -> list[str]:
        out = []
        for v, where in self.verdicts.items():
            out.append(f"- {verdict_mark(v)} {v}, not server-bound (repetitions with that verdict / ok"
                       f" repetitions): {', '.join(where)}")
        if self.unanswered:
            out.append(f"- {UNANSWERED_MARK} did not answer a request once the load stopped (the post-check; an"
                       " unhardened design's window is kept; repetitions / ok repetitions):"
                       f" {', '.join(self.unanswered)}")
        if self.answered:
            out.append("- an unhardened design's answer to a request once the load stopped (the post-check; median,"
                       f" repetitions / ok repetitions): {', '.join(self.answered)}")
        for f in self.failures:
            out.append(f"- {FAILED_MARK} failed: {f}")
        return out


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def run_header(run: Run) -> list[str]:
    """The lines that name a run and its machine (shared by table, compare and report)."""
    m = run.meta
    out = [f"Run `{run.run_id}` (scenario `{m.get('scenario_name', '?')}`), directory `{run.rel_dir()}`.",
           "",
           f"Machine: {run.machine_line()}."]
    env = run.env
    if env.get("compiler"):
        out[-1] += f" Compiler: {env['compiler']}" + (f" {env['cxx_flags']}" if env.get("cxx_flags") else "") + "."
    if run.synthetic:
        out += ["", "**Synthetic data** (meta.json says `\"synthetic\": true`): a test fixture, not a measurement."]
    if m.get("quick"):
        out += ["", "Quick run (`--quick`): points last seconds; numbers are for smoke tests, not conclusions."]
    notes = []
    if m.get("ended_utc") in (None, ""):
        notes.append("the run has no end time (still running or interrupted)")
    if run.torn_line:
        notes.append("a torn last line of points.jsonl was ignored")
    if notes:
        out += ["", "Note: " + "; ".join(notes) + "."]
    return out


def rep_count_text(cells: list[Cell]) -> str:
    counts = sorted({len(c.rps()) for c in cells if c.rps()})
    if not counts:
        return "no successful repetitions"
    if len(counts) == 1:
        n = counts[0]
        return f"median of {n} repetition{'s' if n != 1 else ''}"
    return f"median of {counts[0]}–{counts[-1]} repetitions"


def throughput_table(run: Run, loads: list[Load], latency: str = "max", heading_level: int = 3) -> list[str]:
    """Markdown lines: the main table of one load group plus its legend."""
    lat_path, lat_name = LATENCY_STATS[latency]
    rows = run.rows_in(loads)
    cells = [c for r in rows for ld in loads if (c := run.cell(r.key, ld.lid))]
    group = (loads[0].lid.path, loads[0].lid.pipeline, loads[0].lid.idle)
    title = f"{'#' * heading_level} {group_title(group)}: req/s ({lat_name}), {rep_count_text(cells)}"
    out = [title, ""]
    if any(c.latency_per_batch() for c in cells):
        out += [f"Pipelined: wrk times a whole batch of {group[1]} requests, so latencies are per batch,"
                " not per request.", ""]
    out += _column_header(loads)

    def text(c: Cell, marks: str) -> str:
        rps = c.median("wrk.req_per_s")
        if rps is None:
            return f"failed {marks}".strip() if c.failed_points else marks
        lat = c.median(lat_path)
        t = f"{fmt_rps(rps)} ({fmt_latency_us(lat)})" if lat is not None else fmt_rps(rps)
        return t + (f" {marks}" if marks else "")
    return out + _marked_rows(run, rows, loads, text)


def _marked_rows(run: Run, rows: list, loads: list[Load], text, ignore: tuple = ()) -> list[str]:
    """One table line per row, one cell per load: text(cell, its marks) ("" where the row has no
    cell there), then the legend of the marks used (verdicts in `ignore` are not marked)."""
    out = []
    legend = Legend()
    names = stack_display(rows)
    for r in rows:
        line = [_md_escape(names[r.key])]
        for ld in loads:
            c = run.cell(r.key, ld.lid)
            line.append("" if c is None else text(c, legend.mark_cell(c, f"{r.key} at {column_label(ld)}", ignore)))
        out.append("| " + " | ".join(line) + " |")
    leg = legend.render()
    if leg:
        out += [""] + leg
    return out


def _column_header(loads: list[Load]) -> list[str]:
    """The header and rule lines of a table with one column per load after the Row column."""
    return ["| Row | " + " | ".join(_md_escape(column_label(ld)) for ld in loads) + " |",
            "|---" * (len(loads) + 1) + "|"]


def spread_table(run: Run, loads: list[Load], heading_level: int = 4) -> list[str]:
    """Markdown lines: req/s min–max over repetitions, with CV% and the number of repetitions."""
    rows = run.rows_in(loads)
    out = [f"{'#' * heading_level} Spread over repetitions: req/s min–max (CV %, repetitions)", ""]
    out += _column_header(loads)
    names = stack_display(rows)
    for r in rows:
        line = [_md_escape(names[r.key])]
        for ld in loads:
            c = run.cell(r.key, ld.lid)
            vals = c.rps() if c else []
            if not vals:
                line.append("")
                continue
            cv = stats.cv_percent(vals)
            cv_text = f"{cv:.1f}%" if cv is not None else "CV n/a"
            line.append(f"{min(vals):.0f}–{max(vals):.0f} ({cv_text}, n={len(vals)})")
        out.append("| " + " | ".join(line) + " |")
    return out


def idle_table(run: Run, loads: list[Load], heading_level: int = 3) -> list[str]:
    """Markdown lines: memory and threads per idle connection, one column per connection count."""
    rows = run.rows_in(loads)
    out = [f"{'#' * heading_level} Idle connections: memory per connection (threads per connection), median", ""]
    out += _column_header(loads)

    def text(c: Cell, marks: str) -> str:
        b = c.median("idle.bytes_per_conn")
        t = c.median("idle.threads_per_conn")
        if b is None:
            return f"failed {marks}".strip() if c.failed_points else ""
        txt = fmt_bytes(b) + "/conn"
        if t is not None:
            txt += f" ({t:.2f} threads/conn)"
        return txt + (f" {marks}" if marks else "")
    # Idle points carry "unclear" by design (no throughput verdict applies); only an
    # error-bound one (fewer connections held than asked for) or a failure is marked.
    out += _marked_rows(run, rows, loads, text, ignore=("unclear",))
    out += idle_reserved_table(run, loads, heading_level)
    return out


def idle_reserved_table(run: Run, loads: list[Load], heading_level: int = 3) -> list[str]:
    """Markdown lines: address space reserved (VmSize) and kernel TCP memory per idle connection.

    RSS counts only touched pages, so two fiber stack sizes (or two thread stack sizes) look alike
    in it; VmSize shows what each connection reserves. Kernel socket memory is the machine-wide
    /proc/net/sockstat TCP figure (both ends of each loopback connection), which a completion
    model's kernel-held buffers would move into. Empty (no lines) for runs that recorded neither."""
    rows = run.rows_in(loads)
    cells = [(r, ld, run.cell(r.key, ld.lid)) for r in rows for ld in loads]
    if not any(c is not None and (c.median("idle.virtual_bytes_per_conn") is not None
                                  or c.median("idle.kernel_socket_bytes_per_conn") is not None)
               for _r, _ld, c in cells):
        return []
    out = ["", f"{'#' * heading_level} Idle connections: reserved address space (VmSize) / kernel TCP memory "
           "per connection, median", ""]
    out += _column_header(loads)
    names = stack_display(rows)
    for r in rows:
        line = [_md_escape(names[r.key])]
        for ld in loads:
            c = run.cell(r.key, ld.lid)
            v = c.median("idle.virtual_bytes_per_conn") if c is not None else None
            k = c.median("idle.kernel_socket_bytes_per_conn") if c is not None else None
            line.append("" if v is None and k is None else
                        f"{fmt_bytes(v) if v is not None else '—'} / {fmt_bytes(k) if k is not None else '—'}")
        out.append("| " + " | ".join(line) + " |")
    return out


def fmt_bytes(b: float) -> str:
    if abs(b) >= 1024 * 1024:
        return f"{b / (1024 * 1024):.2f} MiB"
    if abs(b) >= 1024:
        return f"{b / 1024:.1f} KiB"
    return f"{b:.0f} B"


def render_run_tables(run: Run, latency: str = "max", heading_level: int = 2,
                      with_header: bool = True) -> str:
    """All tables of a run as one markdown document (what `cbench table` prints)."""
    out: list[str] = []
    if with_header:
        out += [f"{'#' * (heading_level - 1)} Tables of run {run.run_id}", ""] if heading_level > 1 else []
        out += run_header(run) + [""]
    groups = run.load_groups()
    if not groups:
        out += ["No points recorded in this run.", ""]
    for group, loads in groups:
        if group[2]:
            out += idle_table(run, loads, heading_level) + [""]
        else:
            out += throughput_table(run, loads, latency, heading_level) + [""]
            out += spread_table(run, loads, heading_level + 1) + [""]
    return "\n".join(out).rstrip("\n") + "\n"
