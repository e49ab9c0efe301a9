"""The one list of the metrics a points.jsonl record carries, and who writes each.

Every table, finding, chart and report placeholder that reads a measured figure from a point
looks its dotted path up here (`get`); the name tables of the readers (the report template's
placeholder names, the published and design findings' metric names, the mechanism figures, the
latency statistics of the tables) are views of this list, so a path is spelled once. A metric is

- `path`: where it sits in a points.jsonl record (results/SCHEMA.md);
- `unit`: the unit of the recorded value;
- `label`: what it is, as tables and verdicts name it;
- `fmt`: how the report prints it (render/tplbase.fmt: int, us, f0, f2, f3, pct, ms, or text);
- `better`: HIGHER or LOWER (None: neither side is better, e.g. a count of threads);
- `decide_at`: the point verdicts at which it may decide a published finding (empty: it decides
  none; findings.py documents why each one decides where it does);
- `producer`: the harness module (and function) that writes it, so a reader can find where a
  figure comes from; tests/report/test_metrics.py checks that the producer writes it and that a
  recorded run carries it;
- `margin_pct` (with `margin_page`, `margin_why`): the equivalence margin, the practical
  difference below which two rows are the same for a user choosing between them (None: the metric
  is never compared for equivalence). `margin_page` is one 4 KiB page in the metric's unit: a
  whole-server memory metric's margin is the larger of margin_pct and one page per connection
  (`equivalence_margin`), because the kernel hands out memory by the page and a loaded
  connection's buffers move a row by about that much without any difference in design; a
  per-connection figure (idle RSS over N connections) is the difference of two RSS readings
  divided by N, so its granularity is one page over the N connections, not a page each, and its
  margin is the larger of margin_pct and that. `margin_why` says why the margin is that size.

NOT_MEASURED lists the names a declaration may use for a figure no producer writes: readers show
"not measured" for them (with the reason here) rather than a figure.
"""
from __future__ import annotations

from dataclasses import dataclass

from .verdict import BOTH_SATURATED, CLIENT_BOUND, SERVER_BOUND, UNCLEAR

HIGHER, LOWER = "higher", "lower"  # which side of a metric is the better one

# A cost per request decides wherever the point did not fail (the verdict is not error-bound).
_NOT_FAILED = (SERVER_BOUND, CLIENT_BOUND, BOTH_SATURATED, UNCLEAR)


@dataclass(frozen=True)
class Metric:
    path: str
    unit: str
    label: str
    fmt: str
    better: str | None
    decide_at: tuple
    producer: str
    margin_pct: float | None = None
    margin_page: float | None = None
    margin_why: str = ""

    @property
    def name(self) -> str:
        """The last part of the path: the name findings and design declarations use."""
        return self.path.rsplit(".", 1)[-1]


_WRK = "run.wrk: parse"
_DERIVE = "run.runner: derive"
_COUNTERS = "run.servercounters: per_request (counter names from backends/stats/counters.cpp)"
_PROC = "run.procstat: window"
_CPU = "run.procstat: cpu_window"
_KERNEL = "run.kernelnet: window"
_IDLE = "run.idle: measure_idle"


def _m(path, unit, label, fmt, better=None, decide_at=(), producer=_DERIVE, margin=None) -> Metric:
    pct, page, why = margin or (None, None, "")
    return Metric(path, unit, label, fmt, better, tuple(decide_at), producer, pct, page, why)


PAGE_BYTES = 4096
# The equivalence margins: (percent, one page in the metric's unit or None, why).
_RATE_MARGIN = (5.0, None, "rates of one row drift by a few percent between repetitions on a shared machine,"
                " and a user does not choose a concurrency model for less than 5% of throughput")
_CPU_MARGIN = (5.0, None, "a cost per request below 5% apart is inside the drift of CPU accounting between"
               " repetitions and buys no user a measurable difference")
_MEMORY_MARGIN_KIB = (5.0, PAGE_BYTES / 1024, "memory is handed out by the 4 KiB page: a page per connection"
                      " (or 5% of a few MiB, the binary and its libraries) moves with allocator rounding, not"
                      " with the design")
_MEMORY_MARGIN_BYTES = (5.0, float(PAGE_BYTES), "an idle connection's bytes are an RSS difference over the N"
                        " idle connections, so they move by one 4 KiB page over N (0.4 bytes at 10,000)"
                        " with allocator rounding; below 5% no user chooses a design by it")


# The parent of the per-request counters. cbench-server's names are registered below (_counter); a
# Ruby replica's (servers/ruby/replica.rb: jobs, answers, pipe_writes, ...) are read only by the
# names a published declaration gives (analysis/scorecard.py: counters_line), not registered.
COUNTERS_PREFIX = "derived.counters_per_req"


