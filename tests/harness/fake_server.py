#!/usr/bin/python3
"""A stand-in for cbench-server with scripted faults, for the sweep's own tests.

Same command line and readiness line as cbench-server. One selectors loop,
keep-alive and pipelining (one response per request terminator). Models:
  fake-ok          answers every request with 200 "Hello, world!"
  fake-crash       exits with status 3 after --crash-after requests (default 200)
  fake-never-ready never prints the readiness line
  fake-exit        exits with status 1 at start, with a message
  fake-500         answers 500
  fake-forks       like fake-ok, and forks a child that sleeps (a process-group test)
"""
import argparse
import os
import selectors
import signal
import socket
import sys
import time

MODELS = {
    "fake-ok": "answers 200",
    "fake-crash": "exits with status 3 after --crash-after requests",
    "fake-never-ready": "never prints the readiness line",
    "fake-exit": "exits with status 1 at start",
    "fake-500": "answers 500",
    "fake-forks": "answers 200 and forks a sleeping child",
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--list", action="store_true")
    p.add_argument("--version", action="store_true")  # as cbench-server (the remote host check)
    p.add_argument("--model")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--queues")
    p.add_argument("--gvl", action="store_true")
    p.add_argument("--backend")
    p.add_argument("--idle-timeout-ms", type=int)
    p.add_argument("--crash-after", type=int, default=200)
    p.add_argument("--counters-out")  # as cbench-server: JSON on SIGUSR1 (requests as dispatches)
    p.add_argument("--response")      # as cbench-server (ignored: the fake answers its own bytes)
    a = p.parse_args()
    if a.version:
        print("cbench-server fake")
        return 0
    if a.list:
        for name, desc in MODELS.items():
            print(f"{name}\t-\t{desc}")
        return 0
    if a.model not in MODELS:
        print(f"fake-server: unknown model {a.model!r}", file=sys.stderr)
        return 2
    if a.model == "fake-exit":
        print("fake-server: scripted failure at start", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((a.host, a.port))
    lsock.listen(1024)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    if a.model == "fake-forks":
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            time.sleep(3600)
            os._exit(0)
    if a.model == "fake-never-ready":
        print("fake-server: starting, slowly", flush=True)
        time.sleep(3600)
        return 0
    print(f"cbench-server ready model={a.model} host={a.host} port={port} threads={a.threads} "
          f"pid={os.getpid()}", flush=True)
    status = b"500 Internal Server Error" if a.model == "fake-500" else b"200 OK"
    response = b"HTTP/1.1 " + status + b"\r\nContent-Length: 13\r\n\r\nHello, world!"
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    buffers = {}
    served = 0
    snapshots = [0]

    def write_counters(*_):
        if a.counters_out:
            snapshots[0] += 1
            with open(a.counters_out + ".tmp", "w") as f:
                f.write('{"snapshot": %d, "counters": {"dispatches": %d}}\n' % (snapshots[0], served))
            os.replace(a.counters_out + ".tmp", a.counters_out)
    signal.signal(signal.SIGUSR1, write_counters)
    while True:
        for key, _ in sel.select():
            if key.fileobj is lsock:
                try:
                    while True:
                        c, _ = lsock.accept()
                        c.setblocking(False)
                        sel.register(c, selectors.EVENT_READ)
                        buffers[c] = b""
                except BlockingIOError:
                    pass
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(c)
                buffers.pop(c, None)
                c.close()
                continue
            buf = buffers[c] + data
            n = buf.count(b"\r\n\r\n")
            buffers[c] = buf[buf.rfind(b"\r\n\r\n") + 4:] if n else buf
            served += n
            if a.model == "fake-crash" and served >= a.crash_after:
                os._exit(3)
            if n:
                try:
                    c.setblocking(True)
                    c.sendall(response * n)
                    c.setblocking(False)
                except OSError:
                    sel.unregister(c)
                    buffers.pop(c, None)
                    c.close()


if __name__ == "__main__":
    sys.exit(main())
