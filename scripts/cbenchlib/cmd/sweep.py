"""`cbench sweep`: run a scenario and record raw results (results/SCHEMA.md).

Plan, then execute (pyperf's Runner builds its arguments once, then runs):

- `plan.sweepplan.build_plan` turns the command line (or a resumed run's meta.json) and the
  scenario into a `SweepPlan`: the points in run order (plan.schedule), the time estimate
  (plan.estimate), what the dry run prints; a resumed run's records say what is still to run
  (plan.ledger). Nothing runs if the scenario is bad.
- `run.sweepexec.Sweep(plan, ...).run()` executes it: check the tools -> take the machine-wide
  benchmark lock -> create (or resume) the run directory -> the initial blocks -> with a target
  interval, extra blocks while analysis.sequential.decide asks for them -> finish meta.json.

This module parses the arguments, wires the layers together and turns a failure to start into
a message and exit status 2. SIGINT/SIGTERM stop the current point, kill every process the
sweep started, leave meta.json and points.jsonl readable, and exit 128+signal (130 on Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from ..analysis import sequential
from ..format.paths import REPO_ROOT
from ..format.scenario import cpu_list
from ..plan import cpulayout, sweepplan
from ..plan.estimate import estimate_s, extra_blocks_estimate_s, fmt_duration
from ..plan.schedule import block_order, schedule
from ..plan.sweepplan import PlanError, SweepPlan, build_plan, select_rows
from ..run import benchlock, cputopo, envinfo, multiclient, profiling, sweepexec
from ..run.host import HostError, LocalHost, parse_host
from ..run.sweepexec import Sweep, SweepInterrupted
from .common import DURATION_S, REPETITIONS, WARMUP_S, err

# Besides the verb, the planning names `cbench sweep` has always offered its callers (the
# scenario, design and multi-client tests); they live in plan/.
__all__ = ["add_arguments", "run", "machine", "check_client_hosts", "PlanError", "select_rows",
           "block_order", "schedule", "estimate_s", "extra_blocks_estimate_s", "fmt_duration"]

DEFAULT_OUT = os.path.join(REPO_ROOT, "results", "runs")
DEFAULT_SERVER_BIN = os.path.join(REPO_ROOT, "build", "cbench-server")


def add_arguments(p) -> None:
    p.add_argument("scenario", nargs="?",
                   help="scenario name (scenarios/NAME.toml) or path to a .toml file; required unless --resume"
                        " (`cbench list scenarios` lists them; ever-table is the published table, ~20 minutes)")
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
    p.add_argument("--duration", type=DURATION_S, metavar="S", help="override the scenario's duration_s")
    p.add_argument("--warmup", type=WARMUP_S, metavar="S", help="override the scenario's warmup_s")
    p.add_argument("--repetitions", type=REPETITIONS, metavar="N",
                   help="override the scenario's repetitions (the initial blocks)")
    p.add_argument("--target-ci", type=float, metavar="PCT",
                   help="sequential design: add whole blocks for the points the scenario's declared "
                        "comparisons need until each is decided or its 95%% interval is narrower than PCT "
                        "percent, re-running failed and disturbed repetitions (default: the scenario's "
                        "target_ci_pct; 0 turns it off)")
    p.add_argument("--max-repetitions", type=REPETITIONS, metavar="N",
                   help="with --target-ci: no point gets more than N repetitions, re-runs included: the "
                        "budget --dry-run prints (default: the scenario's max_repetitions)")
    p.add_argument("--server-host", metavar="HOST", default="local",
                   help="where the server runs: local (default), netns:NAME[@ADDR] (a network "
                        "namespace on this machine) or ssh://[user@]host[:port][?address=ADDR] ("
                        "its binary must report the local build's commit)")
    p.add_argument("--client-host", metavar="HOST", action="append",
                   help="where wrk runs and the harness's probes connect from: local (default), "
                        "netns:NAME[@ADDR] or ssh://...; repeat it for several load hosts: each point's "
                        "connections are split evenly between them, each runs the point's -t, all are "
                        "released at the same moment and their results merged over the window they share "
                        "(the first host also sends the harness's probes and the idle connections)")
    add_cpu_arguments(p)
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock (default: {benchlock.DEFAULT_PATH})")
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up if the lock is still held after S seconds (default: wait)")
    # A run into results/runs/ is a reference run (provenance); --profile runs one unmeasured
    # repetition per point under perf, after the blocks (run/profiling.py).
    p.add_argument("--profile", action="store_true",
                   help="after the measured blocks, one unmeasured repetition per wrk point under `perf record"
                        " -e cpu-clock --call-graph dwarf` on the server's CPUs; folded stacks kept in the run's"
                        " profile/ (never in points.jsonl); print them with `cbench profile RUN`")
    p.add_argument("--allow-dirty", action="store_true",
                   help="let a reference run (--out under results/: results/runs is the default) start from a tree with"
                        " uncommitted changes; meta.json records the changed files and the diff's sha256")


def add_cpu_arguments(p) -> None:
    """--server-cpus / --client-cpus, for every verb that runs a server."""
    auto = ("default: the scenario's, else whole physical cores from the topology (two CPUs: "
            "server 0, wrk 1); the dry run prints the layout and its reason")
    p.add_argument("--server-cpus", metavar="LIST", help=f"taskset CPU list for the server ({auto})")
    p.add_argument("--client-cpus", metavar="LIST",
                   help="taskset CPU list for wrk (default: the scenario's, else the other half of the cores)")
    # Another machine's sysfs tree (a copy, as the tests' fixtures) for the automatic layout.
    p.add_argument("--sysfs-root", help=argparse.SUPPRESS)


def choose_cpus(args, verb: str) -> str | None:
    """For a verb that generates its scenario (regress, calibrate): resolves --server-cpus /
    --client-cpus against the topology's layout into args.server_cpus / args.client_cpus and
    prints it; returns an error message for a list that cannot run, else None."""
    topo = cputopo.read(getattr(args, "sysfs_root", None))
    flags = {k: getattr(args, k, None) for k in ("server_cpus", "client_cpus")}
    layout = cpulayout.resolve(cpulayout.automatic(topo), {}, flags)
    try:
        warnings = cpulayout.check(layout, topo)
    except cpulayout.LayoutError as exc:
        return str(exc)
    args.server_cpus, args.client_cpus = layout.server_cpus, layout.client_cpus
    print(f"{verb}: CPU layout: server {layout.server_cpus}, wrk {layout.client_cpus} "
          f"({layout.source}: {layout.reason})", flush=True)
    for w in warnings:
        print(f"{verb}: {w}", flush=True)
    return None


def generated_cpus(args) -> dict:
    """The server_cpus / client_cpus keys of a generated scenario: choose_cpus's choice (none
    when it has not run: the sweep then takes the topology's layout itself)."""
    return {k: getattr(args, k) for k in ("server_cpus", "client_cpus") if getattr(args, k, None)}


