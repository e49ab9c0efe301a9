"""Kernel socket memory from /proc/net/sockstat, for the idle-connections point.

Io_uring moves buffering from user space into the kernel (provided buffers, requests waiting in
the ring), so a model's idle cost is user-space RSS *and* kernel socket memory. The kernel's
figure is machine-wide: `TCP: ... mem P` counts pages charged to every TCP socket of the host,
both ends of each loopback connection and every other process's sockets, so it is read just
before and after the idle connections are open and only the difference is reported, beside the
server's own RSS difference. One reader of the file, used by runner.py's idle measurement.
"""
from __future__ import annotations

import os
from pathlib import Path

SOCKSTAT = Path("/proc/net/sockstat")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def parse(text: str) -> dict[str, int]:
    """{'tcp_inuse': N, 'tcp_alloc': N, 'tcp_mem_pages': N, ...} from sockstat's TCP line; {} if absent."""
    for line in text.splitlines():
        if line.startswith("TCP:"):
            fields = line.split()[1:]
            return {f"tcp_{k}" if k != "mem" else "tcp_mem_pages": int(v) for k, v in zip(fields[::2], fields[1::2])}
    return {}


def sample() -> dict[str, int]:
    try:
        return parse(SOCKSTAT.read_text())
    except OSError:
        return {}


def idle_fields(before: dict[str, int], after: dict[str, int], held: int) -> dict:
    """What the idle record gets: the TCP memory difference, per held connection (both ends)."""
    if not held or "tcp_mem_pages" not in before or "tcp_mem_pages" not in after:
        return {"kernel_tcp_mem_before_pages": before.get("tcp_mem_pages"),
                "kernel_tcp_mem_after_pages": after.get("tcp_mem_pages"), "kernel_socket_bytes_per_conn": None}
    delta = after["tcp_mem_pages"] - before["tcp_mem_pages"]
    return {"kernel_tcp_mem_before_pages": before["tcp_mem_pages"], "kernel_tcp_mem_after_pages": after["tcp_mem_pages"],
            "kernel_socket_bytes_per_conn": round(delta * PAGE_BYTES / held, 1),
            "kernel_socket_scope": "machine-wide /proc/net/sockstat TCP mem, both ends of each loopback connection"}
