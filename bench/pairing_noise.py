#!/usr/bin/python3
"""Pairing noise: how much two rows' server CPU per request differ when the rows run one after
the other (as every sweep block runs them) against when they run at the same time.

A diagnostic for the fixed-rate CPU metric's calibration (docs/statistics.md), not a scenario:
two cbench-server processes of one model (B optionally with --handicap-ns), both pinned to the
server CPUs, driven open loop by cbench-load on the client CPUs, GET PATH.

  sequential  A alone at RATE for DURATION, then B alone (fresh warm-up each), as a sweep block
  concurrent  A and B at the same time, each offered RATE / 2 by its own cbench-load
  interleaved A and B both running, loaded in turn in slices of --slice seconds (order ABBA, so a
              linear drift of the host's speed cancels) until each has had DURATION at RATE:
              the rows of a block cut finer, each server warm and idle while the other is loaded
  alternating the same in one window: A's and B's cbench-load start together (--start-at) with
              --duty 2:0:SLICE and 2:1:SLICE over twice DURATION, connections kept open; each
              server's CPU is read over the whole window (the sweep's mechanism for it)

The designs named by --designs alternate pair by pair, so each sees the same stretch of the host. Each pair gives
log(B / A) of server CPU microseconds per request (every thread's schedstat run time over the
window, so a model whose threads exit inside the window would be undercounted: use one whose
threads live as long as the process). Output: pairs.jsonl (one line per pair), summary.json
(per design: n, mean and standard deviation of the log ratio, its 95% t interval) and a table.

Contract: servers bind 127.0.0.1 on PORT and PORT + 1; the machine-wide benchmark lock is held
for the whole run; every process it starts is killed on exit.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import select
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

DESIGNS = ("sequential", "concurrent", "interleaved", "alternating")
READY_TIMEOUT_S = 5.0


def summarize(log_ratios: list[float]) -> dict:
    """n, mean, sample sd and the mean's 95% t interval of log ratios (None where n < 2): the
    project's paired interval (stats.paired_log_ratio), each pair a block."""
    from cbenchlib.analysis import stats
    n = len(log_ratios)
    ci = stats.paired_log_ratio({i: [math.exp(r)] for i, r in enumerate(log_ratios)}, {i: [1.0] for i in range(n)})
    if ci is None:
        return {"n": n, "mean": log_ratios[0] if n else None, "sd": None, "ci95": None}
    return {"n": n, "mean": math.log(ci.ratio), "sd": ci.log_sd, "ci95": [math.log(ci.lo), math.log(ci.hi)]}


def task_cpu_ns(pid: int) -> int:
    """Run time of every live thread of pid (ns, /proc/PID/task/*/schedstat): nanoseconds, where
    run/procstat's clock ticks (10 ms) would quantise a 3 s window at 30% busy to about 1%."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that exited between glob and open
    return total


class Server:
    def __init__(self, args, port: int, handicap_ns: int):
        argv = ["taskset", "-c", args.server_cpus, os.path.join(args.build, "cbench-server"),
                "--model", args.model, "--host", "127.0.0.1", "--port", str(port)]
        if handicap_ns:
            argv += ["--handicap-ns", str(handicap_ns)]
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""  # "cbench-server ready ... pid=PID"
        if "ready" not in line:
            self.stop()
            raise SystemExit(f"pairing_noise: cbench-server did not start: {line.strip() or 'no output'}")
        self.pid = int(line.rsplit("pid=", 1)[1])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_load(args, port: int, rate: float, duration_s: float, connections: int, extra=()):
    argv = ["taskset", "-c", args.client_cpus, os.path.join(args.build, "cbench-load"),
            "--connections", str(connections), "--rate", f"{rate:.1f}", "--duration", str(duration_s),
            "--carry-on", "--json", *extra, f"http://127.0.0.1:{port}{args.path}"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def cpu_us_per_request(s: Server, cpu_ns: int, requests: int) -> float:
    """A server's CPU microseconds per request over a window; exits when it answered nothing."""
    if requests <= 0:
        raise SystemExit(f"pairing_noise: no response from the server on port {s.port}")
    return cpu_ns / 1e3 / requests


