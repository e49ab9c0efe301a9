"""`cbench sweep`: run a scenario and record raw results (results/SCHEMA.md).

Plan, then execute (pyperf's Runner builds its arguments once, then runs):

- `build_plan(args)` turns the command line (or a resumed run's meta.json) and the scenario
  into a `SweepPlan`: what to run, in which order, with every path made absolute once, so a
  relative run directory, scenario or binary means the same to the harness, the server and
  every peer (nginx resolves relative paths against its own prefix). Nothing runs if the
  scenario is bad.
- `Sweep(plan, host).run()` executes it, one method per step: check the tools -> take the
  machine-wide benchmark lock -> create (or resume) the run directory -> run the initial
  blocks (one round each, every point once; one fresh server per repetition), appending one
  line per repetition -> with a target interval, extra blocks for the rows the primary
  comparisons need (sequential.decide says which, and when to stop) -> finish meta.json.

SIGINT/SIGTERM stop the current point, kill every process the sweep started, leave meta.json
and points.jsonl readable, and exit 128+signal (130 on Ctrl-C).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import random
import resource
import signal
import sys
import time

from ..run import benchlock, envinfo, hostcheck, multiclient, runner
from ..format import resultio, scenario, serverlist, verdict
from ..format.paths import REPO_ROOT
from ..analysis import sequential
from ..run import profiling
from ..run.host import HostError, LocalHost, parse_host
from ..format import runlogs

REPO = REPO_ROOT
SCENARIOS_DIR = os.path.join(REPO, "scenarios")
DEFAULT_OUT = os.path.join(REPO, "results", "runs")
DEFAULT_SERVER_BIN = os.path.join(REPO, "build", "cbench-server")

# Per-repetition cost beyond duration and warm-up, for the estimate: server start and
# readiness, primer, two wrk runs that each last ~0.1 s past -d (wrk stops its threads at its
# next 100 ms tick), post-check and stop. Measured from the committed reference run
# results/runs/20261122T063927Z-ever-table (2-core VM; 280 repetitions of 2 s + 0.5 s): each
# point's ended_utc - started_utc was 2.81-3.04 s, mean 2.88 s, so 0.38 s beyond the 2.5 s; the
# gap between points (writing the line, printing) was under 4 ms. Rounded up to 0.4 s.
OVERHEAD_S = 0.4
# Idle points: start, settle, stop, plus opening, holding and closing the connections:
# measured 0.5 s at 100 connections, 1.5 s (epoll-reactor) to 5.9 s (thread-per-connection,
# 10000 threads) at 10000.
IDLE_BASE_S = 1.0
IDLE_PER_CONN_S = 0.0005


class PlanError(Exception):
    """The command line or scenario cannot be planned; nothing has run. str() is the message."""


class ResultsUnwritable(Exception):
    """The run directory cannot be written (a full or read-only disk): the sweep stops, since
    nothing it measured from here on could be recorded."""
    def __init__(self, exc: OSError):
        super().__init__(str(exc))
        self.exc = exc


class HostLost(Exception):
    """A host stopped answering mid-sweep (issue 18): the sweep stops, keeping what it recorded;
    the point it was measuring is not recorded, so --resume measures it again."""
    def __init__(self, host_name: str, why: str):
        super().__init__(f"{host_name}: {why}")
        self.host_name, self.why = host_name, why


class SweepInterrupted(BaseException):
    """Raised by the SIGINT/SIGTERM handler. A BaseException, like KeyboardInterrupt, so
    the runner's catch-all for harness errors lets it through."""
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def add_arguments(p) -> None:
    p.add_argument("scenario", nargs="?", default="ever-table",
                   help="scenario name (scenarios/NAME.toml) or path to a .toml file (default: ever-table)")
    p.add_argument("--quick", action="store_true",
                   help="seconds per point: 1 s runs, 0.3 s warm-up, 1 repetition, long lists cut to their ends")
    p.add_argument("--dry-run", action="store_true", help="list the points and the time estimate; run nothing")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help="parent of run directories (default: results/runs)")
    p.add_argument("--resume", metavar="RUN",
                   help="continue an interrupted run (its directory, or its id under --out): "
                        "skips every (point, repetition) already recorded")
    p.add_argument("--models", metavar="LIST",
                   help="comma-separated patterns (fnmatch) matched against each row's model and key, "
                        "e.g. 'pull-loop,worker-pool' or 'epoll-*'")
    p.add_argument("--server-bin", default=os.environ.get("CBENCH_SERVER_BIN", DEFAULT_SERVER_BIN),
                   help="the cbench-server binary (default: $CBENCH_SERVER_BIN or build/cbench-server "
                        "in the repository; a relative path is relative to the current directory)")
    p.add_argument("--wrk-bin", default="wrk", help="the wrk binary (default: wrk on PATH)")
    p.add_argument("--duration", type=int, metavar="S", help="override the scenario's duration_s")
    p.add_argument("--warmup", type=float, metavar="S", help="override the scenario's warmup_s")
    p.add_argument("--repetitions", type=int, metavar="N",
                   help="override the scenario's repetitions (the initial blocks)")
    p.add_argument("--target-ci", type=float, metavar="PCT",
                   help="sequential design: add whole blocks for the rows a primary comparison needs "
                        "until its 95%% interval is narrower than PCT percent (default: the scenario's "
                        "target_ci_pct; 0 turns it off)")
    p.add_argument("--max-repetitions", type=int, metavar="N",
                   help="with --target-ci: no point gets more than N repetitions (default: the "
                        "scenario's max_repetitions)")
    p.add_argument("--server-host", metavar="HOST", default="local",
                   help="where the server runs: local (default), netns:NAME[@ADDR] (a network "
                        "namespace on this machine) or ssh://[user@]host[:port][?address=ADDR] (issue 18; "
                        "its binary must report the local build's commit)")
    p.add_argument("--client-host", metavar="HOST", action="append",
                   help="where wrk runs and the harness's probes connect from: local (default), "
                        "netns:NAME[@ADDR] or ssh://...; repeat it for several load hosts: each point's "
                        "connections are split evenly between them, each runs the point's -t, all are "
                        "released at the same moment and their results merged over the window they share "
                        "(the first host also sends the harness's probes and the idle connections)")
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock (default: {benchlock.DEFAULT_PATH})")
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up if the lock is still held after S seconds (default: wait)")
    # issue 12 (provenance, report helper): a run into results/runs/ is a reference run.
    # Issue 14 (profiling.py): one unmeasured repetition per point under perf, after the blocks.
    p.add_argument("--profile", action="store_true",
                   help="after the measured blocks, one unmeasured repetition per wrk point under `perf record"
                        " -e cpu-clock --call-graph dwarf` on the server's CPUs; folded stacks kept in the run's"
                        " profile/ (never in points.jsonl); print them with `cbench profile RUN`")
    p.add_argument("--allow-dirty", action="store_true",
                   help="let a reference run (--out under results/: results/runs is the default) start from a tree with"
                        " uncommitted changes; meta.json records the changed files and the diff's sha256")


