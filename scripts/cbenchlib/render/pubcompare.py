"""`cbench compare RUN --published NAME`: a published table beside a run, raw and normalised.

Rows are matched by label (loadpoint.canonical_label); columns by load key on the published
table's path and pipeline. Each row is also divided by a base row at the same column, for the
published and the measured numbers alike, so that the shapes can be compared across machines
and languages: its family's single-thread row (Ever's table), or, when the table says
"normalise_to": "fastest" (Tipi's), the table's fastest row (measured: the fastest measured row
matching a published one). Then the declared findings (findings.py). One code path for every
published table: nothing here knows a table by name.
"""
from __future__ import annotations

import os

from ..analysis import findings, mechanism, replicas, scorecard
from . import findingstext, scoretext, tables
from ..format.published import STACK_CPP, STACK_RUBY, Published
from ..analysis.runload import Load, Row, Run, column_label
from ..format.paths import REPO_ROOT


def _run_loads(run: Run, pub: Published, path: str = "/") -> list[Load | None]:
    """The run's load for each published column on this path (pipeline 1), or None."""
    by_key = {}
    for (p, pipe, idle), loads in run.load_groups():
        if p == path and pipe == 1 and not idle:
            for ld in loads:
                by_key[column_label(ld)] = ld  # "-t2 -c10 /spin?us=10" is column "-t2 -c10" there
    return [by_key.get(c) for c in pub.columns]


def _pub_path(pub: Published) -> str:
    """The path of the published columns (the first column's, default /)."""
    cols = pub.doc.get("columns") or []
    return (cols[0].get("path") if cols and isinstance(cols[0], dict) else None) or "/"


def _measured_cell(run: Run, row: Row, ld: Load | None, lat_path: str) -> str:
    if ld is None:
        return ""
    c = run.cell(row.key, ld.lid)
    if c is None:
        return ""
    rps = c.median("wrk.req_per_s")
    marks = "".join(tables.verdict_mark(v) for v in c.not_server_bound())
    if c.failed_points:
        marks += tables.FAILED_MARK
    if rps is None:
        return ("failed " + marks).strip()
    lat = c.median(lat_path)
    text = f"{tables.fmt_rps(rps)} ({tables.fmt_latency_us(lat)})" if lat is not None else tables.fmt_rps(rps)
    return text + (f" {marks}" if marks else "")


def _median_rps(run: Run, row: Row | None, ld: Load | None) -> float | None:
    if row is None or ld is None:
        return None
    c = run.cell(row.key, ld.lid)
    return c.median("wrk.req_per_s") if c else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else ""


def render_published_comparison(run: Run, pub: Published, latency: str = "max", heading_level: int = 2,
                                findings_first: bool = False) -> str:
    """The comparison as Markdown: provenance, the tables (published beside measured, then
    normalised), the rows without a counterpart, then the judged findings; with findings_first
    (what `cbench compare` prints) the findings, whose verdicts are the summary, come right after
    the provenance. REPORT.md and RUN/report.md keep the tables-first order."""
    h = "#" * heading_level
    idx = findings.LabelIndex(run)
    loads = _run_loads(run, pub, _pub_path(pub))
    head = _provenance_lines(run, pub, loads, h)
    body = _comparison_tables(run, pub, idx, loads, latency, h)
    an = findings.Analysis(run, pub)
    ruby = findings.Analysis(run, pub, stack=STACK_RUBY)
    # A finding's declared mechanism figures (mechanism.py), right after its verdict.
    verdicts = [mechanism.insert_after_verdicts(findingstext.render_findings(an, heading_level, ruby), run,
                                                pub.doc, heading_level)]
    # The scorecard (every effect on both stacks, each cell's reason, what the C++ models leave out,
    # the Ruby rows' mechanism counters) and the fidelity claims, placed by the order asked for.
    card = scoretext.render_scorecard(scorecard.scorecard(run, pub, {STACK_CPP: an, STACK_RUBY: ruby}), h)
    fidelity = scoretext.render_fidelity(replicas.fidelity(run, pub), h)
    if findings_first:
        # `cbench compare`: the scorecard first, the findings in detail, the fidelity claims, the
        # tables, the replicas beside the published rows.
        out = (head + card + [verdicts[0].rstrip("\n"), ""] + fidelity + body
               + (scoretext.render_normalised(replicas.normalised(run, pub), pub, h)
                  if pub.doc.get("normalise_to") != "fastest" else []))
    else:
        # REPORT.md's pages: the tables, the scorecard, the fidelity claims, then the findings.
        out = head + body + card + fidelity + verdicts
    return "\n".join(out).rstrip("\n") + "\n"


def unmatched_message(run: Run, pub: Published) -> str | None:
    """None when a row of the run carries a published row's label; else what each side has."""
    idx = findings.LabelIndex(run)
    if any(r is not None for _p, r, _g in _matched_rows(pub, idx)):
        return None
    has = sorted({r.label or r.key for r in run.rows.values()})
    return (f"no row of run {run.run_id} matches a row of the published table {pub.name!r}: the table has "
            + ", ".join(p.label for p in pub.rows) + "; the run has " + (", ".join(has) or "no rows"))


