"""Where a command runs: the one place that starts processes and reads /proc.

The sweep talks to Hosts only (one per role: the server's, the load generator's). Every Host
implements the same four things: spawn a pinned command, read a /proc file of one of its
processes, say which address clients should connect to, and kill everything it started.
LocalHost is this machine; NamespaceHost (`netns:NAME`) is a network namespace on it (issue
18: the processes run under `ip netns exec NAME`, share this machine's /proc and CPUs, and
reach each other over the namespace's own addresses, e.g. across a veth pair). `parse_host`
turns a `--server-host` / `--client-host` value into a Host; SshHost (`ssh://`) runs them on
another machine over OpenSSH.

Every process is started in its own session (so its own process group): a
terminal's Ctrl-C reaches only the harness, and stopping a process means
killing its whole group, so nothing it forked survives it. Each child also
gets PR_SET_PDEATHSIG=SIGKILL, so even a harness killed by SIGKILL leaves no
orphan behind.
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# How often the harness polls for a child's exit where it cannot sleep on a pidfd.
# Bounds the slack added to a measured window (the server's CPU is sampled right
# after wrk is seen to exit).
POLL_INTERVAL_S = 0.005

# Searched after PATH by LocalHost.which.
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"

# The start gate (spawn(gate=True); issue 18, several load generators released together): runs
# before the command on its host, says it is armed, waits for one byte on its standard input,
# reports the time it was released on that host's CLOCK_MONOTONIC (the harness's own clock on
# this machine and in its namespaces) and its own CPU time so far (the command's rusage includes
# it: exec keeps a process's CPU times, and wait4 adds those of children it reaped, such as a
# pyenv shim's), then execs the command with /dev/null as its standard input. EOF instead of the
# byte (the harness died or gave up): exit 125, the command never runs.
# python3 -S: no site module, ~10 ms of start-up, all of it before the release. On this machine
# (and its namespaces) the harness's own interpreter runs it (LocalHost._gate_argv).
GATE_SCRIPT = ("import os,sys,time\n"
               "os.write(2,b'cbench-gate-armed\\n')\n"
               "if os.read(0,1)!=b'g':os._exit(125)\n"
               "t=os.times()\n"
               "os.write(2,b'cbench-gate-go %d %.6f %.6f\\n'%(time.monotonic_ns(),t.user+t.children_user,"
               "t.system+t.children_system))\n"
               "n=os.open(os.devnull,os.O_RDONLY);os.dup2(n,0);os.close(n)\n"
               "os.execvp(sys.argv[1],sys.argv[1:])\n")
GATE_ARGV = ["python3", "-S", "-c", GATE_SCRIPT]
GATE_ARMED = "cbench-gate-armed"
GATE_GO_RE = re.compile(r"^cbench-gate-go (\d+) ([0-9.]+) ([0-9.]+)$", re.M)


def _die_with_parent():
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
        self.host._forget(self)
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
        out = _open_sink(stdout)
        err = subprocess.STDOUT if stderr == "stdout" else _open_sink(stderr)
        try:
            popen = subprocess.Popen(full, stdin=subprocess.PIPE if gate else subprocess.DEVNULL,
                                     stdout=out, stderr=err, cwd=cwd,
                                     start_new_session=True, preexec_fn=_die_with_parent,
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

    def _forget(self, proc: Process):
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
            self._forget(p)
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
        out, todo = [], [pid]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

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


CLONE_NEWNET = 0x40000000  # <sched.h>
NETNS_DIR = "/run/netns"   # where `ip netns add` puts the namespaces' handles


class HostError(Exception):
    """A host that cannot be used (bad spec, missing namespace); the message names it."""


class NamespaceHost(LocalHost):
    """A network namespace on this machine (`ip netns add NAME`), given as `netns:NAME`.

    Processes run under `ip netns exec NAME` (which execs the command, so the pid, the process
    group, PR_SET_PDEATHSIG and wait4's rusage are the command's own, as on LocalHost); /proc,
    CPUs and the clock are this machine's. The harness's own sockets (primer, post-check, idle
    connections) are created in the namespace by a thread that joins it with setns(2), so they
    travel the same path as the load generator's. `client_address` is the namespace's first
    global IPv4 address unless given as `netns:NAME@ADDR`."""

    def __init__(self, name: str, address: str | None = None):
        super().__init__()
        if not name or "/" in name:
            raise HostError(f"netns:{name}: not a namespace name")
        self.netns = name
        self.name = f"netns:{name}"
        if not os.path.exists(os.path.join(NETNS_DIR, name)):
            raise HostError(f"{self.name}: no such network namespace ({NETNS_DIR}/{name} is missing; "
                            f"create it with: ip netns add {name})")
        self.client_address = address or self._first_address()

    def _first_address(self) -> str:
        out = subprocess.run(["ip", "-n", self.netns, "-4", "-o", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=10)
        for line in out.stdout.splitlines():
            parts = line.split()
            if "inet" in parts:
                return parts[parts.index("inet") + 1].split("/")[0]
        raise HostError(f"{self.name}: the namespace has no global IPv4 address "
                        f"(`ip -n {self.netns} addr` shows none); give one as netns:{self.netns}@ADDR")

    def spawn(self, argv: list[str], cpus: str | None = None, stdout=None, stderr=None,
              cwd: str | None = None, gate: bool = False) -> Process:
        ip = shutil.which("ip") or shutil.which("ip", path=SBIN_PATH) or "ip"
        # The gate (if any) runs right after `ip netns exec`, before taskset: LocalHost.spawn
        # puts it after the prefix and its (here empty) CPU list.
        proc = super().spawn((["taskset", "-c", cpus] if cpus else []) + list(argv),
                             None, stdout, stderr, cwd, prefix=[ip, "netns", "exec", self.netns], gate=gate)
        return proc

    def _capture_prefix(self) -> list[str]:
        return [shutil.which("ip") or shutil.which("ip", path=SBIN_PATH) or "ip", "netns", "exec", self.netns]

    def alive(self) -> str | None:
        if not os.path.exists(os.path.join(NETNS_DIR, self.netns)):
            return f"the namespace {self.netns} is gone ({NETNS_DIR}/{self.netns} is missing)"
        return None

    def socket(self, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
        got: dict = {}

        def in_namespace():
            try:
                fd = os.open(os.path.join(NETNS_DIR, self.netns), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({self.name}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                got["sock"] = socket.socket(family, type_)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                got["exc"] = exc

        # A thread of its own: setns changes the calling thread's namespace for good, and that
        # thread ends here; the socket keeps the namespace it was created in.
        t = threading.Thread(target=in_namespace, name=f"netns-{self.netns}")
        t.start()
        t.join()
        if "exc" in got:
            raise got["exc"]
        return got["sock"]

    def describe(self) -> dict:
        d = {"spec": self.name, "kind": "netns", "netns": self.netns, "address": self.client_address}
        out = subprocess.run(["ip", "-n", self.netns, "-o", "link", "show"], capture_output=True,
                             text=True, timeout=10)
        links = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) > 4 and "mtu" in parts:
                links[parts[1].rstrip(":").split("@")[0]] = int(parts[parts.index("mtu") + 1])
        d["links_mtu"] = links
        return d


# -- ssh:// hosts ----------------------------------------------------------------------------
# Runs on the remote host (python3 there), around every command the harness starts: the command
# gets a process group of its own; its pid is reported first; when the wrapper's standard input
# reaches EOF (the harness stopped it, died, or its connection dropped: sshd sends a command
# without a terminal no SIGHUP) the whole group is killed; at exit it reports the status and the
# command's CPU time (wait4's rusage is the local ssh client's, not the command's).
# `--gated` first: the command (host.GATE_SCRIPT's) gets a pipe as its standard input, and the
# first byte the wrapper reads from its own is passed on to it (RemoteProcess.release).
REMOTE_WRAPPER = r"""
import os, resource, signal, subprocess, sys, threading, time
gated = sys.argv[1] == "--gated"
p = subprocess.Popen(sys.argv[2:] if gated else sys.argv[1:],
                     stdin=subprocess.PIPE if gated else subprocess.DEVNULL, start_new_session=True)
