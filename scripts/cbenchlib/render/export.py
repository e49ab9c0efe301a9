"""The one owner of the CSV and JSON export of `cbench table` and `cbench compare`
(results/SCHEMA.md, "Exported tables and comparisons").

JSON: {"format": FORMAT_VERSION, "kind": "table" | "run-comparison" | "published-comparison",
"run": the run's identity (run_identity), ...kind's extras, "records": [...]}; a finding's record
carries its verdict and its intervals. CSV: the same records, one line each, the header the union
of their keys in first-seen order; a list is joined with ";", a missing value is empty, and every
line repeats the run id (run_id), so a CSV file alone still says which run it came from.
Values are numbers, not the Markdown's text: the Markdown shows them through tables.fmt_rps and
tables.fmt_latency_us (tests/report/test_export.py checks that round trip)."""
from __future__ import annotations

import csv
import io
import json
import math

from ..analysis import findings, replicas, scorecard, stats
from ..analysis.runload import Cell, Run, column_label
from ..format.published import Published
from . import tables

FORMATS = ("md", "csv", "json")
FORMAT_VERSION = 1
# Identity fields copied from meta.json's env when present.
ENV_IDENTITY = ("git_commit", "git_dirty", "cpu_model", "cpu_count", "kernel", "compiler", "server_cpus",
                "client_cpus")


def run_identity(run: Run) -> dict:
    """What names a run: id, scenario, directory, start and end, commit and machine."""
    m = run.meta
    ident = {"run_id": run.run_id, "scenario": m.get("scenario_name"), "dir": run.rel_dir(),
             "started_utc": m.get("started_utc"), "ended_utc": m.get("ended_utc"),
             "synthetic": run.synthetic, "quick": bool(m.get("quick"))}
    env = run.env
    ident.update({k: env.get(k) for k in ENV_IDENTITY if k in env})
    return ident


def _num(v):
    """A finite float, or None (JSON has no NaN)."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def mean_ci95(values: list[float]) -> tuple[float | None, float | None]:
    """A t interval (95%) of the mean over repetitions; (None, None) with fewer than two."""
    if len(values) < 2:
        return None, None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = stats.t975(len(values) - 1) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def cell_record(cell: Cell, latency: str) -> dict:
    """One cell's numbers: the medians the Markdown table shows, the spread, the verdicts."""
    lat_path, _name = tables.LATENCY_STATS[latency]
    rps = cell.rps()
    lo, hi = mean_ci95(rps)
    lid = cell.load.lid
    return {"row": cell.row.key, "row_display": cell.row.display(), "path": lid.path, "pipeline": lid.pipeline,
            "idle": bool(lid.idle), "load": lid.key, "column": column_label(cell.load),
            "repetitions": len(cell.points), "ok_repetitions": len(cell.ok_points),
            "failed_repetitions": len(cell.failed_points),
            "req_per_s_median": _num(cell.median("wrk.req_per_s")),
            "req_per_s_min": _num(min(rps)) if rps else None, "req_per_s_max": _num(max(rps)) if rps else None,
            "req_per_s_cv_pct": _num(stats.cv_percent(rps)) if rps else None,
            "req_per_s_mean_ci95_low": _num(lo), "req_per_s_mean_ci95_high": _num(hi),
            "latency_stat": latency, "latency_us_median": _num(cell.median(lat_path)),
            "idle_bytes_per_conn_median": _num(cell.median("idle.bytes_per_conn")),
            "idle_threads_per_conn_median": _num(cell.median("idle.threads_per_conn")),
            "verdicts": cell.verdicts(), "not_server_bound": list(cell.not_server_bound())}


def table_records(run: Run, latency: str = "max") -> list[dict]:
    """Every cell of `cbench table`, in the tables' order (group, row, load)."""
    out = []
    for _group, loads in run.load_groups():
        for r in run.rows_in(loads):
            for ld in loads:
                c = run.cell(r.key, ld.lid)
                if c is not None:
                    out.append(cell_record(c, latency))
    return out


def ci_fields(prefix: str, ci: stats.RatioCI | None) -> dict:
    """A ratio's point estimate and 95% interval as flat fields."""
    return {f"{prefix}": _num(ci.ratio) if ci else None, f"{prefix}_ci95_low": _num(ci.lo) if ci else None,
            f"{prefix}_ci95_high": _num(ci.hi) if ci else None}


