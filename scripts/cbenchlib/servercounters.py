"""The server's mechanism counters (backends/server/counters.h) for one measured window.

cbench-server --counters-out PATH writes cumulative counts as JSON on SIGUSR1 and at exit. The
runner takes a snapshot just before and just after its measured window; the difference divided
by the window's requests is recorded per point as `derived.counters_per_req`, beside system calls
and context switches. Kept apart from runner.py so the hook there stays three lines. Also home to the other issue 14
server argument the runner adds: the scenario setting `response` (response_args).
"""
from __future__ import annotations

import json
import os
import signal
import time

SNAPSHOT_TIMEOUT_S = 2.0
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
            return cur["counters"]
        time.sleep(0.005)
    return None


def per_request(before: dict | None, after: dict | None, requests: int) -> dict | None:
    """Counts in the window per request ({name: float}), or None without both snapshots."""
    if before is None or after is None or requests <= 0:
        return None
    return {k: round((after[k] - before.get(k, 0)) / requests, 4) for k in sorted(after)}
