"""Scenario files (scenarios/*.toml): parse, validate, expand into points.

A scenario is settings + rows (what runs as the server) + load sets (what wrk
does). Its points are, for every row, every load of every load set the row
runs on. The format is documented in scenarios/README.md; this module is its
only reader. Every problem is reported as ScenarioError naming the file, the
key and the problem, and nothing is run when a file is bad.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import tomllib
from typing import Any

from .loadpoint import canonical_label
from . import loadgen  # issue 17: generator, rate, rate_fraction, arrivals

KINDS = ("model", "instrument", "peer")
QUEUES = ("shared", "per-worker")
BACKENDS = ("libev", "epoll")
# blocked: each round (block) runs every point once, grouped by load so that the rows compared
# at one load run in adjacent slots; loads and rows within a load in a seeded shuffle.
# shuffled: each round in a seeded shuffle of all points. interleaved: each round in file order.
ORDERS = ("blocked", "shuffled", "interleaved")

# Keys of a load set that may be lists (multiplied together) or appear in `explicit` entries.
WRK_LOAD_KEYS = ("wrk_threads", "connections", "pipeline", "path")
IDLE_LOAD_KEYS = ("idle_connections",)
LOAD_VALUE_KEYS = WRK_LOAD_KEYS + IDLE_LOAD_KEYS
# Issue 17 (loadgen.py): open-loop rates (lists), and per-set generator choice (scalars).
OPEN_LOOP_KEYS = ("rate", "rate_fraction")
GENERATOR_SET_KEYS = ("generator", "arrivals", "read_rate")  # read_rate: issue 19's slow readers

# Keys of a row that may be lists (each value a variant of the row).
ROW_VARIANT_KEYS = ("threads", "queues", "gvl", "backend", "processes", "keepalive")
MAX_PROCESSES = 256         # cluster-mode workers per row (cbench-server --processes)

SETTING_DEFAULTS = {
    "name": None,            # defaults to the file's stem
    "description": "",
    "duration_s": 10,        # whole seconds: wrk's -d takes whole seconds
    "warmup_s": 2.0,
    "repetitions": 3,
    "timeout_s": 10,         # wrk --timeout, whole seconds (wrk's scan_time is integral)
    "server_cpus": "0",
    "client_cpus": "1",
    "order": "blocked",
    "seed": 1,
    # Sequential design (issue 12): extra blocks for the rows a primary comparison of the
    # published table `published` needs, until its interval is narrower than target_ci_pct
    # or a point has max_repetitions; at most sequential_points points per extra block.
    "target_ci_pct": None,   # None: a fixed design of `repetitions` blocks
    "max_repetitions": None, # None: = repetitions
    "published": None,       # results/published/<name>.json
    "sequential_points": 16,
    "ready_timeout_s": 10.0,
    "server_args": [],
    "response": "standard",  # issue 14: "published" = the Ruby examples' 49-byte bare-LF answer
}
ROW_KEYS = ("key", "label", "kind", "model", "threads", "queues", "gvl", "backend",
            "extra_args", "loads", "command", "config_template", "processes", "keepalive", "binary")
LOAD_SET_KEYS = ("name", "explicit") + LOAD_VALUE_KEYS + OPEN_LOOP_KEYS + GENERATOR_SET_KEYS

# Built-in peers (issue 7): a row `kind = "peer"` naming one of these needs no `command` or
# `config_template` (a row may still give either, to run another build or configuration).
# Templates are rendered by runner.render_peer; their placeholders are listed there.
PEERS = {
    "nginx": {
        # -e stderr: errors before the configuration is read go to the point's server log too
        # (not to Debian's /var/log/nginx); -p: the prefix for relative paths, in the run dir.
        "command": ("nginx", "-e", "stderr", "-p", "$peer_dir", "-c", "$config"),
        "config_template": "scenarios/peers/nginx.conf",
    },
    "h2o": {
        "command": ("h2o", "-c", "$config"),
        "config_template": "scenarios/peers/h2o.conf",
    },
}

# Sanity bounds; each keeps a typo from turning into an hour-long or impossible run.
MAX_DURATION_S = 3600
MAX_REPETITIONS = 100
MAX_THREADS = 1024          # server threads per row
MAX_CONNECTIONS = 100_000   # wrk connections or idle connections per point
MAX_PIPELINE = 1024         # requests per batch; wrk sends the batch in one buffer
MAX_WRK_THREADS = 256

# --quick: seconds per point, for CI and smoke tests.
QUICK_DURATION_S = 1        # wrk's minimum (-d takes whole seconds)
QUICK_WARMUP_S = 0.3        # the warm-up wrk is stopped early with SIGINT
QUICK_REPETITIONS = 1


class ScenarioError(Exception):
    """A bad scenario file: str() is 'FILE: KEY: problem'."""


@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    label: str | None
    kind: str
    model: str
    threads: int
    queues: str | None
    gvl: bool
    backend: str | None
    extra_args: tuple[str, ...]
    # Load-set names, each optionally pinned to one of its loads ("spin -t4 -c64": only that load
    # of set "spin"; see load_selected); None = every load of every set.
    loads: tuple[str, ...] | None
    command: tuple[str, ...] | None      # peer rows only
    config_template: str | None          # peer rows only
    # Issue 15 (defaults keep the ids of earlier rows): --processes N workers (None: one process
    # serves), and keepalive = false for --keepalive off.
    processes: int | None = None
    keepalive: bool = True
    # Issue 19 (cbench regress): another cbench-server build for this row (None: the sweep's
    # --server-bin). Part of the id, so a baseline and a candidate row of one model may meet.
    binary: str | None = None
    # Set by the parser only when rows of one server command carry distinct published labels
    # (the parser's _alias_published_labels): the label, made part of the id so each has its points.
    alias: str | None = None

    @property
    def id(self) -> str:
        """Stable identity of the row's server command (labels and keys excluded, but for `alias`)."""
        parts = [self.model, f"t{self.threads}", self.queues or "-",
                 f"gvl{int(self.gvl)}", self.backend or "-"]
        if self.processes:
            parts.append(f"p{self.processes}")
        if not self.keepalive:
            parts.append("keepalive-off")
        if self.extra_args:
            parts.append(" ".join(self.extra_args))
        if self.binary:
            parts.append(f"bin={self.binary}")
        if self.alias:
            parts.append(f"as={self.alias}")
        return "|".join(parts)

    def to_json(self) -> dict:
        return {"key": self.key, "label": self.label, "kind": self.kind, "model": self.model,
                "threads": self.threads, "queues": self.queues, "gvl": self.gvl,
                "backend": self.backend, "extra_args": list(self.extra_args),
                "processes": self.processes, "keepalive": self.keepalive,
                **({"binary": self.binary} if self.binary else {}),
                **({"alias": self.alias} if self.alias else {})}