def finding_records(an: findings.Analysis) -> list[dict]:
    """One record per comparison line of each finding (and one for a finding without data):
    the line's verdict, the deciding metric, its effect and interval at the primary point, and
    the finding's overall verdict."""
    out = []
    for f in an.findings:
        base = {"finding": f.fid, "title": f.title, "stack": an.stack,
                "finding_verdict": f.overall.word if f.overall else None,
                "finding_reason": f.overall.reason if f.overall else None}
        if not f.lines:
            out.append({**base, "comparison": None, "verdict": findings.NO_DATA, "missing": list(f.missing)})
        for ln in f.lines:
            out.append({**base, "comparison": ln.name, "row_a": ln.a.key, "row_b": ln.b.key,
                        "verdict": ln.decision.word, "reason": ln.decision.reason, "decided_by": ln.decided_by,
                        **ci_fields("effect", ln.decision.ci), "published_effect": _num(ln.published),
                        "magnitude": ln.magnitude})
    return out


def scorecard_records(scores: list[scorecard.EffectScore], fids: list[replicas.Fidelity]) -> list[dict]:
    """The reproduction scorecard, one record per (effect, stack): the verdict and each aspect's
    word and reason; then the fidelity claims, one record per (Ruby row, column)."""
    out = []
    for es in scores:
        for st, cells in es.scores.items():
            rec = {"scorecard_effect": es.eid, "title": es.title, "stack": st, "verdict": es.verdicts.get(st) or None,
                   "not_modelled": es.not_modelled, "counters_line": es.counters_line or None}
            for aspect, sc in cells.items():
                rec.update({aspect: sc.word, f"{aspect}_why": sc.why or None})
            out.append(rec)
    for fi in fids:
        for ln in fi.lines:
            out.append({"fidelity": fi.decl.get("id"), "title": fi.decl.get("title"), "row": ln.row,
                        "column": ln.column, "verdict": ln.decision.word, "reason": ln.decision.reason,
                        "ruby_user_us_per_req": _num(ln.ruby_user_us), "spin_us": ln.spin_us,
                        "cpp_point": ln.cpp_point or None, **ci_fields("ruby_ratio", ln.ruby_ci),
                        **ci_fields("cpp_ratio", ln.cpp_ci), **ci_fields("cpp_over_ruby", ln.decision.ci)})
    return out


def published_records(run: Run, pub: Published, cells: list[tuple]) -> list[dict]:
    """The published table beside the run: (published row, run row or None, gvl, [(column,
    published cell, run Cell or None)]) as one record per (row, column)."""
    out = []
    for prow, r, gvl, cols in cells:
        for column, pc, c in cols:
            out.append({"published_row": prow.label, "row": r.key if r is not None else None, "gvl": gvl,
                        "column": column, "published_req_per_s": _num(pc.req_per_s) if pc else None,
                        "published_text": pc.text if pc else None,
                        "req_per_s_median": _num(c.median("wrk.req_per_s")) if c else None,
                        "verdicts": c.verdicts() if c else []})
    return out


def dump(records: list[dict], identity: dict, fmt: str, kind: str = "table", **extra) -> str:
    """records as CSV or JSON text (see the module docstring)."""
    if fmt == "json":
        doc = {"format": FORMAT_VERSION, "kind": kind, "run": identity, **extra, "records": records}
        return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}")
    header = ["run_id"]
    for rec in records:
        header += [k for k in rec if k not in header]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for rec in records:
        w.writerow({"run_id": identity.get("run_id"),
                    **{k: _csv_value(v) for k, v in rec.items()}})
    return buf.getvalue()


def _csv_value(v):
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    if v is None:
        return ""
    return v


def run_comparison_records(points: list[tuple]) -> list[dict]:
    """runcompare.point_comparisons as records: both medians, B/A with its interval, the verdict."""
    out = []
    for _group, pts in points:
        for pc in pts:
            ld, ca, cb = pc["load"], pc["a"], pc["b"]
            out.append({"row": pc["row"].key, "path": ld.lid.path, "pipeline": ld.lid.pipeline, "load": ld.lid.key,
                        "column": column_label(ld), "a_req_per_s_median": _num(ca.median("wrk.req_per_s")),
                        "b_req_per_s_median": _num(cb.median("wrk.req_per_s")),
                        **ci_fields("b_over_a", pc["ci"]), "verdict": pc["verdict"],
                        "a_not_server_bound": list(ca.not_server_bound()),
                        "b_not_server_bound": list(cb.not_server_bound())})
    return out
