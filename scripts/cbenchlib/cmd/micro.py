"""`cbench micro`: run the microbenchmarks (build/bench/*_bench) and store their JSON as a run.

Builds nothing: it runs the Google Benchmark binaries that the CMake build put in --bench-dir,
each pinned with taskset to the server's CPU, under the machine-wide benchmark lock (the one
`cbench sweep` takes: one benchmark at a time on a machine). Writes
results/runs/<UTC time>-micro/ with meta.json ("kind": "micro", the environment as a sweep
records it) and <binary>.json per binary (Google Benchmark's JSON: every repetition plus its
mean/median/stddev/cv); the console output of each binary goes to logs/. `cbench report RUN`
and `cbench plot RUN` read such a run (micro.py).

SIGINT/SIGTERM stop the running binary, leave meta.json readable (ended_utc null, interrupted
set) and exit 128+signal.
"""
from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

from ..run import benchlock, cputopo, envinfo, procstat
from ..format import resultio, scenario
from ..plan import cpulayout
from ..format.paths import REPO_ROOT
from ..format.verdict import DISTURBED_CPU
from ..analysis import runload
from ..render import microreport
from ..format import runlogs
from .common import REPETITIONS, err, repo_relative

DEFAULT_BENCH_DIR = os.path.join("build", "bench")
DEFAULT_OUT = os.path.join(REPO_ROOT, "results", "runs")
DEFAULT_LOCK = benchlock.DEFAULT_PATH  # the lock cbench sweep takes: one benchmark at a time
# Repetitions and seconds per repetition: 3 x 0.3 s keeps the default run of the ~60 benchmarks
# near 1.5 minutes on the reference machine (each benchmark takes about (repetitions + 1) x
# min_time: the library calibrates its iteration count before the first repetition; 0.2 s took
# 61 s in all), inside the 3 minutes the issue allows; the spread between repetitions came from
# other work on the machine, not from too short a time.
DEFAULT_REPETITIONS = 3
DEFAULT_MIN_TIME_S = 0.3
# --quick: one short repetition of everything, a few seconds in all (smoke tests, not figures).
QUICK_REPETITIONS = 1
QUICK_MIN_TIME_S = 0.01


class MicroInterrupted(BaseException):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def add_arguments(p) -> None:
    p.add_argument("--bench-dir", default=DEFAULT_BENCH_DIR,
                   help=f"directory of the *_bench binaries (default: {DEFAULT_BENCH_DIR}; build it with"
                        " cmake --build build)")
    p.add_argument("--cpus", "--server-cpus", dest="cpus", metavar="LIST",
                   help="taskset CPU list for every binary (default: the first CPU of the server's automatic"
                        " layout, as the sweep chooses it: 0 on a two-CPU machine, so figures compare with"
                        " the sweep's; 'none' to run unpinned)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_REPETITIONS} repetition of {QUICK_MIN_TIME_S:g} s per benchmark: a few"
                        " seconds in all, for smoke tests")
    p.add_argument("--repetitions", type=REPETITIONS, metavar="N",
                   help=f"repetitions per benchmark (default: {DEFAULT_REPETITIONS})")
    p.add_argument("--min-time", type=float, metavar="S",
                   help=f"minimum seconds per repetition (default: {DEFAULT_MIN_TIME_S:g})")
    p.add_argument("--filter", metavar="REGEX", help="only benchmarks whose name matches (--benchmark_filter)")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help="parent of run directories (default: results/runs)")
    p.add_argument("--lock-file", default=DEFAULT_LOCK,
                   help=f"machine-wide benchmark lock (default: {DEFAULT_LOCK})")
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up if the lock is still held after S seconds (default: wait)")


def _err(msg: str) -> int:
    return err("micro", msg)


def find_binaries(bench_dir: str) -> list[str]:
    """Paths of the executable *_bench files in bench_dir, sorted by name."""
    try:
        names = sorted(os.listdir(bench_dir))
    except OSError:
        return []
    out = []
    for n in names:
        p = os.path.join(bench_dir, n)
        if n.endswith("_bench") and os.path.isfile(p) and os.access(p, os.X_OK):
            out.append(p)
    return out


def list_benchmarks(binary: str, filt: str | None) -> list[str] | None:
    """The benchmark names a binary would run (--benchmark_list_tests), or None if it fails."""
    argv = [binary, "--benchmark_list_tests=true"] + ([f"--benchmark_filter={filt}"] if filt else [])
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]


def acquire_lock(path: str, timeout_s: float | None):
    """The exclusive flock that cbench sweep also takes; returns the open file (keep it open), or
    None after timeout_s."""
    return benchlock.acquire(path, timeout_s, "micro", "cbench micro")