def published_cells(run: Run, pub: Published) -> list[tuple]:
    """(published row, run row or None, gvl, [(column, published cell, run Cell or None)]) for
    every published row and each run row carrying its label (render/export.py's records)."""
    idx = findings.LabelIndex(run)
    loads = _run_loads(run, pub, _pub_path(pub))
    out = []
    for prow, r, gvl in _matched_rows(pub, idx):
        cols = [(col, prow.cells[j], run.cell(r.key, ld.lid) if r is not None and ld is not None else None)
                for j, (col, ld) in enumerate(zip(pub.columns, loads))]
        out.append((prow, r, gvl, cols))
    return out


def _comparison_tables(run: Run, pub: Published, idx, loads: list, latency: str, h: str) -> list[str]:
    """The published table beside the run's medians, the normalised tables, the unmatched rows."""
    lat_path, lat_name = tables.LATENCY_STATS[latency]
    out = []
    matched = _matched_rows(pub, idx)
    n_matched = sum(1 for _, r, _ in matched if r is not None)
    if n_matched == 0:
        out += ["No row of this run carries the label of a published row, so there is nothing to set"
                " beside the published numbers. The published table, as published:", ""]
    pub_labels = {p.canonical for p in pub.rows}
    matched_keys = {r.key for (lab, _g), rows in idx.by_label.items() if lab in pub_labels for r in rows}
    extra = [r for r in run.rows.values() if r.key not in matched_keys]

    has_latency = any(c is not None and c.latency_text for p in pub.rows for c in p.cells)
    out += [f"{h}# req/s ({lat_name}): published, and this run on the same columns" if has_latency else
            f"{h}# req/s: published (no latency published), and this run on the same columns", ""]
    if latency != "max":
        out += [f"The published cells keep their own latency (believed to be wrk's maximum); this run's"
                f" cells show the {latency}.", ""]
    out.append("| Row | " + " | ".join(pub.columns) + " |")
    out.append("|---" * (len(pub.columns) + 1) + "|")
    shown_pub = set()
    for prow, r, gvl in matched:
        if prow.label not in shown_pub:
            shown_pub.add(prow.label)
            out.append(f"| {prow.label}: published | " + " | ".join(c.text if c else "" for c in prow.cells) + " |")
        if r is not None:
            ruby = findings.stack_of(r) == STACK_RUBY  # the Ruby replica of the row, not a C++ model
            name = f"{prow.label}: this run{', Ruby' if ruby else ''}{' --gvl' if gvl and not ruby else ''} [{r.key}]"
            out.append(f"| {name} | " + " | ".join(_measured_cell(run, r, ld, lat_path) for ld in loads) + " |")
    out.append("")
    if n_matched:
        out += ["Measured cells: median over repetitions; † client-bound, ‡ error-bound, § unclear in at least"
                " one repetition; ✗ failed in at least one repetition (see `cbench table`).", ""]

    if n_matched and pub.doc.get("normalise_to") == "fastest":
        out += _normalised_to_fastest(run, pub, matched, loads, h)
    elif n_matched:
        out += _normalised_to_single(run, pub, idx, matched, loads, h)
        out += _other_paths(run, pub, idx, h)
    if extra:
        out += ["Rows of this run with no published counterpart (context): "
                + ", ".join(f"`{r.display()}`" for r in extra) + ".", ""]
    return out


def _provenance_lines(run: Run, pub: Published, loads: list, h: str) -> list[str]:
    """The heading, where the published data come from, and the columns the run did not measure."""
    out = [f"{h} Published table `{pub.name}` beside run `{run.run_id}`", ""]
    prov = pub.provenance
    out.append(f"Published data: `{_rel(pub.path)}`. Source: {prov.get('source', 'not recorded')}.")
    for k in ("machine", "load_generator", "latency_statistic", "empty_cells"):
        if prov.get(k):
            out.append(f"{k.replace('_', ' ').capitalize()}: {prov[k]}.")
    out.append("")
    missing = [c for c, ld in zip(pub.columns, loads) if ld is None]
    if missing:
        out += [f"Columns this run did not measure on GET {_pub_path(pub)} (pipeline 1): {', '.join(missing)}.", ""]
    return out


def _matched_rows(pub: Published, idx) -> list[tuple]:
    """(published row, run row or None, gvl): each published row with every measured row carrying
    its label (several may share one), and once with None when no non-gvl row does."""
    matched = []
    for prow in pub.rows:
        for gvl in (False, True):
            rows = idx.by_label.get((prow.canonical, gvl)) or []
            if not rows and not gvl:
                matched.append((prow, None, gvl))
            for r in rows:
                matched.append((prow, r, gvl))
    return matched


