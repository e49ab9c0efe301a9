"""The generator cross-check table (REPORT.md's generator-crosscheck section, `cbench curve`):
the analysis in analysis/crosscheck.py, rendered as Markdown here."""
from __future__ import annotations

import os

from ..analysis import stats
from ..analysis.crosscheck import (AGREE, UNDECIDED, _gen_pos, agreement, fmt_interval, fmt_ratio, groups,
                                   pair_ci, point_label, server_bound)
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
    out += ["", f"Server-bound points (every generator's every repetition server-bound): {counted} of"
            f" {len(gs)}; the generators agree within 10% at {agreed} of them."]
    return out + [""]


def write_run(run: Run) -> tuple[str, str]:
    """Writes RUN/generator-crosscheck.md (the table, for `cbench curve`); returns (path, text)."""
    text = "\n".join(render(run, heading_level=2))
    path = os.path.join(run.dir, "generator-crosscheck.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path, text