def _counter(name: str, fmt: str = "f3") -> Metric:
    return _m(f"derived.counters_per_req.{name}", "count/request", f"server {name.replace('_', ' ')} per request",
              fmt, LOWER, producer=_COUNTERS)


METRICS: tuple[Metric, ...] = (
    _m("wrk.req_per_s", "req/s", "req/s", "int", HIGHER, (SERVER_BOUND,), _WRK, _RATE_MARGIN),
    _m("wrk.requests", "requests", "requests completed", "f0", producer=_WRK),
    _m("wrk.duration_us", "us", "wrk's measured duration", "f0", producer=_WRK),
    _m("wrk.errors.timeout", "requests", "wrk timeouts", "f0", LOWER, producer=_WRK),
    _m("wrk.latency_is_per_batch", "bool", "latency is per pipelined batch", "text", producer=_WRK),
    _m("wrk.latency_us.p50", "us", "wrk p50 latency", "us", LOWER, producer=_WRK),
    _m("wrk.latency_us.p99", "us", "wrk p99 latency", "us", LOWER, producer=_WRK),
    _m("wrk.latency_us.max", "us", "wrk max latency", "us", LOWER, producer=_WRK),
    _m("wrk.latency_us.mean", "us", "wrk mean latency", "us", LOWER, producer=_WRK),
    _m("derived.server_cpu_us_per_req", "us/request", "server CPU us/request", "us", LOWER, (CLIENT_BOUND,),
       margin=_CPU_MARGIN),
    _m("derived.server_user_us_per_req", "us/request", "server user CPU us/request", "us", LOWER),
    _m("derived.server_sys_us_per_req", "us/request", "server system CPU us/request", "us", LOWER),
    _m("derived.syscalls_per_req", "count/request", "system calls/request", "f2", LOWER, _NOT_FAILED),
    _m("derived.ctx_switches_per_req", "count/request", "context switches/request", "f3", LOWER, _NOT_FAILED),
    _m("derived.server_cpu_util", "fraction of the server's CPUs", "server CPU utilisation", "pct"),
    _m("derived.client_cpu_util", "fraction of the client's CPUs", "client CPU utilisation", "pct"),
    _m("server.rss_peak_kb", "KiB", "peak RSS", "f0", LOWER, producer=_PROC, margin=_MEMORY_MARGIN_KIB),
    _m("server.threads", "threads", "server threads", "f0", producer=_PROC),
    _m("server.window_s", "s", "measured window", "f2", producer=_PROC),
    _m("server.cluster.workers", "per-worker records", "cluster workers' windows", "text", producer="run.workers: window"),
    _m("machine.other_cpu_util", "fraction of a CPU", "CPU used by other processes", "pct"),
    _m("machine.softirq_frac.server", "fraction of the server CPU", "softirq share of the server CPU", "pct",
       producer=_CPU),
    _m("machine.steal_frac.server", "fraction of the server CPU", "steal share of the server CPU", "pct",
       producer=_CPU),
    _m("machine.busy_frac.server", "fraction of the server CPU", "busy share of the server CPU", "pct",
       producer=_CPU),
    _m("kernel.accepts_per_req", "count/request", "kernel PassiveOpens per request", "f3", producer=_KERNEL),
    _m("kernel.time_wait_per_req", "count/request", "kernel TIME_WAIT entries per request", "f3", producer=_KERNEL),
    _m("kernel.levels.port_tw.after", "sockets", "TIME_WAIT sockets on the server's port", "f0", producer=_KERNEL),
    _m("kernel.deltas.PassiveOpens", "connections", "kernel PassiveOpens in the window", "f0", producer=_KERNEL),
    _m("kernel.bound", "reason or null", "kernel limit that bounded the point", "text", producer=_KERNEL),
    _m("idle.connections", "connections", "idle connections asked for", "f0", producer=_IDLE),
    _m("idle.connections_held", "connections", "idle connections held", "f0", producer=_IDLE),
    _m("idle.bytes_per_conn", "bytes/connection", "RSS per idle connection", "f0", LOWER, producer=_IDLE,
       margin=_MEMORY_MARGIN_BYTES),
    _m("idle.virtual_bytes_per_conn", "bytes/connection", "address space per idle connection", "f0", LOWER,
       producer=_IDLE),
    _m("idle.threads_per_conn", "threads/connection", "threads per idle connection", "f2", LOWER, producer=_IDLE),
    _m("idle.kernel_socket_bytes_per_conn", "bytes/connection", "kernel TCP memory per idle connection", "f0", LOWER,
       producer="run.sockstat: idle_fields"),
    _counter("accepts"), _counter("closes"), _counter("dispatches"), _counter("duplicate_dispatches"),
    _counter("suppressed_duplicates", "f2"), _counter("empty_reads"), _counter("wakeups"), _counter("rearms"),
    _counter("poll_rounds"), _counter("ring_enters"),
)

