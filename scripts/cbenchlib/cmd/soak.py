"""`cbench soak`: run each model for a set time at saturation with connection churn, sample its
RSS, threads and open descriptors every second, and judge growth after the warm-up.

One model at a time (run/soak.py): cbench-server started as the sweep starts it, cbench-load
saturating it beside the churn client (keep-alive connections with a malformed request in every
hundred, connections closed after each request, requests abandoned halfway, slow readers), a
sample a second, then the load stopped and the descriptors counted again. analysis/soak.py
judges; the exit status is 1 when any model grows, dies or stops answering.

The run directory (default results/soak/<UTC time>-soak/): meta.json (the settings, the
environment as a sweep records it, and each model's verdict), samples.jsonl (every sample), summary.md (the table printed), logs/.
The reference soak is `cbench soak --duration-s 600` (the default); `make test` runs `--short`.
"""
from __future__ import annotations

import os
import sys

from . import common
from ..analysis import soak as judging
from ..format import resultio, serverlist
from ..format.paths import REPO_ROOT
from ..run import benchlock, envinfo
from ..run import soak as soakrun
from ..run.localhost import LocalHost
from ..render import soakreport

DEFAULT_OUT = "results/soak"
DEFAULT_SERVER = "build/cbench-server"
REFERENCE_DURATION_S = 600.0
WARMUP_SHARE = 0.2          # default warm-up: the first fifth of the soak, at most MAX_WARMUP_S
MAX_WARMUP_S = 60.0
# --short, the soak of `make test` (ctest harness_soak): every model within about 3 minutes so CI
# stays under its budget. Half the time is warm-up: a bounded model's 17 threads each grow their
# malloc arena on first use, which takes several seconds to settle under the soak's load.
SHORT_DURATION_S = 12.0
SHORT_WARMUP_S = 6.0


def add_arguments(p) -> None:
    p.add_argument("--models", default="all",
                   help="comma-separated models, or 'all' (default: every model but the instruments)")
    p.add_argument("--duration-s", type=float,
                   help=f"loaded seconds per model, warm-up included (default {REFERENCE_DURATION_S:g}; "
                        f"--short: {SHORT_DURATION_S:g})")
    p.add_argument("--short", action="store_true",
                   help=f"the short soak of `make test`: {SHORT_DURATION_S:g} s per model, "
                        f"{SHORT_WARMUP_S:g} s of it warm-up")
    p.add_argument("--warmup-s", type=float,
                   help=f"seconds of the load not judged (default {WARMUP_SHARE:g} of the duration, "
                        f"at most {MAX_WARMUP_S:g})")
    p.add_argument("--threads", type=int, default=2,
                   help="the server's --threads (a bounded model gets enough for the soak's connections)")
    p.add_argument("--sample-s", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"parent of the run directory (default {DEFAULT_OUT})")
    p.add_argument("--server-bin", default=DEFAULT_SERVER, help=f"cbench-server (default {DEFAULT_SERVER})")
    p.add_argument("--load-bin",
                   help="cbench-load for saturation (default: beside --server-bin; 'none': churn only)")
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock (default: {benchlock.DEFAULT_PATH})")
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up if the lock is still held after S seconds (default: wait)")


def select_models(known: dict, wanted: str) -> tuple[list, str | None]:
    """(ModelInfo list, error): 'all' is every model without the instrument trait."""
    if wanted == "all":
        return [m for m in known.values() if serverlist.INSTRUMENT not in m.traits], None
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        return [], f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}"
    return [known[n] for n in names], None


def _load_bin(args) -> str | None:
    if args.load_bin == "none":
        return None
    path = args.load_bin or os.path.join(os.path.dirname(args.server_bin), "cbench-load")
    return path if os.access(path, os.X_OK) else None


