"""`cbench sweep`: run a scenario and record raw results (results/SCHEMA.md).

Order of work: validate the scenario (nothing runs if it is bad) -> check the
tools -> take the machine-wide benchmark lock -> create (or resume) the run
directory -> run every (point, repetition) in a seeded shuffled order, one
fresh server each, appending one line per repetition -> finish meta.json.

SIGINT/SIGTERM stop the current point, kill every process the sweep started,
leave meta.json and points.jsonl readable, and exit 128+signal (130 on Ctrl-C).
"""
from __future__ import annotations

import fcntl
import re
import fnmatch
import os
import random
import resource
import signal
import subprocess
import sys
import time

from . import benchlock, envinfo, resultio, runner, scenario
from .host import LocalHost

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS_DIR = os.path.join(REPO, "scenarios")
DEFAULT_OUT = os.path.join(REPO, "results", "runs")
DEFAULT_SERVER_BIN = os.path.join("build", "cbench-server")
DEFAULT_LOCK = "/tmp/cbench-bench.lock"

# Per-repetition cost beyond duration and warm-up, for the estimate: server start and
# readiness, primer, two wrk runs that each last ~0.1 s past -d (wrk stops its
# threads at its next 100 ms tick), post-check and stop. Measured on the reference
# machine (2-core VM) with the first two models at 10-1024 connections: 0.1-0.3 s;
# rounded up for the thousands of connections of other scenarios.
OVERHEAD_S = 0.5
# Idle points: start, settle, stop, plus opening, holding and closing the connections:
# measured 0.5 s at 100 connections, 1.5 s (epoll-reactor) to 5.9 s (thread-per-connection,
# 10000 threads) at 10000.
IDLE_BASE_S = 1.0
IDLE_PER_CONN_S = 0.0005


class ResultsUnwritable(Exception):
    """The run directory cannot be written (a full or read-only disk): the sweep stops, since
    nothing it measured from here on could be recorded."""
    def __init__(self, exc: OSError):
        super().__init__(str(exc))
        self.exc = exc


def _write_results(fn, *args, **kw):
    """Calls a RunWriter method; turns the OSError of a full or read-only disk into ResultsUnwritable."""
    try:
        return fn(*args, **kw)
    except OSError as exc:
        raise ResultsUnwritable(exc) from exc


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
                   help="the cbench-server binary (default: $CBENCH_SERVER_BIN or build/cbench-server)")
    p.add_argument("--wrk-bin", default="wrk", help="the wrk binary (default: wrk on PATH)")
    p.add_argument("--duration", type=int, metavar="S", help="override the scenario's duration_s")
    p.add_argument("--warmup", type=float, metavar="S", help="override the scenario's warmup_s")
    p.add_argument("--repetitions", type=int, metavar="N", help="override the scenario's repetitions")
    p.add_argument("--lock-file", default=DEFAULT_LOCK,
                   help=f"machine-wide benchmark lock (default: {DEFAULT_LOCK})")
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up if the lock is still held after S seconds (default: wait)")


# -- planning ---------------------------------------------------------------------------
def select_rows(sc: scenario.Scenario, patterns: str | None) -> None:
    if not patterns:
        return
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    sc.rows = [r for r in sc.rows
               if any(fnmatch.fnmatchcase(r.model, p) or fnmatch.fnmatchcase(r.key, p) for p in pats)]


def apply_overrides(sc: scenario.Scenario, overrides: dict) -> None:
    s = sc.settings
    if overrides.get("duration_s") is not None:
        s.duration_s = overrides["duration_s"]
    if overrides.get("warmup_s") is not None:
        s.warmup_s = overrides["warmup_s"]
    if overrides.get("repetitions") is not None:
        s.repetitions = overrides["repetitions"]


