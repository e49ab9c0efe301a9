"""Read one run directory (meta.json + points.jsonl) into rows, loads and cells.

Readers only: nothing here runs a server or writes into the run directory.
Follows results/SCHEMA.md: unknown fields are ignored, a missing optional field
means "not measured". The files themselves are read by resultio (the format's one owner,
whose torn-line rule every reader shares).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable

from ..format import resultio
from ..format.loadpoint import LoadId, as_int, dig, load_id, measured
from ..format.paths import RUNS_DIR, repo_relative
from . import stats


SERVER_BOUND = "server-bound"
KIND_RANK = {"model": 0, "peer": 1, "instrument": 2}


class RunError(Exception):
    """A run directory that cannot be read; the message names the path and the problem."""


@dataclass
class Row:
    key: str
    label: str | None
    kind: str
    model: str | None
    threads: int | None
    queues: str | None
    gvl: bool
    backend: str | None
    extra_args: tuple
    raw: dict

    def display(self) -> str:
        """Row name for tables: the label (published row) when present, then the row key, then
        the kind of a peer or instrument with what a peer says of its hardening (the Ruby
        replicas: "(peer; replica: not hardened)"), or a model row's hardening alone."""
        name = f"{self.label} [{self.key}]" if self.label else self.key
        hardening = self.raw.get("hardening")
        if self.kind in ("peer", "instrument"):
            name += f" ({self.kind}{'; ' + str(hardening) if hardening else ''})"
        elif hardening:
            name += f" ({hardening})"
        return name

    def variant_fields(self) -> tuple:
        """Everything that identifies the row except its thread count (for threads charts)."""
        return (self.kind, self.model, self.queues, self.gvl, self.backend, self.extra_args)


@dataclass
class Load:
    lid: LoadId
    wrk_threads: int | None
    connections: int | None
    idle_connections: int | None
    raw: dict


@dataclass
class Cell:
    """All repetitions of one (row, load) point."""
    row: Row
    load: Load
    points: list = field(default_factory=list)

    @property
    def ok_points(self) -> list:
        return [p for p in self.points if measured(p)]

    @property
    def failed_points(self) -> list:
        return [p for p in self.points if not measured(p)]

    def values(self, path: str) -> list[float]:
        """Numbers at a dotted path (e.g. "wrk.req_per_s") over the ok repetitions; missing ones skipped."""
        out = []
        for p in self.ok_points:
            v = dig(p, path)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out.append(float(v))
        return out

    def rps(self) -> list[float]:
        vals = self.values("wrk.req_per_s")
        if vals:
            return vals
        # Derive when only requests and duration were recorded.
        out = []
        for p in self.ok_points:
            req, dur = dig(p, "wrk.requests"), dig(p, "wrk.duration_us")
            if isinstance(req, (int, float)) and isinstance(dur, (int, float)) and dur > 0:
                out.append(req / (dur / 1e6))
        return out

    def values_by_block(self, path: str) -> tuple[list[float], list]:
        """(values, blocks) at a dotted path over the ok repetitions, in the order values() and
        rps() give them (req/s derived from requests and duration where only those were recorded):
        each value with its repetition's block (resultio.point_block), for a paired interval."""
        vals, blocks = [], []
        for p in self.ok_points:
            v = dig(p, path)
            if path == "wrk.req_per_s" and not isinstance(v, (int, float)):
                req, dur = dig(p, "wrk.requests"), dig(p, "wrk.duration_us")
                v = req / (dur / 1e6) if isinstance(req, (int, float)) and isinstance(dur, (int, float)) and dur > 0 else None
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                vals.append(float(v))
                blocks.append(resultio.point_block(p))
        return vals, blocks

    def median(self, path: str) -> float | None:
        vals = self.rps() if path == "wrk.req_per_s" else self.values(path)
        return stats.median(vals) if vals else None

    def verdicts(self) -> list[str]:
        return [p.get("verdict") or "unclear" for p in self.ok_points]

    def not_server_bound(self) -> list[str]:
        """Verdicts other than server-bound among ok repetitions, in first-seen order, unique."""
        seen = []
        for v in self.verdicts():
            if v != SERVER_BOUND and v not in seen:
                seen.append(v)
        return seen

    def latency_per_batch(self) -> bool:
        return any(dig(p, "wrk.latency_is_per_batch") for p in self.ok_points)


