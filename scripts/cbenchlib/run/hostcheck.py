"""What the sweep checks and records about its hosts before the first point.

- `binary_identity` / `check_binary`: the server binary on the server's host (and cbench-load on
  every client host, when a load uses it) exists and was built from the same commit as the
  local build (`cbench-server --version`, `cbench-load --version`); the sweep refuses
  otherwise, with a message naming the host and the difference.
- `environment`: one host's fingerprint, taken on that host (hostname, kernel, CPUs, addresses,
  MTU of each link), for meta.json's topology (one entry per host).
- `measure_rtt`: the round-trip time from a client host to the server's address, measured
  before the sweep with a short TCP echo loop (an echo listener started on the server's host,
  a probe on the client's host), so it crosses exactly the path the load generator uses.

Every command runs through Host.capture / Host.spawn, so the same code serves local,
netns: and ssh:// hosts. The probes are python3 one-liners (an ssh host needs python3 anyway,
for host.REMOTE_WRAPPER)."""
from __future__ import annotations

import json
import os
import statistics
import time

from .host import HostError, LocalHost

# The echo listener: binds the address, prints its port, answers every byte it reads; ends when
# its standard input or the connection count (ECHO_CONNECTIONS) is exhausted, or after 30 s.
ECHO_SERVER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0)); s.listen(64); s.settimeout(30)
print("port %d" % s.getsockname()[1], flush=True)
for _ in range(int(sys.argv[2])):
    c, _a = s.accept(); c.settimeout(30)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(64)
        if not b:
            break
        c.sendall(b)
    c.close()
"""
# The probe: `n` TCP connects (each timed: one SYN/SYN-ACK round trip), then `n` one-byte echoes
# on one connection (each timed: one data round trip); prints both lists in microseconds as JSON.
RTT_PROBE = r"""
import json, socket, sys, time
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
connect_us, echo_us = [], []
for _ in range(n):
    t = time.monotonic(); c = socket.create_connection((addr, port), timeout=10)
    connect_us.append((time.monotonic() - t) * 1e6); c.close()
c = socket.create_connection((addr, port), timeout=10)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(n):
    t = time.monotonic(); c.sendall(b"x"); c.recv(1)
    echo_us.append((time.monotonic() - t) * 1e6)
c.close()
print(json.dumps({"connect_us": connect_us, "echo_us": echo_us}))
"""
# 20 samples of each: the median of 20 is stable to a few microseconds on a quiet link and the
# whole probe takes milliseconds even across a WAN-ish 10 ms round trip (~0.4 s).
RTT_SAMPLES = 20

ENV_SCRIPT = ("hostname; uname -r; nproc; "
              "(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') || echo; "
              "echo '--links'; ip -o link show 2>/dev/null; echo '--addrs'; ip -4 -o addr show 2>/dev/null")


# What a binary is called in a refusal ("HOST lacks the server binary PATH").
ROLES = {"cbench-server": "server binary", "cbench-load": "load generator binary"}


def binary_identity(host, path: str, name: str = "cbench-server") -> tuple[str | None, str | None]:
    """(identity, None) or (None, why not): `PATH --version`'s line when it prints
    'NAME COMMIT' (name: cbench-server or cbench-load); the file's sha256 when the build
    predates --version."""
    try:
        r = host.capture(["test", "-x", path])
        if r.returncode != 0:
            return None, f"lacks the {ROLES.get(name, name)} {path} (not an executable file there)"
        r = host.capture([path, "--version"])
        line = r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
        if r.returncode == 0 and line.startswith(f"{name} "):
            return line, None
        r = host.capture(["sha256sum", path])
        if r.returncode == 0 and r.stdout.split():
            return f"sha256 {r.stdout.split()[0]}", None
        return None, f"cannot identify {path}: {r.stderr.strip()[-200:]}"
    except OSError as exc:
        return None, f"cannot run {path} --version: {exc}"


def check_binary(host, path: str, name: str) -> str | None:
    """None when host has the local build's commit of the binary `name` at path (the same path
    as here), else the refusal message (naming the host and the difference)."""
    local, err = binary_identity(LocalHost(), path, name)
    if local is None:
        return f"this machine {err}"
    remote, err = binary_identity(host, path, name)
    if remote is None:
        return f"{host.name} {err}; build the same commit there at the same path"
    if remote != local:
        return (f"{host.name} has a different build of {path}: it reports '{remote}', "
                f"this machine's reports '{local}'; build the same commit on both")
    return None


def check_server_binary(server_host, server_bin: str) -> str | None:
    """check_binary for the server binary on the server's host."""
    return check_binary(server_host, server_bin, "cbench-server")


