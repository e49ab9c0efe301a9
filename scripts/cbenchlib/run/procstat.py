"""Samples of a server's resource use from /proc, and the figures between two samples.

A sample covers every thread of the process and of its live descendants (the
workers of a multi-process peer such as nginx; zombies are skipped): CPU time from /proc/PID/stat (which already sums all
threads, living and exited), memory and thread count from /proc/PID/status,
context switches summed over /proc/PID/task/*/status (the process-level
status file shows the main thread's only), and read/write system-call counts
from /proc/PID/io.

Caveats, recorded with the results in SCHEMA.md:
- context switches of threads that exit between two samples are lost;
- syscr/syscw count the read- and write-family calls (read, readv, pread,
  write, writev, pwrite, sendfile, ...); recv/send/recvmsg/sendmsg/epoll_wait
  and friends are not counted by the kernel here.
"""
from __future__ import annotations

import time


def parse_stat(text: str, ticks_per_s: int) -> dict:
    """utime/stime (seconds) and num_threads from a /proc/PID/stat line."""
    # comm (field 2) is in parentheses and may contain spaces or ')': split at the last ')'.
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state); utime is field 14, stime 15, num_threads 20.
    return {"utime_s": int(rest[11]) / ticks_per_s, "stime_s": int(rest[12]) / ticks_per_s,
            "num_threads": int(rest[17]), "ppid": int(rest[1]), "state": rest[0]}


def parse_status(text: str) -> dict:
    """The 'Key: value' fields we use from /proc/PID/status (kB for memory)."""
    wanted = {"VmHWM": "vm_hwm_kb", "VmRSS": "vm_rss_kb", "VmSize": "vm_size_kb",
              "Threads": "threads", "voluntary_ctxt_switches": "ctx_voluntary",
              "nonvoluntary_ctxt_switches": "ctx_involuntary"}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            out[wanted[key]] = int(value.split()[0])
    return out


