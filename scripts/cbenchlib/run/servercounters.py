"""The server's mechanism counters (backends/stats/counters.h) for one measured window.

cbench-server --counters-out PATH writes cumulative counts as JSON on SIGUSR1 and at exit. The
runner takes a snapshot just before and just after its measured window; the difference divided
by the window's requests is recorded per point as `derived.counters_per_req`, beside system calls
and context switches. Kept apart from runner.py so the hook there stays three lines.

Cluster mode (backends/server/cluster.h): each of the N workers writes its own file,
PATH.w<slot>, and the supervisor forwards SIGUSR1 to them. snapshot_cluster waits for all N
files to be fresh; cluster_window sums the workers' windows into `derived.counters_per_req` and
keeps each worker's counts beside its CPU figures in `server.cluster.workers[*].counters`. The
sum is left out (None) unless every slot has both snapshots from one pid: a worker missing or
restarted within the window would make the sum an undercount that looks like a measurement. Also home to the other
server argument the runner adds: the scenario setting `response` (response_args).

The process's own getrusage(RUSAGE_SELF) rides in each snapshot (counters.h: the whole thread
group, threads that exited included) and is kept under RUSAGE_KEY beside the counters;
rusage_window turns two snapshots into `server.rusage` (CPU seconds, context switches, page
faults over the window; cluster mode: summed over the workers, the supervisor left out), which
derive() prefers to the /proc sample's sum over live threads. Peers write no counters and keep
the /proc figures, but the Ruby replicas that declare `counters` in PEERS (servers/ruby/replica.rb:
the same file, without rusage).
"""
from __future__ import annotations

import json
import os
import signal
import time

SNAPSHOT_TIMEOUT_S = 2.0
# The key a snapshot's getrusage object is kept under, beside the counter names (never a counter).
RUSAGE_KEY = "rusage"
_HELP_CACHE: dict[str, str] = {}


