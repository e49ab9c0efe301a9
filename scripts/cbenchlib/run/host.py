"""Where a command runs: the one place that starts processes and reads /proc.

The sweep talks to Hosts only (one per role: the server's, the load generator's). Every Host
implements the same four things: spawn a pinned command, read a /proc file of one of its
processes, say which address clients should connect to, and kill everything it started.
LocalHost (localhost.py) is this machine; NamespaceHost (`netns:NAME`, netnshost.py) is a
network namespace on it (the processes run under `ip netns exec NAME`, share this machine's /proc and CPUs, and
reach each other over the namespace's own addresses, e.g. across a veth pair). `parse_host`
turns a `--server-host` / `--client-host` value into a Host; SshHost (`ssh://`, sshhost.py) runs them on
another machine over OpenSSH.

Every process is started in its own session (so its own process group): a
terminal's Ctrl-C reaches only the harness, and stopping a process means
killing its whole group, so nothing it forked survives it. Each child also
gets PR_SET_PDEATHSIG=SIGKILL, so even a harness killed by SIGKILL leaves no
orphan behind.
"""
from __future__ import annotations

import select
import time

from .gate import GATE_ARGV, GATE_ARMED, GATE_GO_RE, GATE_SCRIPT
from .localhost import POLL_INTERVAL_S, HostError, LocalHost, Process
from .netnshost import NamespaceHost
from .sshhost import REMOTE_EXIT_RE, REMOTE_WRAPPER, RemoteProcess, SshHost

# The names callers use: this module is where a host is chosen, the others where each kind lives.
__all__ = ["GATE_ARGV", "GATE_ARMED", "GATE_GO_RE", "GATE_SCRIPT", "HostError", "LocalHost", "NamespaceHost",
           "Process", "REMOTE_EXIT_RE", "REMOTE_WRAPPER", "RemoteProcess", "SshHost", "parse_host",
           "same_machine", "wait_all"]


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

