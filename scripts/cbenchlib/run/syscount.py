"""Exact system-call counts of the server over the measured window, with `perf stat`.

/proc/PID/io counts only the read- and write-family calls (not send, recv, epoll_wait,
epoll_ctl, futex...), so it cannot say why one model makes more system calls than another.
When `perf` can count the `raw_syscalls:sys_enter` tracepoint, the runner counts every system
call made on the server's CPUs (`perf stat -a -C SERVER_CPUS`): the server is pinned there and
nothing else of the benchmark runs there, and counting by CPU (not by pid) includes threads and
processes the server creates during the run (thread-per-connection, nginx workers), which
`perf stat -p` would miss. Anything else that ran there is already reported as a disturbance
(`machine.other_cpu_util`). perf starts before the /proc sample that opens the window and is
stopped (SIGINT) after the one that closes it, so the count covers the measured run plus a few
idle milliseconds either side (a tick or two of the server's timers).

The tracepoint costs a little on every system call of the machine while it is enabled; every
row of a run pays it alike. Set CBENCH_NO_PERF=1 to fall back to /proc/PID/io; the record's
`server.syscalls_source` says which was used ("perf" or "proc-io").
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

EVENT = "raw_syscalls:sys_enter"
ATTACH_SETTLE_S = 0.15   # perf attaches in a few ms; the margin keeps the run's start inside the count
STOP_TIMEOUT_S = 5.0

_available: bool | None = None


def available() -> bool:
    """True if perf can count the syscall tracepoint here (checked once, on `true`)."""
    global _available
    if _available is None:
        _available = False
        if os.environ.get("CBENCH_NO_PERF") != "1" and shutil.which("perf"):
            try:
                r = subprocess.run(["perf", "stat", "-x,", "-e", EVENT, "-a", "-C", "0", "--", "true"],
                                   capture_output=True, text=True, timeout=10)
                _available = r.returncode == 0 and parse(r.stderr) is not None
            except (OSError, subprocess.TimeoutExpired):
                _available = False
    return _available


def parse(text: str) -> int | None:
    """The count from `perf stat -x,` output ("291330,,raw_syscalls:sys_enter,..."), or None."""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[2] == EVENT:
            try:
                return int(fields[0])
            except ValueError:
                return None  # "<not counted>" or "<not supported>"
    return None


class Counter:
    """perf stat on the server's CPUs; start() at the window's start, stop() -> count at its end."""

    def __init__(self, host, server_cpus: str, out_path: str, perf_cpus: str | None):
        self.host, self.server_cpus, self.out_path, self.perf_cpus = host, server_cpus, out_path, perf_cpus
        self.proc = None

    def start(self) -> None:
        argv = ["perf", "stat", "-x,", "-e", EVENT, "-o", self.out_path, "-a", "-C", self.server_cpus]
        # perf sleeps while counting; it runs beside wrk, off the server's CPUs.
        self.proc = self.host.spawn(argv, cpus=self.perf_cpus)
        time.sleep(ATTACH_SETTLE_S)

    def stop(self) -> int | None:
        """Stops perf and returns the count (None if perf failed or counted nothing)."""
        if self.proc is None:
            return None
        self.proc.signal_group(signal.SIGINT)
        if self.proc.wait(STOP_TIMEOUT_S) is None:
            self.proc.stop(grace_s=0.5)
            return None
        self.proc.stop(grace_s=0.5)
        try:
            with open(self.out_path) as f:
                return parse(f.read())
        except OSError:
            return None