# -- the plan -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Slot:
    """One repetition of one point in the run's order."""
    seq: int            # position in the run's order (new slots of extra blocks continue it)
    block: int          # the round: initial blocks 0..repetitions-1, then extra blocks
    rep: int            # the point's repetition index
    point: scenario.Point


@dataclasses.dataclass
class SweepPlan:
    """Everything the executor needs, resolved once. Every path is absolute."""
    sc: scenario.Scenario
    points: list                     # scenario.Point, in file order
    slots: list                      # Slot: the initial blocks, in run order
    server_bin: str
    wrk_name: str                    # as given; the executor finds it on the host
    out_parent: str
    resume_dir: str | None           # an existing run directory to continue
    overrides: dict                  # duration_s / warmup_s / repetitions / target_ci_pct / max_repetitions
    models_filter: str | None
    available: set | None            # `cbench-server --list`, None if unknown
    list_error: str | None
    skipped_models: list
    lock_file: str
    lock_timeout_s: float | None
    command: list
    server_host: str = "local"       # host specs (host.parse_host)
    client_host: str = "local"       # the first of client_hosts
    client_hosts: tuple = ()         # every --client-host, in order (issue 18: several load hosts)
    estimate_s: float = 0.0          # the initial blocks, models not built excluded
    estimate_full_s: float = 0.0     # the initial blocks, every model
    estimate_extra_s: float = 0.0    # the most the extra blocks can add
    allow_dirty: bool = False        # issue 12: --allow-dirty (reference runs need a clean tree)
    profile: bool = False            # issue 14: --profile (profiling.py)

    @property
    def settings(self) -> scenario.Settings:
        return self.sc.settings

    @property
    def sequential(self) -> bool:
        return self.settings.target_ci_pct is not None

    @property
    def has_wrk(self) -> bool:
        return any(not p.load.is_idle for p in self.points)

    @property
    def clients(self) -> list[str]:
        return list(self.client_hosts) or [self.client_host]

    def summary(self) -> str:
        s = self.settings
        reps = s.repetitions
        text = (f"{s.name}{' (quick)' if self.sc.quick else ''}: {len(self.points)} points x "
                f"{reps} repetition{'s' if reps != 1 else ''} = {len(self.slots)} runs; "
                + (f"duration {s.duration_s} s, warm-up {s.warmup_s:g} s, " if self.has_wrk else "")
                + f"order {s.order} (seed {s.seed}); server on CPU {s.server_cpus}"
                + (f", wrk on CPU {s.client_cpus}" if self.has_wrk else ""))
        if len(self.clients) > 1 and self.has_wrk:
            text += (f"\nload from {len(self.clients)} client hosts ({', '.join(self.clients)}), released "
                     "together: each point's connections split evenly between them, each runs its -t")
        text += f"\nestimated time: {fmt_duration(self.estimate_full_s)} with every model"
        if self.skipped_models:
            text += (f", {fmt_duration(self.estimate_s)} now ({len(self.skipped_models)} models not "
                     "built: their points are recorded as skipped)")
        if self.sequential:
            text += (f"; then extra blocks until the primary comparisons of "
                     f"'{s.published or '?'}' are narrower than {s.target_ci_pct:g}%: at most "
                     f"{s.repetitions_cap - reps} blocks of at most {s.sequential_points} points, "
                     f"up to {fmt_duration(self.estimate_extra_s)} more (at most "
                     f"{fmt_duration(self.estimate_full_s + self.estimate_extra_s)} in all)")
        if self.profile:  # issue 14
            text += (f"\nthen --profile: one unmeasured repetition per wrk point under perf, about "
                     f"{fmt_duration(profiling.estimate_s(self.points, s))} more")
        return text


