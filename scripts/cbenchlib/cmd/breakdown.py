"""`cbench breakdown`: where a request's server CPU goes, for a few models.

    scripts/cbench breakdown                          # io-uring, epoll-reactor, floor, floor-uring
    scripts/cbench breakdown --models io-uring,floor-uring --pipeline 16 --path /plaintext
    scripts/cbench breakdown --json out.json

Holds the machine-wide benchmark lock for the whole run; repetitions are interleaved (model A,
B, C, D, then again), so a slow phase of a busy machine touches every model alike. The method is
in cbenchlib/cpubreakdown.py. Needs perf (linux-perf) and root or perf_event_paranoid <= 0.
"""
from __future__ import annotations

import json
import os
import shutil

from ..run import benchlock, cpubreakdown

from ..format.paths import REPO_ROOT

DEFAULT_MODELS = "io-uring,epoll-reactor,floor,floor-uring"


def add_arguments(p) -> None:
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    p.add_argument("--server", default=os.path.join(REPO_ROOT, "build", "cbench-server"))
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    p.add_argument("--threads", type=int, default=1, help="server --threads (default 1)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--path", default="/")
    p.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--json", help="also write every record to this file")
    p.add_argument("--lock", default=benchlock.DEFAULT_PATH)


def run(args) -> int:
    lock = benchlock.acquire(args.lock, None, "breakdown", "cbench breakdown")
    records = []
    try:
        for rep in range(args.repetitions):
            for model in args.models.split(","):
                r = cpubreakdown.measure(args.server, model, args.threads, args.wrk, args.wrk_threads,
                                         args.connections, args.pipeline, args.duration, args.server_cpu,
                                         args.client_cpu, args.path)
                r["repetition"] = rep
                records.append(r)
                print(f"breakdown: {model} rep {rep}: {r['req_per_s']:.0f} req/s, "
                      f"{r['server_cpu_us_per_req']:.2f} us CPU/req", flush=True)
    finally:
        lock.close()
    print(cpubreakdown.format_table(records))
    for r in records:
        print(f"{r['model']} rep {r['repetition']}: other kernel symbols {r['top_other_kernel'][:5]}; "
              f"other processes on the server CPU (samples) {r['other_on_cpu_samples']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0
