"""The machine-wide benchmark lock: one exclusive flock that every benchmarking command (sweep,
micro) holds for its whole run, so two benchmarks never run at once on this machine."""
from __future__ import annotations

import fcntl
import os
import re
import time

DEFAULT_PATH = "/tmp/cbench-bench.lock"


def acquire(path: str, timeout_s: float | None, command: str, holder_text: str):
    """Takes the lock, waiting (with one message, prefixed by `command`) while another process
    holds it. Returns the open file (keep it open: closing it releases the lock), or None after
    timeout_s. Records `pid PID: holder_text` in the file for the next waiter's message."""
    f = open(path, "a+")
    waited = False
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not waited:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                # The file names the last command that wrote it; a holder that never writes it
                # (flock(1) around make's sanitizer targets) leaves a stale name behind.
                m = re.match(r"pid (\d+)", holder)
                if m and not os.path.exists(f"/proc/{m.group(1)}"):
                    holder = f"another process (the last recorded holder, {holder}, has exited)"
                print(f"{command}: waiting for the benchmark lock {path} (held by: {holder}); "
                      "only one benchmark runs at a time on this machine", flush=True)
                waited = True
            if timeout_s is not None and time.monotonic() - start >= timeout_s:
                f.close()
                return None
            time.sleep(0.5)
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}: {holder_text}\n")
    f.flush()
    return f