def build_plan(args) -> SweepPlan:
    """The plan of a new or resumed sweep; raises PlanError (nothing has run)."""
    out_parent = os.path.abspath(args.out)
    overrides = {"duration_s": args.duration, "warmup_s": args.warmup, "repetitions": args.repetitions,
                 "target_ci_pct": getattr(args, "target_ci", None),
                 "max_repetitions": getattr(args, "max_repetitions", None)}
    resume_dir = None
    clients = getattr(args, "client_host", None) or ["local"]
    hosts = (getattr(args, "server_host", None) or "local", [clients] if isinstance(clients, str) else list(clients))
    if args.resume:
        resume_dir, sc, overrides, models_filter, hosts = _plan_resume(args, out_parent, overrides)
    else:
        path = os.path.abspath(scenario.resolve_path(args.scenario, SCENARIOS_DIR))
        try:
            sc = scenario.load_file(path, quick=args.quick)
        except scenario.ScenarioError as exc:
            raise PlanError(str(exc)) from None
        models_filter = args.models
    for key, flag, lo in (("duration_s", "--duration", 1), ("warmup_s", "--warmup", 0),
                          ("repetitions", "--repetitions", 1), ("target_ci_pct", "--target-ci", 0),
                          ("max_repetitions", "--max-repetitions", 1)):
        if overrides.get(key) is not None and overrides[key] < lo:
            raise PlanError(f"{flag} must be at least {lo}, got {overrides[key]:g}")
    apply_overrides(sc, overrides)
    select_rows(sc, models_filter)
    points = sc.points()
    if not points:
        raise PlanError(f"{sc.path}: no points to run"
                        + (f" (--models {models_filter!r} matches no row)" if models_filter else ""))
    check_client_hosts(hosts[1], points)
    s = sc.settings
    server_bin = os.path.abspath(args.server_bin)
    available, list_error = None, None
    if any(p.row.kind in ("model", "instrument") for p in points):
        if os.path.exists(server_bin):
            available, list_error = list_models(server_bin)
        else:
            list_error = (f"server binary not found: {server_bin} (build it: cmake -S . -B build "
                          "-DCMAKE_BUILD_TYPE=Release && cmake --build build)")
    skipped = sorted({p.row.model for p in points if available is not None
                      and p.row.kind in ("model", "instrument") and p.row.model not in available})
    slots = schedule(points, s.repetitions, s.order, s.seed)
    plan = SweepPlan(
        sc=sc, points=points, slots=slots, server_bin=server_bin, wrk_name=args.wrk_bin,
        out_parent=out_parent, resume_dir=resume_dir, overrides=overrides,
        models_filter=models_filter, available=available, list_error=list_error,
        skipped_models=skipped, lock_file=os.path.abspath(args.lock_file),
        lock_timeout_s=args.lock_timeout,
        server_host=hosts[0], client_host=hosts[1][0], client_hosts=tuple(hosts[1]),
        allow_dirty=bool(getattr(args, "allow_dirty", False)),
        profile=bool(getattr(args, "profile", False)),
        command=["scripts/cbench"] + sys.argv[1:] if sys.argv and sys.argv[0].endswith("cbench")
        else list(sys.argv))
    plan.estimate_s = sum(estimate_s(x.point, s, available) for x in slots)
    plan.estimate_full_s = sum(estimate_s(x.point, s, None) for x in slots)
    plan.estimate_extra_s = extra_blocks_estimate_s(points, s)
    return plan


def check_client_hosts(clients: list[str], points: list) -> None:
    """Several client hosts (issue 18): each named once, and every point's load divisible between
    them (multiclient.split_connections); raises PlanError."""
    twice = sorted({c for c in clients if clients.count(c) > 1})
    if twice:
        raise PlanError(f"--client-host {twice[0]} is given more than once (one generator per host)")
    if len(clients) < 2:
        return
    for p in points:
        if p.load.is_idle:
            continue
        if p.load.rate_fraction is not None:
            raise PlanError(f"{p.id}: rate_fraction (an open-loop rate from a measured peak) is not supported "
                            f"with several client hosts yet; give the rate itself (rate = N)")
        try:
            multiclient.split_connections(p.load.connections, len(clients))
        except ValueError as exc:
            raise PlanError(f"{p.id}: {exc}") from None


def _plan_resume(args, out_parent: str, overrides: dict):
    """(absolute run dir, scenario, overrides, models filter, (server host, [client hosts])) of
    the run to continue: a resumed run keeps its own settings and hosts."""
    given = args.resume if os.path.isdir(args.resume) else os.path.join(out_parent, args.resume)
    resume_dir = os.path.abspath(given)
    try:
        meta = resultio.read_meta(resume_dir)
    except resultio.ResultsFormatError as exc:
        raise PlanError(f"--resume {args.resume}: {exc}") from None
    h = meta.get("harness", {})
    try:
        sc = scenario.parse(meta["scenario_text"], meta.get("scenario_file", "meta.json"),
                            quick=bool(meta.get("quick")))
    except (KeyError, scenario.ScenarioError) as exc:
        raise PlanError(f"--resume: the recorded scenario is unusable: {exc}") from None
    recorded_commit = meta.get("env", {}).get("git_commit")
    now_commit = envinfo.git_info(REPO)["git_commit"]
    if recorded_commit != now_commit:
        print(f"sweep: warning: the run was started at commit {recorded_commit}, the tree is now "
              f"at {now_commit}; the resumed points measure the current build", flush=True)
    if any(v is not None for v in overrides.values()) or args.models or args.quick:
        print("sweep: --resume uses the run's own settings; --quick/--models/--duration/--warmup/"
              "--repetitions/--target-ci/--max-repetitions are ignored", flush=True)
    return (resume_dir, sc, dict(h.get("overrides", {})), h.get("models_filter"),
            (h.get("host") or "local", list(h.get("client_hosts") or [h.get("client_host") or h.get("host") or "local"])))


def select_rows(sc: scenario.Scenario, patterns: str | None) -> None:
    if not patterns:
        return
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    sc.rows = [r for r in sc.rows
               if any(fnmatch.fnmatchcase(r.model, p) or fnmatch.fnmatchcase(r.key, p) for p in pats)]


def apply_overrides(sc: scenario.Scenario, overrides: dict) -> None:
    s = sc.settings
    for key in ("duration_s", "warmup_s", "repetitions", "max_repetitions"):
        if overrides.get(key) is not None:
            setattr(s, key, overrides[key])
    if overrides.get("target_ci_pct") is not None:
        s.target_ci_pct = overrides["target_ci_pct"] or None  # 0 turns the sequential design off