def run(args) -> int:
    try:
        known = serverlist.query(args.server_bin)
    except serverlist.ServerListError as exc:
        return common.err("soak", str(exc))
    models, problem = select_models(known, args.models)
    if problem:
        return common.err("soak", problem)
    if args.duration_s is None:
        args.duration_s = SHORT_DURATION_S if args.short else REFERENCE_DURATION_S
    warmup_s = args.warmup_s
    if warmup_s is None:
        warmup_s = SHORT_WARMUP_S if args.short else min(MAX_WARMUP_S, WARMUP_SHARE * args.duration_s)
    if not 0 <= warmup_s < args.duration_s or args.sample_s <= 0:
        return common.err("soak", "need 0 <= --warmup-s < --duration-s and --sample-s > 0")
    lock = benchlock.acquire(args.lock_file, args.lock_timeout, "soak", "cbench soak")
    if lock is None:
        return common.err("soak", f"the benchmark lock {args.lock_file} is still held")
    try:
        return _soak_all(args, models, warmup_s)
    finally:
        lock.close()


def _soak_all(args, models: list, warmup_s: float) -> int:
    run_dir = resultio.new_run_dir(args.out, "soak")
    writer = resultio.RunWriter(run_dir)
    load_bin = _load_bin(args)
    meta = {"schema": resultio.SCHEMA_VERSION, "kind": "soak", "run_id": os.path.basename(run_dir),
            "started": resultio.utc_now(), "finished": None,
            # the commit and machine, so that a soak can join a reference set (one commit, one machine)
            "env": envinfo.collect(REPO_ROOT, os.path.dirname(os.path.abspath(args.server_bin)), None, None),
            "soak": {"duration_s": args.duration_s, "warmup_s": warmup_s, "sample_s": args.sample_s,
                     "threads": args.threads, "server_bin": common.repo_relative(os.path.abspath(args.server_bin)),
                     "load_bin": load_bin and common.repo_relative(os.path.abspath(load_bin)),
                     "churn_roles": list(soakrun.CHURN_ROLES), "load_connections": soakrun.LOAD_CONNECTIONS,
                     "bounds": {k: {"per_s": b.per_s, "step": b.step, "unit": b.unit, "reason": b.reason}
                                for k, b in judging.BOUNDS.items()},
                     "fd_tolerance": judging.FD_TOLERANCE},
            "models": []}
    writer.write_meta(meta)
    print(f"soak: run directory {common.repo_relative(run_dir)}; {len(models)} models x "
          f"{args.duration_s:g} s (warm-up {warmup_s:g} s)", flush=True)
    host, log, results = LocalHost(), soakrun.SampleLog(run_dir), []
    for info in models:
        plan = soakrun.SoakPlan(server_bin=args.server_bin, load_bin=load_bin, model=info.name,
                                bounded=serverlist.BOUNDED in info.traits, threads=args.threads,
                                duration_s=args.duration_s, sample_s=args.sample_s)
        out = soakrun.soak_model(plan, host, writer.logs_dir, log)
        verdict = judging.judge(info.name, out.samples, warmup_s, out.died, out.answered_after,
                                out.churn.get("errors", 0), out.churn.get("requests_ok", 0))
        results.append((verdict, out.churn, out.load))
        meta["models"].append({**verdict.to_json(), "argv": out.argv, "churn": out.churn, "load": out.load,
                               "died": out.died, "answered_after": out.answered_after,
                               "exit_status": out.exit_status})
        writer.update_meta(models=meta["models"])
        status = "ok" if verdict.ok else "FAIL: " + "; ".join(verdict.reasons)
        if verdict.undecided:
            status += " (" + "; ".join(verdict.undecided) + ")"
        print(f"soak: {info.name}: {status}", flush=True)
    text = soakreport.summary(results, args.duration_s, warmup_s)
    with open(os.path.join(run_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    writer.update_meta(finished=resultio.utc_now())
    print("\n" + text, flush=True)
    sys.stdout.flush()
    return 0 if all(v.ok for v, _, _ in results) else 1
