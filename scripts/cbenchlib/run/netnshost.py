"""A network namespace on this machine as a Host (`netns:NAME`): its processes run under `ip netns
exec NAME`, share this machine's /proc and CPUs, and reach other hosts over the namespace's own
addresses (e.g. across a veth pair)."""
from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading

from .localhost import SBIN_PATH, HostError, LocalHost, Process

CLONE_NEWNET = 0x40000000  # <sched.h>
NETNS_DIR = "/run/netns"   # where `ip netns add` puts the namespaces' handles



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