def machine(sysfs_root: str | None = None) -> sweepplan.Machine:
    """What planning asks of this machine and the run layer."""
    return sweepplan.Machine(git_commit=lambda: envinfo.git_info(REPO_ROOT)["git_commit"],
                             split_connections=multiclient.split_connections,
                             profile_estimate_s=profiling.estimate_s,
                             topology=lambda: cputopo.read(sysfs_root))


def check_client_hosts(clients: list[str], points: list) -> None:
    """sweepplan.check_client_hosts with the run layer's split of a load between hosts."""
    sweepplan.check_client_hosts(clients, points, multiclient.split_connections)


def _err(msg: str) -> int:
    return err("sweep", msg)


def run(args, decide=None) -> int:
    """`cbench sweep`; decide replaces analysis.sequential.decide (tests)."""
    if not args.scenario and not args.resume:
        return _err("give a SCENARIO (`cbench list scenarios` lists them), or --resume RUN")
    if args.resume and os.sep in args.resume:
        args.resume = os.path.abspath(args.resume)  # a path as given, not an id under --out

    def on_signal(signum, _frame):
        if sweepexec.caught_signal() is None:  # the first signal only: a second one is not raised
            sweepexec.note_signal(signum)  # re-raised by the point loop if this raise is swallowed
            raise SweepInterrupted(signum)

    sweepexec.note_signal(None)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    hosts: list = [LocalHost()]
    try:
        try:
            plan = build_plan(args, machine(getattr(args, "sysfs_root", None)))
        except PlanError as exc:
            return _err(str(exc))
        _system_warnings(plan, getattr(args, "sysfs_root", None))
        if args.dry_run:
            return _dry_run(plan)
        try:
            server_host = parse_host(plan.server_host)
            hosts = [server_host]
            client_hosts = []
            for spec in plan.clients:  # a client spec equal to the server's is the same host
                h = server_host if spec == plan.server_host else parse_host(spec)
                client_hosts.append(h)
                if h is not server_host:
                    hosts.append(h)
        except HostError as exc:
            return _err(str(exc))
        if decide is None and plan.sequential:
            decide = sequential.decide
        try:
            return Sweep(plan, server_host, client_hosts, decide).run()
        except PlanError as exc:
            return _err(str(exc))
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


def _system_warnings(plan: SweepPlan, sysfs_root: str | None) -> None:
    """What pyperf's system check would say about this machine's CPUs the sweep uses (frequency
    governor, turbo, isolated CPUs); nothing for a sweep whose server runs on another machine."""
    if plan.server_host.startswith("ssh://"):
        return
    s = plan.settings
    used = sorted(set(cpu_list(s.server_cpus)) | set(cpu_list(s.client_cpus)))
    for w in cputopo.describe(used, sysfs_root)["warnings"]:
        print(f"sweep: warning: {w}", flush=True)


def _dry_run(plan: SweepPlan) -> int:
    try:
        for line in plan.dry_run_lines():
            print(line)
    except BrokenPipeError:  # e.g. piped into head
        sys.stdout = open(os.devnull, "w")
    return 0