def block_order(points: list, block: int, order: str, seed: int) -> list:
    """The points of one block (round) in run order.

    blocked: grouped by load, so the rows compared at one load (the pairs the analysis makes)
    run in adjacent slots, minutes apart at most, and drift of the machine between blocks
    cancels out of a within-block comparison; the loads, and the rows within each load, in a
    seeded shuffle that differs per block. shuffled: one seeded shuffle of every point.
    interleaved: file order."""
    rng = random.Random(seed * 1_000_003 + block)
    if order == "interleaved":
        return list(points)
    if order == "shuffled":
        out = list(points)
        rng.shuffle(out)
        return out
    groups: dict[str, list] = {}
    for p in points:
        groups.setdefault(p.load.id, []).append(p)
    keys = list(groups)
    rng.shuffle(keys)
    out = []
    for k in keys:
        members = list(groups[k])
        rng.shuffle(members)
        out.extend(members)
    return out


def schedule(points: list, repetitions: int, order: str, seed: int) -> list[Slot]:
    """The initial blocks in run order: block b runs every point once, as its repetition b."""
    out: list[Slot] = []
    for block in range(repetitions):
        out.extend(Slot(len(out), block, block, p) for p in block_order(points, block, order, seed))
    return out


def estimate_s(point, settings, available: set[str] | None) -> float:
    """Expected wall time of one repetition of point."""
    row = point.row
    if row.kind in ("model", "instrument") and available is not None and row.model not in available:
        return 0.0
    if point.load.is_idle:
        return IDLE_BASE_S + IDLE_PER_CONN_S * point.load.idle_connections
    return settings.duration_s + settings.warmup_s + OVERHEAD_S


def extra_blocks_estimate_s(points: list, settings) -> float:
    """The most a sequential design's extra blocks can take: every extra block at its cap of
    sequential_points points, each as long as the scenario's longest wrk point."""
    if settings.target_ci_pct is None:
        return 0.0
    blocks = settings.repetitions_cap - settings.repetitions
    longest = max((estimate_s(p, settings, None) for p in points if not p.load.is_idle), default=0.0)
    return blocks * min(settings.sequential_points, len(points)) * longest


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def list_models(server_bin: str) -> tuple[set[str] | None, str | None]:
    """(model names from `cbench-server --list`, error message)."""
    try:
        return set(serverlist.query(server_bin)), None
    except serverlist.ServerListError as exc:
        return None, str(exc)


