"""The scenario format's vocabulary: its value types (Row, Load, Point, Settings, Scenario), the
allowed values and limits of its keys, and the small rules every reader of a parsed scenario
shares (which loads a row runs, taskset CPU lists). scenario.py parses and writes the files;
scenario_rules.py checks them against these.
"""
from __future__ import annotations

import dataclasses
import re

from . import loadgen

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
# loadgen.py: open-loop rates (lists), and per-set generator choice (scalars).
# rate_common_fraction: one rate for every row of the load (a fixed-rate load; loadgen.py).
OPEN_LOOP_KEYS = ("rate", "rate_fraction", "rate_common_fraction")
# read_rate: slow readers; alternate_ms: the rows measured in turns (run/alternating.py)
GENERATOR_SET_KEYS = ("generator", "arrivals", "read_rate", "alternate_ms")

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
    # Sequential design: extra blocks for the points every declared comparison of the scenario
    # needs (the findings of `published`, its design findings, its decision cells), until each is
    # decided or its interval is narrower than target_ci_pct, or a point has max_repetitions
    # (failed and disturbed re-runs included); at most sequential_points points per extra block.
    "target_ci_pct": None,   # None: a fixed design of `repetitions` blocks
    "max_repetitions": None, # None: = repetitions
    "published": None,       # results/published/<name>.json
    "sequential_points": 16,
    "sequential_trends": False,  # also size each step of the published trend (analysis/sequential.py)
    "ready_timeout_s": 10.0,
    "server_args": [],
    "response": "standard",  # "published" = the Ruby examples' 49-byte bare-LF answer
}
ROW_KEYS = ("key", "label", "kind", "model", "threads", "queues", "gvl", "backend",
            "extra_args", "loads", "command", "config_template", "processes", "keepalive", "binary")
LOAD_SET_KEYS = ("name", "explicit") + LOAD_VALUE_KEYS + OPEN_LOOP_KEYS + GENERATOR_SET_KEYS

# Built-in peers: a row `kind = "peer"` naming one of these needs no `command` or
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

    # Ruby replicas of the published servers (servers/ruby/): faithful to the published designs,
    # not hardened (no idle timeout, no limits, an accept error ends them). `hardening` says so
    # in every point's row and beside the row's name in tables (Row.hardening). `counters`: the
    # replica takes --counters-out PATH and writes cbench-server's counters file on SIGUSR1
    # (servers/ruby/replica.rb), so the sweep records its derived.counters_per_req as a model's.
    "ruby-nio4r": {
        "command": ("ruby", "$repo/servers/ruby/nio4r_single.rb", "--host", "$host", "--port", "$port"),
        "hardening": "replica: not hardened",
        "counters": True,
    },
    "ruby-nio4r-workers": {
        "command": ("ruby", "$repo/servers/ruby/nio4r_workers.rb", "--host", "$host", "--port", "$port",
                    "--workers", "$threads"),
        "hardening": "replica: not hardened",
        "counters": True,
    },
    "ruby-threads": {
        "command": ("ruby", "$repo/servers/ruby/threads.rb", "--host", "$host", "--port", "$port"),
        "hardening": "replica: not hardened",
    },
    "ruby-em": {
        "command": ("ruby", "$repo/servers/ruby/em_reactor.rb", "--host", "$host", "--port", "$port"),
        "hardening": "replica: not hardened",
    },

    # Ruby servers (the Tipi table's and the seeds' frameworks). Each runs 4 processes (the
    # Tipi table's "4 workers each"; Thin: one process, its model) whatever the row's threads;
    # only puma uses $threads (its pool per worker). The master of a multi-process one only
    # supervises; the harness's SIGTERM to the group stops every worker, and its CPU sample sums
    # the master and all its descendants.
    "puma": {
        "command": ("puma", "-C", "$config"),
        "config_template": "scenarios/peers/puma.rb",
    },
    "unicorn": {
        # -E none: no development middleware (no access-log line per request).
        "command": ("unicorn", "-E", "none", "-c", "$config", "$repo/scenarios/peers/config.ru"),
        "config_template": "scenarios/peers/unicorn.rb",
    },
    "async-http": {
        # Falcon's server library, not Falcon (no Rack adapter): see the script's header.
        "command": ("ruby", "$repo/scenarios/peers/async_http_server.rb",
                    "--host", "$host", "--port", "$port", "--processes", "4"),
    },
    "thin": {
        "command": ("thin", "-C", "$config", "start"),
        "config_template": "scenarios/peers/thin.yml",
    },

    # Ever replicas (the project's Ever-compatible extension): the Ever gem's example servers as
    # Ruby scripts (servers/ruby/ever_*.rb) on ever.so (backends/ever/ruby), which the build puts
    # in $ruby_ext_dir; workers = the row's threads.
    "ruby-ever": {
        "command": ("ruby", "-I", "$ruby_ext_dir", "$repo/servers/ruby/ever_single.rb",
                    "--host", "$host", "--port", "$port"),
        "hardening": "replica: not hardened",
    },
    "ruby-ever-workers": {
        "command": ("ruby", "-I", "$ruby_ext_dir", "$repo/servers/ruby/ever_workers.rb",
                    "--host", "$host", "--port", "$port", "--workers", "$threads"),
        "hardening": "replica: not hardened",
    },
    "ruby-ever-queues": {
        "command": ("ruby", "-I", "$ruby_ext_dir", "$repo/servers/ruby/ever_queues.rb",
                    "--host", "$host", "--port", "$port", "--workers", "$threads"),
        "hardening": "replica: not hardened",
    },
}