def environment(host) -> dict:
    """The host's fingerprint, taken on it; {"error": ...} if it cannot be read."""
    try:
        r = host.capture(["sh", "-c", ENV_SCRIPT])
    except OSError as exc:
        return {"error": str(exc)}
    if r.returncode != 0:
        return {"error": f"status {r.returncode}: {r.stderr.strip()[-200:]}"}
    head, _, rest = r.stdout.partition("--links\n")
    links_text, _, addrs_text = rest.partition("--addrs\n")
    lines = [ln.strip() for ln in head.splitlines()]
    lines += [""] * (4 - len(lines))
    env = {"hostname": lines[0], "kernel": lines[1],
           "cpu_count": int(lines[2]) if lines[2].isdigit() else None, "cpu_model": lines[3] or None}
    mtu = {}
    for line in links_text.splitlines():
        parts = line.split()
        if len(parts) > 4 and "mtu" in parts:
            mtu[parts[1].rstrip(":").split("@")[0]] = int(parts[parts.index("mtu") + 1])
    addrs = {}
    for line in addrs_text.splitlines():
        parts = line.split()
        if "inet" in parts:
            addrs.setdefault(parts[1], []).append(parts[parts.index("inet") + 1])
    env["links_mtu"], env["addresses"] = mtu, addrs
    return env


def measure_rtt(server_host, client_host, addr: str, work_dir: str, samples: int = RTT_SAMPLES) -> dict:
    """Round trips from client_host to addr (the server host's client address), measured before
    the sweep; medians and extremes in microseconds, or {"error": ...}."""
    out_path = os.path.join(work_dir, "rtt-echo.out")
    echo = server_host.spawn(["python3", "-c", ECHO_SERVER, addr, str(samples + 1)],
                             stdout=out_path, stderr=out_path + ".err")
    try:
        port = None
        deadline = time.monotonic() + 15
        while port is None and time.monotonic() < deadline:
            with open(out_path, errors="replace") as f:
                text = f.read()
            if text.startswith("port "):
                port = int(text.split()[1])
            elif echo.poll() is not None:
                break
            else:
                time.sleep(0.01)
        if port is None:
            return {"error": f"the echo listener on {server_host.name} did not start"}
        r = client_host.capture(["python3", "-c", RTT_PROBE, addr, str(port), str(samples)], timeout_s=60)
        if r.returncode != 0:
            return {"error": f"the probe on {client_host.name} failed: {r.stderr.strip()[-300:]}"}
        got = json.loads(r.stdout)
    except (OSError, ValueError, HostError) as exc:
        return {"error": str(exc)}
    finally:
        echo.stop(1.0)
    out = {"from": client_host.name, "to": addr, "samples": samples, "method": "tcp connect + 1-byte echo"}
    for key in ("connect_us", "echo_us"):
        vals = got[key]
        out[key] = {"median": round(statistics.median(vals), 1), "min": round(min(vals), 1),
                    "max": round(max(vals), 1)}
    return out


# -- is this machine quiet enough to start a reference sitting? ---------------------------
# A process that used more than this share of one CPU over the sample is "busy": a build, a test
# run or another benchmark uses a whole CPU; an idle shell, an editor or a session's agent that
# waits uses well under 1%. 10% leaves room for those and still names a compiler in its link phase.
BUSY_CPU_SHARE = 0.10
BUSY_SAMPLE_S = 2.0  # long enough to see a busy process at 10% (0.2 s of CPU) at 100 Hz ticks


def process_ticks(proc_root: str = "/proc") -> dict[int, tuple[str, int]]:
    """{pid: (command name, user + system clock ticks)} of every process readable now."""
    out = {}
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc_root, name, "stat"), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:  # exited since listdir, or not ours to read
            continue
        # comm is in parentheses and may itself hold spaces or parentheses: split after the last ")".
        head, _, rest = text.rpartition(")")
        fields = rest.split()
        if len(fields) > 12:
            out[int(name)] = (head.partition("(")[2], int(fields[11]) + int(fields[12]))
    return out


def busy_between(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], elapsed_s: float,
                 ticks_per_s: float, exclude: set[int] = frozenset(),
                 min_share: float = BUSY_CPU_SHARE) -> list[tuple[int, str, float]]:
    """[(pid, command, share of one CPU)] of the processes in both samples, not in EXCLUDE, that
    used at least MIN_SHARE of a CPU between them; the busiest first."""
    out = []
    for pid, (comm, t1) in after.items():
        if pid in exclude or pid not in before or before[pid][0] != comm:
            continue
        share = (t1 - before[pid][1]) / ticks_per_s / elapsed_s
        if share >= min_share:
            out.append((pid, comm, round(share, 2)))
    return sorted(out, key=lambda t: (-t[2], t[0]))


def own_lineage(pid: int | None = None, proc_root: str = "/proc") -> set[int]:
    """PID (default: this process) and its ancestors: the make and shell that started a command
    are not "other work" beside it."""
    pid = os.getpid() if pid is None else pid
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            with open(os.path.join(proc_root, str(pid), "stat"), encoding="utf-8", errors="replace") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def busy_processes(sample_s: float = BUSY_SAMPLE_S) -> list[tuple[int, str, float]]:
    """busy_between over SAMPLE_S seconds now, this process and its ancestors excluded."""
    t0, before = time.monotonic(), process_ticks()
    time.sleep(sample_s)
    after, elapsed = process_ticks(), time.monotonic() - t0
    return busy_between(before, after, elapsed, os.sysconf("SC_CLK_TCK"), own_lineage())