def _single_base(pub: Published, idx, prow, gvl: bool, row=None):
    """(the family's published single-thread row label, the run's row for it on the same stack as
    `row` (C++ when None): the --gvl one when gvl and the run has it, else the row without a lock)."""
    base_label = pub.families().get(prow.family) or f"{prow.family} single thread"
    stack = findings.stack_of(row) if row is not None else STACK_CPP
    rows = findings.rows_for(idx, base_label, gvl, stack) or findings.rows_for(idx, base_label, False, stack)
    return base_label, rows[0] if rows else None


def _normalised_to_single(run: Run, pub: Published, idx, matched: list, loads: list, h: str) -> list[str]:
    out = [f"{h}# Normalised to the family's single-thread row (req/s ÷ single thread, same column)", "",
           "Published and measured alike; --gvl rows are divided by the single-thread --gvl row when the"
           " run has one (Ruby's single thread also holds its GVL, uncontended), else by the row without"
           " a lock. 1.00 means as fast as a single thread.", ""]
    out.append("| Row | " + " | ".join(f"{c} published / this run" for c in pub.columns) + " |")
    out.append("|---" * (len(pub.columns) + 1) + "|")
    for prow, r, gvl in matched:
        base_label, rbase = _single_base(pub, idx, prow, gvl, r)
        pbase = pub.row(base_label)
        cells = []
        for j, ld in enumerate(loads):
            pc = prow.cells[j]
            pb = pbase.cells[j] if pbase else None
            ptxt = _ratio(pc.req_per_s if pc else None, pb.req_per_s if pb else None) or "—"
            mtxt = _ratio(_median_rps(run, r, ld), _median_rps(run, rbase, ld)) or "—"
            if gvl:
                ptxt = "·"
            cells.append(f"{ptxt} / {mtxt}")
        # Several run rows can carry one published label (the C++ model and its Ruby replica): the
        # key tells them apart, as in the absolute table above.
        ruby = r is not None and findings.stack_of(r) == STACK_RUBY
        name = (f"{prow.label}{', Ruby' if ruby else ''}{' (this run --gvl)' if gvl else ''}"
                + (f" [{r.key}]" if r is not None else " (not measured)"))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out + ["", "— no number (empty published cell, or not measured); · the published table has no --gvl"
                  " row (Ruby always runs under its GVL).", ""]


def _other_paths(run: Run, pub: Published, idx, h: str) -> list[str]:
    """The same shape on other pipeline-1 paths (not in the published table)."""
    out = []
    for path, ploads in idx.paths.items():
        if path == "/":
            continue
        rows = [(p, r, g) for p in pub.rows for g in (False, True) for r in idx.by_label.get((p.canonical, g)) or []]
        rows = [t for t in rows if any(run.cell(t[1].key, ld.lid) for ld in ploads)]
        if not rows:
            continue
        out += [f"{h}# GET {path} (not in the published table): this run normalised to single thread", ""]
        out.append("| Row | " + " | ".join(column_label(ld) for ld in ploads) + " |")
        out.append("|---" * (len(ploads) + 1) + "|")
        for prow, r, gvl in rows:
            _label, rbase = _single_base(pub, idx, prow, gvl, r)
            cells = [_ratio(_median_rps(run, r, ld), _median_rps(run, rbase, ld)) for ld in ploads]
            out.append(f"| {prow.label}{' --gvl' if gvl else ''} [{r.key}] | " + " | ".join(cells) + " |")
        out.append("")
    return out


def _normalised_to_fastest(run: Run, pub: Published, matched: list, loads: list, h: str) -> list[str]:
    out = [f"{h}# Normalised to the fastest row (req/s ÷ the fastest row's, same column)", "",
           "Published: each row ÷ the table's fastest row in that column; measured: each row ÷ the fastest"
           " measured row that matches a published one (median req/s). 1.00 is the fastest.", ""]
    pub_best, run_best = [], []
    for j, ld in enumerate(loads):
        vals = [pr.cells[j].req_per_s for pr in pub.rows if pr.cells[j]]
        pub_best.append(max(vals) if vals else None)
        mvals = [v for _p, r, _g in matched if r is not None for v in [_median_rps(run, r, ld)] if v]
        run_best.append(max(mvals) if mvals else None)
    out.append("| Row | " + " | ".join(f"{c} published / this run" for c in pub.columns) + " |")
    out.append("|---" * (len(pub.columns) + 1) + "|")
    for prow, r, gvl in matched:
        if r is None and gvl:
            continue
        cells = []
        for j, ld in enumerate(loads):
            pc = prow.cells[j]
            ptxt = _ratio(pc.req_per_s if pc else None, pub_best[j]) or "—"
            mtxt = _ratio(_median_rps(run, r, ld), run_best[j]) or "—" if r is not None else "—"
            cells.append(f"{ptxt} / {mtxt}")
        name = prow.label + (f" [{r.key}]" if r is not None else " (not measured)")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "— no number (empty published cell, or not measured).", ""]
    return out


def _rel(path: str) -> str:
    absd = os.path.abspath(path)
    return os.path.relpath(absd, REPO_ROOT) if absd.startswith(REPO_ROOT + os.sep) else path
