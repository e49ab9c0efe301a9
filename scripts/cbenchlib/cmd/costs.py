"""`cbench costs`: deterministic costs per request for every model, and the cost account.

    scripts/cbench costs                                  # every model in --list at --threads 1
    scripts/cbench costs --models epoll-reactor,floor --repeat
    scripts/cbench costs --rows-from results/runs/<id>    # also that run's model and instrument rows
    scripts/cbench costs --account results/runs/<costs id> --cpu-from results/runs/<id>-connections \
        --micro results/runs/<id>-micro [--load '-t1 -c1'] [-o account.md]

Measuring writes results/runs/<UTC time>-costs/ (format/costs.py owns its files): per row, user
instructions per request (callgrind), system calls per request by type (strace -f -c) and context
switches per request (rusage of the reaped server), each the difference of two fresh servers
driven through --requests N1,N2 one-connection keep-alive requests (run/costs.py says how and
what does not cancel). Counts, not timings; the run still takes the machine-wide benchmark lock,
because valgrind keeps a CPU busy and would disturb a timing run beside it. With --cpu-from and
--micro it also writes account.md in the run directory and prints it.

--account prints the cost account of an existing costs run: each row's server CPU per request at
--load in --cpu-from (the median over its repetitions) = instructions x a fitted price + system
calls x micro prices + switches x a micro price, with the residual (analysis/costaccount.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ..analysis import costaccount, micro, runload
from ..format import costs as costs_format
from ..format import resultio, runlogs, serverlist
from ..format.paths import REPO_ROOT
from ..render import costaccount as account_text
from ..run import benchlock, costs, envinfo
from .common import CONNECTIONS, THREADS, err, repo_relative, write_output

DEFAULT_LOAD = "-t1 -c1"  # the load the counts are taken at: one connection, one request at a time


def add_arguments(p) -> None:
    p.add_argument("--server-bin", default=os.path.join(REPO_ROOT, "build", "cbench-server"),
                   help="the cbench-server binary (default: build/cbench-server)")
    p.add_argument("--models", metavar="LIST", help="comma-separated models (default: every one in --list)")
    p.add_argument("--threads", type=THREADS, default=1, help="server --threads for --models (default 1)")
    p.add_argument("--rows-from", metavar="RUN", help="also measure the model and instrument rows of this run")
    p.add_argument("--requests", default=",".join(map(str, costs_format.DEFAULT_REQUESTS)), metavar="N1,N2",
                   help="the two request counts differenced (default %(default)s)")
    p.add_argument("--connections", type=CONNECTIONS, default=1, help="keep-alive connections, used in turn (default 1)")
    p.add_argument("--repeat", action="store_true", help="count instructions twice, to show their repeatability")
    p.add_argument("--cpus", default="0", help="CPU list of the plain run that counts switches (default 0)")
    p.add_argument("--out", metavar="DIR", default=os.path.join(REPO_ROOT, "results", "runs"),
                   help="parent of run directories (default: results/runs)")
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock (default: {benchlock.DEFAULT_PATH})")
    p.add_argument("--account", metavar="COSTS_RUN", help="print the cost account of this costs run; measure nothing")
    p.add_argument("--cpu-from", metavar="RUN", help="the sweep run whose server CPU per request is accounted for")
    p.add_argument("--micro", metavar="RUN", help="the `cbench micro` run that prices system calls and switches")
    p.add_argument("--load", default=DEFAULT_LOAD, help=f"the load column of --cpu-from (default {DEFAULT_LOAD!r})")
    p.add_argument("--counts-from-points", action="store_true",
                   help="system calls and switches per request from --cpu-from's points at --load (the calls split by"
                        " type as the costs run found them), for a load other than the costs run's one connection")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the text to FILE")


def _err(msg: str) -> int:
    return err("costs", msg)


def rows_to_measure(args) -> list[dict]:
    """The rows to measure (also what reproduce-all counts for its estimate): --models at --threads, then --rows-from's model and instrument rows (by key, once)."""
    if args.models:
        names = args.models.split(",")
    else:
        names = sorted(serverlist.query(args.server_bin))
    rows = [{"model": m, "threads": args.threads, "kind": "model"} for m in names]
    if args.rows_from:
        run = runload.load_run(_run_dir(args.rows_from))
        for p in run.points:
            r = p["row"]
            if r.get("kind") in ("model", "instrument") and not r.get("binary") and not r.get("processes"):
                rows.append({k: r.get(k) for k in ("key", "kind", "model", "threads", "queues", "gvl", "backend",
                                                   "extra_args")})
    seen, out = set(), []
    for r in rows:
        k = costs_format.row_key(r)
        if k not in seen:
            seen.add(k)
            out.append(dict(r, key=k))
    return out


def _tool_version(argv: list[str]) -> str | None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None


def _run_dir(arg: str) -> str:
    """A run directory: a path (with a directory part) only as given, else a run id under results/runs."""
    if os.sep in arg and not os.path.isdir(arg):
        raise runload.RunError(f"{arg}: no such run directory")
    return runload.resolve_run_dir(arg)