def benchmark_library_version() -> dict:
    """{"benchmark": upstream, ...} from dpkg for libbenchmark-dev; {} if unknown."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libbenchmark-dev"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0 or not out.stdout.strip():
        return {}
    return {"upstream": envinfo.upstream_version(out.stdout.strip()), "debian": out.stdout.strip()}


def run(args) -> int:
    def on_signal(signum, _frame):
        raise MicroInterrupted(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(args)
    except MicroInterrupted as exc:
        print(f"\nmicro: interrupted by {exc}", file=sys.stderr, flush=True)
        return 128 + exc.signum
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run(args) -> int:
    repetitions = args.repetitions if args.repetitions is not None else (
        QUICK_REPETITIONS if args.quick else DEFAULT_REPETITIONS)
    min_time_s = args.min_time if args.min_time is not None else (
        QUICK_MIN_TIME_S if args.quick else DEFAULT_MIN_TIME_S)
    if repetitions < 1:
        return _err(f"--repetitions must be at least 1, got {repetitions}")
    if not min_time_s > 0:
        return _err(f"--min-time must be positive, got {min_time_s:g}")
    if args.filter is not None:
        try:
            re.compile(args.filter)
        except re.error as exc:
            return _err(f"--filter {args.filter!r}: {exc}")
    bench_dir = args.bench_dir if os.path.isabs(args.bench_dir) else os.path.join(REPO_ROOT, args.bench_dir)
    binaries = find_binaries(bench_dir)
    if not binaries:
        return _err(f"no *_bench binaries in {repo_relative(bench_dir)} (build them: cmake -S . -B build "
                    "-DCMAKE_BUILD_TYPE=Release && cmake --build build; they need libbenchmark-dev)")
    cpus, bad = micro_cpus(args.cpus, cputopo.read())
    if bad:
        return _err(bad)
    if cpus and shutil.which("taskset") is None:
        return _err("taskset not found: install the Debian package util-linux (scripts/deps.sh does)")

    plan = []
    for path in binaries:
        names = list_benchmarks(path, args.filter)
        if names is None:
            return _err(f"{repo_relative(path)} --benchmark_list_tests failed (run it by hand to see why)")
        if names:
            plan.append((path, names))
    if not plan:
        return _err(f"--filter {args.filter!r} matches no benchmark")
    total = sum(len(n) for _, n in plan)
    print(f"micro: {total} benchmarks in {len(plan)} binaries x {repetitions} repetition"
          f"{'s' if repetitions != 1 else ''} of at least {min_time_s:g} s"
          + (f", pinned to CPU {cpus}" if cpus else ", unpinned"), flush=True)

    lock = acquire_lock(args.lock_file, args.lock_timeout)
    if lock is None:
        return _err(f"the benchmark lock {args.lock_file} is still held after {args.lock_timeout:g} s; "
                    "another benchmark is running")
    try:
        return _measure(args, bench_dir, plan, cpus, repetitions, min_time_s)
    finally:
        lock.close()


def micro_cpus(given: str | None, topo: cpulayout.Topology) -> tuple[str | None, str | None]:
    """(the CPU list to pin every binary to, None: unpinned; an error naming a list that cannot run)."""
    if given in ("", "none"):
        return None, None
    cpus = given or str(scenario.cpu_list(cpulayout.automatic(topo).server_cpus)[0])
    try:
        cpulayout.check_list(cpus, "--cpus", topo)
    except cpulayout.LayoutError as exc:
        return None, str(exc)
    return cpus, None


def pack_logs(run_dir: str) -> None:
    """The binaries' console output into the run's logs.tar.xz; a failure leaves them loose and
    says so (the run itself is complete either way)."""
    try:
        runlogs.pack(run_dir)
    except (OSError, ValueError) as exc:
        print(f"micro: warning: logs left loose, not archived: {exc}", file=sys.stderr)


def _bench_argv(path: str, json_path: str, cpus: str | None, repetitions: int, min_time_s: float,
                filter_re: str | None) -> list[str]:
    """One benchmark binary's command line: pinned with taskset when cpus, JSON to json_path."""
    argv = (["taskset", "-c", cpus] if cpus else []) + [
        path, f"--benchmark_out={json_path}", "--benchmark_out_format=json",
        f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time_s:g}",
        "--benchmark_color=false"]
    if repetitions > 1:
        argv.append("--benchmark_display_aggregates_only=true")  # the file keeps every repetition
    if filter_re:
        argv.append(f"--benchmark_filter={filter_re}")
    return argv


