"""Deterministic costs of one server row: user instructions, system calls by type and context
switches per request, each by differencing two runs of a fixed number of requests.

Method. The server is started three times per request count (N1 and N2 > N1), each a fresh
process on port 0 that serves exactly N requests from `drive` (C keep-alive connections, one
request outstanding at a time, round robin: the same bytes in the same order every time):

- under `valgrind --tool=callgrind`: the process's instructions (Ir, user space only) from its
  start to a `callgrind_control -d` dump right after the last response (then SIGKILL);
- under `strace -f -c`: its system calls by name (every thread), start to exit on SIGINT;
- plain, pinned with taskset: its context switches (voluntary + involuntary) from the rusage
  that wait4 returns for the reaped process (SIGINT), which counts every thread, exited ones
  included.

A per-request figure is (X(N2) - X(N1)) / (N2 - N1) (`format.costs.per_request`): start-up,
the first connection's accept and the stop are in both runs and cancel. What remains beside the
requests is what depends on wall time or scheduling: a timer that fires while the server waits
(a few hundred instructions a second against millions per thousand requests), and the
connections that nudge a loop waiting for events so that it reads the dump request.

Valgrind runs a multithreaded program one thread at a time (its big lock; `--fair-sched=yes`
hands it round robin): the threaded models' counts are of the same code with every hand-off
serialised, so how often a thread finds work already queued, spins or sleeps depends on
valgrind's scheduling, not the native one, and their counts repeat less well (the record's
repeat_diff_pct says how well). Single-threaded models repeat within a few instructions.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ..format import costs as costs_format

READY_RE = re.compile(r"^cbench-server ready (.*)$", re.M)
READY_TIMEOUT_S = 120.0   # valgrind starts a C++ binary in a few seconds; a loaded machine takes longer
STOP_TIMEOUT_S = 30.0     # callgrind writes its output in a second or two; 30 s means it is stuck
NUDGE_AFTER_S = 2.0       # a server that has not exited 2 s after SIGINT is waiting for a completion
POLL_S = 0.02            # how often a wait for callgrind_control looks again: most dumps take ~0.1 s
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


def _nudge(port: int) -> None:
    """Opens and closes one connection: a completion that wakes a loop valgrind keeps blocked."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        pass


def _reap(proc: subprocess.Popen, port: int | None = None) -> tuple[int, object]:
    """Waits for PROC (killing it after STOP_TIMEOUT_S); returns (status, rusage of the reaped
    process). Every NUDGE_AFTER_S without an exit, one connection to PORT (accepted and closed,
    after the requests): a loop that waits for events and checks for a stop only when woken."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    next_nudge = time.monotonic() + NUDGE_AFTER_S
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru
        now = time.monotonic()
        if now > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            deadline = float("inf")
        elif port and now > next_nudge:
            _nudge(port)
            next_nudge = now + NUDGE_AFTER_S
        time.sleep(0.05)


def serve(wrapper: list[str], server_argv: list[str], requests: int, connections: int, log_path: str,
          after=None) -> dict:
    """Starts WRAPPER + SERVER_ARGV, drives REQUESTS requests, calls AFTER(pid, port) if given, then
    stops it with SIGINT; returns {"status", "ru_nvcsw", "ru_nivcsw"}. The server's own pid (from
    its readiness line) gets the signal, so a tracer in WRAPPER sees it exit. With AFTER, the exit
    status is not judged (AFTER has taken what it needs)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(wrapper + server_argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        ready = _await_ready(proc, log_path)
        port, pid = int(ready["port"]), int(ready.get("pid", proc.pid))
        drive(port, requests, connections)
        if after:
            after(pid, port)
            # What AFTER took is all that is needed, and valgrind 3.19 can keep an io_uring loop
            # from seeing SIGINT (its lock is held through io_uring_enter): no orderly stop.
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGINT)
        status, ru = _reap(proc, port)
    except BaseException as exc:  # a failure, or Ctrl-C: the server is ours to stop
        os.killpg(proc.pid, signal.SIGKILL)
        _reap(proc)
        if isinstance(exc, (CostsFailed, OSError, KeyError, ValueError)):
            raise CostsFailed(str(exc)) from None
        raise
    if after is None and status not in (0, -signal.SIGINT, 128 + signal.SIGINT):
        raise CostsFailed(f"exited with status {status} after its requests: {_tail(log_path)}")
    return {"status": status, "ru_nvcsw": ru.ru_nvcsw, "ru_nivcsw": ru.ru_nivcsw}


def _callgrind_dump(pid: int, port: int) -> None:
    """`callgrind_control -d PID`: callgrind writes its counts so far to OUT.1 (then OUT.2, ...)."""
    _callgrind_control(["-d"], pid, port)


