"""Summarise a `perf record -e cpu-clock -g` profile of a Ruby replica into mechanism shares, per
thread group (the loop thread = the process's main thread; the worker threads).

The Debian libruby 3.1 has no symbol table for its static functions (no debug package reachable)
and no frame pointers, so user-space call chains stop at the first libruby frame: a sample is
classified by its kernel chain (complete) and its leaf's symbol and DSO. Categories, first match
wins, in this order: pipe, select, thread hand-off, network, memory, http_parser, GC, Ruby VM."""
import collections, re, subprocess, sys

CATS = [
    ("pipe (wake-up byte: pipe_write/pipe_read)", lambda fr, dso: any(s in ("pipe_write", "pipe_read", "anon_pipe_write", "anon_pipe_read") for s in fr)),
    ("select (epoll_wait, libev, nio4r C)", lambda fr, dso: any(s.startswith(("ep_", "do_epoll", "__x64_sys_epoll", "epoll_")) for s in fr) or "nio4r" in dso[0] or fr[0].startswith(("ev_", "NIO_"))),
    ("thread hand-off (futex, condvar, scheduler: GVL and Queue waits)", lambda fr, dso: any("futex" in s for s in fr) or fr[0].startswith(("pthread_cond", "__lll_lock", "__pthread_mutex", "pthread_mutex", "rb_native_cond", "rb_native_mutex", "rb_thread_schedule", "__GI___pthread", "___pthread_cond"))),
    ("kernel network (socket read/write, TCP, loopback softirq)", lambda fr, dso: any(re.match(r"(tcp_|__tcp|sock_|__sys_sendto|__sys_recvfrom|inet_|ip_|__ip_|net_rx|__netif|__dev_queue|skb_|__skb|bbr_|sk_|__sk)", s) for s in fr if s)),
    ("memory (malloc/free, page faults)", lambda fr, dso: any(s in ("exc_page_fault", "do_anonymous_page", "clear_page_erms", "handle_mm_fault", "do_user_addr_fault") for s in fr) or re.match(r"(_int_malloc|_int_free|malloc|free|__malloc_usable_size|realloc|calloc|cfree|_int_realloc|malloc_consolidate|unlink_chunk)", fr[0] or "") is not None),
    ("http_parser (C parser + binding)", lambda fr, dso: "http_parser" in dso[0] or (fr[0] or "").startswith("http_parser")),
    ("GC (exported rb_gc* only)", lambda fr, dso: (fr[0] or "").startswith(("rb_gc", "gc_"))),
    ("kernel other (syscall entry/exit, scheduler, timers)", lambda fr, dso: dso[0] == "[kernel.kallsyms]"),
    ("Ruby VM and core (libruby; Queue ops, monitors, objects: no symbols)", lambda fr, dso: "libruby" in dso[0]),
    ("libc other (memmove, etc.)", lambda fr, dso: "libc" in dso[0]),
]

def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "pid,tid,ip,sym,dso"], capture_output=True, text=True).stdout
    for block in out.split("\n\n"):
        lines = [l for l in block.strip().splitlines() if l.strip()]
        if not lines:
            continue
        head = lines[0].split()
        pid, tid = (int(x) for x in head[0].split("/")) if "/" in head[0] else (int(head[0]), int(head[1]))
        fr, dso = [], []
        for l in lines[1:]:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", l)
            if m:
                sym = m.group(1).split("+")[0]
                fr.append("" if sym == "[unknown]" else sym)
                dso.append(m.group(2))
        if fr:
            yield pid, tid, fr, dso

def main(path):
    tot = collections.Counter(); by = collections.defaultdict(collections.Counter); n = 0; threads = collections.Counter()
    for pid, tid, fr, dso in samples(path):
        who = "loop thread" if tid == pid else "worker threads"
        cat = next((c for c, f in CATS if f(fr, dso)), "other")
        tot[cat] += 1; by[who][cat] += 1; threads[who] += 1; n += 1
    print(f"profile {path}: {n} samples (cpu-clock)")
    for who in ("loop thread", "worker threads"):
        if threads[who]:
            print(f"  {who}: {100 * threads[who] / n:.1f}% of samples")
    print(f"  {'category':72s} {'all':>6s} {'loop':>6s} {'workers':>7s}")
    for cat, _f in CATS + [("other", None)]:
        print(f"  {cat:72s} {100 * tot[cat] / n:5.1f}% {100 * by['loop thread'][cat] / n:5.1f}% {100 * by['worker threads'][cat] / n:6.1f}%")

if __name__ == "__main__":
    main(sys.argv[1])