class Run:
    """A loaded run: meta, points in file order, rows and loads in scenario order, cells."""

    def __init__(self, run_dir: str, meta: dict, points: list[dict], torn_line: bool):
        self.dir = run_dir
        self.meta = meta
        self.points = points
        self.torn_line = torn_line
        self._scen_order: tuple[dict[str, int], dict[str, int]] | None = None
        self.rows: dict[str, Row] = {}
        self.loads: dict[LoadId, Load] = {}
        self.cells: dict[tuple[str, LoadId], Cell] = {}
        first_seen_row: dict[str, int] = {}
        for i, p in enumerate(points):
            row = _row_of(p)
            load = _load_of(p)
            if row.key not in self.rows:
                self.rows[row.key] = row
                first_seen_row[row.key] = i
            if load.lid not in self.loads:
                self.loads[load.lid] = load
            cell = self.cells.setdefault((row.key, load.lid), Cell(self.rows[row.key], self.loads[load.lid]))
            cell.points.append(p)
        self._order_rows(first_seen_row)
        self._order_loads()

    # ---- identity -------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.meta.get("run_id") or os.path.basename(os.path.normpath(self.dir))

    @property
    def env(self) -> dict:
        env = self.meta.get("env")
        return env if isinstance(env, dict) else {}

    @property
    def commit(self) -> str | None:
        """The commit the run was made from (meta.json env.git_commit), or None."""
        return self.env.get("git_commit") or None

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic"))

    def machine_line(self) -> str:
        env = self.env
        parts = [env.get("cpu_model") or "unknown CPU"]
        if env.get("cpu_count"):
            parts.append(f"{env['cpu_count']} CPUs")
        parts.append(f"kernel {env.get('kernel') or 'unknown'}")
        pin = []
        if env.get("server_cpus") is not None:
            pin.append(f"server CPUs {env['server_cpus']}")
        if env.get("client_cpus") is not None:
            pin.append(f"client CPUs {env['client_cpus']}")
        if pin:
            parts.append(", ".join(pin))
        return ", ".join(parts)

    def rel_dir(self) -> str:
        """The run directory relative to the repo root when inside it (for citing), else as given."""
        rel = repo_relative(self.dir)
        return rel if not os.path.isabs(rel) else self.dir

    # ---- ordering -------------------------------------------------------
    def _scenario_pos(self, *names: str | None) -> int | None:
        """Earliest position of any of the names, quoted, in the scenario text; None if absent."""
        text = self.meta.get("scenario_text") or ""
        best = None
        for name in names:
            if not name:
                continue
            for q in ('"', "'"):
                pos = text.find(q + name + q)
                if pos >= 0 and (best is None or pos < best):
                    best = pos
        return best

    def _scenario_order(self) -> tuple[dict[str, int], dict[str, int]]:
        """(row key -> index, load key -> index): the scenario order the sweep recorded in
        meta.json (`order.rows`, `order.loads`; resultio.scenario_order); empty maps for a run
        that lacks it, and the readers fall back on where keys appear in the scenario text."""
        if self._scen_order is None:
            self._scen_order = resultio.scenario_order(self.meta)
        return self._scen_order

    def _order_rows(self, first_seen: dict[str, int]) -> None:
        # Scenario order (parsed scenario text, or an index the sweep recorded), else where the
        # row's key or label is written in the scenario text, else a natural order of its fields.
        scen_rows = self._scenario_order()[0]
        model_first: dict[str, int] = {}
        for key in sorted(self.rows, key=lambda k: first_seen[k]):
            model_first.setdefault(self.rows[key].model or "", len(model_first))

        def sort_key(key: str):
            r = self.rows[key]
            idx = scen_rows.get(key, r.raw.get("index", r.raw.get("order")))
            if isinstance(idx, int):
                return (0, idx, 0, ())
            pos = self._scenario_pos(r.key, r.label)
            natural = (KIND_RANK.get(r.kind, 3), model_first.get(r.model or "", 0),
                       r.queues or "", r.threads if r.threads is not None else -1, r.gvl,
                       r.backend or "", r.key)
            if pos is not None:
                return (1, pos, 0, natural)
            return (2, 0, 0, natural)

        self.rows = {k: self.rows[k] for k in sorted(self.rows, key=sort_key)}

    def _order_loads(self) -> None:
        scen_loads = self._scenario_order()[1]

        def sort_key(lid: LoadId):
            ld = self.loads[lid]
            idx = scen_loads.get(lid.key, ld.raw.get("index", ld.raw.get("order")))
            natural = (lid.idle, lid.path, lid.pipeline,
                       ld.idle_connections or 0, ld.connections or 0, ld.wrk_threads or 0, lid.key)
            if isinstance(idx, int):
                return (0, idx, natural)
            return (1, 0, natural)

        self.loads = {k: self.loads[k] for k in sorted(self.loads, key=sort_key)}

    # ---- queries --------------------------------------------------------
    def load_groups(self) -> list[tuple[tuple[str, int, bool], list[Load]]]:
        """Loads grouped by (path, pipeline, idle), groups in order, loads in column order."""
        groups: dict[tuple[str, int, bool], list[Load]] = {}
        for lid, ld in self.loads.items():
            groups.setdefault((lid.path, lid.pipeline, lid.idle), []).append(ld)
        return list(groups.items())

    def rows_in(self, loads: Iterable[Load]) -> list[Row]:
        """Rows with at least one point (ok or failed) in these loads, in row order."""
        lids = {ld.lid for ld in loads}
        return [r for k, r in self.rows.items() if any((k, lid) in self.cells for lid in lids)]

    def cell(self, row_key: str, lid: LoadId) -> Cell | None:
        return self.cells.get((row_key, lid))


