"""The kernel's TCP counters around a measured window, and whether a kernel limit,
not the model, bounded the point.

Closing after every response (`--keepalive off`, Unicorn) at tens of thousands of requests per
second fills the TIME_WAIT table (net.ipv4.tcp_max_tw_buckets) and the ephemeral port range
within seconds, and a burst of connects beyond the listen backlog is dropped by the kernel.
Those limits are counted here, from the server's network namespace (/proc/PID/net/...):

- /proc/PID/net/netstat TcpExt: ListenOverflows, ListenDrops (accept queue full: SYNs or final
  ACKs dropped), TW (sockets that entered TIME_WAIT), TWRecycled, TWKilled,
  TCPTimeWaitOverflow (TIME_WAIT refused: the table was full), TCPAbortOnData;
- /proc/PID/net/snmp Tcp: ActiveOpens, PassiveOpens (connections accepted), AttemptFails,
  EstabResets, and CurrEstab (a level);
- /proc/PID/net/sockstat TCP: inuse, orphan, tw (levels: sockets now in TIME_WAIT), alloc;
- /proc/PID/net/tcp and tcp6: the TIME_WAIT sockets of the server's port (either end), a level
  that belongs to this point alone;
- /proc/sys/net/ipv4: tcp_max_tw_buckets and ip_local_port_range (limits, read once a window).

Counters are whole-namespace: on loopback they include the client's side and anything else
running (on a shared machine, other programs' connections too). So `bound` needs evidence
tied to this point besides a namespace counter: listen overflows count only when wrk also saw
connect errors or timeouts, TIME_WAIT limits only from the server port's own TIME_WAIT sockets. SCHEMA.md lists the record's fields. Every reader returns None for what it cannot read
(a fake host in tests, a kernel without a file); nothing here raises on a missing file.
"""
from __future__ import annotations

TCPEXT_FIELDS = ("ListenOverflows", "ListenDrops", "TW", "TWRecycled", "TWKilled",
                 "TCPTimeWaitOverflow", "TCPAbortOnData")
TCP_FIELDS = ("ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets")
TCP_LEVELS = ("CurrEstab",)
SOCKSTAT_FIELDS = ("inuse", "orphan", "tw", "alloc")

# TIME_WAIT sockets at or above this fraction of tcp_max_tw_buckets count as a full table: the
# kernel then destroys new TIME_WAIT sockets at once (TCPTimeWaitOverflow counts them), which on
# loopback shows a little before the counter moves.
TW_FULL_FRACTION = 0.95


def parse_pairs(text: str, prefix: str) -> dict[str, int]:
    """The 'Prefix: names' / 'Prefix: values' line pairs of /proc/net/netstat or snmp -> {name: value}."""
    lines = [line.split() for line in text.splitlines() if line.startswith(prefix + ":")]
    out: dict[str, int] = {}
    for names, values in zip(lines[0::2], lines[1::2]):
        for name, value in zip(names[1:], values[1:]):
            try:
                out[name] = int(value)
            except ValueError:
                continue
    return out


def parse_sockstat(text: str) -> dict[str, int]:
    """The TCP line of /proc/net/sockstat ('TCP: inuse 5 orphan 0 tw 3 alloc 7 mem 1') -> {key: n}."""
    for line in text.splitlines():
        if line.startswith("TCP:"):
            parts = line.split()[1:]
            return {k: int(v) for k, v in zip(parts[0::2], parts[1::2]) if v.lstrip("-").isdigit()}
    return {}


def _read(host, pid: int, name: str) -> str | None:
    try:
        return host.read_proc(pid, name)
    except (OSError, AttributeError):
        return None