@dataclasses.dataclass(frozen=True)
class Load:
    set_name: str
    wrk_threads: int | None = None
    connections: int | None = None
    pipeline: int = 1
    path: str = "/"
    idle_connections: int | None = None
    # Issue 17 (loadgen.py): which generator; open loop at a rate or a fraction of the peak.
    generator: str = "wrk"
    rate: float | None = None
    rate_fraction: float | None = None
    arrivals: str = "constant"
    read_rate: float | None = None  # issue 19: cbench-load --read-rate, bytes/s per connection

    @property
    def is_idle(self) -> bool:
        return self.idle_connections is not None

    @property
    def key(self) -> str:
        """Column label: '-t2 -c10' as in the published table, plus pipeline and path if not default."""
        if self.is_idle:
            return f"idle {self.idle_connections}"
        key = f"-t{self.wrk_threads} -c{self.connections}"
        if self.pipeline != 1:
            key += f" -p{self.pipeline}"
        if self.path != "/":
            key += f" {self.path}"
        return key + loadgen.key_suffix(self)

    @property
    def id(self) -> str:
        if self.is_idle:
            return f"idle{self.idle_connections}"
        return f"t{self.wrk_threads}c{self.connections}p{self.pipeline} GET {self.path}" + loadgen.key_suffix(self)

    def to_json(self, settings: "Settings") -> dict:
        if self.is_idle:
            return {"key": self.key, "set": self.set_name,
                    "idle_connections": self.idle_connections}
        return {"key": self.key, "set": self.set_name, "wrk_threads": self.wrk_threads,
                "connections": self.connections, "pipeline": self.pipeline, "path": self.path,
                "duration_s": float(settings.duration_s), "warmup_s": float(settings.warmup_s),
                "timeout_s": float(settings.timeout_s), "generator": self.generator,
                "rate": self.rate, "rate_fraction": self.rate_fraction, "arrivals": self.arrivals,
                "read_rate": self.read_rate}


