"""Deterministic costs of one server row: user instructions, system calls by type and context
switches per request, each by differencing two runs of a fixed number of requests.

Method. The server is started three times per request count (N1 and N2 > N1), each a fresh
process on port 0 that serves exactly N requests from `drive` (C keep-alive connections, one
request outstanding at a time, round robin: the same bytes in the same order every time) and is
then stopped with SIGINT:

- under `valgrind --tool=callgrind`: the process's total instructions (Ir, user space only,
  from start to exit);
- under `strace -f -c`: its system calls by name (every thread);
- plain, pinned with taskset: its context switches (voluntary + involuntary) from the rusage
  that wait4 returns for the reaped process, which counts every thread, exited ones included.

A per-request figure is (X(N2) - X(N1)) / (N2 - N1) (`format.costs.per_request`): start-up,
the first connection's accept and the shutdown are in both runs and cancel. What remains beside
the requests is what depends on wall time (a timer that fires while the server waits, a second
Date refresh): a few hundred instructions per second against millions per thousand requests.

Valgrind runs a multithreaded program one thread at a time (its big lock): the threaded models'
instruction counts are of the same code, with hand-offs serialised, so their spin loops and
lock contention may differ from a native run; counts still repeat within a fraction of a
percent. `--fair-sched=yes` makes that serialisation round robin.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

from ..format import costs as costs_format

READY_RE = re.compile(r"^cbench-server ready (.*)$", re.M)
READY_TIMEOUT_S = 120.0   # valgrind starts a C++ binary in a few seconds; a loaded machine takes longer
STOP_TIMEOUT_S = 60.0     # callgrind writes its output at exit: a second or two
IO_TIMEOUT_S = 30.0       # one request under valgrind takes milliseconds; 30 s means it is stuck
REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class CostsFailed(Exception):
    """A run that could not be measured; the message says why (and the log's tail)."""


def _read_response(sock: socket.socket, buf: bytearray) -> None:
    """Reads one whole response (headers and Content-Length body) from SOCK; leftover bytes stay in BUF."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", bytes(buf[:end]))
            need = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) >= need:
                if not buf.startswith(b"HTTP/1.1 200"):
                    raise CostsFailed(f"response is not 200: {bytes(buf[:40])!r}")
                del buf[:need]
                return
        chunk = sock.recv(65536)
        if not chunk:
            raise CostsFailed("server closed the connection before answering")
        buf += chunk


def drive(port: int, requests: int, connections: int = 1, path: str = "/") -> int:
    """Sends REQUESTS keep-alive GETs to 127.0.0.1:PORT over CONNECTIONS connections in turn,
    each answered before the next is sent; returns the number answered (all, or it raises)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) for _ in range(connections)]
    bufs = [bytearray() for _ in socks]
    data = REQUEST % path.encode()
    try:
        for i in range(requests):
            s = socks[i % connections]
            s.sendall(data)
            _read_response(s, bufs[i % connections])
    finally:
        for s in socks:
            s.close()
    return requests


def _tail(path: str, n: int = 600) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _await_ready(proc: subprocess.Popen, log_path: str) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        with open(log_path, errors="replace") as f:
            m = READY_RE.search(f.read())
        if m:
            return dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
        if proc.poll() is not None:
            raise CostsFailed(f"exited with status {proc.returncode} before it was ready: {_tail(log_path)}")
        if time.monotonic() > deadline:
            raise CostsFailed(f"no readiness line within {READY_TIMEOUT_S:g} s: {_tail(log_path)}")
        time.sleep(0.05)


def _reap(proc: subprocess.Popen) -> tuple[int, object]:
    """Waits for PROC (killing it after STOP_TIMEOUT_S); returns (status, rusage of the reaped process)."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def serve(wrapper: list[str], server_argv: list[str], requests: int, connections: int, log_path: str) -> dict:
    """Starts WRAPPER + SERVER_ARGV, drives REQUESTS requests, stops it with SIGINT; returns
    {"status", "ru_nvcsw", "ru_nivcsw", "pid"}. The server's own pid (from its readiness line)
    gets the signal, so a tracer in WRAPPER sees it exit."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(wrapper + server_argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        ready = _await_ready(proc, log_path)
        drive(int(ready["port"]), requests, connections)
        os.kill(int(ready.get("pid", proc.pid)), signal.SIGINT)
    except (CostsFailed, OSError, KeyError, ValueError) as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        _reap(proc)
        raise CostsFailed(str(exc)) from None
    status, ru = _reap(proc)
    if status not in (0, -signal.SIGINT, 128 + signal.SIGINT):
        raise CostsFailed(f"exited with status {status} after its requests: {_tail(log_path)}")
    return {"status": status, "ru_nvcsw": ru.ru_nvcsw, "ru_nivcsw": ru.ru_nivcsw}


def callgrind_run(server_argv, requests, connections, work: str, tag: str) -> int:
    """Total user-space instructions of one server process serving REQUESTS requests."""
    out = os.path.join(work, f"{tag}.callgrind")
    wrapper = ["valgrind", "--tool=callgrind", "--fair-sched=yes", f"--callgrind-out-file={out}"]
    serve(wrapper, server_argv, requests, connections, os.path.join(work, f"{tag}-callgrind.log"))
    with open(out, errors="replace") as f:
        ir = costs_format.parse_callgrind_totals(f.read())
    if ir is None:
        raise CostsFailed(f"{out}: no totals line")
    return ir


def strace_run(server_argv, requests, connections, work: str, tag: str) -> dict[str, int]:
    """{system call name: calls} of one server process (all threads) serving REQUESTS requests."""
    out = os.path.join(work, f"{tag}.strace")
    serve(["strace", "-f", "-c", "-o", out, "--"], server_argv, requests, connections,
          os.path.join(work, f"{tag}-strace.log"))
    with open(out, errors="replace") as f:
        return costs_format.parse_strace_summary(f.read())


def switches_run(server_argv, requests, connections, work: str, tag: str, cpus: str | None) -> int:
    """Context switches (voluntary + involuntary) of the reaped server process over its life."""
    wrapper = ["taskset", "-c", cpus] if cpus else []
    r = serve(wrapper, server_argv, requests, connections, os.path.join(work, f"{tag}-plain.log"))
    return r["ru_nvcsw"] + r["ru_nivcsw"]


def measure(row: dict, server_argv: list[str], counts: tuple[int, int], connections: int, work: str,
            cpus: str | None, repeat: bool) -> dict:
    """One costs record (format/costs.py) for ROW; a failed tool leaves its figures None with the reason."""
    n1, n2 = counts
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", costs_format.row_key(row))
    rec = costs_format.new_record(row, server_argv, counts, connections)
    try:
        ir = [callgrind_run(server_argv, n, connections, work, f"{tag}-n{n}") for n in counts]
        rec["instructions"] = ir
        if repeat:
            rec["instructions_repeat"] = [callgrind_run(server_argv, n, connections, work, f"{tag}-n{n}-again")
                                          for n in counts]
    except (CostsFailed, OSError) as exc:
        rec["failures"]["instructions"] = str(exc)
    try:
        rec["syscalls"] = [strace_run(server_argv, n, connections, work, f"{tag}-n{n}") for n in counts]
    except (CostsFailed, OSError) as exc:
        rec["failures"]["syscalls"] = str(exc)
    try:
        rec["ctx_switches"] = [switches_run(server_argv, n, connections, work, f"{tag}-n{n}", cpus) for n in counts]
    except (CostsFailed, OSError) as exc:
        rec["failures"]["ctx_switches"] = str(exc)
    return costs_format.derive(rec)
