"""The generator cross-check table (REPORT.md's generator-crosscheck section, `cbench curve`):
the analysis in analysis/crosscheck.py, rendered as Markdown here."""
from __future__ import annotations

import os

from ..analysis import stats
from ..analysis.crosscheck import (AGREE, UNDECIDED, _gen_pos, agreement, decompose, fmt_interval, fmt_ratio,
                                   groups, pair_agreement, pair_ci, point_label, pooled_ratio, server_bound)
from ..analysis.runload import Run
from . import tables


def render(run: Run, heading_level: int = 3) -> list[str]:
    """Markdown lines of the cross-check table (empty when the run has no such points)."""
    gs = groups(run)
    if not gs:
        return []
    gens = sorted({g for _, _, cells in gs for g in cells}, key=_gen_pos)
    others = [g for g in gens if g != gens[0]]
    legend = tables.Legend()
    head = (["server", "load"] + [f"{g} req/s" for g in gens]
            + [f"{g} / {gens[0]}" for g in others] + ["agree within 10%"])
    out = ["#" * heading_level + " Generator cross-check: req/s of each generator at the same points", "",
           f"Mean req/s over the ok repetitions with its 95% interval (t, in parentheses); ratios to"
           f" {gens[0]} with theirs: {stats.interval_method_text()}. \"agree\" is yes when"
           " every pair of generators is equivalent within 10% (two one-sided tests at 5%: the"
           " pair's 90% interval inside 0.909–1.1), no when some pair's 95% interval lies wholly"
           " outside it, undecided otherwise. Agreement is expected only where the server is the"
           " limit (server-bound: server CPU saturated, the client's not); other verdicts are marked.",
           "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    counted = agreed = 0
    for row_key, pk, cells in gs:
        row = run.rows[row_key]
        any_load = next(iter(cells.values())).load
        where = f"{row.display()} {point_label(any_load)}"
        line = [tables._md_escape(row.display()), tables._md_escape(point_label(any_load))]
        for g in gens:
            c = cells.get(g)
            line.append("—" if c is None else fmt_interval(c.rps()) + legend.mark_cell(c, f"{where} [{g}]"))
        base = cells.get(gens[0])
        for g in others:
            line.append(fmt_ratio(pair_ci(cells[g], base)) if g in cells and base is not None else "—")
        verdict = agreement(cells) if len(cells) == len(gens) else UNDECIDED + " (a generator is missing)"
        line.append(verdict)
        if len(cells) == len(gens) and server_bound(cells):
            counted += 1
            agreed += verdict == AGREE
        out.append("| " + " | ".join(line) + " |")
    out.append("")
    out += legend.render()
    out += [""] + _sources(run, gs, gens[0], others, heading_level + 1)
    out += ["", f"Server-bound points (every generator's every repetition server-bound): {counted} of"
            f" {len(gs)}; the generators agree within 10% at {agreed} of them."]
    return out + [""]


def _factor(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pair(values: tuple, spec: str) -> str:
    return " / ".join("n/a" if v is None else format(v, spec) for v in values)


def _client(mean: float | None, bound: int, reps: int) -> str:
    return "n/a" if mean is None else f"{mean * 100:.0f}% ({bound} of {reps} saturated)"


def _sources(run: Run, gs, base: str, others: list[str], level: int) -> list[str]:
    """Where each ratio to `base` comes from (crosscheck.decompose), then each pair pooled over the
    points where every repetition was server-bound and over the others (crosscheck.pooled_ratio)."""
    out = ["#" * level + " Where the ratios come from", ""]
    intro = [f"Each ratio to {base} of req/s is exactly the product of three: how busy the server was"
           " (server CPU utilisation), the inverse of the server CPU it spent per request, and the"
           " measurement windows (requests per server sampling window over requests per generator"
           " window); geometric means over the repetitions. Client CPU: mean share of the client CPUs,"
           " and the repetitions in which it reached saturation (the generator then limits the server)."
           " A server its generator leaves idle pays more per request: its loop blocks and is woken, so"
           " it makes more system calls and context switches per request (numerator / denominator).", "",
           "| server | load | pair | req/s | server busy | 1 / server CPU per request | windows |"
           " client CPU (numerator) | client CPU (denominator) | server syscalls/request | server switches/request |",
           "|" + "---|" * 11]
    rows = []
    for row_key, _pk, cells in gs:
        row, any_load = run.rows[row_key], next(iter(cells.values())).load
        for g in others:
            d = decompose(cells[g], cells[base]) if g in cells and base in cells else None
            if d is None or (d.busy is None and d.client_num is None):
                continue  # records without the server's and the client's CPU figures
            rows.append(f"| {tables._md_escape(row.display())} | {tables._md_escape(point_label(any_load))}"
                       f" | {g} / {base} | {_factor(d.rps)} | {_factor(d.busy)}"
                       f" | {_factor(None if not d.cost else 1 / d.cost)} | {_factor(d.window)}"
                       f" | {_client(d.client_num, d.client_bound_num, d.reps_num)}"
                       f" | {_client(d.client_den, d.client_bound_den, d.reps_den)}"
                       f" | {_pair(d.syscalls, '.2f')} | {_pair(d.switches, '.3f')} |")
    if rows:  # without rows (records lacking the CPU figures) the header alone would say nothing
        out += intro + rows + [""]
    for g in others:
        both = [(cells[g], cells[base]) for _r, _p, cells in gs if g in cells and base in cells]
        bound = [(a, b) for a, b in both if server_bound({g: a, base: b})]
        rest = [(a, b) for a, b in both if not server_bound({g: a, base: b})]
        parts = []
        for name, pairs in (("where both were server-bound in every repetition", bound),
                            ("where either was not", rest)):
            ci = pooled_ratio(pairs)
            word = {AGREE: "equivalent within 10%", UNDECIDED: "undecided"}.get(pair_agreement(ci), "differ")
            parts.append(f"{name} ({len(pairs)} point{'s' if len(pairs) != 1 else ''}),"
                         f" {fmt_ratio(ci)}, {word if ci is not None else 'too few paired repetitions'}")
        out.append(f"- {g} / {base}, pooled over the paired repetitions: " + "; ".join(parts) + ".")
    return out


def write_run(run: Run) -> tuple[str, str]:
    """Writes RUN/generator-crosscheck.md (the table, for `cbench curve`); returns (path, text)."""
    text = "\n".join(render(run, heading_level=2))
    path = os.path.join(run.dir, "generator-crosscheck.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path, text