def parse_io(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("syscr", "syscw"):
            out[key] = int(value)
    return out


def sample(host, pid: int, include_descendants: bool = True) -> dict:
    """One sample of the process tree rooted at pid. Raises OSError if pid is gone.

    Keys: t (monotonic s), cpu_user_s, cpu_sys_s, rss_kb, hwm_kb, vmsize_kb, threads,
    ctx_voluntary, ctx_involuntary, syscr, syscw (None if /proc/PID/io is unreadable),
    pids (the processes summed).
    """
    ticks = host.clock_ticks()
    pids = [pid] + (host.descendants(pid) if include_descendants else [])
    total = {"cpu_user_s": 0.0, "cpu_sys_s": 0.0, "rss_kb": 0, "hwm_kb": 0, "vmsize_kb": 0,
             "threads": 0, "ctx_voluntary": 0, "ctx_involuntary": 0, "syscr": 0, "syscw": 0}
    io_ok = True
    counted = []
    for i, p in enumerate(pids):
        try:
            stat = parse_stat(host.read_proc(p, "stat"), ticks)
            status = parse_status(host.read_proc(p, "status"))
        except OSError:
            if i == 0:
                raise
            continue  # a descendant that just exited
        if i > 0 and stat["state"] in ("Z", "X"):
            # A dead descendant not yet reaped (h2o never reaps its exited crash handler): it holds
            # no memory and runs nothing, and its CPU time will never change.
            continue
        counted.append(p)
        total["cpu_user_s"] += stat["utime_s"]
        total["cpu_sys_s"] += stat["stime_s"]
        total["rss_kb"] += status.get("vm_rss_kb", 0)
        total["hwm_kb"] += status.get("vm_hwm_kb", 0)
        total["vmsize_kb"] += status.get("vm_size_kb", 0)
        total["threads"] += status.get("threads", stat["num_threads"])
        for tid in host.tasks(p):
            try:
                ts = parse_status(host.read_proc(p, f"task/{tid}/status"))
            except OSError:
                continue  # thread exited between listdir and read
            total["ctx_voluntary"] += ts.get("ctx_voluntary", 0)
            total["ctx_involuntary"] += ts.get("ctx_involuntary", 0)
        try:
            io = parse_io(host.read_proc(p, "io"))
            total["syscr"] += io["syscr"]
            total["syscw"] += io["syscw"]
        except (OSError, KeyError):
            io_ok = False
    if not io_ok:
        total["syscr"] = total["syscw"] = None
    total["t"] = time.monotonic()
    total["pids"] = counted
    return total


def window(before: dict, after: dict) -> dict:
    """The server figures of SCHEMA.md between two samples (counters as differences)."""
    def diff(key):
        if before.get(key) is None or after.get(key) is None:
            return None
        return after[key] - before[key]

    return {
        "cpu_user_s": round(diff("cpu_user_s"), 3),
        "cpu_sys_s": round(diff("cpu_sys_s"), 3),
        "rss_peak_kb": after["hwm_kb"],
        "rss_final_kb": after["rss_kb"],
        "threads": max(before["threads"], after["threads"]),
        "threads_start": before["threads"],
        "threads_end": after["threads"],
        "ctx_voluntary": diff("ctx_voluntary"),
        "ctx_involuntary": diff("ctx_involuntary"),
        "syscr": diff("syscr"),
        "syscw": diff("syscw"),
        "window_s": round(after["t"] - before["t"], 4),
        "processes": len(after.get("pids", [])) or 1,
    }


# /proc/stat's per-CPU columns, in order (proc(5)); guest time is already inside user.
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def parse_system_stat_fields(text: str) -> dict:
    """{'all' | '<cpu number>': {field: ticks}} for STAT_FIELDS from /proc/stat's cpu lines."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *values = line.split()
        v = [int(x) for x in values[:8]] + [0] * max(0, 8 - len(values))
        out["all" if name == "cpu" else name[3:]] = dict(zip(STAT_FIELDS, v))
    return out


def parse_system_stat(text: str) -> dict:
    """{'all' | '<cpu number>': (busy ticks, total ticks)} from /proc/stat's cpu lines.

    busy = user + nice + system + irq + softirq. Steal (time the hypervisor ran something else
    while this vCPU wanted to run) is not busy: it is disturbance, reported apart by
    cpu_window. total = busy + idle + iowait + steal.
    """
    out = {}
    for cpu, f in parse_system_stat_fields(text).items():
        busy = f["user"] + f["nice"] + f["system"] + f["irq"] + f["softirq"]
        out[cpu] = (busy, busy + f["idle"] + f["iowait"] + f["steal"])
    return out


def machine_window(before: dict, after: dict, ticks_per_s: int) -> dict:
    """Per-CPU busy fraction and the machine's busy CPU-seconds between two /proc/stat samples."""
    busy = {}
    for cpu, (b1, t1) in after.items():
        if cpu == "all" or cpu not in before:
            continue
        b0, t0 = before[cpu]
        busy[cpu] = round((b1 - b0) / (t1 - t0), 4) if t1 > t0 else None
    b0, _ = before.get("all", (0, 0))
    b1, _ = after.get("all", (0, 0))
    return {"cpu_busy": busy, "busy_cpu_s": round((b1 - b0) / ticks_per_s, 3)}


def parse_softirqs(text: str) -> dict:
    """{'<cpu number>': {softirq name: count}} from /proc/softirqs (counts, not time)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {}
    cpus = [c[3:] for c in lines[0].split()]
    out = {c: {} for c in cpus}
    for ln in lines[1:]:
        name, *counts = ln.split()
        for c, n in zip(cpus, counts):
            out[c][name.rstrip(":")] = int(n)
    return out


def cpu_window(stat_before: str, stat_after: str, softirqs_before: str | None,
               softirqs_after: str | None, server_cpus: list[str], client_cpus: list[str]) -> dict:
    """Per-CPU time split over one measured window, from two /proc/stat (and /proc/softirqs) texts.

    Returns {"cpus": {cpu: {"busy_frac", "user_frac", "system_frac", "irq_frac",
    "softirq_frac", "steal_frac", "idle_frac", "net_rx", "net_tx"}}, "softirq_frac":
    {"server", "client"}, "steal_frac": {"server", "client"}, "busy_frac": {...}} where each
    fraction is of the CPU's wall time in the window and server/client average their CPUs.
    busy excludes steal. softirq time is only what the tick sampled in softirq context: with
    no CONFIG_IRQ_TIME_ACCOUNTING, softirq work done on the way out of a system call is charged
    to the task as system time, so this undercounts it (method section of REPORT.md).
    """
    a = parse_system_stat_fields(stat_before)
    b = parse_system_stat_fields(stat_after)
    sa = parse_softirqs(softirqs_before) if softirqs_before else {}
    sb = parse_softirqs(softirqs_after) if softirqs_after else {}
    cpus = {}
    for cpu, f1 in b.items():
        if cpu == "all" or cpu not in a:
            continue
        d = {k: f1[k] - a[cpu][k] for k in STAT_FIELDS}
        total = sum(d.values())
        if total <= 0:
            continue

        def frac(x):
            return round(x / total, 4)

        entry = {"busy_frac": frac(d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]),
                 "user_frac": frac(d["user"] + d["nice"]), "system_frac": frac(d["system"]),
                 "irq_frac": frac(d["irq"]), "softirq_frac": frac(d["softirq"]),
                 "steal_frac": frac(d["steal"]), "idle_frac": frac(d["idle"] + d["iowait"])}
        if cpu in sa and cpu in sb:
            for name, key in (("NET_RX", "net_rx"), ("NET_TX", "net_tx")):
                if name in sa[cpu] and name in sb[cpu]:
                    entry[key] = sb[cpu][name] - sa[cpu][name]
        cpus[cpu] = entry

    def mean_of(which, field):
        vals = [cpus[c][field] for c in which if c in cpus]
        return round(sum(vals) / len(vals), 4) if vals else None

    out = {"cpus": cpus}
    for field in ("softirq_frac", "steal_frac", "busy_frac"):
        out[field] = {"server": mean_of(server_cpus, field), "client": mean_of(client_cpus, field)}
    return out


def cpu_list(spec: str | None) -> list[str]:
    """"0", "0-1", "0,2" -> ["0"], ["0", "1"], ["0", "2"] (taskset's list syntax)."""
    out = []
    for part in (spec or "").split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += [str(i) for i in range(int(lo), int(hi) + 1)]
        elif part:
            out.append(part)
    return out


def read_softirqs() -> str | None:
    try:
        with open("/proc/softirqs", encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


# Steal above 5% of a pinned CPU's window: the vCPU was runnable but the hypervisor ran something
# else for a twentieth of the window, as large as a typical run-to-run difference, so the point
# is flagged (its CPU time is not inflated by it: steal is not charged to the task).
STEAL_DISTURBED_FRAC = 0.05


def steal_disturbance(machine: dict | None) -> str | None:
    """"DISTURBED: hypervisor steal ..." when a pinned side's steal exceeds STEAL_DISTURBED_FRAC."""
    steal = (machine or {}).get("steal_frac") or {}
    bad = [f"{side} CPU {v * 100:.0f}%" for side, v in sorted(steal.items())
           if isinstance(v, (int, float)) and v > STEAL_DISTURBED_FRAC]
    return "DISTURBED: hypervisor steal " + ", ".join(bad) if bad else None
