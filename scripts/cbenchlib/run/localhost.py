"""This machine as a Host: the one place that starts processes and reads /proc here.

Every process is started in its own session (so its own process group): a
terminal's Ctrl-C reaches only the harness, and stopping a process means
killing its whole group, so nothing it forked survives it. Each child also
gets PR_SET_PDEATHSIG=SIGKILL, so even a harness killed by SIGKILL leaves no
orphan behind. Hosts elsewhere (netnshost.py, sshhost.py) subclass LocalHost.
"""
from __future__ import annotations

import ctypes
import errno
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

from .gate import GATE_ARGV

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# How often the harness polls for a child's exit where it cannot sleep on a pidfd.
# Bounds the slack added to a measured window (the server's CPU is sampled right
# after wrk is seen to exit).
POLL_INTERVAL_S = 0.005

# Searched after PATH by LocalHost.which.
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"



def die_with_parent():
    """preexec_fn: ask the kernel to SIGKILL this child when the harness dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort; group kill still applies
        pass


class Process:
    """A started command; it leads its own process group (pgid == pid)."""

    def __init__(self, host: "LocalHost", popen: subprocess.Popen, argv: list[str]):
        self.host = host
        self.popen = popen
        self.argv = argv
        self.pid = popen.pid
        self.returncode: int | None = None
        self.rusage = None  # resource.struct_rusage once reaped via wait()
        self.started = time.monotonic()
        self.ended: float | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._pidfd = None

    def poll(self) -> int | None:
        """The exit code (negative: killed by that signal) or None while it runs; reaps it."""
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait up to timeout_s (None: forever); returns the exit code, or None if still running.

        Sleeps on a pidfd (no polling, so the harness adds no wake-ups to a measurement);
        falls back to polling every POLL_INTERVAL_S where pidfds are unavailable.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            if self._pidfd is not None:
                select.select([self._pidfd], [], [], left)
            else:
                time.sleep(POLL_INTERVAL_S if left is None else min(POLL_INTERVAL_S, left))
        return self.returncode

    def _reap(self, flags: int):
        try:
            pid, status, rusage = os.wait4(self.pid, flags)
        except ChildProcessError:
            # Already reaped elsewhere (should not happen); fall back on Popen's view.
            self.returncode = self.popen.returncode if self.popen.returncode is not None else -1
            self.ended = self.ended or time.monotonic()
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            return
        if pid == 0:
            return
        self.ended = time.monotonic()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self.rusage = rusage
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode  # keep Popen from reaping or warning

    def signal_group(self, sig: int) -> None:
        """Send sig to the whole process group; no-op once the group is gone."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def release(self) -> None:
        """Opens the start gate of a command spawned with gate=True (its byte, then EOF on its
        standard input); a command that already died is reported by poll()/wait() as usual."""
        stdin = self.popen.stdin
        if stdin is None:
            raise ValueError(f"{self.argv[0]}: not started behind a gate")
        try:
            stdin.write(b"g")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def stop(self, grace_s: float = 5.0, sig: int = signal.SIGTERM) -> int:
        """Signal the group, wait up to grace_s, then SIGKILL the group; returns the exit code.

        The leader is reaped; the group is SIGKILLed afterwards in every case, so no
        process it forked outlives it.
        """
        if self.poll() is None:
            self.signal_group(sig)
            if self.wait(grace_s) is None:
                self.signal_group(signal.SIGKILL)
                self.wait()
        self.signal_group(signal.SIGKILL)
        self.host.forget(self)
        return self.returncode


