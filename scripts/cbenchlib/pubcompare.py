"""`cbench compare RUN --published NAME`: a published table beside a run, raw and normalised.

Rows are matched by label (runload.canonical_label); columns by load key on the published
table's path and pipeline. Each row is also divided by its family's single-thread row at the
same column, for the published and the measured numbers alike, so that the shapes can be
compared across machines and languages. Then the findings (findings.py).
"""
from __future__ import annotations

import os

from . import findings, tables
from .published import Published
from .runload import REPO_ROOT, Load, Row, Run, canonical_label, column_label


def _run_loads(run: Run, pub: Published, path: str = "/") -> list[Load | None]:
    """The run's load for each published column on this path (pipeline 1), or None."""
    by_key = {ld.lid.key: ld for (p, pipe, idle), loads in run.load_groups()
              if p == path and pipe == 1 and not idle for ld in loads}
    return [by_key.get(c) for c in pub.columns]


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


def render_published_comparison(run: Run, pub: Published, latency: str = "max", heading_level: int = 2) -> str:
    h = "#" * heading_level
    lat_path, lat_name = tables.LATENCY_STATS[latency]
    idx = findings.LabelIndex(run)
    loads = _run_loads(run, pub)
    out = [f"{h} Published table `{pub.name}` beside run `{run.run_id}`", ""]
    prov = pub.provenance
    out.append(f"Published data: `{_rel(pub.path)}`. Source: {prov.get('source', 'not recorded')}.")
    for k in ("machine", "load_generator", "latency_statistic", "empty_cells"):
        if prov.get(k):
            out.append(f"{k.replace('_', ' ').capitalize()}: {prov[k]}.")
    out.append("")
    missing = [c for c, ld in zip(pub.columns, loads) if ld is None]
    if missing:
        out += [f"Columns this run did not measure on GET / (pipeline 1): {', '.join(missing)}.", ""]

    matched: list[tuple] = []  # (published row, run row or None, gvl)
    for prow in pub.rows:
        for gvl in (False, True):
            r = idx.row(prow.canonical, gvl)
            if r is not None or not gvl:
                matched.append((prow, r, gvl))
    n_matched = sum(1 for _, r, _ in matched if r is not None)
    if n_matched == 0:
        out += ["No row of this run carries the label of a published row, so there is nothing to set"
                " beside the published numbers. The published table, as published:", ""]
    pub_labels = {p.canonical for p in pub.rows}
    matched_keys = {r.key for (lab, _g), rows in idx.by_label.items() if lab in pub_labels for r in rows}
    extra = [r for r in run.rows.values() if r.key not in matched_keys]

    out += [f"{h}# req/s ({lat_name}): published, and this run on the same columns", ""]
    if latency != "max":
        out += [f"The published cells keep their own latency (believed to be wrk's maximum); this run's"
                f" cells show the {latency}.", ""]
    out.append("| Row | " + " | ".join(pub.columns) + " |")
    out.append("|---" * (len(pub.columns) + 1) + "|")
    for prow, r, gvl in matched:
        if not gvl:
            out.append(f"| {prow.label}: published | " + " | ".join(c.text if c else "" for c in prow.cells) + " |")
        if r is not None:
            name = f"{prow.label}: this run{' --gvl' if gvl else ''} [{r.key}]"
            out.append(f"| {name} | " + " | ".join(_measured_cell(run, r, ld, lat_path) for ld in loads) + " |")
    out.append("")
    if n_matched:
        out += ["Measured cells: median over repetitions; † client-bound, ‡ error-bound, § unclear in at least"
                " one repetition; ✗ failed in at least one repetition (see `cbench table`).", ""]

    if n_matched:
        fams = pub.families()
        out += [f"{h}# Normalised to the family's single-thread row (req/s ÷ single thread, same column)", "",
                "Published and measured alike; --gvl rows are divided by the single-thread --gvl row when the"
                " run has one (Ruby's single thread also holds its GVL, uncontended), else by the row without"
                " a lock. 1.00 means as fast as a single thread.", ""]
        out.append("| Row | " + " | ".join(f"{c} published / this run" for c in pub.columns) + " |")
        out.append("|---" * (len(pub.columns) + 1) + "|")
        for prow, r, gvl in matched:
            base_label = fams.get(prow.family) or f"{prow.family} single thread"
            pbase = pub.row(base_label)
            rbase = idx.row(canonical_label(base_label), gvl) or idx.row(canonical_label(base_label), False)
            cells = []
            for j, ld in enumerate(loads):
                pc = prow.cells[j]
                pb = pbase.cells[j] if pbase else None
                ptxt = _ratio(pc.req_per_s if pc else None, pb.req_per_s if pb else None) or "—"
                mtxt = _ratio(_median_rps(run, r, ld), _median_rps(run, rbase, ld)) or "—"
                if gvl:
                    ptxt = "·"
                cells.append(f"{ptxt} / {mtxt}")
            name = f"{prow.label}{' (this run --gvl)' if gvl else ''}"
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out += ["", "— no number (empty published cell, or not measured); · the published table has no --gvl"
                " row (Ruby always runs under its GVL).", ""]

        # The same shape on other pipeline-1 paths (not in the published table).
        for path, ploads in idx.paths.items():
            if path == "/":
                continue
            rows = [(p, idx.row(p.canonical, g), g) for p in pub.rows for g in (False, True)]
            rows = [t for t in rows if t[1] is not None
                    and any(run.cell(t[1].key, ld.lid) for ld in ploads)]
            if not rows:
                continue
            out += [f"{h}# GET {path} (not in the published table): this run normalised to single thread", ""]
            out.append("| Row | " + " | ".join(column_label(ld) for ld in ploads) + " |")
            out.append("|---" * (len(ploads) + 1) + "|")
            for prow, r, gvl in rows:
                base_label = fams.get(prow.family) or f"{prow.family} single thread"
                rbase = idx.row(canonical_label(base_label), gvl) or idx.row(canonical_label(base_label), False)
                cells = [_ratio(_median_rps(run, r, ld), _median_rps(run, rbase, ld)) for ld in ploads]
                out.append(f"| {prow.label}{' --gvl' if gvl else ''} [{r.key}] | " + " | ".join(cells) + " |")
            out.append("")
    if extra:
        out += ["Rows of this run with no published counterpart (context): "
                + ", ".join(f"`{r.display()}`" for r in extra) + ".", ""]
    an = findings.Analysis(run, pub)
    out.append(findings.render_findings(an, heading_level))
    return "\n".join(out).rstrip("\n") + "\n"


def _rel(path: str) -> str:
    absd = os.path.abspath(path)
    return os.path.relpath(absd, REPO_ROOT) if absd.startswith(REPO_ROOT + os.sep) else path