def measure(args, servers: list[Server]) -> list[float]:
    """Server CPU us per request of each server, all loaded at once (rate split evenly)."""
    rate = args.rate / len(servers)
    conns = max(1, args.connections // len(servers))
    for p in [start_load(args, s.port, rate, args.warmup, conns) for s in servers]:
        p.communicate()
    before = [task_cpu_ns(s.pid) for s in servers]
    procs = [start_load(args, s.port, rate, args.duration, conns) for s in servers]
    outs = [p.communicate()[0] for p in procs]
    after = [task_cpu_ns(s.pid) for s in servers]
    return [cpu_us_per_request(s, a - b, json.loads(out)["requests"])
            for s, out, b, a in zip(servers, outs, before, after)]


def measure_interleaved(args, a: Server, b: Server) -> tuple[float, float]:
    """Server CPU us per request of A and B, each loaded alone in alternating slices (ABBA)."""
    for s in (a, b):
        start_load(args, s.port, args.rate, args.warmup, args.connections).communicate()
    cpu_ns = {a.port: 0, b.port: 0}
    requests = {a.port: 0, b.port: 0}
    slices = max(1, round(args.duration / args.slice))
    for k in range(slices):
        for s in ((a, b) if k % 2 == 0 else (b, a)):
            before = task_cpu_ns(s.pid)
            out = start_load(args, s.port, args.rate, args.duration / slices, args.connections).communicate()[0]
            cpu_ns[s.port] += task_cpu_ns(s.pid) - before
            requests[s.port] += json.loads(out)["requests"]
    return tuple(cpu_us_per_request(s, cpu_ns[s.port], requests[s.port]) for s in (a, b))


def measure_alternating(args, a: Server, b: Server) -> tuple[float, float]:
    """Server CPU us per request of A and B over one window in which their generators take turns
    (--duty 2:PHASE:SLICE from one --start-at), each server's CPU read over the whole window."""
    slice_ms = f"{args.slice * 1000:.0f}"

    def window(duration_s: float) -> list[tuple[subprocess.Popen, int]]:
        start_at = f"{time.time() + 0.3:.3f}"  # both processes up before the shared start
        return [start_load(args, s.port, args.rate, 2 * duration_s, args.connections,
                           ("--duty", f"2:{phase}:{slice_ms}", "--start-at", start_at))
                for phase, s in enumerate((a, b))]

    for p in window(args.warmup):
        p.communicate()
    before = [task_cpu_ns(s.pid) for s in (a, b)]
    outs = [p.communicate()[0] for p in window(args.duration)]
    after = [task_cpu_ns(s.pid) for s in (a, b)]
    return tuple(cpu_us_per_request(s, af - bf, json.loads(out)["requests"])
                 for s, out, bf, af in zip((a, b), outs, before, after))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="pull-loop")
    ap.add_argument("--path", default="/spin?us=10")
    ap.add_argument("--rate", type=float, default=19818.0, help="total offered req/s (default: the calibration's)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=14, help="pairs per design and handicap")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--slice", type=float, default=0.5, help="interleaved design: seconds per slice")
    ap.add_argument("--designs", default="sequential,concurrent", help=f"comma-separated, of {', '.join(DESIGNS)}")
    ap.add_argument("--handicaps-ns", default="0", help="comma-separated --handicap-ns of B (0: A/A)")
    ap.add_argument("--port", type=int, default=18401)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", required=True, help="directory for pairs.jsonl and summary.json")
    args = ap.parse_args(argv)
    try:
        handicaps = [int(h) for h in args.handicaps_ns.split(",")]
    except ValueError:
        ap.error(f"--handicaps-ns: not a list of integers: {args.handicaps_ns!r}")
    designs = args.designs.split(",")
    if any(d not in DESIGNS for d in designs):
        ap.error(f"--designs: each must be one of {', '.join(DESIGNS)}: {args.designs!r}")
    if args.pairs < 2 or args.duration <= 0 or args.rate <= 0 or args.slice <= 0:
        ap.error("--pairs must be at least 2, --duration, --rate and --slice positive")
    from cbenchlib.run import benchlock
    lock = benchlock.acquire(benchlock.DEFAULT_PATH, None, "pairing_noise", "bench/pairing_noise.py")
    os.makedirs(args.out, exist_ok=True)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    ratios: dict[str, list[float]] = {}
    with open(os.path.join(args.out, "pairs.jsonl"), "w") as out:
        for h in handicaps:
            for i in range(args.pairs):
                for design in designs:
                    servers = []  # stopped on every exit, a failed start of the second included
                    try:
                        servers.append(Server(args, args.port, 0))
                        servers.append(Server(args, args.port + 1, h))
                        a, b = servers
                        if design == "concurrent":
                            a_us, b_us = measure(args, [a, b])
                        elif design == "interleaved":
                            a_us, b_us = measure_interleaved(args, a, b)
                        elif design == "alternating":
                            a_us, b_us = measure_alternating(args, a, b)
                        else:
                            (a_us,), (b_us,) = measure(args, [a]), measure(args, [b])
                    finally:
                        for srv in servers:
                            srv.stop()
                    r = math.log(b_us / a_us)
                    ratios.setdefault(f"{design} handicap {h} ns", []).append(r)
                    out.write(json.dumps({"design": design, "handicap_ns": h, "pair": i, "a_cpu_us_per_req": round(a_us, 4),
                                          "b_cpu_us_per_req": round(b_us, 4), "log_ratio": round(r, 6),
                                          "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
                    out.flush()
                    print(f"{design:10s} handicap {h:5d} ns pair {i:2d}: A {a_us:7.2f} B {b_us:7.2f} us/req, log(B/A) {r:+.4f}", flush=True)
    summary = {"commit": commit, "cpu": cpu, "kernel": platform.release(), "args": vars(args),
               "designs": {k: summarize(v) for k, v in ratios.items()}}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n| design | n | mean log(B/A) | sd | 95% interval |\n|---|---|---|---|---|")
    for k, s in summary["designs"].items():
        print(f"| {k} | {s['n']} | {s['mean']:+.4f} | {s['sd']:.4f} | {s['ci95'][0]:+.4f} to {s['ci95'][1]:+.4f} |")
    lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