def _usage(server_bin: str) -> str:
    """The binary's --help text, once per binary (an older build, e.g. a regress baseline, may
    predate --counters-out or --response: it then gets neither)."""
    if server_bin not in _HELP_CACHE:
        import subprocess
        try:
            _HELP_CACHE[server_bin] = subprocess.run([server_bin, "--help"], capture_output=True, text=True,
                                                     timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            _HELP_CACHE[server_bin] = ""
    return _HELP_CACHE[server_bin]


def supported_args(server_bin: str, argv: list[str]) -> list[str]:
    """argv (flag, value pairs) without the flags server_bin's usage does not name."""
    usage = _usage(server_bin)
    out = []
    for i in range(0, len(argv), 2):
        if argv[i] in usage:
            out += argv[i:i + 2]
    return out


def server_args(logs_dir: str, tag: str) -> tuple[list[str], str]:
    """Arguments that make cbench-server write its counters, and the file they go to."""
    path = os.path.join(logs_dir, f"{tag}-counters.json")
    return ["--counters-out", path], path


def response_args(settings) -> list[str]:
    """The scenario setting `response` as cbench-server arguments (none for the default)."""
    style = getattr(settings, "response", "standard")
    return [] if style == "standard" else ["--response", style]


def _with_rusage(snap: dict) -> dict:
    """A snapshot file's counters, with its rusage object (if any) under RUSAGE_KEY."""
    out = dict(snap["counters"])
    if isinstance(snap.get("rusage"), dict):
        out[RUSAGE_KEY] = snap["rusage"]
    return out


def read(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def snapshot(pid: int, path: str, timeout_s: float = SNAPSHOT_TIMEOUT_S) -> dict | None:
    """Asks the server (SIGUSR1) for a fresh snapshot and returns its counters, or None if none
    newer than the last arrived in time (a server without counters, or one that exited)."""
    old = read(path)
    old_k = old["snapshot"] if old else 0
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cur = read(path)
        if cur and cur.get("snapshot", 0) > old_k:
            return _with_rusage(cur)
        time.sleep(0.005)
    return None


def worker_paths(path: str, processes: int) -> list[str]:
    """The per-worker counters files of a cluster server (cluster.h: PATH.w<slot>)."""
    return [f"{path}.w{slot}" for slot in range(processes)]


def snapshot_cluster(pid: int, path: str, processes: int,
                     timeout_s: float = SNAPSHOT_TIMEOUT_S) -> list[dict | None] | None:
    """Asks the supervisor (SIGUSR1, forwarded to every worker) for fresh snapshots; returns one
    entry per slot, {"pid", "counters"} or None where no fresh snapshot arrived in time. A file is
    fresh when its snapshot number grew or its pid changed (a restarted worker counts afresh)."""
    paths = worker_paths(path, processes)
    old = [read(p) for p in paths]
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return None
    out: list[dict | None] = [None] * processes
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(o is None for o in out):
        for i, p in enumerate(paths):
            if out[i] is not None:
                continue
            cur = read(p)
            if not cur:
                continue
            o = old[i]
            if o is None or cur.get("pid") != o.get("pid") or cur.get("snapshot", 0) > o.get("snapshot", 0):
                out[i] = {"pid": cur.get("pid"), "counters": _with_rusage(cur)}
        time.sleep(0.005)
    return out


def cluster_window(before: list[dict | None] | None, after: list[dict | None] | None,
                   requests: int) -> tuple[dict | None, dict[int, dict]]:
    """(summed counts per request or None, {worker pid: its counts in the window}) for two
    snapshot_cluster results. Per-worker counts are given for every slot with both snapshots
    from one pid; the sum only when every slot has them (module docstring)."""
    if not before or not after or len(before) != len(after):
        return None, {}
    per_worker: dict[int, dict] = {}
    for b, a in zip(before, after):
        if b is None or a is None or b.get("pid") != a.get("pid"):
            continue
        per_worker[a["pid"]] = {k: a["counters"][k] - b["counters"].get(k, 0) for k in sorted(a["counters"])
                                if k != RUSAGE_KEY}
    if len(per_worker) != len(after) or requests <= 0:
        return None, per_worker
    names = sorted({k for w in per_worker.values() for k in w})
    total = {k: sum(w.get(k, 0) for w in per_worker.values()) for k in names}
    return {k: round(v / requests, 4) for k, v in total.items()}, per_worker


def attach_workers(cluster: dict | None, per_worker: dict[int, dict]) -> None:
    """Puts each worker's counts beside its CPU figures (server.cluster.workers[*].counters;
    None for a worker whose counters are not in the window)."""
    if not cluster:
        return
    for w in cluster.get("workers", []):
        w["counters"] = per_worker.get(w["pid"])


def per_request(before: dict | None, after: dict | None, requests: int) -> dict | None:
    """Counts in the window per request ({name: float}), or None without both snapshots."""
    if before is None or after is None or requests <= 0:
        return None
    return {k: round((after[k] - before.get(k, 0)) / requests, 4) for k in sorted(after) if k != RUSAGE_KEY}


def _rusage_delta(before: dict | None, after: dict | None) -> dict | None:
    """after's rusage minus before's ({field: count}), or None unless both snapshots carry one."""
    b = (before or {}).get(RUSAGE_KEY)
    a = (after or {}).get(RUSAGE_KEY)
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    return {k: a[k] - b.get(k, 0) for k in a}


def rusage_window(before, after) -> dict | None:
    """`server.rusage` for two snapshots (snapshot's dicts, or snapshot_cluster's lists): cpu_user_s,
    cpu_sys_s, ctx_voluntary, ctx_involuntary, minflt, majflt over the window and the processes
    summed. None unless every process has both snapshots with rusage (and, in cluster mode, from
    one pid): a partial sum would be an undercount that looks like a measurement."""
    if isinstance(before, list) or isinstance(after, list):
        if not before or not after or len(before) != len(after):
            return None
        deltas = []
        for b, a in zip(before, after):
            if b is None or a is None or b.get("pid") != a.get("pid"):
                return None
            deltas.append(_rusage_delta(b["counters"], a["counters"]))
    else:
        deltas = [_rusage_delta(before, after)]
    if any(d is None for d in deltas):
        return None

    def total(key):
        return sum(d.get(key, 0) for d in deltas)

    return {"cpu_user_s": round(total("utime_us") / 1e6, 6), "cpu_sys_s": round(total("stime_us") / 1e6, 6),
            "ctx_voluntary": total("nvcsw"), "ctx_involuntary": total("nivcsw"),
            "minflt": total("minflt"), "majflt": total("majflt"), "processes": len(deltas)}
