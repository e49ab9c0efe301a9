"""Where a request's server CPU goes: user space, system-call entry and exit, the I/O
interface (epoll or io_uring), the TCP stack, scheduling, and the rest of the kernel.

For each model, interleaved over repetitions: the server pinned to SERVER_CPU, wrk pinned to
CLIENT_CPU, and over wrk's run `perf record -e cpu-clock -C SERVER_CPU` (every sample of that CPU,
whoever ran) and `perf stat -e raw_syscalls:sys_enter -p SERVER_PID` (the server's system calls,
not its neighbours': this runs on busy machines too). The samples
of the server's own threads (comm cbench-server, or its io_uring workers iou-*) are grouped by
symbol into the classes below; everything else that ran on that CPU (softirq threads, other
processes of a busy machine) is reported apart, as `other_on_cpu`. A class's share of the
server's samples times the server's CPU time per request (utime+stime from /proc/PID/stat over
the run, divided by wrk's requests) is its time per request. The mechanism counters
(--counters-out: sq_submissions, cq_completions, ring_enters) are read around the same window
(SIGUSR1 snapshots) and given per request.

The classes are rules on symbol names (CLASSES for the kernel, USER_CLASSES for user space, first
match wins; the same classifier groups `cbench profile`, profiling.py); `top_other_kernel` lists the
kernel symbols no rule claimed, so a reader can see what the "other" bucket holds. One job:
measure and print (or write JSON); it judges nothing.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import syscount
from . import wrk as wrkmod

# The one classifier of symbols (the CPU breakdown's and the profiles'): (class, regex on the
# symbol), kernel symbols and user-space symbols apart. Order matters: the first match wins.
CLASSES: list[tuple[str, re.Pattern]] = [
    ("syscall_entry_exit", re.compile(
        r"^(entry_SYSCALL|do_syscall_64|syscall_exit|exit_to_user_mode|syscall_return|__x64_sys_|"
        r"x64_sys_call|entry_SYSRET|srso_|__x86_return_thunk|__x86_indirect|fpregs_|switch_fpu|"
        r"__rseq|rseq_|restore_fpregs|syscall_trace|__audit|audit_)")),
    ("io_interface", re.compile(
        r"^(io_|__io_|io_uring|ep_|__ep_|do_epoll|epoll_|__fget|fget|fdget|__fdget|fput|__fput|"
        r"sock_poll|tcp_poll|__pollwait|eventfd|task_work|__task_work|pipe_|anon_pipe)")),
    ("tcp_stack", re.compile(
        r"^(tcp|__tcp|ip_|__ip|ipv4_|inet|__inet|sk_|__sk_|sock_|__sock|skb|__skb|kfree_skb|__kfree_skb|"
        r"consume_skb|alloc_skb|__alloc_skb|net_|__net|netif|__netif|napi|__napi|process_backlog|loopback|"
        r"dev_|__dev_|validate_xmit|nf_|__copy_skb|release_sock|lock_sock|__release_sock|__lock_sock|"
        r"security_sock|security_socket|bpf_|__cgroup_bpf|_copy_to_iter|_copy_from_iter|copy_user|"
        r"rep_movs|__check_object_size|check_heap_object|__local_bh|do_softirq|__do_softirq|handle_softirqs|"
        r"raw_local_deliver|dst_|__netdev|eth_|neigh_|page_frag|mem_cgroup_charge_skmem|__sys_sendto|"
        r"__sys_recvfrom|__sys_send|__sys_recv|sys_recvfrom|sys_sendto|ksys_read|ksys_write|vfs_read|"
        r"vfs_write|new_sync|rw_verify|security_file|__x86_sys_read|import_ubuf|simple_copy|kmem_cache|"
        r"__kmem_cache|kmalloc|__kmalloc|kfree|__slab|slab_|___slab|memcg_slab|refill_obj|obj_cgroup)")),
    ("futex", re.compile(r"^(futex_|__futex|do_futex|get_futex|hash_futex|__x64_sys_futex)")),
    ("sched_wakeup", re.compile(
        r"^(schedule|__schedule|try_to_wake_up|ttwu|finish_task_switch|pick_next|.*_task_fair|"
        r"update_curr|update_load|psi_|__wake_up|wake_up|autoremove_wake|default_wake|dequeue|enqueue|"
        r"select_task_rq|set_next_entity|put_prev|hrtimer|__hrtimer|tick_|native_|__sysvec|sysvec_|"
        r"asm_sysvec|irq|__irq|_raw_spin|raw_spin|__raw_spin|ktime_get|read_tsc|kvm_|pvclock|"
        r"check_preempt|resched|prepare_task_switch|__switch_to|context_switch|__update_load|"
        r"reweight|avg_vruntime|place_entity|update_rq|__enqueue|__dequeue|rcu_)")),
]
# User space (every DSO but the kernel's). Names as perf prints them (demangled C++).
USER_CLASSES: list[tuple[str, re.Pattern]] = [
    # Locks and condition variables: glibc's mutex and futex wrappers, std::mutex, the --gvl lock.
    ("lock_user", re.compile(
        r"(pthread_mutex|pthread_cond|__lll_lock|__lll_unlock|lll_lock|futex_wait|futex_wake|__futex|"
        r"pthread_spin|pthread_rwlock|sem_wait|sem_post|std::mutex|std::condition_variable|"
        r"std::unique_lock|Gvl|gvl)")),
    # The request path every model shares: the HTTP codec, the pump and the sessions around it
    # (read, feed, flush), the handlers (/, /spin, /sleep) and the response bytes.
    ("codec_handler", re.compile(
        r"(cb::http::|Codec|codec|Pump|pump|Session|handler|Handler|handle_request|spin_for|busy_spin|"
        r"http_parser|phr_parse|picohttp|respon|Respon|to_chars|llhttp)")),
    # The event library's own code: libev, libuv, Asio's reactor, libc's poll wrappers.
    ("event_library", re.compile(
        r"^(ev_|evpipe|fd_reify|fd_change|fd_kill|epoll_poll|epoll_modify|epoll_wait|epoll_ctl|"
        r"__GI_epoll|__epoll|poll|ppoll|array_needsize|timers_reify|queue_events|uv_|uv__|"
        r"boost::asio::detail::epoll_reactor|boost::asio::detail::scheduler::do_run_one|io_uring_)")),
    # The model's own loop, its queues and directives, fibers and coroutines, threads.
    ("loop_queue", re.compile(
        r"(cb::|Queue|queue|deque|Selector|selector|Reactor|reactor|Worker|worker|Loop|loop|"
        r"Directive|directive|fiber|Fiber|boost::context|jump_fcontext|ontop_fcontext|make_fcontext|"
        r"boost::asio|coroutine|std::thread|start_thread|clone3?$|^\(anonymous namespace\)::)")),
]
# Helpers that run on behalf of whoever called them: a sample there counts for the nearest caller
# a rule claims (classify_stack). User space: whatever no user rule claims (memcpy, malloc, the
# libc send wrapper); kernel: the spin-lock primitives (where cpu-clock samples taken with
# interrupts off land, at the unlock) and what no kernel rule claims (__put_user in epoll_wait).
GENERIC_KERNEL = re.compile(r"^(_raw_spin|raw_spin|__raw_spin|native_queued_spin|queued_spin)")
KERNEL_DSO = "[kernel.kallsyms]"
USER_OTHER = "user_other"   # libc, the allocator, anything no user rule claims
OTHER_KERNEL = "other_kernel"
# The breakdown's columns: user space as one class, futex with the scheduler.
BREAKDOWN_CLASS = {"lock_user": "user", "codec_handler": "user", "event_library": "user",
                   "loop_queue": "user", USER_OTHER: "user", "futex": "sched_wakeup"}
# `cbench profile`'s groups: where a request's time goes.
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("codec and handler", ("codec_handler",)),
    ("loop and queue", ("loop_queue",)),
    ("kernel TCP", ("tcp_stack",)),
    ("epoll or libev", ("io_interface", "event_library")),
    ("futex and scheduler", ("futex", "sched_wakeup", "lock_user")),
    ("syscall entry and exit", ("syscall_entry_exit",)),
    ("other user space", (USER_OTHER,)),
    ("other kernel", (OTHER_KERNEL,)),
]
GROUP_OF = {c: g for g, cs in GROUPS for c in cs}


def classify(dso: str, sym: str) -> str:
    """The class of one symbol (a key of GROUP_OF); never raises."""
    if dso == KERNEL_DSO:
        for name, rx in CLASSES:
            if rx.match(sym):
                return name
        return OTHER_KERNEL
    for name, rx in USER_CLASSES:
        if rx.search(sym):
            return name
    return USER_OTHER


def _generic(dso: str, sym: str, cls: str) -> bool:
    return cls in (USER_OTHER, OTHER_KERNEL) or (dso == KERNEL_DSO and bool(GENERIC_KERNEL.match(sym)))


def classify_stack(frames: list[tuple[str, str]]) -> str:
    """The class of one sample from its call chain, leaf first as (dso, symbol): the leaf's class,
    except that a generic leaf (see GENERIC_KERNEL) takes the class of the nearest caller in the
    same space (user or kernel) that a rule claims, so a codec's memcpy counts as the codec and a
    wake-up's spin unlock as the scheduler. System-call entry frames, at the root of every kernel
    stack, are never borrowed."""
    if not frames:
        return USER_OTHER
    leaf_dso, leaf_sym = frames[0]
    leaf = classify(leaf_dso, leaf_sym)
    if not _generic(leaf_dso, leaf_sym, leaf):
        return leaf
    kernel = leaf_dso == KERNEL_DSO
    for dso, sym in frames[1:]:
        if (dso == KERNEL_DSO) != kernel:
            break
        c = classify(dso, sym)
        if not _generic(dso, sym, c) and c != "syscall_entry_exit":
            return c
    return leaf


# `perf report --stdio --no-children -n --sort comm,dso,sym` lines:
#   "    12.34%          1234  cbench-server  [kernel.kallsyms]  [k] tcp_sendmsg_locked"
REPORT_LINE = re.compile(r"^\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+(\S+)\s+\[([.kgu])\]\s+(.*?)\s*$")


def parse_report(text: str) -> list[tuple[str, str, str, int]]:
    """(comm, dso, symbol, samples) rows of a perf report."""
    rows = []
    for line in text.splitlines():
        m = REPORT_LINE.match(line)
        if m:
            rows.append((m.group(3), m.group(4), m.group(6), int(m.group(2))))
    return rows


def is_server_comm(comm: str) -> bool:
    return comm.startswith("cbench-server") or comm.startswith("iou-")


def breakdown(rows: list[tuple[str, str, str, int]], cpu_us_per_req: float) -> dict:
    """Classes' sample counts, shares of the server's samples and microseconds per request."""
    counts: dict[str, int] = {}
    other_kernel: dict[str, int] = {}
    other_on_cpu: dict[str, int] = {}
    for comm, dso, sym, n in rows:
        if not is_server_comm(comm):
            other_on_cpu[comm] = other_on_cpu.get(comm, 0) + n
            continue
        c = BREAKDOWN_CLASS.get(classify(dso, sym), classify(dso, sym))
        counts[c] = counts.get(c, 0) + n
        if c == "other_kernel":
            other_kernel[sym] = other_kernel.get(sym, 0) + n
    total = sum(counts.values())
    classes = {}
    for c in ["user", "syscall_entry_exit", "io_interface", "tcp_stack", "sched_wakeup", "other_kernel"]:
        n = counts.get(c, 0)
        share = n / total if total else 0.0
        classes[c] = {"samples": n, "share": round(share, 4), "us_per_req": round(share * cpu_us_per_req, 3)}
    return {"server_samples": total, "classes": classes,
            "top_other_kernel": sorted(other_kernel.items(), key=lambda kv: -kv[1])[:8],
            "other_on_cpu_samples": dict(sorted(other_on_cpu.items(), key=lambda kv: -kv[1])[:6])}


def _cpu_ticks(pid: int) -> int:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def _read_counters(path: Path, after_snapshot: int, timeout_s: float = 3.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            d = json.loads(path.read_text())
            if d.get("snapshot", -1) > after_snapshot:
                return d
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def measure(server_bin: str, model: str, threads: int, wrk_bin: str, wrk_threads: int, connections: int,
            pipeline: int, duration_s: int, server_cpu: str, client_cpu: str, path: str = "/") -> dict:
    """One run of one model; returns its record (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="cbench-breakdown-") as tmp:
        tmpd = Path(tmp)
        counters = tmpd / "counters.json"
        srv = subprocess.Popen(["taskset", "-c", server_cpu, server_bin, "--model", model, "--port", "0",
                                "--threads", str(threads), "--counters-out", str(counters)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            m = re.search(r"port=(\d+).*pid=(\d+)", line)
            if not m:
                raise RuntimeError(f"{model}: no readiness line: {line!r} {srv.stderr.read()!r}")
            port, pid = int(m.group(1)), int(m.group(2))
            url = f"http://127.0.0.1:{port}{path}"
            subprocess.run(["taskset", "-c", client_cpu, wrk_bin, "-t1", "-c4", "-d1s", url],
                           capture_output=True, timeout=30)  # warm-up
            srv.send_signal(signal.SIGUSR1)
            c0 = _read_counters(counters, -1)
            data = tmpd / "perf.data"
            rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-C", server_cpu,
                                    "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # System calls of the server's threads only (-p: on a busy machine -C would count
            # every process that shares the CPU); its threads all exist by now.
            st = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.2)
            t0 = _cpu_ticks(pid)
            out = subprocess.run(["taskset", "-c", client_cpu,
                                  *wrkmod.command(wrk_bin, url, wrk_threads, connections, duration_s, 10, pipeline)],
                                 capture_output=True, text=True, timeout=duration_s + 60)
            t1 = _cpu_ticks(pid)
            for p in (st, rec):
                p.send_signal(signal.SIGINT)
            syscalls = wrkmod_syscalls(st.communicate(timeout=30)[1])
            rec.wait(timeout=60)
            srv.send_signal(signal.SIGUSR1)
            c1 = _read_counters(counters, c0.get("snapshot", -1))
            w = wrkmod.parse(out.stdout, pipeline)
            report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-n",
                                     "--sort", "comm,dso,sym"], capture_output=True, text=True, timeout=300).stdout
        finally:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
    reqs = w["requests"] or 1
    cpu_us_per_req = (t1 - t0) / os.sysconf("SC_CLK_TCK") * 1e6 / reqs
    per_req = {}
    for k in ("sq_submissions", "cq_completions", "ring_enters", "poll_rounds"):
        a, b = c0.get("counters", {}).get(k), c1.get("counters", {}).get(k)
        if a is not None and b is not None:
            per_req[k] = round((b - a) / reqs, 4)
    rec = {"model": model, "threads": threads, "wrk": f"-t{wrk_threads} -c{connections} -p{pipeline} {path}",
           "requests": w["requests"], "req_per_s": w["req_per_s"],
           "server_cpu_us_per_req": round(cpu_us_per_req, 3),
           "syscalls_per_req": round(syscalls / reqs, 4) if syscalls is not None else None,
           "counters_per_req": per_req}
    rec.update(breakdown(parse_report(report), cpu_us_per_req))
    return rec