# Sanity bounds; each keeps a typo from turning into an hour-long or impossible run.
MAX_DURATION_S = 3600
MAX_REPETITIONS = 100
MAX_THREADS = 1024          # server threads per row
MAX_CONNECTIONS = 100_000   # wrk connections or idle connections per point
MAX_PIPELINE = 1024         # requests per batch; wrk sends the batch in one buffer
MAX_WRK_THREADS = 256

# C++ models with a variant that runs a published design as it was, not hardened: a row whose
# extra_args hold one of the (flag, value) pairs below is measured as the replicas are
# (Row.hardening set: a fresh server, no warm-up, a post-check failure recorded, run/runner.py).
# selector-pool's defaults bound nio4r's design so that every scenario, the soak and the
# conformance gate can run it; `--dispatch unbounded` (nio4r's level-triggered re-dispatch) and
# `--wakeup-write blocking` (Ruby's waiting `$o << '.'`) are the original's mechanism, which the
# published-table scenarios name: like the Ruby original, a warm-up's abrupt close can leave it
# answering nothing (servers/selector_pool.cpp).
MODEL_HARDENING = {
    "selector-pool": {"hardening": "nio4r's design: not hardened",
                      "unhardened_by": (("--dispatch", "unbounded"), ("--wakeup-write", "blocking"))},
}

# --quick: seconds per point, for CI and smoke tests.
QUICK_DURATION_S = 1        # wrk's minimum (-d takes whole seconds)
QUICK_WARMUP_S = 0.3        # wrk is cut with SIGINT; cbench-load runs it exactly (generators.warmup_window)
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
    # Defaults keep the ids of rows without them: --processes N workers (None: one process
    # serves), and keepalive = false for --keepalive off.
    processes: int | None = None
    keepalive: bool = True
    # cbench regress: another cbench-server build for this row (None: the sweep's
    # --server-bin). Part of the id, so a baseline and a candidate row of one model may meet.
    binary: str | None = None
    # Set by the parser only when rows of one server command carry distinct published labels
    # (the parser's _alias_published_labels): the label, made part of the id so each has its points.
    alias: str | None = None

    @property
    def hardening(self) -> str | None:
        """What a built-in peer says of its own robustness ("replica: not hardened" for the Ruby
        replicas), or MODEL_HARDENING's text for a model row run with the flags of its unhardened
        original design; None for other rows and for peers that say nothing (nginx, h2o)."""
        if self.kind == "peer":
            return PEERS.get(self.model, {}).get("hardening")
        spec = MODEL_HARDENING.get(self.model) if self.kind == "model" else None
        if spec is None:
            return None
        args = self.extra_args
        pairs = set(zip(args, args[1:])) | {tuple(a.split("=", 1)) for a in args if "=" in a}
        return spec["hardening"] if pairs & set(spec["unhardened_by"]) else None

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
                **({"hardening": self.hardening} if self.hardening else {}),
                **({"alias": self.alias} if self.alias else {})}


@dataclasses.dataclass(frozen=True)
class Load:
    set_name: str
    wrk_threads: int | None = None
    connections: int | None = None
    pipeline: int = 1
    path: str = "/"
    idle_connections: int | None = None
    # loadgen.py: which generator (cbench-load unless the scenario names one); open loop at a
    # rate, a fraction of the row's own peak, or a fraction of the lowest peak among the rows that
    # run the load (one rate for all of them).
    generator: str = loadgen.DEFAULT_GENERATOR
    rate: float | None = None
    rate_fraction: float | None = None
    rate_common_fraction: float | None = None
    arrivals: str = "constant"
    read_rate: float | None = None  # cbench-load --read-rate, bytes/s per connection
    # The rows of this load measured together in turns of this many ms (run/alternating.py)
    alternate_ms: int | None = None

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
                "read_rate": self.read_rate,
                **({"rate_common_fraction": self.rate_common_fraction}
                   if self.rate_common_fraction is not None else {}),
                **({"alternate_ms": self.alternate_ms} if self.alternate_ms is not None else {})}


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
    response: str = "standard"  # cbench-server --response (codec.h ResponseStyle); not for peers
    target_ci_pct: float | None = None
    max_repetitions: int | None = None
    published: str | None = None
    sequential_points: int = 16
    sequential_trends: bool = False

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


def pin_matches(load: Load, pin: str) -> bool:
    """A pin names a load by its key, with or without the path ("-t4 -c64" or "-t4 -c64 /spin?us=10"),
    and with or without the generator's suffix ("-t4 -c64 [cbench-load]" or "-t4 -c64")."""
    bare = load.key.replace(f" {load.path}", "", 1) if load.path != "/" else load.key
    gen = f" [{load.generator}]"
    return pin in (load.key, bare, load.key.replace(gen, "", 1), bare.replace(gen, "", 1))


def load_selected(entries: tuple[str, ...] | None, set_name: str, load: Load) -> bool:
    """Whether a row with these `loads` entries runs this load of this set (a row may
    run only the point a published finding needs, which keeps the budget)."""
    if entries is None:
        return True
    pins = [pin for name, pin in map(split_load_entry, entries) if name == set_name]
    if not pins:
        return False
    return None in pins or any(pin_matches(load, pin) for pin in pins)


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