def _account(records: list[dict], cpu_run: str, micro_run: str, load: str,
             counts_from_points: bool = False) -> tuple[list, object, str]:
    run = runload.load_run(_run_dir(cpu_run))
    measured = costaccount.measured_cpu(run.points, load)
    if not measured:
        raise ValueError(f"{cpu_run} has no ok point at load {load!r}")
    mdir = _run_dir(micro_run)
    with open(os.path.join(mdir, "meta.json"), encoding="utf-8") as f:
        mmeta = json.load(f)
    ns = {b.run_name: b.ns_per_op for s in micro.load_subjects(mdir, mmeta) for b in s.benches}
    prices = costaccount.micro_prices(ns)
    counts = costaccount.measured_counts(run.points, load) if counts_from_points else None
    rows, prices = costaccount.account(records, measured, prices, counts)
    source = (f"{run.run_id} at {load}, priced by {os.path.basename(mdir)}"
              + (f"; system calls and switches from {run.run_id}'s points" if counts_from_points else ""))
    return rows, prices, source


def run(args) -> int:
    if args.account:
        return _print_account(args)
    try:
        counts = tuple(int(x) for x in args.requests.split(","))
        costs_format.per_request(counts, (0, 0))
        if len(counts) != 2 or counts[0] < 1:
            raise ValueError("two positive counts")
    except ValueError as exc:
        return _err(f"--requests {args.requests!r}: {exc}")
    if (args.cpu_from is None) != (args.micro is None):
        return _err("--cpu-from and --micro go together (the account needs both)")
    for tool in ("valgrind", "strace", "taskset"):
        if _tool_version([tool, "--version"]) is None and tool != "taskset":
            return _err(f"{tool} not found: install it (scripts/deps.sh does)")
    try:
        rows = rows_to_measure(args)
    except (OSError, runload.RunError, ValueError) as exc:
        return _err(str(exc))
    lock = benchlock.acquire(args.lock_file, None, "costs", "cbench costs")
    try:
        return _measure(args, rows, counts)
    finally:
        lock.close()


def _measure(args, rows: list[dict], counts: tuple[int, int]) -> int:
    run_dir = resultio.new_run_dir(os.path.abspath(args.out), "costs")
    writer = resultio.RunWriter(run_dir)
    env = envinfo.collect(REPO_ROOT, os.path.dirname(args.server_bin), server_cpus=args.cpus, client_cpus=None)
    meta = {"schema": resultio.SCHEMA_VERSION, "kind": costs_format.KIND, "run_id": os.path.basename(run_dir),
            "started_utc": resultio.utc_now(), "ended_utc": None, "env": env,
            "costs": {"requests": list(counts), "connections": args.connections, "cpus": args.cpus,
                      "rows_from": args.rows_from, "repeat": bool(args.repeat),
                      "valgrind": _tool_version(["valgrind", "--version"]),
                      "strace": _tool_version(["strace", "-V"])},
            "harness": {"command": ["cbench"] + sys.argv[1:], "host": "local"}}
    writer.write_meta(meta)
    print(f"costs: {len(rows)} rows, {counts[0]} and {counts[1]} requests each; run directory "
          f"{repo_relative(run_dir)}", flush=True)
    records = []
    for row in rows:
        argv = costs_format.server_argv(args.server_bin, row)
        rec = costs.measure(row, argv, counts, args.connections, writer.logs_dir, args.cpus, args.repeat)
        records.append(rec)
        with open(os.path.join(run_dir, costs_format.FILE), "w", encoding="utf-8") as f:
            f.write(costs_format.dump(records))
        d = rec["derived"]
        print(f"costs: {row['key']}: {d['instructions_per_req']} instructions, {d['syscalls_per_req']} syscalls, "
              f"{d['ctx_switches_per_req']} switches per request"
              + (f"; failed: {rec['failures']}" if rec["failures"] else ""), flush=True)
    writer.update_meta(ended_utc=resultio.utc_now())
    _remove_dumps(writer.logs_dir)
    try:
        runlogs.pack(run_dir)
    except (OSError, ValueError) as exc:
        print(f"costs: warning: logs left loose, not archived: {exc}", file=sys.stderr)
    text = account_text.report(records, None, None)
    if args.cpu_from:
        try:
            lines, prices, source = _account(records, args.cpu_from, args.micro, args.load,
                                             args.counts_from_points)
        except (OSError, ValueError, KeyError, runload.RunError) as exc:
            print(f"cbench costs: no account: {exc}", file=sys.stderr)
            lines, prices, source = None, None, ""
        text = account_text.report(records, lines, prices, source)
        with open(os.path.join(run_dir, "account.md"), "w", encoding="utf-8") as f:
            f.write(text)
    sys.stdout.write("\n" + text)
    print(f"\ncosts: wrote {repo_relative(run_dir)}", flush=True)
    if args.output:
        return write_output("costs", args.output, text)
    return 1 if any(r["failures"] for r in records) and len(records) == sum(bool(r["failures"]) for r in records) else 0


def _remove_dumps(logs_dir: str) -> None:
    """The callgrind and strace outputs are large and their totals are in costs.jsonl: the logs keep
    the servers' console output only."""
    for name in os.listdir(logs_dir):
        if name.endswith((".callgrind", ".strace")):
            os.remove(os.path.join(logs_dir, name))


def _print_account(args) -> int:
    if not (args.cpu_from and args.micro):
        return _err("--account needs --cpu-from RUN and --micro RUN")
    try:
        _meta, records = costs_format.read_run(_run_dir(args.account))
        lines, prices, source = _account(records, args.cpu_from, args.micro, args.load, args.counts_from_points)
    except (OSError, ValueError, KeyError, runload.RunError) as exc:
        print(f"cbench costs: {exc}", file=sys.stderr)
        return 1
    text = account_text.report(records, lines, prices, source)
    sys.stdout.write(text)
    if args.output:
        return write_output("costs", args.output, text)
    return 0