def _callgrind_control(flags: list[str], pid: int, port: int) -> None:
    """`callgrind_control FLAGS PID`, waited for. Valgrind reads the request only when a thread
    runs, so a connection nudges a loop that waits for events."""
    what = " ".join(["callgrind_control"] + flags)
    proc = subprocess.Popen(["callgrind_control"] + flags + [str(pid)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    next_nudge = time.monotonic() + NUDGE_AFTER_S / 4
    while proc.poll() is None:
        now = time.monotonic()
        if now > deadline:
            proc.kill()
            proc.wait()
            raise CostsFailed(f"{what} did not return")
        if now > next_nudge:
            _nudge(port)
            next_nudge = now + NUDGE_AFTER_S / 4
        time.sleep(POLL_S)
    if proc.returncode != 0:
        raise CostsFailed(f"{what}: {proc.stdout.read().strip()[:200]}")


def callgrind_run(server_argv, requests, connections, work: str, tag: str) -> int:
    """User-space instructions of one server process from its start to just after REQUESTS
    requests (a callgrind dump then: shutdown is outside the count)."""
    out = os.path.join(work, f"{tag}.callgrind")
    for old in (out, out + ".1"):
        if os.path.exists(old):
            os.remove(old)
    wrapper = ["valgrind", "--tool=callgrind", "--fair-sched=yes", f"--callgrind-out-file={out}"]
    serve(wrapper, server_argv, requests, connections, os.path.join(work, f"{tag}-callgrind.log"),
          after=_callgrind_dump)
    with open(out + ".1", errors="replace") as f:
        ir = costs_format.parse_callgrind_totals(f.read())
    if ir is None:
        raise CostsFailed(f"{out}.1: no totals line")
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


# Gate and calibration runs: the requests served before the counted window and in it, and how
# many callgrind processes run at once. One process per value, started with instrumentation off
# (--instr-atstart=no: start-up, the spin loop's calibration and the warm-up requests run at
# valgrind's uninstrumented speed), switched on after WARM requests (`callgrind_control -i on`)
# and dumped after WINDOW more: the dump holds the window alone. ~1.4 s a value, against ~2 s
# with instrumentation from the start and ~4 s for two processes differenced. 1,000 requests in
# the window: what is not a request's own work (a timer firing, a nudge connection, the warm-up
# connection's close: a few thousand instructions) is spread over 1,000; at 200, epoll-reactor's
# count moved by 0.4% between processes, at 1,000 by 0.1-0.2%. Two at once: the counts are
# instructions, not time, so a neighbour on the other CPU cannot move them.
GATE_WARM_REQUESTS = 1000
GATE_WINDOW_REQUESTS = 1000
PARALLEL_RUNS = 2


def instructions_per_req(server_argv: list[str], work: str, tag: str, warm: int = GATE_WARM_REQUESTS,
                         window: int = GATE_WINDOW_REQUESTS) -> float:
    """User instructions per request of one fresh server under callgrind: WARM requests
    uninstrumented, instrumentation on, WINDOW requests on a new connection, a dump; its total / WINDOW."""
    out = os.path.join(work, f"{tag}.callgrind")
    for old in (out, out + ".1"):
        if os.path.exists(old):
            os.remove(old)

    def counted_window(pid: int, port: int) -> None:
        _callgrind_control(["-i", "on"], pid, port)
        drive(port, window, 1)
        _callgrind_dump(pid, port)

    wrapper = ["valgrind", "--tool=callgrind", "--fair-sched=yes", "--instr-atstart=no",
               f"--callgrind-out-file={out}"]
    serve(wrapper, server_argv, warm, 1, os.path.join(work, f"{tag}-callgrind.log"), after=counted_window)
    with open(out + ".1", errors="replace") as f:
        ir = costs_format.parse_callgrind_totals(f.read())
    if ir is None:
        raise CostsFailed(f"{out}.1: no totals line")
    return ir / window


def instructions_many(jobs: list[tuple[str, list[str]]], work: str, parallel: int = PARALLEL_RUNS) -> dict[str, float]:
    """{tag: instructions per request} of each (tag, server argv) in JOBS, PARALLEL at a time;
    raises CostsFailed (the first failure) when one cannot be measured."""
    os.makedirs(work, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {tag: pool.submit(instructions_per_req, argv, work, tag) for tag, argv in jobs}
        out = {}
        for tag, fut in futures.items():
            try:
                out[tag] = fut.result()
            except OSError as exc:
                raise CostsFailed(f"{tag}: {exc}") from None
            except CostsFailed as exc:
                raise CostsFailed(f"{tag}: {exc}") from None
    return out