sys.stderr.write("cbench-remote-pid %d\n" % p.pid); sys.stderr.flush()
def kill_group():
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(p.pid, sig)
        except OSError:
            return
        end = time.monotonic() + grace
        while p.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
def watch():
    while True:
        b = os.read(0, 4096)
        if not b:
            break
        if p.stdin is not None:
            try:
                p.stdin.write(b[:1]); p.stdin.close()
            except OSError:
                pass
            p.stdin = None
    kill_group()
    os._exit(137)
threading.Thread(target=watch, daemon=True).start()
rc = p.wait()
try:
    os.killpg(p.pid, signal.SIGKILL)
except OSError:
    pass
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write("cbench-remote-exit %d %.6f %.6f\n" % (rc, ru.ru_utime, ru.ru_stime)); sys.stderr.flush()
sys.exit(rc if rc >= 0 else 128 - rc)
"""
REMOTE_PID_RE = re.compile(r"^cbench-remote-pid (\d+)$", re.M)
REMOTE_EXIT_RE = re.compile(r"^cbench-remote-exit (-?\d+) ([0-9.]+) ([0-9.]+)$", re.M)
SSH_CONNECT_TIMEOUT_S = 15.0


class RemoteProcess:
    """A command started on an SshHost: the Process interface, with the remote pid and the
    remote command's exit status and CPU time (from the wrapper's report)."""

    def __init__(self, host: "SshHost", local: Process, argv: list[str], report_path: str):
        self.host = host
        self.local = local          # the ssh client (its stdin is the remote wrapper's lifeline)
        self.argv = argv
        self.report_path = report_path
        self.returncode: int | None = None
        self.rusage = None
        self.started = local.started
        self.ended: float | None = None
        self.pid = self._remote_pid()

    def _report(self) -> str:
        try:
            with open(self.report_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _remote_pid(self) -> int:
        deadline = time.monotonic() + SSH_CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            m = REMOTE_PID_RE.search(self._report())
            if m:
                return int(m.group(1))
            if self.local.poll() is not None:
                break
            time.sleep(0.01)
        self.local.stop(1.0)
        raise HostError(f"{self.host.name}: the command did not start (ssh exited with status "
                        f"{self.local.returncode}): {self._report()[-500:].strip()}")

    def poll(self) -> int | None:
        if self.returncode is None and self.local.poll() is not None:
            self.ended = self.local.ended
            m = REMOTE_EXIT_RE.search(self._report())
            if m:
                self.returncode = int(m.group(1))
                self.rusage = _Rusage(float(m.group(2)), float(m.group(3)))
            else:  # the connection died: ssh's own status (255)
                self.returncode = self.local.returncode
        return self.returncode

    def wait(self, timeout_s: float | None = None) -> int | None:
        self.local.wait(timeout_s)
        return self.poll()

    def release(self) -> None:
        """Opens the start gate (spawn(gate=True)): one byte down the connection, which the
        remote wrapper passes on; the lifeline itself stays open."""
        try:
            self.local.popen.stdin.write(b"g")
            self.local.popen.stdin.flush()
        except (BrokenPipeError, OSError, ValueError, AttributeError):
            pass

    def signal_group(self, sig: int) -> None:
        if self.poll() is None:
            self.host.run(["kill", f"-{int(sig)}", "--", f"-{self.pid}"], check=False)

    def stop(self, grace_s: float = 5.0, sig: int = signal.SIGTERM) -> int:
        if self.poll() is None:
            self.signal_group(sig)
            if self.wait(grace_s) is None:
                self.signal_group(signal.SIGKILL)
                self.wait(5.0)
        self._close()
        self.host._forget(self)
        return self.poll()

    def _close(self) -> None:
        """Close the lifeline: the wrapper kills the group if it still runs; ssh then ends."""
        try:
            if self.local.popen.stdin:
                self.local.popen.stdin.close()
        except OSError:
            pass
        if self.local.wait(5.0) is None:
            self.local.stop(1.0)
        self.local.host._forget(self.local)


class _Rusage:
    def __init__(self, utime: float, stime: float):
        self.ru_utime, self.ru_stime = utime, stime


class SshHost(LocalHost):
    """`ssh://[user@]host[:port][?address=ADDR]`: commands run over OpenSSH (key-based,
    BatchMode=yes) through one ControlMaster connection, so a command costs no handshake; the
    master is this harness's child (PR_SET_PDEATHSIG) and ends with it. /proc is read with
    `cat` over that connection. The remote host needs python3 (the wrapper above) and the
    same checkout at the same path (the server binary, wrk's Lua script). Extra ssh options
    (an identity file, a known-hosts file): $CBENCH_SSH_OPTIONS, split on spaces.
    `address`: where clients connect, when it is not the host name (another interface)."""

    shares_clock = False  # its CLOCK_MONOTONIC is another machine's

    def __init__(self, spec: str):
        super().__init__()
        self.name = spec
        m = re.fullmatch(r"ssh://(?:([^@/?]+)@)?([^:/?@]+)(?::(\d+))?(?:\?address=([^&]+))?", spec)
        if not m:
            raise HostError(f"{spec}: not an ssh host (expected ssh://[user@]host[:port][?address=ADDR])")
        user, hostname, port, address = m.groups()
        self.dest = f"{user}@{hostname}" if user else hostname
        self.machine = f"ssh:{hostname}"
        self.client_address = address or hostname
        self._dir = tempfile.mkdtemp(prefix="cbench-ssh-")
        control = os.path.join(self._dir, "cm")
        self._base = (["ssh", "-o", "BatchMode=yes", "-o", f"ControlPath={control}",
                       "-o", f"ConnectTimeout={int(SSH_CONNECT_TIMEOUT_S)}", "-o", "ServerAliveInterval=5",
                       "-o", "ServerAliveCountMax=3"]
                      + (["-p", port] if port else [])
                      + os.environ.get("CBENCH_SSH_OPTIONS", "").split())
        self._remote: dict[int, RemoteProcess] = {}
        self._ticks: int | None = None
        self._master = super().spawn(self._base + ["-o", "ControlMaster=yes", "-o", "ControlPersist=no",
                                                   "-N", self.dest],
                                     stdout=None, stderr=os.path.join(self._dir, "master.err"))
        deadline = time.monotonic() + SSH_CONNECT_TIMEOUT_S + 5
        while time.monotonic() < deadline:
            if self._master.poll() is not None:
                break
            if subprocess.run(self._base + ["-O", "check", self.dest], capture_output=True,
                              timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        with open(os.path.join(self._dir, "master.err"), errors="replace") as f:
            err = f.read().strip()[-500:]
        self.kill_all()
        raise HostError(f"{spec}: cannot connect over ssh: {err or 'no answer'}")

    def run(self, argv: list[str], check: bool = True, timeout_s: float = 30.0) -> subprocess.CompletedProcess:
        """argv on the remote host through the master connection; raises OSError (check) on failure."""
        try:
            r = subprocess.run(self._base + ["-o", "ControlMaster=no", self.dest, "--", shlex.join(argv)],
                               capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise OSError(errno.ETIMEDOUT, f"{self.name}: {shlex.join(argv)} timed out") from None
        if check and r.returncode != 0:
            raise OSError(errno.ENOENT, f"{self.name}: {shlex.join(argv)}: status {r.returncode}: "
                                        f"{r.stderr.strip()[-300:]}")
        return r

    def capture(self, argv: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess:
        return self.run(argv, check=False, timeout_s=timeout_s)

    def alive(self) -> str | None:
        """Dead when the master connection has ended or a trivial command cannot run over it."""
        if self._master.poll() is not None:
            return f"the ssh connection to {self.dest} ended (ssh exited with status {self._master.returncode})"
        try:
            r = self.run(["true"], check=False, timeout_s=SSH_CONNECT_TIMEOUT_S)
        except OSError:
            return f"{self.dest} does not answer over ssh within {SSH_CONNECT_TIMEOUT_S:g} s"
        if r.returncode != 0:
            return f"a command over ssh to {self.dest} failed with status {r.returncode}: {r.stderr.strip()[-200:]}"
        return None

    def spawn(self, argv: list[str], cpus: str | None = None, stdout=None, stderr=None,
              cwd: str | None = None, prefix: list[str] | None = None, gate: bool = False) -> RemoteProcess:
        """As LocalHost.spawn, on the remote host; stdout and stderr are local files (stderr
        must be a path or "stdout": the wrapper reports the pid and exit status there)."""
        full = (list(prefix or []) + (["taskset", "-c", cpus] if cpus else [])
                + (GATE_ARGV if gate else []) + list(argv))
        report = stdout if stderr == "stdout" else stderr
        if not isinstance(report, str):
            report = os.path.join(self._dir, f"stderr-{len(self._remote)}-{time.monotonic_ns()}")
            stderr = report
        remote = ["python3", "-c", REMOTE_WRAPPER] + (["--gated"] if gate else []) + full
        if cwd:
            remote = ["sh", "-c", 'cd "$0" && exec "$@"', cwd] + remote
        out = _open_sink(stdout)
        err = subprocess.STDOUT if stderr == "stdout" else _open_sink(stderr)
        try:
            popen = subprocess.Popen(self._base + ["-o", "ControlMaster=no", self.dest, "--", shlex.join(remote)],
                                     stdin=subprocess.PIPE, stdout=out, stderr=err, start_new_session=True,
                                     preexec_fn=_die_with_parent, close_fds=True)
        finally:
            for f in (out, err):
                if hasattr(f, "close") and f not in (stdout, stderr):
                    f.close()
        local = Process(self, popen, popen.args)
        self._live[local.pid] = local
        proc = RemoteProcess(self, local, ["ssh", self.dest, "--"] + full, report)
        self._remote[proc.pid] = proc
        return proc

    def _forget(self, proc):
        if isinstance(proc, RemoteProcess):
            self._remote.pop(proc.pid, None)
            if proc.local.returncode is not None:
                self._live.pop(proc.local.pid, None)
        else:
            self._live.pop(proc.pid, None)

    def kill_all(self, grace_s: float = 2.0) -> list[int]:
        """Every remote command (its group, through the wrapper), then the master connection."""
        pids = []
        for proc in list(self._remote.values()):
            pids.append(proc.pid)
            try:
                proc.stop(grace_s)
            except OSError:
                proc._close()
        pids += super().kill_all(grace_s)  # ssh clients left, and the master
        return pids

    def close(self) -> None:
        self.kill_all()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- /proc over the connection -------------------------------------------------------
    def read_proc(self, pid: int, name: str) -> str:
        return self.run(["cat", f"/proc/{int(pid)}/{name}"]).stdout

    def read_system_stat(self) -> str:
        return self.run(["cat", "/proc/stat"]).stdout

    def tasks(self, pid: int) -> list[int]:
        r = self.run(["ls", f"/proc/{int(pid)}/task"], check=False)
        return [int(t) for t in r.stdout.split() if t.isdigit()]

    def descendants(self, pid: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for line in self.run(["ps", "-e", "-o", "pid=,ppid="]).stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                children.setdefault(int(parts[1]), []).append(int(parts[0]))
        out, todo = [], [pid]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    def clock_ticks(self) -> int:
        if self._ticks is None:
            self._ticks = int(self.run(["getconf", "CLK_TCK"]).stdout.strip())
        return self._ticks

    def which(self, name: str) -> str | None:
        r = self.run(["sh", "-c", 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$0"', name],
                     check=False)
        path = r.stdout.strip()
        return path if r.returncode == 0 and path else None

    def cpu_count(self) -> int:
        return int(self.run(["nproc"]).stdout.strip())

    def free_port(self, addr: str) -> int:
        r = self.run(["python3", "-c", "import socket, sys; s = socket.socket(); "
                      "s.bind((sys.argv[1], 0)); print(s.getsockname()[1])", addr])
        return int(r.stdout.strip())

    def describe(self) -> dict:
        """The topology entry, with the remote machine's fingerprint (hostname, kernel, CPU)."""
        d = {"spec": self.name, "kind": "ssh", "address": self.client_address}
        r = self.run(["sh", "-c", "hostname; uname -r; nproc; grep -m1 '^model name' /proc/cpuinfo | "
                      "cut -d: -f2-"], check=False)
        lines = [ln.strip() for ln in r.stdout.splitlines()]
        if r.returncode == 0 and len(lines) >= 3:
            d["env"] = {"hostname": lines[0], "kernel": lines[1], "cpu_count": int(lines[2]),
                        "cpu_model": lines[3] if len(lines) > 3 else None}
        return d


def wait_all(procs: list, timeout_s: float) -> bool:
    """Waits until every one of procs (Process or RemoteProcess) has exited, or timeout_s has
    passed; True if all have. Each is reaped as soon as it exits (one select over all their
    pidfds), so each one's `ended` is its own exit time, not the time a caller got round to it."""
    deadline = time.monotonic() + timeout_s
    while True:
        running = [p for p in procs if p.poll() is None]
        if not running:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        fds = [getattr(p, "local", p)._pidfd for p in running]
        if all(fd is not None for fd in fds):
            select.select(fds, [], [], left)
        else:
            time.sleep(min(POLL_INTERVAL_S, left))


def same_machine(a, b) -> bool:
    """True when hosts a and b share CPUs and /proc/stat (this machine and its namespaces; one
    ssh machine)."""
    return getattr(a, "machine", None) == getattr(b, "machine", None)


def parse_host(spec: str | None) -> LocalHost:
    """A Host from a --server-host / --client-host value: `local` (or none), `netns:NAME`,
    `netns:NAME@ADDR`. Raises HostError naming the value."""
    if spec in (None, "", "local"):
        return LocalHost()
    if spec.startswith("netns:"):
        name, _, addr = spec[len("netns:"):].partition("@")
        return NamespaceHost(name, addr or None)
    if spec.startswith("ssh://"):
        return SshHost(spec)
    raise HostError(f"{spec}: not a host (expected local, netns:NAME or ssh://[user@]host[:port])")


def _open_sink(target):
    if target is None:
        return subprocess.DEVNULL
    if isinstance(target, (str, os.PathLike)):
        return open(target, "wb")  # a fresh file: a resumed point must not read an old attempt
    return target