def fixed_rate_load(run: Run, ld: Load) -> Load | None:
    """The run's fixed-rate load of the same shape as LD (path, pipeline depth, connections and
    generator threads equal; loadgen.is_fixed_rate), the lowest fraction when there are several;
    None when the run has none."""
    same = [x for x in run.loads.values() if x.lid.rate_common_fraction is not None
            and x.lid.path == ld.lid.path and x.lid.pipeline == ld.lid.pipeline
            and x.connections == ld.connections and x.wrk_threads == ld.wrk_threads]
    return min(same, key=lambda x: x.lid.rate_common_fraction) if same else None


def column_label(ld: Load) -> str:
    """A load key without what its table's title already says (path, pipeline depth):
    the sweep writes "-t2 -c10 /spin?us=10"; under the title "GET /spin?us=10" it reads "-t2 -c10"."""
    key = ld.lid.key
    if not ld.lid.idle:
        for suffix in (f" {ld.lid.path}", f" -p{ld.lid.pipeline}"):
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
    return key


def group_title(group: tuple[str, int, bool]) -> str:
    path, pipeline, idle = group
    if idle:
        return "idle connections (no load generator)"
    title = f"GET {path}"
    if pipeline and pipeline > 1:
        title += f", pipeline depth {pipeline}"
    return title


def _row_of(p: dict) -> Row:
    r = p.get("row") if isinstance(p.get("row"), dict) else {}
    key = r.get("key") or str(p.get("point_id", "?")).split(" / ")[0]
    label = r.get("label") or None
    return Row(key=str(key), label=str(label) if label else None, kind=r.get("kind") or "model",
               model=r.get("model"), threads=as_int(r.get("threads")), queues=r.get("queues"),
               gvl=bool(r.get("gvl")), backend=r.get("backend"),
               extra_args=tuple(r.get("extra_args") or ()), raw=r)


def _load_of(p: dict) -> Load:
    lid = load_id(p)
    return Load(lid=lid, wrk_threads=lid.wrk_threads, connections=lid.connections,
                idle_connections=lid.idle_connections, raw=p["load"] if isinstance(p.get("load"), dict) else {})


def resolve_run_dir(arg: str) -> str:
    """A run directory from a path or a run id under results/runs/; raises RunError if neither."""
    candidates = [arg, os.path.join(RUNS_DIR, arg)]
    for c in candidates:
        if os.path.isdir(c) and os.path.isfile(os.path.join(c, "meta.json")):
            return c
    for c in candidates:
        if os.path.isdir(c):
            raise RunError(f"{c}: not a run directory (no meta.json)")
    raise RunError(f"{arg}: no such run directory (looked at {arg} and {os.path.join(RUNS_DIR, arg)})")


def load_run(arg: str) -> Run:
    """Read a run directory (path or run id); raises RunError with the path on any problem.
    The files are read by resultio, the format's one owner (its torn-line rule applies)."""
    run_dir = resolve_run_dir(arg)
    try:
        meta = resultio.read_meta(run_dir)
        got = resultio.read_points(os.path.join(run_dir, resultio.POINTS_FILE))
    except resultio.ResultsFormatError as exc:
        raise RunError(str(exc)) from None
    return Run(run_dir, meta, got.points, got.torn)