def _read_sys(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


TCP_STATE_TIME_WAIT = "06"  # include/net/tcp_states.h: TCP_TIME_WAIT


def count_time_wait(text: str, port: int) -> int:
    """TIME_WAIT sockets of /proc/net/tcp{,6} text whose local or remote port is `port`."""
    n = 0
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 4 or f[3] != TCP_STATE_TIME_WAIT:
            continue
        local, remote = f[1].rsplit(":", 1)[-1], f[2].rsplit(":", 1)[-1]
        if int(local, 16) == port or int(remote, 16) == port:
            n += 1
    return n


def sample(host, pid: int, port: int | None = None) -> dict:
    """The counters and levels of pid's network namespace now ({} parts left out if unreadable);
    with `port`, also `port_time_wait`: the TIME_WAIT sockets of that port."""
    out: dict = {}
    if port:
        texts = [t for t in (_read(host, pid, "net/tcp"), _read(host, pid, "net/tcp6")) if t]
        if texts:
            out["port_time_wait"] = sum(count_time_wait(t, port) for t in texts)
    text = _read(host, pid, "net/netstat")
    if text:
        ext = parse_pairs(text, "TcpExt")
        out["tcpext"] = {k: ext[k] for k in TCPEXT_FIELDS if k in ext}
    text = _read(host, pid, "net/snmp")
    if text:
        tcp = parse_pairs(text, "Tcp")
        out["tcp"] = {k: tcp[k] for k in TCP_FIELDS + TCP_LEVELS if k in tcp}
    text = _read(host, pid, "net/sockstat")
    if text:
        sock = parse_sockstat(text)
        out["sockstat"] = {k: sock[k] for k in SOCKSTAT_FIELDS if k in sock}
    return out


def limits() -> dict:
    """tcp_max_tw_buckets and the ephemeral port range's size (None where unreadable)."""
    tw = _read_sys("/proc/sys/net/ipv4/tcp_max_tw_buckets")
    ports = _read_sys("/proc/sys/net/ipv4/ip_local_port_range")
    port_count = None
    if ports and len(ports.split()) == 2:
        lo, hi = (int(x) for x in ports.split())
        port_count = hi - lo + 1
    return {"tcp_max_tw_buckets": int(tw) if tw and tw.strip().isdigit() else None,
            "ephemeral_ports": port_count}


def window(before: dict, after: dict, lim: dict, requests: int | None,
           connect_failures: int = 0) -> dict | None:
    """The record's `kernel` object: counter deltas, levels before/after, limits, per-request
    opens, and `bound` (None, or why a kernel limit bounded the point). None if nothing was read."""
    if not before or not after:
        return None
    deltas = {}
    for group, fields in (("tcpext", TCPEXT_FIELDS), ("tcp", TCP_FIELDS)):
        for k in fields:
            if k in before.get(group, {}) and k in after.get(group, {}):
                deltas[k] = after[group][k] - before[group][k]
    levels = {}
    if "port_time_wait" in before and "port_time_wait" in after:
        levels["port_tw"] = {"before": before["port_time_wait"], "after": after["port_time_wait"]}
    for group, fields in (("sockstat", SOCKSTAT_FIELDS), ("tcp", TCP_LEVELS)):
        for k in fields:
            if k in before.get(group, {}) and k in after.get(group, {}):
                levels[k] = {"before": before[group][k], "after": after[group][k]}
    out = {"deltas": deltas, "levels": levels, "limits": lim,
           "accepts_per_req": round(deltas["PassiveOpens"] / requests, 4)
           if requests and "PassiveOpens" in deltas else None,
           "time_wait_per_req": round(deltas["TW"] / requests, 4) if requests and "TW" in deltas else None,
           "connect_failures": connect_failures}
    out["bound"] = bound_reason(out)
    return out


def bound_reason(k: dict) -> str | None:
    """Why the kernel, not the model, was the bound: a limit was hit during the window, or None."""
    d, levels, lim = k["deltas"], k["levels"], k["limits"]
    reasons = []
    if (d.get("ListenOverflows", 0) > 0 or d.get("ListenDrops", 0) > 0) and k.get("connect_failures", 0) > 0:
        reasons.append(f"accept queue full: ListenOverflows +{d.get('ListenOverflows', 0)}, "
                       f"ListenDrops +{d.get('ListenDrops', 0)}, wrk connect errors and timeouts "
                       f"{k['connect_failures']}")
    tw = levels.get("port_tw", {}).get("after")  # this point's own TIME_WAIT sockets
    cap = lim.get("tcp_max_tw_buckets")
    if tw:
        if d.get("TCPTimeWaitOverflow", 0) > 0:
            reasons.append(f"TIME_WAIT table full: TCPTimeWaitOverflow +{d['TCPTimeWaitOverflow']} "
                           f"(tcp_max_tw_buckets {cap}, {tw} on the server's port)")
        elif cap and tw >= TW_FULL_FRACTION * cap:
            reasons.append(f"TIME_WAIT table nearly full: {tw} on the server's port, tcp_max_tw_buckets {cap}")
        ports = lim.get("ephemeral_ports")
        if ports and tw >= TW_FULL_FRACTION * ports:
            reasons.append(f"ephemeral ports nearly used up: {tw} TIME_WAIT sockets on the server's port, "
                           f"{ports} ports in the range")
    return "; ".join(reasons) or None


def apply_verdict(record: dict) -> None:
    """Turns the record's verdict into "kernel-bound" when its kernel window names a bound; the
    evidence keeps the earlier verdict and figures after the kernel's reason."""
    k = record.get("kernel")
    if not k or not k.get("bound"):
        return
    record["verdict_evidence"] = (f"kernel limit: {k['bound']} (was {record.get('verdict')}: "
                                  f"{record.get('verdict_evidence')})")
    record["verdict"] = "kernel-bound"