def _measure(args, bench_dir, plan, cpus, repetitions, min_time_s) -> int:
    out_parent = os.path.abspath(args.out)
    run_dir = resultio.new_run_dir(out_parent, "micro")
    writer = resultio.RunWriter(run_dir)
    build_dir = os.path.dirname(os.path.normpath(bench_dir))
    env = envinfo.collect(REPO_ROOT, build_dir, server_cpus=cpus, client_cpus=None)
    lib = benchmark_library_version()
    if lib:
        env.setdefault("versions", {})["benchmark"] = lib["upstream"]
        env.setdefault("versions_debian", {})["benchmark"] = lib["debian"]
    env["python_executable"] = sys.executable
    env["platform"] = platform.platform()
    micro_meta = {
        "bench_dir": repo_relative(bench_dir), "cpus": cpus, "repetitions": repetitions, "min_time_s": min_time_s,
        "filter": args.filter, "binaries": [],
    }
    writer.write_meta({
        "schema": resultio.SCHEMA_VERSION, "kind": "micro",
        "run_id": os.path.basename(run_dir), "scenario_name": "micro", "scenario_file": None,
        "scenario_text": None, "quick": bool(args.quick),
        "started_utc": resultio.utc_now(), "ended_utc": None, "interrupted": None,
        "env": env, "micro": micro_meta,
        "harness": {"command": ["cbench"] + sys.argv[1:], "host": "local"},
    })
    print(f"micro: run directory {repo_relative(run_dir)}", flush=True)
    failed = 0
    proc = None
    try:
        for path, names in plan:
            name = os.path.basename(path)
            json_rel = f"{name}.json"
            argv = _bench_argv(path, os.path.join(run_dir, json_rel), cpus, repetitions, min_time_s, args.filter)
            log_rel = os.path.join("logs", f"{name}.txt")
            started = resultio.utc_now()
            before = machine_sample()
            with open(os.path.join(run_dir, log_rel), "w", encoding="utf-8") as log:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir)
                status = proc.wait()
                proc = None
            after = machine_sample()
            dt = after["t"] - before["t"]
            entry = {"name": name, "file": json_rel, "log": log_rel, "command": argv, "benchmarks": len(names),
                     "exit_status": status, "duration_s": round(dt, 3), "started_utc": started,
                     "machine": machine_window(before, after, cpus)}
            errors = count_errors(os.path.join(run_dir, json_rel))
            if errors:
                entry["benchmark_errors"] = errors
            if status != 0 or not os.path.exists(os.path.join(run_dir, json_rel)):
                failed += 1
            micro_meta["binaries"].append(entry)
            writer.update_meta(micro=micro_meta)
            note = f"exit status {status}" if status != 0 else "ok"
            other = entry["machine"].get("other_on_pinned_cpu_util", entry["machine"].get("other_cpu_util"))
            if other is not None and other > DISTURBED_CPU:
                note += f", DISTURBED: other processes used {other * 100:.0f}% of a CPU"
            if errors:
                note += f", {len(errors)} benchmark(s) skipped with an error"
            print(f"micro: {name}: {len(names)} benchmarks, {dt:.1f} s, {note}", flush=True)
    except MicroInterrupted as exc:
        if proc is not None and proc.poll() is None:
            proc.kill()  # the binary we started (taskset execs it, so this pid is the binary)
            proc.wait()
        writer.update_meta(interrupted={"signal": signal.Signals(exc.signum).name, "utc": resultio.utc_now()})
        raise
    writer.update_meta(ended_utc=resultio.utc_now())
    pack_logs(run_dir)
    run = runload.load_run(run_dir)
    sys.stdout.write("\n" + microreport.tables_text(run, heading_level=2))
    print(f"\nmicro: wrote {repo_relative(run_dir)} (report: scripts/cbench report {repo_relative(run_dir)})", flush=True)
    if failed:
        print(f"micro: {failed} binary(ies) failed; see {repo_relative(runlogs.describe(run_dir))}", file=sys.stderr)
        return 1
    return 0


def machine_sample() -> dict:
    """The machine's CPU ticks (/proc/stat) and the CPU time of this process's waited-for children."""
    with open("/proc/stat", encoding="utf-8") as f:
        stat = procstat.parse_system_stat(f.read())
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"t": time.monotonic(), "stat": stat, "children_cpu_s": ru.ru_utime + ru.ru_stime}


def machine_window(before: dict, after: dict, cpus: str | None) -> dict:
    """What else ran while one binary did, as the sweep records it for a point (SCHEMA.md
    `machine`): busy fraction per CPU, the benchmark's own CPU time, and other processes' use,
    machine-wide and, when pinned to one CPU, on that CPU (the one that disturbs the figures)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = procstat.machine_window(before["stat"], after["stat"], ticks)
    wall = after["t"] - before["t"]
    bench_cpu = after["children_cpu_s"] - before["children_cpu_s"]
    out["bench_cpu_s"] = round(bench_cpu, 3)
    if wall > 0:
        out["other_cpu_s"] = round(max(0.0, out["busy_cpu_s"] - bench_cpu), 3)
        out["other_cpu_util"] = round(out["other_cpu_s"] / wall, 4)
        busy_pinned = out["cpu_busy"].get(cpus) if cpus and cpus.isdigit() else None
        if busy_pinned is not None:
            out["other_on_pinned_cpu_util"] = round(max(0.0, busy_pinned - bench_cpu / wall), 4)
    return out


def count_errors(json_path: str) -> list[str]:
    """Names of benchmarks that SkipWithError'ed in a Google Benchmark JSON file."""
    try:
        with open(json_path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return []
    return sorted({str(b.get("name")) for b in doc.get("benchmarks") or []
                   if isinstance(b, dict) and b.get("error_occurred")})