@dataclasses.dataclass(frozen=True)
class Point:
    row: Row
    load: Load

    @property
    def id(self) -> str:
        return f"{self.row.id} / {self.load.id}"


@dataclasses.dataclass
class Settings:
    name: str
    description: str
    duration_s: int
    warmup_s: float
    repetitions: int
    timeout_s: int
    server_cpus: str
    client_cpus: str
    order: str
    seed: int
    ready_timeout_s: float
    server_args: tuple[str, ...]
    response: str = "standard"  # issue 14: cbench-server --response (codec.h ResponseStyle); not for peers
    target_ci_pct: float | None = None
    max_repetitions: int | None = None
    published: str | None = None
    sequential_points: int = 16

    @property
    def repetitions_cap(self) -> int:
        """The most repetitions any point gets (the fixed design's when not sequential)."""
        if self.target_ci_pct is None:
            return self.repetitions
        return max(self.repetitions, self.max_repetitions or self.repetitions)


@dataclasses.dataclass
class Scenario:
    path: str
    text: str
    settings: Settings
    rows: list[Row]
    load_sets: dict[str, list[Load]]
    quick: bool = False

    def points(self) -> list[Point]:
        """Every (row, load) in file order: rows outer, then load sets, then loads."""
        out = []
        for row in self.rows:
            for set_name, loads in self.load_sets.items():
                out.extend(Point(row, load) for load in loads if load_selected(row.loads, set_name, load))
        return out


def split_load_entry(entry: str) -> tuple[str, str | None]:
    """A row's `loads` entry -> (set name, pinned load or None): "spin" -> ("spin", None),
    "spin -t4 -c64" -> ("spin", "-t4 -c64")."""
    name, _, pin = entry.partition(" ")
    return name, (pin.strip() or None)


def _pin_matches(load: Load, pin: str) -> bool:
    """A pin names a load by its key, with or without the path ("-t4 -c64" or "-t4 -c64 /spin?us=10")."""
    bare = load.key.replace(f" {load.path}", "", 1) if load.path != "/" else load.key
    return pin in (load.key, bare)


def load_selected(entries: tuple[str, ...] | None, set_name: str, load: Load) -> bool:
    """Whether a row with these `loads` entries runs this load of this set (issue 14: a row may
    run only the point a published finding needs, which keeps the budget)."""
    if entries is None:
        return True
    pins = [pin for name, pin in map(split_load_entry, entries) if name == set_name]
    if not pins:
        return False
    return None in pins or any(_pin_matches(load, pin) for pin in pins)


def cpu_list_count(spec: str) -> int:
    """Number of CPUs in a taskset list such as '0', '0-3' or '0,2-3'; raises ValueError."""
    return len(cpu_list(spec))


def cpu_list(spec: str) -> list[int]:
    """The CPUs of a taskset list such as '0,2-3' -> [0, 2, 3]; raises ValueError."""
    cpus: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"not a CPU list: {spec!r} (expected e.g. \"0\", \"0-3\" or \"0,2\")")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"not a CPU list: {spec!r} (range {part} runs backwards)")
        cpus.update(range(lo, hi + 1))
    return sorted(cpus)