def schedule(points: list, repetitions: int, order: str, seed: int) -> list[tuple[int, object]]:
    """[(rep, point)] in run order: one round per repetition, each round in a seeded shuffle
    (or file order for 'interleaved'), so no row's repetitions run back to back."""
    out = []
    for rep in range(repetitions):
        round_ = list(points)
        if order == "shuffled":
            random.Random(seed * 1_000_003 + rep).shuffle(round_)
        out.extend((rep, p) for p in round_)
    return out


def estimate_s(point, settings, available: set[str] | None) -> float:
    """Expected wall time of one repetition of point."""
    row = point.row
    if row.kind in ("model", "instrument") and available is not None and row.model not in available:
        return 0.0
    if point.load.is_idle:
        return IDLE_BASE_S + IDLE_PER_CONN_S * point.load.idle_connections
    return settings.duration_s + settings.warmup_s + OVERHEAD_S


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def list_models(server_bin: str) -> tuple[set[str] | None, str | None]:
    """(model names from `cbench-server --list`, error message)."""
    try:
        out = subprocess.run([server_bin, "--list"], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        return None, f"cannot run {server_bin} --list: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return None, f"{server_bin} --list did not finish within 10 s"
    if out.returncode != 0:
        return None, f"{server_bin} --list exited with status {out.returncode}: {out.stderr.strip()[-300:]}"
    names = {line.split("\t", 1)[0].strip() for line in out.stdout.splitlines() if line.strip()}
    return names, None


# -- the lock ---------------------------------------------------------------------------
def acquire_lock(path: str, timeout_s: float | None, what: str):
    """An exclusive flock held for the whole sweep; returns the open file (keep it open)."""
    return benchlock.acquire(path, timeout_s, "sweep", f"cbench sweep {what}")


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


# -- the command ------------------------------------------------------------------------
def _err(msg: str) -> int:
    print(f"sweep: {msg}", file=sys.stderr, flush=True)
    return 2


def _rel(path: str) -> str:
    ap = os.path.abspath(path)
    return os.path.relpath(ap, REPO) if ap.startswith(REPO + os.sep) else ap


def run(args) -> int:
    interrupted = {"signum": None}

    def on_signal(signum, _frame):
        if interrupted["signum"] is None:
            interrupted["signum"] = signum
            raise SweepInterrupted(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    host = LocalHost()
    try:
        return _run(args, host)
    except SweepInterrupted as exc:
        # Reached only if the interruption came outside the point loop (planning, lock wait).
        host.kill_all()
        print(f"\nsweep: interrupted by {exc}", file=sys.stderr, flush=True)
        return 128 + exc.signum
    finally:
        host.kill_all()
        for s, h in old.items():
            signal.signal(s, h)


def _run(args, host: LocalHost) -> int:
    out_parent = os.path.abspath(args.out)
    resume_dir = None
    overrides = {"duration_s": args.duration, "warmup_s": args.warmup, "repetitions": args.repetitions}
    if args.resume:
        resume_dir = args.resume if os.path.isdir(args.resume) else os.path.join(out_parent, args.resume)
        meta_path = os.path.join(resume_dir, "meta.json")
        try:
            meta = resultio.read_json(meta_path)
        except (OSError, ValueError) as exc:
            return _err(f"--resume {args.resume}: cannot read {meta_path}: {exc}")
        h = meta.get("harness", {})
        try:
            sc = scenario.parse(meta["scenario_text"], meta.get("scenario_file", "meta.json"),
                                quick=bool(meta.get("quick")))
        except (KeyError, scenario.ScenarioError) as exc:
            return _err(f"--resume: the recorded scenario is unusable: {exc}")
        recorded_commit = meta.get("env", {}).get("git_commit")
        now_commit = envinfo.git_info(REPO)["git_commit"]
        if recorded_commit != now_commit:
            print(f"sweep: warning: the run was started at commit {recorded_commit}, the tree is now "
                  f"at {now_commit}; the resumed points measure the current build", flush=True)
        if any(v is not None for v in overrides.values()) or args.models or args.quick:
            print("sweep: --resume uses the run's own settings; --quick/--models/--duration/--warmup/"
                  "--repetitions are ignored", flush=True)
        overrides = h.get("overrides", {})
        models_filter = h.get("models_filter")
    else:
        path = scenario.resolve_path(args.scenario, SCENARIOS_DIR)
        try:
            sc = scenario.load_file(path, quick=args.quick)
        except scenario.ScenarioError as exc:
            return _err(str(exc))
        models_filter = args.models
    for key, flag, lo in (("duration_s", "--duration", 1), ("warmup_s", "--warmup", 0),
                          ("repetitions", "--repetitions", 1)):
        if overrides.get(key) is not None and overrides[key] < lo:
            return _err(f"{flag} must be at least {lo}, got {overrides[key]:g}")
    apply_overrides(sc, overrides)
    select_rows(sc, models_filter)
    points = sc.points()
    if not points:
        return _err(f"{sc.path}: no points to run"
                    + (f" (--models {models_filter!r} matches no row)" if models_filter else ""))
    s = sc.settings

    server_bin = args.server_bin if os.path.isabs(args.server_bin) else os.path.join(REPO, args.server_bin)
    needs_server = any(p.row.kind in ("model", "instrument") for p in points)
    available, list_error = (None, None)
    if needs_server:
        if os.path.exists(server_bin):
            available, list_error = list_models(server_bin)
        else:
            list_error = (f"server binary not found: {server_bin} (build it: cmake -S . -B build "
                          "-DCMAKE_BUILD_TYPE=Release && cmake --build build)")

    plan = schedule(points, s.repetitions, s.order, s.seed)
    total_est = sum(estimate_s(p, s, available) for _, p in plan)
    full_est = sum(estimate_s(p, s, None) for _, p in plan)
    skipped_models = sorted({p.row.model for p in points if available is not None
                             and p.row.kind in ("model", "instrument") and p.row.model not in available})
    has_wrk = any(not p.load.is_idle for p in points)
    summary = (f"{sc.settings.name}{' (quick)' if sc.quick else ''}: {len(points)} points x "
               f"{s.repetitions} repetition{'s' if s.repetitions != 1 else ''} = {len(plan)} runs; "
               + (f"duration {s.duration_s} s, warm-up {s.warmup_s:g} s, " if has_wrk else "")
               + f"order {s.order} (seed {s.seed}); server on CPU {s.server_cpus}"
               + (f", wrk on CPU {s.client_cpus}" if has_wrk else "")
               + f"; estimated {fmt_duration(full_est)} with every model"
               + (f", {fmt_duration(total_est)} now ({len(skipped_models)} models not built: "
                  f"their points are recorded as skipped)" if skipped_models else ""))

    if args.dry_run:
        try:
            _print_dry_run(summary, skipped_models, list_error, points, s, available)
        except BrokenPipeError:  # e.g. piped into head
            sys.stdout = open(os.devnull, "w")
        return 0

    if list_error:
        return _err(list_error)
    wrk_bin = None
    if any(not p.load.is_idle for p in points):
        wrk_bin = host.which(args.wrk_bin)
        if wrk_bin is None:
            return _err(f"wrk not found (looked for {args.wrk_bin!r} on PATH): install the Debian "
                        "package wrk (scripts/deps.sh does)")
    if host.which("taskset") is None:
        return _err("taskset not found: install the Debian package util-linux (scripts/deps.sh does)")

    lock = acquire_lock(args.lock_file, args.lock_timeout, sc.settings.name)
    if lock is None:
        return _err(f"the benchmark lock {args.lock_file} is still held after {args.lock_timeout:g} s; "
                    "another benchmark is running")
    try:
        return _sweep(args, host, sc, points, plan, available, skipped_models, server_bin, wrk_bin,
                      out_parent, resume_dir, overrides, models_filter, summary, total_est)
    finally:
        lock.close()


def _sweep(args, host, sc, points, plan, available, skipped_models, server_bin, wrk_bin,
           out_parent, resume_dir, overrides, models_filter, summary, total_est) -> int:
    s = sc.settings
    raise_nofile(points)
    try:
        writer, done = _open_run(args, host, sc, points, plan, available, skipped_models, server_bin,
                                 wrk_bin, out_parent, resume_dir, overrides, models_filter, total_est)
    except OSError as exc:
        where = resume_dir or out_parent
        return _err(f"cannot {'resume the run in' if resume_dir else 'create a run directory under'} {where}: "
                    f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}; nothing was run "
                    "(a full or read-only disk? free space, or choose another --out)")
    return _run_points(host, sc, plan, available, skipped_models, server_bin, wrk_bin, writer, done, summary)


def _open_run(args, host, sc, points, plan, available, skipped_models, server_bin, wrk_bin,
              out_parent, resume_dir, overrides, models_filter, total_est):
    """The RunWriter of a new or resumed run directory, and the (point, rep) pairs already done.
    Raises OSError if the directory cannot be created or written."""
    s = sc.settings
    if resume_dir:
        writer = resultio.RunWriter(resume_dir)
        writer.meta = resultio.read_json(writer.meta_path)
        if writer.repair_tail():
            print("sweep: cut a torn last line off points.jsonl", flush=True)
        previous, bad = resultio.read_points(writer.points_path)
        done = resultio.completed(previous)
        writer.update_meta(ended_utc=None, interrupted=None,
                           resumed_utc=writer.meta.get("resumed_utc", []) + [resultio.utc_now()])
        print(f"sweep: resuming {writer.run_dir}: {len(done)} of {len(plan)} runs already recorded"
              + (f" ({bad} unreadable lines ignored)" if bad else ""), flush=True)
    else:
        run_dir = resultio.new_run_dir(out_parent, s.name)
        writer = resultio.RunWriter(run_dir)
        done = set()
        build_dir = os.path.dirname(os.path.realpath(server_bin))
        writer.write_meta({
            "schema": resultio.SCHEMA_VERSION,
            "run_id": os.path.basename(run_dir),
            "scenario_name": s.name,
            "scenario_file": _rel(sc.path),
            "scenario_text": sc.text,
            "quick": sc.quick,
            "started_utc": resultio.utc_now(),
            "ended_utc": None,
            "env": envinfo.collect(REPO, build_dir, s.server_cpus, s.client_cpus, wrk_bin),
            "harness": {
                "command": ["scripts/cbench"] + sys.argv[1:] if sys.argv and sys.argv[0].endswith("cbench")
                else sys.argv,
                "host": host.name,
                "server_bin": _rel(server_bin),
                "available_models": sorted(available) if available is not None else None,
                "skipped_models": skipped_models,
                "models_filter": models_filter,
                "overrides": overrides,
                "order": s.order, "seed": s.seed,
                "duration_s": s.duration_s, "warmup_s": s.warmup_s, "repetitions": s.repetitions,
                "timeout_s": s.timeout_s, "ready_timeout_s": s.ready_timeout_s,
                "response": s.response,  # issue 14: response bytes (standard | published)
                "points": len(points), "runs": len(plan),
                "estimate_s": round(total_est, 1),
                "verdict_thresholds": {"saturated_cpu": runner.verdict.SATURATED,
                                       "error_fraction": runner.verdict.ERROR_FRACTION},
            },
            "resumed_utc": [],
            "interrupted": None,
        })
    return writer, done


def _run_points(host, sc, plan, available, skipped_models, server_bin, wrk_bin, writer, done,
                summary) -> int:
    s = sc.settings
    print(summary, flush=True)
    print(f"run directory: {writer.run_dir}", flush=True)
    if skipped_models:
        print(f"sweep: not in `cbench-server --list`, recorded as skipped: {', '.join(skipped_models)}",
              flush=True)

    r = runner.Runner(host, s, server_bin, wrk_bin, writer.run_dir, REPO, available)
    todo = [(seq, rep, p) for seq, (rep, p) in enumerate(plan) if (p.id, rep) not in done]
    est_left = sum(estimate_s(p, s, available) for _, _, p in todo)
    est_done = 0.0
    spent = 0.0
    counts = {"ok": 0, "failed": 0}
    width = len(str(len(plan)))
    try:
        for i, (seq, rep, p) in enumerate(todo):
            t0 = time.monotonic()
            record = r.run(p, rep, seq)
            _write_results(writer.append_point, record)
            dt = time.monotonic() - t0
            spent += dt
            e = estimate_s(p, s, available)
            est_done += e
            est_left -= e
            # Scale what is left by how the estimate has fared so far (bounded, so one
            # slow point cannot make the ETA absurd).
            ratio = min(3.0, max(0.5, spent / est_done)) if est_done > 0 else 1.0
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            print(progress_line(seq, len(plan), width, p, rep, record, dt, est_left * ratio), flush=True)
    except SweepInterrupted as exc:
        signum = exc.signum
        killed = host.kill_all()
        writer.update_meta(interrupted={"signal": signal.Signals(signum).name, "utc": resultio.utc_now()})
        recorded = len(resultio.read_points(writer.points_path)[0])
        print(f"\nsweep: interrupted by {signal.Signals(signum).name}; every process the sweep started "
              f"is stopped ({len(killed)} needed killing here); {recorded} of {len(plan)} runs recorded "
              f"in {writer.run_dir}\nsweep: continue with: scripts/cbench sweep --resume "
              f"{writer.run_dir}", file=sys.stderr, flush=True)
        return 128 + signum
    except ResultsUnwritable as exc:
        killed = host.kill_all()
        recorded = len(resultio.read_points(writer.points_path)[0])
        err = exc.exc
        print(f"\nsweep: cannot write the results in {writer.run_dir}: {err.strerror or err}"
              f"{f' ({err.filename})' if err.filename else ''}; stopped, since nothing measured from here on "
              f"could be recorded. Every process the sweep started is stopped ({len(killed)} needed killing "
              f"here); {recorded} of {len(plan)} runs are recorded.\nsweep: once the disk is writable again, "
              f"continue with: scripts/cbench sweep --resume {writer.run_dir}", file=sys.stderr, flush=True)
        return 2
    try:
        writer.update_meta(ended_utc=resultio.utc_now())
    except OSError as exc:
        print(f"sweep: warning: cannot record the end time in {writer.meta_path}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
    all_points, _ = resultio.read_points(writer.points_path)
    ok = sum(1 for x in all_points if x.get("status") == "ok")
    failed = len(all_points) - ok
    verdicts = {}
    for x in all_points:
        if x.get("status") == "ok":
            verdicts[x.get("verdict")] = verdicts.get(x.get("verdict"), 0) + 1
    vtext = ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
    print(f"sweep: done in {fmt_duration(spent)}: {ok} ok ({vtext or 'none'}), {failed} failed; "
          f"results in {writer.run_dir}", flush=True)
    return 0 if ok > 0 else 1


def _print_dry_run(summary, skipped_models, list_error, points, s, available):
    print(summary)
    if skipped_models:
        print(f"  not in `cbench-server --list` (would be recorded as skipped): {', '.join(skipped_models)}")
    if list_error:
        print(f"  note: {list_error}")
    for p in points:
        label = f"  [{p.row.label}]" if p.row.label else ""
        print(f"  {p.row.kind:10s} {p.row.key:40s} {p.load.key:28s} "
              f"~{estimate_s(p, s, available):.1f} s/rep{label}")


def progress_line(seq, total, width, point, rep, record, dt, eta_s) -> str:
    where = f"[{seq + 1:>{width}}/{total}] {point.row.key} | {point.load.key} | rep {rep}"
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
        other = (record.get("machine") or {}).get("other_cpu_util")
        if other is not None and other > runner.verdict.DISTURBED_CPU:
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
