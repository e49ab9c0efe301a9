"""Another machine as a Host (`ssh://`): commands run over OpenSSH through one ControlMaster
connection, each inside a wrapper that reports its remote pid, exit status and CPU time."""
from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from .gate import GATE_ARGV
from .localhost import HostError, LocalHost, Process, descendants_in, die_with_parent, open_sink



# -- ssh:// hosts ----------------------------------------------------------------------------
# Runs on the remote host (python3 there), around every command the harness starts: the command
# gets a process group of its own; its pid is reported first; when the wrapper's standard input
# reaches EOF (the harness stopped it, died, or its connection dropped: sshd sends a command
# without a terminal no SIGHUP) the whole group is killed; at exit it reports the status and the
# command's CPU time (wait4's rusage is the local ssh client's, not the command's).
# `--gated` first: the command (gate.GATE_SCRIPT's) gets a pipe as its standard input, and the
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
        self.close_session()
        self.host.forget(self)
        return self.poll()

    def close_session(self) -> None:
        """Close the lifeline: the wrapper kills the group if it still runs; ssh then ends."""
        try:
            if self.local.popen.stdin:
                self.local.popen.stdin.close()
        except OSError:
            pass
        if self.local.wait(5.0) is None:
            self.local.stop(1.0)
        self.local.host.forget(self.local)


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
            raise OSError(errno.ETIMEDOUT, f"{self.name}: {shlex.join(argv)} timed out after {timeout_s:g} s "
                          "(sshd runs it through the account's shell: check that its startup files, "
                          "such as ~/.bashrc, return at once without a terminal)") from None
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
        out = open_sink(stdout)
        err = subprocess.STDOUT if stderr == "stdout" else open_sink(stderr)
        try:
            popen = subprocess.Popen(self._base + ["-o", "ControlMaster=no", self.dest, "--", shlex.join(remote)],
                                     stdin=subprocess.PIPE, stdout=out, stderr=err, start_new_session=True,
                                     preexec_fn=die_with_parent, close_fds=True)
        finally:
            for f in (out, err):
                if hasattr(f, "close") and f not in (stdout, stderr):
                    f.close()
        local = Process(self, popen, popen.args)
        self._live[local.pid] = local
        proc = RemoteProcess(self, local, ["ssh", self.dest, "--"] + full, report)
        self._remote[proc.pid] = proc
        return proc

    def forget(self, proc):
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
                proc.close_session()
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
        return descendants_in(children, pid)

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

