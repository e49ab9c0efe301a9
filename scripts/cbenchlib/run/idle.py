"""The idle-connections point: sample the settled server, open N TCP connections that send
nothing, let the server settle, sample again, close them. Records what each held connection
costs the server (RSS, virtual size, threads; kernel socket memory beside RSS: sockstat.py) and
the verdict on how many were held.
"""
from __future__ import annotations

import errno
import re
import resource
import selectors
import socket
import time

from . import procstat, sockstat
from .failure import PointFailed
from .server import POST_CHECK_MIN_TIMEOUT_S
from ..format import verdict
from ..format.scenario import Point

IDLE_CONNECT_BATCH = 256     # connects in flight at once: stays under the listen backlog
IDLE_SETTLE_SAMPLES = 3      # equal samples (threads, RSS) that mean the server has settled
IDLE_SETTLE_INTERVAL_S = 0.1
IDLE_SETTLE_MAX_S = 5.0
FD_HEADROOM = 64             # descriptors the harness needs besides the idle connections


def measure_idle(host, client_host, session, point: Point, server, record: dict) -> None:
    """Fills record["server"], record["idle"] and the verdict of an idle point, then post-checks
    the server with session.primer. PointFailed if descriptors run short or the server exits."""
    n = point.load.idle_connections
    _raise_fd_limit(n)
    before = _settle(host, server)
    sock_before = sockstat.sample()
    socks: list[socket.socket] = []
    try:
        held, failures = _open_idle(client_host, session.addr, server.port, n, socks)
        if server.proc.poll() is not None:
            raise PointFailed(f"server exited with status {server.proc.returncode} "
                              f"while {held} idle connections were open")
        after = _settle(host, server)
        sock_after = sockstat.sample()
    finally:
        for s in socks:
            s.close()
    rss_before, rss_after = before["rss_kb"], after["rss_kb"]
    stack_kb = None
    if held and (after["threads"] - before["threads"]) / held > 0.5:
        stack_kb = _stack_limit_kb(host, server.pid)
    record["server"] = procstat.window(before, after)
    record["idle"] = {
        "connections": n, "connections_held": held, "connect_failures": failures,
        "rss_before_kb": rss_before, "rss_after_kb": rss_after,
        "threads_before": before["threads"], "threads_after": after["threads"],
        "vmsize_before_kb": before["vmsize_kb"], "vmsize_after_kb": after["vmsize_kb"],
        "bytes_per_conn": round((rss_after - rss_before) * 1024 / held, 1) if held else None,
        "virtual_bytes_per_conn": round((after["vmsize_kb"] - before["vmsize_kb"]) * 1024 / held, 1)
        if held else None,
        "threads_per_conn": round((after["threads"] - before["threads"]) / held, 4) if held else None,
        # glibc's default thread stack is RLIMIT_STACK's soft value; a model may set its own.
        "stack_size_kb": stack_kb, "stack_size_source": "RLIMIT_STACK" if stack_kb else None,
        **sockstat.idle_fields(sock_before, sock_after, held),
    }
    record["verdict"], record["verdict_evidence"] = verdict.judge_idle(n, held)
    session.primer(server, "/", 1, POST_CHECK_MIN_TIMEOUT_S, "post-check after closing the idle connections")


def _raise_fd_limit(n: int) -> None:
    """Raises this process's soft RLIMIT_NOFILE to fit n connections; PointFailed past the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and n + FD_HEADROOM > hard:
        raise PointFailed(f"{n} idle connections need {n + FD_HEADROOM} file descriptors, more than "
                          f"this process's hard RLIMIT_NOFILE ({hard}); raise it (ulimit -Hn) "
                          f"as root, or lower idle_connections")
    if n + FD_HEADROOM > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + FD_HEADROOM, hard))


def _settle(host, server) -> dict:
    """A /proc sample taken once threads and RSS stop changing (bounded wait)."""
    deadline = time.monotonic() + IDLE_SETTLE_MAX_S
    last, same = None, 0
    while True:
        try:
            s = procstat.sample(host, server.pid)
        except OSError:
            raise PointFailed(f"server exited with status {server.proc.poll()} during the idle point")
        key = (s["threads"], s["rss_kb"])
        same = same + 1 if key == last else 0
        last = key
        if same >= IDLE_SETTLE_SAMPLES - 1 or time.monotonic() >= deadline:
            return s
        time.sleep(IDLE_SETTLE_INTERVAL_S)


def _open_idle(client_host, addr: str, port: int, n: int, socks: list) -> tuple[int, int]:
    """Open n TCP connections that send nothing; returns (held, failed). Bounded by a deadline."""
    deadline = time.monotonic() + 10.0 + n / 1000.0  # 1 ms per connection is generous on loopback
    sel = selectors.DefaultSelector()
    held = failed = started = 0
    try:
        while (held + failed < n) and time.monotonic() < deadline:
            while started < n and started - held - failed < IDLE_CONNECT_BATCH:
                s = client_host.socket()
                s.setblocking(False)
                rc = s.connect_ex((addr, port))
                started += 1
                if rc == 0:
                    socks.append(s)
                    held += 1
                elif rc in (errno.EINPROGRESS, errno.EAGAIN):
                    sel.register(s, selectors.EVENT_WRITE)
                else:
                    s.close()
                    failed += 1
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                sel.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    socks.append(s)
                    held += 1
                else:
                    s.close()
                    failed += 1
        for key in list(sel.get_map().values()):
            key.fileobj.close()
            failed += 1
        failed += n - started
    finally:
        sel.close()
    return held, failed


def _stack_limit_kb(host, pid: int) -> int | None:
    try:
        text = host.read_proc(pid, "limits")
    except OSError:
        return None
    m = re.search(r"^Max stack size\s+(\d+)", text, re.M)
    return int(m.group(1)) // 1024 if m else None