class LocalHost:
    """This machine."""

    name = "local"
    client_address = "127.0.0.1"  # where load generators and probes connect
    # GATE_SCRIPT's release time is on this host's CLOCK_MONOTONIC; True where that is the
    # harness's own clock (this machine, its namespaces), so start times of generators on such
    # hosts compare exactly.
    shares_clock = True
    machine = "local"  # hosts with the same `machine` share CPUs and /proc/stat

    def __init__(self):
        self._live: dict[int, Process] = {}

    def spawn(self, argv: list[str], cpus: str | None = None, stdout=None, stderr=None,
              cwd: str | None = None, prefix: list[str] | None = None, gate: bool = False) -> Process:
        """Start argv (pinned to the taskset CPU list `cpus` if given) in its own process group.

        stdout/stderr: a path (created or truncated), a file object, None (discarded), or
        stderr="stdout" to merge the two. `prefix`: a launcher that execs the rest (ip netns exec).
        gate: argv waits behind GATE_SCRIPT until Process.release() (it prints its armed and go
        lines on stderr). Returns a Process whose pid is the command's own (taskset, the gate
        and the prefix exec it).
        """
        full = (list(prefix or []) + (["taskset", "-c", cpus] if cpus else [])
                + (self._gate_argv() if gate else []) + list(argv))
        out = open_sink(stdout)
        err = subprocess.STDOUT if stderr == "stdout" else open_sink(stderr)
        try:
            popen = subprocess.Popen(full, stdin=subprocess.PIPE if gate else subprocess.DEVNULL,
                                     stdout=out, stderr=err, cwd=cwd,
                                     start_new_session=True, preexec_fn=die_with_parent,
                                     close_fds=True)
        finally:
            for f in (out, err):
                if hasattr(f, "close") and f not in (stdout, stderr):
                    f.close()
        proc = Process(self, popen, full)
        self._live[proc.pid] = proc
        return proc

    def _gate_argv(self) -> list[str]:
        return [sys.executable or "python3"] + GATE_ARGV[1:]

    def forget(self, proc: Process):
        """Stops tracking proc (it has exited and been reaped): kill_all will not touch it."""
        self._live.pop(proc.pid, None)

    def kill_all(self, grace_s: float = 2.0) -> list[int]:
        """Stop every process this host started and has not yet stopped; returns their pids."""
        procs = list(self._live.values())
        for p in procs:
            if p.poll() is None:
                p.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in procs:
            p.wait(max(0.0, deadline - time.monotonic()))
        for p in procs:
            p.signal_group(signal.SIGKILL)
            if p.poll() is None:
                p.wait(2.0)
            self.forget(p)
        return [p.pid for p in procs]

    # -- /proc ------------------------------------------------------------------------
    def read_proc(self, pid: int, name: str) -> str:
        """Text of /proc/<pid>/<name>; raises OSError if the process or file is gone."""
        with open(f"/proc/{pid}/{name}", "r", encoding="utf-8", errors="replace") as f:
            return f.read()

    def read_system_stat(self) -> str:
        """Text of /proc/stat (the machine's CPU time per CPU)."""
        with open("/proc/stat", encoding="utf-8") as f:
            return f.read()

    def tasks(self, pid: int) -> list[int]:
        """Thread ids of the process (/proc/<pid>/task)."""
        try:
            return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return []

    def descendants(self, pid: int) -> list[int]:
        """Pids of every live descendant of pid (for multi-process peers such as nginx)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = self.read_proc(int(entry), "stat")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        return descendants_in(children, pid)

    def clock_ticks(self) -> int:
        return os.sysconf("SC_CLK_TCK")

    def which(self, name: str) -> str | None:
        """The command's path: PATH first, then the sbin directories (nginx and h2o live in
        /usr/sbin, which a non-root PATH often lacks)."""
        return shutil.which(name) or shutil.which(name, path=SBIN_PATH)

    def cpu_count(self) -> int:
        return os.cpu_count() or 1

    # -- the network seen from this host -----------------------------------------------
    def socket(self, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket in this host's network (the harness's probes: primer, idle connections)."""
        return socket.socket(family, type_)

    def connect(self, addr: str, port: int, timeout_s: float) -> socket.socket:
        """A connected TCP socket from this host's network; raises OSError."""
        s = self.socket()
        try:
            s.settimeout(timeout_s)
            s.connect((addr, port))
        except BaseException:
            s.close()
            raise
        return s

    def free_port(self, addr: str) -> int:
        """A port nothing listens on now at addr in this host's network (peers cannot take
        port 0 and report it)."""
        with self.socket() as s:
            s.bind((addr, 0))
            return s.getsockname()[1]

    def capture(self, argv: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess:
        """argv run to completion on this host (text output captured; never raises for a status:
        a missing command is status 127). Raises OSError only on timeout."""
        try:
            return subprocess.run(self._capture_prefix() + list(argv), capture_output=True, text=True,
                                  timeout=timeout_s, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: {exc.strerror}")
        except subprocess.TimeoutExpired:
            raise OSError(errno.ETIMEDOUT, f"{self.name}: {shlex.join(argv)} timed out") from None

    def _capture_prefix(self) -> list[str]:
        return []

    def alive(self) -> str | None:
        """None while the host can still run commands, else why not (a sweep stops on it)."""
        return None

    def describe(self) -> dict:
        """This host's entry in meta.json's topology."""
        return {"spec": self.name, "kind": "local", "address": self.client_address}


class HostError(Exception):
    """A host that cannot be used (bad spec, missing namespace); the message names it."""



def descendants_in(children: dict[int, list[int]], pid: int) -> list[int]:
    """Every pid below pid in a parent -> children map (depth first, each once)."""
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def open_sink(target):
    if target is None:
        return subprocess.DEVNULL
    if isinstance(target, (str, os.PathLike)):
        return open(target, "wb")  # a fresh file: a resumed point must not read an old attempt
    return target