# Registered, written by their producers, but carried by no reference run yet (their producers
# are newer than results/reference-runs.toml's runs): readers may `get` them; they join METRICS
# once a reference run records them (tests/report/test_metrics.py checks METRICS against those runs).
METRICS_NEWER_THAN_REFERENCE_RUNS: tuple[Metric, ...] = (
    _m("wrk.connections_unserved", "connections", "connections never answered", "f0", LOWER,
       producer="format.loadgen: _parse_cbench_load"),
    _m("derived.ctx_switches_per_req_proc", "count/request",
       "context switches/request of the live threads (/proc cross-check)", "f3"),
    _m("derived.server_counts_source", "rusage or proc", "source of the server's CPU and switches", "text"),
    _m("server.rusage", "object", "the server's getrusage over the window", "text",
       producer="run.servercounters: rusage_window"),
    _counter("gvl_timeslice_yields", "f3"), _counter("pipe_full_writes", "f3"),
)

# Deterministic costs per request, in the records of a costs run (format/costs.py, `cbench costs`),
# not in points: counted under callgrind and strace over a fixed number of requests, they repeat
# within a fraction of a percent, so a regression gate can judge a 1% change on them where wall time
# cannot. `dig` reads them from a costs record as from a point. derived.syscalls_per_req and
# derived.ctx_switches_per_req keep the points' paths (same meaning and unit, counted exactly).
_COSTS = "format.costs: derive"
COSTS_METRICS: tuple[Metric, ...] = (
    _m("derived.instructions_per_req", "instructions/request", "user instructions/request (callgrind)", "f0",
       LOWER, producer=_COSTS, margin=(1.0, None, "callgrind counts repeat within 0.1%: a 1% change is real,"
                                       " though a user would not feel it")),
    _m("derived.syscalls_by_type_per_req", "count/request by system call", "system calls/request by type",
       "text", producer=_COSTS),
)

# The fixed-rate CPU metric: derived.server_cpu_us_per_req read at a fixed-rate load (a load with
# rate_common_fraction, key suffix "@<F>xmin-peak": every row compared at it offered one open-loop
# rate below all their capacities; format/loadgen.py). At saturation the same figure is confounded
# with how cheaply the load generator drives each server; at the fixed rate it is the server's own
# cost. Its points are selected by loadgen.is_fixed_rate(point["load"]) and may decide only where
# loadgen.fixed_rate_refusal(point) is None (not overloaded, not error-bound).
FIXED_RATE_CPU = "derived.server_cpu_us_per_req"

BY_PATH: dict[str, Metric] = {m.path: m for m in METRICS + METRICS_NEWER_THAN_REFERENCE_RUNS + COSTS_METRICS}

# name a declaration may use -> (label, why no producer writes it)
NOT_MEASURED = {
    "partial_writes_per_req": ("partial writes/request",
                               "cbench-server counts no partial writes: backends/stats/counters.h has no"
                               " such counter and no points.jsonl field records one"),
}


def get(path: str) -> Metric:
    """The registered metric at this dotted path; KeyError names the path when it is not registered
    (a reader may not read a figure nobody is known to write)."""
    try:
        return BY_PATH[path]
    except KeyError:
        raise KeyError(f"metric {path!r} is not registered in format/metrics.py") from None


def dig(point: dict, path: str):
    """The value of a registered metric in one point, or None when the point did not record it."""
    obj = point
    for part in get(path).path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def equivalence_margin(path: str, value: float, connections: int | None = None) -> tuple[float, str]:
    """(margin as a ratio > 1, how to say it) for comparing rows around VALUE (in the metric's
    unit): 1 + margin_pct/100, or, for a memory metric, a page relative to VALUE when that is
    larger: for a whole-server figure one page for each of CONNECTIONS, for a per-connection
    figure one page over the CONNECTIONS it was measured on (its granularity; one page each when
    the count is unknown). ValueError when the metric declares no margin."""
    m = get(path)
    if m.margin_pct is None:
        raise ValueError(f"metric {path!r} declares no equivalence margin in format/metrics.py")
    ratio, text = 1.0 + m.margin_pct / 100.0, f"{m.margin_pct:g}%"
    if m.margin_page is not None and value > 0:
        per_conn = m.unit.endswith("/connection")
        page = m.margin_page / (connections or 1) if per_conn else m.margin_page * (connections or 0)
        if 1.0 + page / value > ratio:
            ratio = 1.0 + page / value
            if per_conn:
                over = f" over {connections} connections" if connections else " per connection"
                text = f"one 4 KiB page{over} ({(ratio - 1) * 100:.0f}%)"
            else:
                text = (f"one 4 KiB page per connection ({(ratio - 1) * 100:.0f}%, {page:g} {m.unit}"
                        f" at {connections} connections)")
    return ratio, text