def wrkmod_syscalls(perf_stat_stderr: str) -> int | None:
    return syscount.parse(perf_stat_stderr)


def format_table(records: list[dict]) -> str:
    cols = ["user", "syscall_entry_exit", "io_interface", "tcp_stack", "sched_wakeup", "other_kernel"]
    head = f"{'model':<15} {'wrk':<22} {'req/s':>9} {'cpu us/req':>10} {'sys/req':>8} " + \
           " ".join(f"{c[:12]:>12}" for c in cols) + "  enters/req sqe/req cqe/req"
    lines = [head, "(class columns: microseconds of server CPU per request, from its share of the server's samples)"]
    for r in records:
        cl = r["classes"]
        cpr = r["counters_per_req"]
        sys = r["syscalls_per_req"]
        lines.append(f"{r['model']:<15} {r['wrk']:<22} {r['req_per_s']:>9.0f} {r['server_cpu_us_per_req']:>10.2f} "
                     f"{(f'{sys:.3f}' if sys is not None else '-'):>8} " +
                     " ".join(f"{cl[c]['us_per_req']:>12.3f}" for c in cols) +
                     f"  {cpr.get('ring_enters', '-')!s:>10} {cpr.get('sq_submissions', '-')!s:>7} "
                     f"{cpr.get('cq_completions', '-')!s:>7}")
    return "\n".join(lines)