def raise_nofile(points) -> None:
    """Raise the soft RLIMIT_NOFILE (inherited by servers and wrk) to what the largest point needs."""
    need = 0
    for p in points:
        need = max(need, p.load.idle_connections or p.load.connections or 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 2 * runner.FD_HEADROOM
    if want > soft:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            print(f"sweep: warning: points with {need} connections need about {want} file descriptors; "
                  f"the hard limit is {hard} (those points may fail; raise it with ulimit -Hn)",
                  flush=True)


# -- the sequential rule --------------------------------------------------------------------
def load_decide():
    """The sequential stopping rule. Its contract: decide(run_dir, published_name, target_ci_pct,
    max_repetitions) -> Decision with stop: bool, reason: str, rows: list[str] (the rows needing
    another block: point ids "<row id> / <load id>" run that point; row keys or row ids run every
    point of the row)."""
    return sequential.decide


def points_for(wanted: list[str], points: list) -> list:
    """The scenario points an extra block runs for Decision.rows, in scenario order."""
    want = set(wanted)
    return [p for p in points if p.id in want or p.row.id in want or p.row.key in want]


# -- the executor ---------------------------------------------------------------------------
class Sweep:
    """Executes a SweepPlan on a host; one method per step (see the module docstring)."""

    def __init__(self, plan: SweepPlan, host, decide=None, client_host=None, client_hosts=None):
        self.plan = plan
        self.host = host                  # the server's host
        self.client_host = client_host if client_host is not None else host
        # issue 18: every load host (the first is client_host: probes and idle points use it)
        self.client_hosts = list(client_hosts) if client_hosts else [self.client_host]
        self.client_host = self.client_hosts[0]
        self.decide = decide if decide is not None else (load_decide() if plan.sequential else None)
        self.wrk_bin: str | None = None
        self.wrk_bins: list = []          # wrk's path on each client host
        self.writer: resultio.RunWriter | None = None
        self.done: set = set()
        self.recorded: list[dict] = []     # every record of the run, read at open then appended
        self.spent_s = 0.0
        self.counts = {"ok": 0, "failed": 0}
        self._topology: dict | None = None

    # Step 1: tools (raises PlanError).
    def check_tools(self) -> None:
        if self.plan.list_error:
            raise PlanError(self.plan.list_error)
        # issue 12 hook (provenance): a reference run comes from a known, clean commit.
        # Anything written under results/ (runs/, calibration/) is reference material.
        results_dir = os.path.join(REPO, "results") + os.sep
        if not self.plan.resume_dir and (os.path.abspath(self.plan.out_parent) + os.sep).startswith(results_dir):
            refusal = envinfo.dirty_refusal(envinfo.git_info(REPO), self.plan.allow_dirty)
            if refusal:
                raise PlanError(f"refusing a reference run into {_rel(self.plan.out_parent)}: {refusal}")
        if self.plan.has_wrk:
            for h in self.client_hosts:
                found = h.which(self.plan.wrk_name)
                if found is None:
                    raise PlanError(f"wrk not found on {h.name} (looked for {self.plan.wrk_name!r} "
                                    "on PATH): install the Debian package wrk (scripts/deps.sh does)")
                self.wrk_bins.append(os.path.abspath(found))
            self.wrk_bin = self.wrk_bins[0]
        if self.host.which("taskset") is None:
            raise PlanError("taskset not found: install the Debian package util-linux (scripts/deps.sh does)")
        # issue 18: a remote server host runs the local build's commit at the same path, or nothing.
        if type(self.host) is not LocalHost and any(x.row.kind in ("model", "instrument") for x in self.plan.points):
            refusal = hostcheck.check_server_binary(self.host, self.plan.server_bin)
            if refusal:
                raise PlanError(f"refusing the sweep: {refusal}")
        # issue 18: so does cbench-load on every client host away from this one, when a load uses it
        if any(not x.load.is_idle and x.load.generator == "cbench-load" for x in self.plan.points):
            path = os.path.join(os.path.dirname(os.path.realpath(self.plan.server_bin)), "cbench-load")
            for h in self.client_hosts:
                if type(h) is not LocalHost:
                    refusal = hostcheck.check_binary(h, path, "cbench-load")
                    if refusal:
                        raise PlanError(f"refusing the sweep: {refusal}")
        if self.plan.profile:  # issue 14: refuse before anything runs, not after the blocks
            ok, why = profiling.perf_available()
            if not ok:
                raise PlanError(f"--profile needs perf record on the server's CPUs: {why}")

    # Step 2: the machine-wide lock; returns the open file (keep it open), or raises PlanError.
    def take_lock(self):
        p = self.plan
        lock = benchlock.acquire(p.lock_file, p.lock_timeout_s, "sweep", f"cbench sweep {p.settings.name}")
        if lock is None:
            raise PlanError(f"the benchmark lock {p.lock_file} is still held after {p.lock_timeout_s:g} s; "
                            "another benchmark is running")
        return lock

    # Step 3: the run directory (raises OSError if it cannot be created or written).
    def open_run(self) -> None:
        p = self.plan
        if p.resume_dir:
            self.writer = resultio.RunWriter(p.resume_dir)
            self.writer.load_meta()
            runlogs.unpack(self.writer.run_dir)  # a finished run's logs.tar.xz back to loose files
            if self.writer.repair_tail():
                print("sweep: cut a torn last line off points.jsonl", flush=True)
            self.recorded = self.writer.read_points().points
            self.done = resultio.completed(self.recorded)
            self.writer.update_meta(ended_utc=None, interrupted=None,
                                    resumed_utc=self.writer.meta.get("resumed_utc", []) + [resultio.utc_now()])
            print(f"sweep: resuming {self.writer.run_dir}: {len(self.done)} runs already recorded "
                  f"({len(p.slots)} in the initial blocks)", flush=True)
            return
        self.writer = resultio.RunWriter(resultio.new_run_dir(p.out_parent, p.settings.name))
        self.writer.write_meta(self.new_meta())

    def new_meta(self) -> dict:
        p, s = self.plan, self.plan.settings
        build_dir = os.path.dirname(os.path.realpath(p.server_bin))
        return {
            "schema": resultio.SCHEMA_VERSION,
            "run_id": os.path.basename(self.writer.run_dir),
            "scenario_name": s.name,
            "scenario_file": _rel(p.sc.path),
            "scenario_text": p.sc.text,
            "quick": p.sc.quick,
            "started_utc": resultio.utc_now(),
            "ended_utc": None,
            "env": dict(envinfo.collect(REPO, build_dir, s.server_cpus, s.client_cpus, self.wrk_bin),
                        topology=self.topology()["kind"]),
            "order": resultio.order_meta([r.key for r in p.sc.rows],
                                         list(dict.fromkeys(ld.key for lds in p.sc.load_sets.values()
                                                            for ld in lds))),
            # Where each role ran (issue 18): a run across namespaces is not a loopback run,
            # and compare refuses to mix them (env.topology).
            "topology": self.topology(),
            "harness": {
                "command": p.command,
                "host": self.host.name,
                "client_host": self.client_host.name,
                "client_hosts": [h.name for h in self.client_hosts],
                "server_bin": _rel(p.server_bin),
                "available_models": sorted(p.available) if p.available is not None else None,
                "skipped_models": p.skipped_models,
                "models_filter": p.models_filter,
                "overrides": p.overrides,
                "order": s.order, "seed": s.seed,
                "duration_s": s.duration_s, "warmup_s": s.warmup_s, "repetitions": s.repetitions,
                "timeout_s": s.timeout_s, "ready_timeout_s": s.ready_timeout_s,
                "response": s.response,  # issue 14: response bytes (standard | published)
                "points": len(p.points), "runs": len(p.slots),
                "estimate_s": round(p.estimate_s, 1),
                "estimate_extra_s": round(p.estimate_extra_s, 1),
                "overhead_s": OVERHEAD_S,
                "design": {"target_ci_pct": s.target_ci_pct, "max_repetitions": s.repetitions_cap,
                           "published": s.published, "sequential_points": s.sequential_points},
                "verdict_thresholds": {"saturated_cpu": verdict.SATURATED,
                                       "error_fraction": verdict.ERROR_FRACTION},
            },
            "sequential": None,
            "resumed_utc": [],
            "interrupted": None,
        }

    def topology(self) -> dict:
        """Where each role runs (computed once per sweep): each host's entry carries its own
        environment, fingerprinted on it (`env`); away from loopback, `network` records the
        addresses, each link's MTU and the round-trip time from each client host to the server's
        address, measured now, before the first point (hostcheck.measure_rtt)."""
        if self._topology is not None:
            return self._topology
        server = self.host.describe()
        clients = [server if h is self.host else h.describe() for h in self.client_hosts]
        kinds = {server["kind"]} | {c["kind"] for c in clients}
        kind = "loopback" if kinds == {"local"} else \
            ("same-namespace" if all(server.get("spec") == c.get("spec") for c in clients) else
             ("across-hosts" if "ssh" in kinds else "across-namespaces"))
        topo = {"kind": kind, "server": server, "clients": clients}
        if kind != "loopback":
            pairs = [(server, self.host)] + [(c, h) for c, h in zip(clients, self.client_hosts) if h is not self.host]
            for entry, host in pairs:
                entry["env"] = dict(entry.get("env") or {}, **hostcheck.environment(host))
            work = os.path.join(self.writer.run_dir, resultio.LOGS_DIR)
            os.makedirs(work, exist_ok=True)
            rtts = []
            for h in self.client_hosts:  # one after the other: each probe alone on the path
                rtt = hostcheck.measure_rtt(self.host, h, self.host.client_address, work)
                rtts.append(rtt)
                if "error" in rtt:
                    print(f"sweep: warning: round-trip time from {h.name} not measured: {rtt['error']}", flush=True)
                else:
                    print(f"sweep: round trip {h.name} -> {self.host.client_address}: "
                          f"{rtt['echo_us']['median']:.0f} us (median of {rtt['samples']} TCP echoes)", flush=True)
            topo["network"] = {"server_address": self.host.client_address,
                               "client_addresses": [h.client_address for h in self.client_hosts],
                               "mtu": {h.name: e["env"].get("links_mtu") for e, h in pairs},
                               "rtt": rtts}
        self._topology = topo
        return topo

    def annotate(self, record: dict) -> None:
        """Issue 18: a point measured away from loopback carries the network's round trip (as
        measured before the sweep) and the CPU time of each role on its own host."""
        if self.writer.meta.get("topology", {}).get("kind", "loopback") == "loopback":
            return
        topo = self.writer.meta["topology"]
        rtt = (topo.get("network") or {}).get("rtt") or [{}]
        record["network"] = {"rtt_us": (rtt[0].get("echo_us") or {}).get("median"),
                             "connect_us": (rtt[0].get("connect_us") or {}).get("median"),
                             "measured": "before the sweep"}

        def cpu(d):
            d = d or {}
            return None if d.get("cpu_user_s") is None else round(d["cpu_user_s"] + (d.get("cpu_sys_s") or 0), 3)
        server = {"host": self.host.name, "cpu_s": cpu(record.get("server")),
                  "util": (record.get("derived") or {}).get("server_cpu_util")}
        multi = record.get("clients")
        if multi:  # several client hosts: each generator's own CPU, on its own host
            rtt_of = {r.get("from"): (r.get("echo_us") or {}).get("median") for r in rtt}
            clients = [{"host": g["host"], "cpu_s": g.get("cpu_s"), "util": g.get("cpu_util"),
                        "client_bound": g.get("client_bound"), "rtt_us": rtt_of.get(g["host"])}
                       for g in multi["generators"]]
        else:
            clients = [{"host": self.client_host.name, "cpu_s": cpu(record.get("client")),
                        "util": (record.get("derived") or {}).get("client_cpu_util")}]
        record["hosts"] = {"server": server, "clients": clients}

    def unique_hosts(self) -> list:
        """The server's host and every client host, each once."""
        out = [self.host]
        for h in self.client_hosts:
            if all(h is not x for x in out):
                out.append(h)
        return out

    def check_hosts(self) -> None:
        """Raises HostLost if a host no longer answers (asked after a failed point only)."""
        for h in self.unique_hosts():
            why = h.alive()
            if why:
                raise HostLost(h.name, why)

    # Step 4: run slots, one record each.
    def run_slots(self, runner_: runner.Runner, slots: list[Slot], label: str) -> None:
        s = self.plan.settings
        todo = [x for x in slots if (x.point.id, x.rep) not in self.done]
        est_left = sum(estimate_s(x.point, s, self.plan.available) for x in todo)
        est_done = 0.0
        total = len(slots)
        width = len(str(max(x.seq for x in slots) + 1)) if slots else 1
        for x in todo:
            t0 = time.monotonic()
            record = runner_.run(x.point, x.rep, x.seq, x.block)
            if record["status"] != "ok":
                self.check_hosts()  # a dead host: stop, and do not record this attempt
            self.annotate(record)
            self.append(record)
            dt = time.monotonic() - t0
            self.spent_s += dt
            e = estimate_s(x.point, s, self.plan.available)
            est_done += e
            est_left -= e
            # Scale what is left by how the estimate has fared so far (bounded, so one
            # slow point cannot make the ETA absurd).
            ratio = min(3.0, max(0.5, self.spent_s / est_done)) if est_done > 0 else 1.0
            self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
            print(progress_line(x, label, total, width, record, dt, est_left * ratio), flush=True)

    def append(self, record: dict) -> None:
        try:
            self.writer.append_point(record)
        except OSError as exc:
            raise ResultsUnwritable(exc) from exc
        self.recorded.append(record)
        self.done.add((record["point_id"], record["rep"]))

    # Step 5: extra blocks until the sequential rule stops (or the cap does).
    def run_extra_blocks(self, runner_: runner.Runner) -> None:
        p, s = self.plan, self.plan.settings
        if not p.sequential:
            return
        cap = s.repetitions_cap
        blocks = 0
        while True:
            if self.decide is None:
                self.record_stop("rule-unavailable", "the stopping rule (scripts/cbenchlib/sequential.py) "
                                 "is not in this tree; the fixed design's blocks were run", blocks)
                return
            decision = self.decide(self.writer.run_dir, s.published, s.target_ci_pct, cap)
            if decision.stop:
                self.record_stop("rule", decision.reason, blocks)
                return
            chosen = [q for q in points_for(decision.rows, p.points) if self.reps_of(q) < cap]
            if not chosen:
                why = ("max-repetitions" if points_for(decision.rows, p.points) else "no-such-rows")
                self.record_stop(why, f"{decision.reason}; " + (
                    f"every point it needs has {cap} repetitions (--max-repetitions)" if why == "max-repetitions"
                    else f"none of the rows it named is in the scenario: {', '.join(decision.rows)[:300]}"),
                    blocks)
                return
            dropped = chosen[s.sequential_points:]
            chosen = chosen[:s.sequential_points]
            if dropped:
                print(f"sweep: the rule asks for {len(chosen) + len(dropped)} points; an extra block runs "
                      f"at most {s.sequential_points} (sequential_points): {len(dropped)} left out", flush=True)
            block = self.next_block()
            seq0 = max((r.get("seq", -1) for r in self.recorded), default=-1) + 1
            slots = [Slot(seq0 + i, block, self.reps_of(q), q)
                     for i, q in enumerate(block_order(chosen, block, s.order, s.seed))]
            print(f"sweep: extra block {block} ({len(slots)} points): {decision.reason}", flush=True)
            self.run_slots(runner_, slots, f"block {block}")
            blocks += 1

    def reps_of(self, point) -> int:
        return sum(1 for r in self.recorded if r.get("point_id") == point.id)

    def next_block(self) -> int:
        return max((resultio.point_block(r) or 0 for r in self.recorded), default=-1) + 1

    def record_stop(self, why: str, reason: str, blocks: int) -> None:
        self.writer.update_meta(sequential={
            "stopped": why, "reason": reason, "extra_blocks": blocks,
            "target_ci_pct": self.plan.settings.target_ci_pct,
            "max_repetitions": self.plan.settings.repetitions_cap, "utc": resultio.utc_now()})
        print(f"sweep: sequential design stopped ({why}) after {blocks} extra blocks: {reason}", flush=True)

    # Step 6: the end.
    def finish(self) -> int:
        try:
            self.writer.update_meta(ended_utc=resultio.utc_now())
        except OSError as exc:
            print(f"sweep: warning: cannot record the end time in {self.writer.meta_path}: "
                  f"{exc.strerror or exc}", file=sys.stderr, flush=True)
        try:  # the per-repetition logs into one archive (results/SCHEMA.md, "Logs of a run")
            runlogs.pack(self.writer.run_dir)
        except (OSError, ValueError) as exc:
            print(f"sweep: warning: logs left loose, not archived: {exc}", file=sys.stderr, flush=True)
        ok = sum(1 for x in self.recorded if x.get("status") == "ok")
        failed = len(self.recorded) - ok
        verdicts: dict = {}
        for x in self.recorded:
            if x.get("status") == "ok":
                verdicts[x.get("verdict")] = verdicts.get(x.get("verdict"), 0) + 1
        vtext = ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
        print(f"sweep: done in {fmt_duration(self.spent_s)}: {ok} ok ({vtext or 'none'}), {failed} failed; "
              f"results in {self.writer.run_dir}", flush=True)
        return 0 if ok > 0 else 1

    # The whole sweep after the lock: returns the exit status.
    def execute(self) -> int:
        p = self.plan
        raise_nofile(p.points)
        try:
            self.open_run()
        except (OSError, resultio.ResultsFormatError) as exc:
            where = p.resume_dir or p.out_parent
            detail = str(exc) if isinstance(exc, resultio.ResultsFormatError) else \
                f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
            return _err(f"cannot {'resume the run in' if p.resume_dir else 'create a run directory under'} "
                        f"{where}: {detail}; nothing was run"
                        + ("" if p.resume_dir else " (a full or read-only disk? free space, or choose another --out)"))
        print(f"run directory: {self.writer.run_dir}", flush=True)
        if p.skipped_models:
            print(f"sweep: not in `cbench-server --list`, recorded as skipped: {', '.join(p.skipped_models)}",
                  flush=True)
        r = runner.Runner(self.host, p.settings, p.server_bin, self.wrk_bin, self.writer.run_dir, REPO,
                          p.available, client_host=self.client_host, client_hosts=self.client_hosts,
                          wrk_bins=self.wrk_bins or None)
        try:
            self.run_slots(r, p.slots, "")
            self.run_extra_blocks(r)
            if p.profile:  # issue 14: after every measured block, so it disturbs none of them
                profiling.record_all(r, p.points, log=print)
        except SweepInterrupted as exc:
            return self.on_interrupt(exc.signum)
        except ResultsUnwritable as exc:
            return self.on_unwritable(exc.exc)
        except HostLost as exc:
            return self.on_host_lost(exc)
        return self.finish()

    def kill_all(self) -> list:
        return [pid for h in self.unique_hosts() for pid in h.kill_all()]

    def on_interrupt(self, signum: int) -> int:
        killed = self.kill_all()
        self.writer.update_meta(interrupted={"signal": signal.Signals(signum).name, "utc": resultio.utc_now()})
        print(f"\nsweep: interrupted by {signal.Signals(signum).name}; every process the sweep started "
              f"is stopped ({len(killed)} needed killing here); {len(self.recorded)} runs recorded "
              f"in {self.writer.run_dir}\nsweep: continue with: scripts/cbench sweep --resume "
              f"{self.writer.run_dir}", file=sys.stderr, flush=True)
        return 128 + signum

    def on_host_lost(self, exc: HostLost) -> int:
        killed = self.kill_all()
        self.writer.update_meta(interrupted={"host_lost": exc.host_name, "reason": exc.why,
                                             "utc": resultio.utc_now()})
        print(f"\nsweep: host {exc.host_name} lost mid-sweep: {exc.why}; stopped. Every process the sweep "
              f"started is stopped ({len(killed)} needed killing here); {len(self.recorded)} runs are recorded "
              f"in {self.writer.run_dir} (the point in progress is not).\nsweep: once the host answers again, "
              f"continue with: scripts/cbench sweep --resume {self.writer.run_dir}", file=sys.stderr, flush=True)
        return 3

    def on_unwritable(self, err: OSError) -> int:
        killed = self.kill_all()
        print(f"\nsweep: cannot write the results in {self.writer.run_dir}: {err.strerror or err}"
              f"{f' ({err.filename})' if err.filename else ''}; stopped, since nothing measured from here on "
              f"could be recorded. Every process the sweep started is stopped ({len(killed)} needed killing "
              f"here); {len(self.recorded)} runs are recorded.\nsweep: once the disk is writable again, "
              f"continue with: scripts/cbench sweep --resume {self.writer.run_dir}", file=sys.stderr, flush=True)
        return 2

    def run(self) -> int:
        """Every step: tools, lock, run directory, blocks, end."""
        try:
            self.check_tools()
        except PlanError as exc:
            return _err(str(exc))
        print(self.plan.summary(), flush=True)
        try:
            lock = self.take_lock()
        except PlanError as exc:
            return _err(str(exc))
        try:
            return self.execute()
        finally:
            lock.close()


# -- the command ------------------------------------------------------------------------
def _err(msg: str) -> int:
    print(f"sweep: {msg}", file=sys.stderr, flush=True)
    return 2


def _rel(path: str) -> str:
    ap = os.path.abspath(path)
    return os.path.relpath(ap, REPO) if ap.startswith(REPO + os.sep) else ap


def run(args, decide=None) -> int:
    interrupted = {"signum": None}

    def on_signal(signum, _frame):
        if interrupted["signum"] is None:
            interrupted["signum"] = signum
            raise SweepInterrupted(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    hosts: list = [LocalHost()]
    try:
        try:
            plan = build_plan(args)
        except PlanError as exc:
            return _err(str(exc))
        if args.dry_run:
            try:
                _print_dry_run(plan)
            except BrokenPipeError:  # e.g. piped into head
                sys.stdout = open(os.devnull, "w")
            return 0
        try:
            server_host = parse_host(plan.server_host)
            hosts = [server_host]
            client_hosts = []
            for spec in plan.clients:
                h = server_host if spec == plan.server_host else parse_host(spec)
                client_hosts.append(h)
                if h is not server_host:
                    hosts.append(h)
        except HostError as exc:
            return _err(str(exc))
        return Sweep(plan, server_host, decide, client_hosts[0], client_hosts).run()
    except SweepInterrupted as exc:
        # Reached only if the interruption came outside the point loop (planning, lock wait).
        for h in hosts:
            h.kill_all()
        print(f"\nsweep: interrupted by {exc}", file=sys.stderr, flush=True)
        return 128 + exc.signum
    finally:
        for h in hosts:
            h.kill_all()
        for s, h in old.items():
            signal.signal(s, h)


def _print_dry_run(plan: SweepPlan):
    print(plan.summary())
    if plan.skipped_models:
        print(f"  not in `cbench-server --list` (would be recorded as skipped): {', '.join(plan.skipped_models)}")
    if plan.list_error:
        print(f"  note: {plan.list_error}")
    print(f"  (per repetition: duration + warm-up + {OVERHEAD_S:g} s measured overhead; "
          "see OVERHEAD_S in scripts/cbenchlib/cli_sweep.py)")
    for p in plan.points:
        label = f"  [{p.row.label}]" if p.row.label else ""
        print(f"  {p.row.kind:10s} {p.row.key:40s} {p.load.key:28s} "
              f"~{estimate_s(p, plan.settings, plan.available):.1f} s/rep{label}")


def progress_line(slot: Slot, label: str, total: int, width: int, record, dt, eta_s) -> str:
    point, rep = slot.point, slot.rep
    where = (f"[{(label + ' ') if label else ''}{slot.seq + 1:>{width}}/{total}] {point.row.key} | "
             f"{point.load.key} | rep {rep}")
    if record["status"] != "ok":
        what = ("SKIPPED" if (record.get("failure") or {}).get("skipped") else "FAILED") \
            + f": {record['failure']['reason']}"
    elif record.get("idle"):
        idle = record["idle"]
        bpc = idle["bytes_per_conn"]
        what = (f"{idle['connections_held']} idle conns: {bpc:.0f} B/conn, "
                f"{idle['threads_per_conn']:.2f} threads/conn | {record['verdict']}")
    else:
        w = record["wrk"]
        mx = w["latency_us"].get("max")
        what = (f"{w['req_per_s']:.0f} req/s, max {_fmt_us(mx)} | {record['verdict']} "
                f"(server {_pct(record['derived']['server_cpu_util'])}, "
                f"client {_pct(record['derived']['client_cpu_util'])})")
        c = record.get("clients")  # issue 18: several client hosts
        if c:
            what += (f" ({c['hosts']} client hosts, skew {c['skew_s'] * 1e3:.1f} ms"
                     + ("" if c["bounded"] else ", WINDOW NOT BOUNDED") + ")")
        other = (record.get("machine") or {}).get("other_cpu_util")
        if other is not None and other > verdict.DISTURBED_CPU:
            what += f" DISTURBED (other processes {_pct(other)} of a CPU)"
    return f"{where} | {what} | {dt:.1f} s | ETA {fmt_duration(eta_s)}"


def _fmt_us(us) -> str:
    if us is None:
        return "n/a"
    if us >= 1e6:
        return f"{us / 1e6:.2f}s"
    if us >= 1e3:
        return f"{us / 1e3:.2f}ms"
    return f"{us:.0f}us"


def _pct(x) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"