def resolve_path(name_or_path: str, scenarios_dir: str) -> str:
    """A scenario name ('ever-table') or a path to a .toml file -> the file's path."""
    if os.sep in name_or_path or name_or_path.endswith(".toml"):
        return name_or_path
    return os.path.join(scenarios_dir, name_or_path + ".toml")


def load_file(path: str, quick: bool = False) -> Scenario:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(raw.decode("utf-8", errors="replace"), path, quick=quick)


def parse(text: str, path: str, quick: bool = False) -> Scenario:
    """Parse and validate a scenario's TOML text; `path` names it in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    v = _Validator(path)
    settings = v.settings(doc)
    load_sets = v.load_sets(doc.get("loads"))
    rows = v.rows(doc.get("rows"), load_sets)
    if quick:
        settings, rows, load_sets = _quick(settings, rows, load_sets)
    return Scenario(path=path, text=text, settings=settings, rows=rows,
                    load_sets=load_sets, quick=quick)


def dump(doc: dict) -> str:
    """TOML text of a scenario document: top-level settings, then `[[loads]]` and `[[rows]]` (lists
    of tables), in the order given. The inverse of parse for what generated scenarios use: strings,
    booleans, numbers, lists and inline tables of those. Every generated scenario is written here
    and read back by parse before use (dump_checked), so a generator cannot write what the sweep
    would refuse."""
    tables = {k: doc[k] for k in ("loads", "rows") if k in doc}
    lines = [f"{k} = {_toml_value(v, k)}" for k, v in doc.items() if k not in tables]
    for name, items in tables.items():
        for item in items:
            lines += ["", f"[[{name}]]"] + [f"{k} = {_toml_value(v, f'{name}.{k}')}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def dump_checked(doc: dict, path: str) -> tuple[str, Scenario]:
    """(dump(doc), the scenario parse reads from it); raises ScenarioError naming PATH."""
    text = dump(doc)
    return text, parse(text, path)


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise ScenarioError(f"{where}: {v} cannot be written")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x, where)}" for k, x in v.items()) + " }"
    raise ScenarioError(f"{where}: {_show(v)} cannot be written to a scenario")


def _quick(settings: Settings, rows: list[Row], load_sets: dict[str, list[Load]]):
    """Seconds per point: 1 s runs, a 0.3 s warm-up, one repetition (no extra blocks), long lists
    cut to their ends."""
    settings = dataclasses.replace(settings, duration_s=QUICK_DURATION_S,
                                   warmup_s=min(settings.warmup_s, QUICK_WARMUP_S),
                                   repetitions=QUICK_REPETITIONS, target_ci_pct=None)
    # Rows and loads were expanded from lists; keep the first and last of each group that
    # came from one list, so a sweep over 1..10000 connections still spans its range.
    # A load some row pins ("spin -t4 -c64") is kept too: it is there for a finding's primary point.
    trimmed_sets = {}
    for name, loads in load_sets.items():
        ends = _ends(loads)
        pins = {pin for r in rows for n, pin in map(split_load_entry, r.loads or ()) if n == name and pin}
        trimmed_sets[name] = [ld for ld in loads if ld in ends or any(_pin_matches(ld, p) for p in pins)]
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.model, row.queues, row.gvl, row.backend,
                           row.extra_args, row.loads, row.binary), []).append(row)
    keep = set()
    for group in groups.values():
        keep.update(id(r) for r in _ends(group))
    return settings, [r for r in rows if id(r) in keep], trimmed_sets


def _ends(items: list) -> list:
    return items if len(items) <= 2 else [items[0], items[-1]]


class _Validator:
    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, problem: str):
        raise ScenarioError(f"{self.path}: {key}: {problem}")

    # -- scalar checks --------------------------------------------------------------
    def int_(self, key, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {_show(value)}")
        if not lo <= value <= hi:
            self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(self, key, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {_show(value)}")
        if not (lo <= value <= hi) or math.isnan(value):
            self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return float(value)

    def str_(self, key, value, choices=None, pattern=None, what=None):
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_show(value)}")
        if choices is not None and value not in choices:
            self.fail(key, f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(key, f"{what or 'bad value'}, got {value!r}")
        return value

    def bool_(self, key, value):
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def str_list(self, key, value):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.fail(key, f"expected a list of strings, got {_show(value)}")
        return tuple(value)

    def one_or_list(self, key, value, check):
        """A scalar or a non-empty list of scalars, each passed to check(key, item)."""
        if isinstance(value, list):
            if not value:
                self.fail(key, "empty list")
            out = [check(f"{key}[{i}]", item) for i, item in enumerate(value)]
            if len(set(out)) != len(out):
                self.fail(key, f"repeated value in {value}")
            return out
        return [check(key, value)]

    def unknown(self, key_prefix, table, allowed):
        for k in table:
            if k not in allowed:
                where = f"{key_prefix}.{k}" if key_prefix else k
                self.fail(where, f"unknown key (allowed: {', '.join(allowed)})")

    # -- sections -------------------------------------------------------------------
    def settings(self, doc: dict) -> Settings:
        self.unknown("", doc, tuple(SETTING_DEFAULTS) + ("rows", "loads"))
        s = dict(SETTING_DEFAULTS)
        s.update({k: v for k, v in doc.items() if k in SETTING_DEFAULTS})
        stem = os.path.splitext(os.path.basename(self.path))[0]
        name = stem if s["name"] is None else self.str_(
            "name", s["name"], pattern=r"[a-z0-9][a-z0-9-]*", what="use lower case letters, digits and '-'")
        for key in ("server_cpus", "client_cpus"):
            self.str_(key, s[key])
            try:
                cpu_list_count(s[key])
            except ValueError as exc:
                self.fail(key, str(exc))
        return Settings(
            name=name,
            description=self.str_("description", s["description"]),
            duration_s=self.int_("duration_s", s["duration_s"], 1, MAX_DURATION_S),
            warmup_s=self.number("warmup_s", s["warmup_s"], 0, MAX_DURATION_S),
            repetitions=self.int_("repetitions", s["repetitions"], 1, MAX_REPETITIONS),
            timeout_s=self.int_("timeout_s", s["timeout_s"], 1, MAX_DURATION_S),
            server_cpus=s["server_cpus"], client_cpus=s["client_cpus"],
            order=self.str_("order", s["order"], ORDERS),
            seed=self.int_("seed", s["seed"], 0, 2**63 - 1),
            ready_timeout_s=self.number("ready_timeout_s", s["ready_timeout_s"], 0.1, 600),
            server_args=self.str_list("server_args", s["server_args"]),
            response=self.str_("response", s["response"], ("standard", "published")),
            target_ci_pct=None if s["target_ci_pct"] is None
            else self.number("target_ci_pct", s["target_ci_pct"], 0.1, 1000),
            max_repetitions=None if s["max_repetitions"] is None
            else self.int_("max_repetitions", s["max_repetitions"], 1, MAX_REPETITIONS),
            published=None if s["published"] is None
            else self.str_("published", s["published"], pattern=r"[a-z0-9][a-z0-9-]*",
                           what="the name of a results/published/*.json table"),
            sequential_points=self.int_("sequential_points", s["sequential_points"], 1, 100_000),
        )

    def load_sets(self, raw) -> dict[str, list[Load]]:
        if raw is None:
            self.fail("loads", "missing: a scenario needs at least one [[loads]] set")
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            self.fail("loads", "expected an array of tables ([[loads]])")
        if not raw:
            self.fail("loads", "empty")
        sets: dict[str, list[Load]] = {}
        for i, table in enumerate(raw):
            where = f"loads[{i}]"
            self.unknown(where, table, LOAD_SET_KEYS)
            name = table.get("name", f"load{i}")
            self.str_(f"{where}.name", name, pattern=r"[A-Za-z0-9_-]+",
                      what="use letters, digits, '-' and '_'")
            if name in sets:
                self.fail(f"{where}.name", f"load set {name!r} is defined twice")
            sets[name] = self.one_load_set(where, name, table)
        return sets

    def load_value(self, key, field, value):
        if field == "wrk_threads":
            return self.int_(key, value, 1, MAX_WRK_THREADS)
        if field in ("connections", "idle_connections"):
            return self.int_(key, value, 1, MAX_CONNECTIONS)
        if field == "pipeline":
            return self.int_(key, value, 1, MAX_PIPELINE)
        if field == "path":
            return self.str_(key, value, pattern=r"/[\x21-\x7e]*",
                             what="must start with '/' and hold no spaces or control characters")
        raise AssertionError(field)

    def one_load_set(self, where, name, table) -> list[Load]:
        lists = {}
        for field in OPEN_LOOP_KEYS:  # issue 17: checked per value by loadgen.check_load
            if field in table:
                lists[field] = table[field] if isinstance(table[field], list) else [table[field]]
        for field in LOAD_VALUE_KEYS:
            if field in table:
                lists[field] = self.one_or_list(
                    f"{where}.{field}", table[field],
                    lambda k, x, field=field: self.load_value(k, field, x))
        explicit = table.get("explicit")
        entries = [{}]
        if explicit is not None:
            if not isinstance(explicit, list) or not explicit or not all(isinstance(e, dict) for e in explicit):
                self.fail(f"{where}.explicit", "expected a non-empty list of inline tables, "
                          "e.g. [{wrk_threads = 2, connections = 10}]")
            entries = []
            for j, entry in enumerate(explicit):
                ekey = f"{where}.explicit[{j}]"
                self.unknown(ekey, entry, LOAD_VALUE_KEYS)
                for field, value in entry.items():
                    if field in lists:
                        self.fail(f"{ekey}.{field}", f"also given as {where}.{field}; give it in one place")
                    self.load_value(f"{ekey}.{field}", field, value)
                entries.append(entry)
        fields = list(lists)
        loads: list[Load] = []
        seen = set()
        for entry in entries:
            for combo in itertools.product(*(lists[f] for f in fields)):
                values = dict(zip(fields, combo))
                values.update(entry)
                values.update({k: table[k] for k in GENERATOR_SET_KEYS if k in table})
                load = self.make_load(where, name, values)
                if load in seen:
                    continue
                seen.add(load)
                loads.append(load)
        return loads

    def make_load(self, where, set_name, values) -> Load:
        has_wrk = [f for f in WRK_LOAD_KEYS if f in values]
        if "idle_connections" in values:
            if has_wrk:
                self.fail(where, f"idle_connections cannot be combined with {', '.join(has_wrk)} "
                          "(an idle point runs no load generator)")
            return Load(set_name=set_name, idle_connections=values["idle_connections"])
        for required in ("wrk_threads", "connections"):
            if required not in values:
                self.fail(f"{where}.{required}", "missing (needed for every wrk point; "
                          "or give idle_connections for an idle point)")
        # wrk refuses -t greater than -c ("number of connections must be >= threads").
        threads = min(values["wrk_threads"], values["connections"])
        return Load(set_name=set_name, wrk_threads=threads, connections=values["connections"],
                    pipeline=values.get("pipeline", 1), path=values.get("path", "/"),
                    **loadgen.check_load(self.fail, where, values))

    def rows(self, raw, load_sets) -> list[Row]:
        if raw is None:
            self.fail("rows", "missing: a scenario needs at least one [[rows]] entry")
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw) or not raw:
            self.fail("rows", "expected a non-empty array of tables ([[rows]])")
        rows: list[Row] = []
        keys: dict[str, str] = {}
        explicit_keys: set[int] = set()  # rows whose key the scenario gave
        row_where: dict[int, str] = {}
        for i, table in enumerate(raw):
            where = f"rows[{i}]"
            self.unknown(where, table, ROW_KEYS)
            kind = self.str_(f"{where}.kind", table.get("kind", "model"), KINDS)
            if "model" not in table:
                self.fail(f"{where}.model", "missing (the cbench-server --model name, or the peer's name)")
            model = self.str_(f"{where}.model", table["model"], pattern=r"[a-z0-9][a-z0-9._-]*",
                              what="use lower case letters, digits, '.', '_' and '-'")
            variants = {
                "threads": self.one_or_list(f"{where}.threads", table.get("threads", 1),
                                            lambda k, x: self.int_(k, x, 1, MAX_THREADS)),
                "queues": self.one_or_list(f"{where}.queues", table.get("queues", None),
                                           lambda k, x: x if x is None else self.str_(k, x, QUEUES)),
                "gvl": self.one_or_list(f"{where}.gvl", table.get("gvl", False), self.bool_),
                "backend": self.one_or_list(f"{where}.backend", table.get("backend", None),
                                            lambda k, x: x if x is None else self.str_(k, x, BACKENDS)),
                "processes": self.one_or_list(f"{where}.processes", table.get("processes", None),
                                              lambda k, x: x if x is None else self.int_(k, x, 1, MAX_PROCESSES)),
                "keepalive": self.one_or_list(f"{where}.keepalive", table.get("keepalive", True), self.bool_),
            }
            extra = self.str_list(f"{where}.extra_args", table.get("extra_args", []))
            label = table.get("label")
            if label is not None:
                self.str_(f"{where}.label", label)
            row_loads = None
            if "loads" in table:
                row_loads = self.str_list(f"{where}.loads", table["loads"])
                if not row_loads:
                    self.fail(f"{where}.loads", "empty list (leave the key out to run on every load set)")
                for entry in row_loads:
                    name, pin = split_load_entry(entry)
                    if name not in load_sets:
                        self.fail(f"{where}.loads", f"no load set named {name!r} "
                                  f"(defined: {', '.join(load_sets)})")
                    if pin is not None and not any(_pin_matches(ld, pin) for ld in load_sets[name]):
                        self.fail(f"{where}.loads", f"load set {name!r} has no load {pin!r} "
                                  f"(its loads: {', '.join(ld.key for ld in load_sets[name])})")
            binary = None  # issue 19: a row's own cbench-server build
            if "binary" in table:
                binary = self.str_(f"{where}.binary", table["binary"])
                if not binary:
                    self.fail(f"{where}.binary", "empty (leave the key out to run the sweep's --server-bin)")
            command = config_template = None
            if kind == "peer":
                for k in ("queues", "gvl", "backend", "processes", "keepalive", "binary"):
                    if k in table:
                        self.fail(f"{where}.{k}", "a cbench-server flag; peer rows take only threads "
                                  "(and extra_args, appended to the peer's command)")
                builtin = PEERS.get(model, {})
                if "command" in table:
                    command = self.str_list(f"{where}.command", table["command"])
                    if not command:
                        self.fail(f"{where}.command", "empty")
                elif builtin:
                    command = builtin["command"]
                else:
                    self.fail(f"{where}.command", "missing (a peer row gives the argv that starts it, "
                              f"unless it names a built-in peer: {', '.join(PEERS)})")
                if "config_template" in table:
                    config_template = self.str_(f"{where}.config_template", table["config_template"])
                elif "command" not in table:
                    config_template = builtin.get("config_template")
            else:
                for k in ("command", "config_template"):
                    if k in table:
                        self.fail(f"{where}.{k}", f"only for kind = \"peer\" rows, this row is {kind!r}")
            combos = list(itertools.product(*(variants[k] for k in ROW_VARIANT_KEYS)))
            if "key" in table:
                self.str_(f"{where}.key", table["key"])
                if len(combos) > 1:
                    self.fail(f"{where}.key", "an explicit key needs a row without lists "
                              f"(this row expands to {len(combos)} variants)")
            for threads, queues, gvl, backend, processes, keepalive in combos:
                fmt = dict(model=model, threads=threads, queues=queues or "", gvl="gvl" if gvl else "",
                           backend=backend or "", processes=processes or 1,
                           keepalive="" if keepalive else "keepalive off")
                try:
                    row_label = None if label is None else label.format(**fmt)
                except (KeyError, IndexError, ValueError) as exc:
                    self.fail(f"{where}.label", f"bad placeholder {exc} (allowed: "
                              "{model} {threads} {queues} {gvl} {backend} {processes} {keepalive})")
                key = table.get("key") or _row_key(model, threads, queues, gvl, backend, extra,
                                                   processes, keepalive)
                row = Row(key=key, label=row_label, kind=kind, model=model, threads=threads,
                          queues=queues, gvl=gvl, backend=backend, extra_args=extra,
                          loads=row_loads, command=command, config_template=config_template,
                          processes=processes, keepalive=keepalive, binary=binary)
                rows.append(row)
                row_where[id(row)] = where
                if "key" in table:
                    explicit_keys.add(id(row))
        rows = self._alias_published_labels(rows, row_where, explicit_keys)
        for row in rows:
            if row.key in keys:
                self.fail(f"{row_where[id(row)]}.key", f"row key {row.key!r} is also the key of {keys[row.key]}")
            keys[row.key] = row_where[id(row)]
        # Two rows may share a server command only if they never meet the same load (or carry
        # distinct published labels: _alias_published_labels has given them distinct ids).
        seen: dict[tuple, str] = {}
        for row in rows:
            names = (tuple(dict.fromkeys(split_load_entry(e)[0] for e in row.loads))
                     if row.loads is not None else tuple(load_sets))
            for name in names:
                if (row.id, name) in seen:
                    self.fail(row_where[id(row)], f"runs the same server command ({row.id}) on load set "
                              f"{name!r} as {seen[(row.id, name)]}: the points would repeat")
                seen[(row.id, name)] = row_where[id(row)]
        return rows

    def _alias_published_labels(self, rows: list, row_where: dict, explicit_keys: set) -> list:
        """Rows that run one server command under distinct published labels (tipi-table: Tipi and
        Falcon are both the `fiber` design here) are each the nearest design of a different
        published row, so each gets its own points: `alias` (the label) joins their id and
        automatic key. Labels are told apart as published rows are matched
        (loadpoint.canonical_label: case and spacing do not count), so "Tipi" and "tipi" are one
        label and still refused as a repeat. Rows of one command without a label, or with one
        label twice, are left as they are (the load check below refuses them)."""
        groups: dict[str, list] = {}
        for row in rows:
            groups.setdefault(row.id, []).append(row)
        out = []
        for row in rows:
            group = groups[row.id]
            labels = [canonical_label(r.label) for r in group]
            if len(group) > 1 and None not in labels and len(set(labels)) == len(labels):
                key = row.key if id(row) in explicit_keys else f"{row.key} as {row.label}"
                new = dataclasses.replace(row, alias=row.label, key=key)
                row_where[id(new)] = row_where[id(row)]
                if id(row) in explicit_keys:
                    explicit_keys.add(id(new))
                row = new
            out.append(row)
        return out


def _row_key(model, threads, queues, gvl, backend, extra, processes=None, keepalive=True) -> str:
    key = f"{model} t{threads}"
    if processes:
        key += f" p{processes}"
    if not keepalive:
        key += " keepalive-off"
    if queues:
        key += f" {queues}"
    if gvl:
        key += " gvl"
    if backend:
        key += f" {backend}"
    if extra:
        key += " " + " ".join(extra)
    return key


def _show(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"
