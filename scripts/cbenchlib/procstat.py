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


def parse_system_stat(text: str) -> dict:
    """{'all' | '<cpu number>': (busy ticks, total ticks)} from /proc/stat's cpu lines.

    busy = user + nice + system + irq + softirq + steal (guest time is inside user);
    total = busy + idle + iowait.
    """
    out = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *values = line.split()
        v = [int(x) for x in values[:8]] + [0] * max(0, 8 - len(values))
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        busy = user + nice + system + irq + softirq + steal
        out["all" if name == "cpu" else name[3:]] = (busy, busy + idle + iowait)
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
