"""`cbench breakdown`: where a request's server CPU goes, for a few models.

    scripts/cbench breakdown                          # io-uring, epoll-reactor, floor, floor-uring
    scripts/cbench breakdown --models io-uring,floor-uring --pipeline 16 --path /plaintext
    scripts/cbench breakdown -o out.json

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
from .common import (CONNECTIONS, DURATION_S, PIPELINE, REPETITIONS, THREADS, WRK_THREADS, alias,
                     write_output)

DEFAULT_MODELS = "io-uring,epoll-reactor,floor,floor-uring"


def add_arguments(p) -> None:
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    p.add_argument("--server-bin", default=os.path.join(REPO_ROOT, "build", "cbench-server"),
                   help="the cbench-server binary (default: build/cbench-server)")
    p.add_argument("--wrk-bin", default=shutil.which("wrk") or "wrk", help="the wrk binary (default: wrk on PATH)")
    p.add_argument("--threads", type=THREADS, default=1, help="server --threads (default 1)")
    p.add_argument("--wrk-threads", type=WRK_THREADS, default=2, help="wrk -t (default 2)")
    p.add_argument("--connections", type=CONNECTIONS, default=64, help="wrk -c (default 64)")
    p.add_argument("--pipeline", type=PIPELINE, default=1, help="requests per batch (default 1: no pipelining)")
    p.add_argument("--path", default="/", help="request path (default /)")
    p.add_argument("--duration", type=DURATION_S, default=5, help="seconds per run (default 5)")
    p.add_argument("--repetitions", type=REPETITIONS, default=1,
                   help="rounds over the models, interleaved (default 1)")
    p.add_argument("--server-cpus", default="0", help="CPU list the server is pinned to (default 0)")
    p.add_argument("--client-cpus", default="1", help="CPU list wrk is pinned to (default 1)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write every record to FILE as JSON")
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock (default: {benchlock.DEFAULT_PATH})")
    for old, dest in (("--server", "server_bin"), ("--wrk", "wrk_bin"), ("--lock", "lock_file"),
                      ("--json", "output"), ("--server-cpu", "server_cpus"), ("--client-cpu", "client_cpus")):
        alias(p, old, dest)


def run(args) -> int:
    lock = benchlock.acquire(args.lock_file, None, "breakdown", "cbench breakdown")
    records = []
    try:
        for rep in range(args.repetitions):
            for model in args.models.split(","):
                r = cpubreakdown.measure(args.server_bin, model, args.threads, args.wrk_bin, args.wrk_threads,
                                         args.connections, args.pipeline, args.duration, args.server_cpus,
                                         args.client_cpus, args.path)
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
    if args.output:
        return write_output("breakdown", args.output, json.dumps(records, indent=1))
    return 0
