#!/usr/bin/python3
"""A stand-in for a multi-process peer (nginx's shape), for the sweep's own tests.

    fake_peer.py --host H --port P --workers N [--config FILE] [--prefix DIR]
                 [--deaf-after-requests N]

Like nginx with master_process on: the master binds the listener, forks N workers that each
accept and answer every request terminator with 200 "Hello, world!" (keep-alive, pipelining),
and then only waits. It prints no readiness line. SIGTERM: the master stops its workers and
exits 0. With --config, the file must exist (the sweep rendered it) and is echoed to stdout; with
--prefix, a relative --config is resolved against the prefix, as nginx's -c is against -p.
--deaf-after-requests N: a worker that has answered N requests reads on but answers nothing more
(a server that stops answering once loaded, as the published nio4r worker design does).
"""
import argparse
import os
import selectors
import signal
import socket
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"


def serve(lsock, deaf_after_requests=None):
    answered = 0
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    buffers = {}
    while True:
        for key, _ in sel.select():
            if key.fileobj is lsock:
                try:
                    conn, _ = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                conn.setblocking(True)
                sel.register(conn, selectors.EVENT_READ)
                buffers[conn] = b""
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                buffers.pop(conn, None)
                conn.close()
                continue
            buf = buffers[conn] + data
            n = buf.count(b"\r\n\r\n")
            buffers[conn] = buf[buf.rfind(b"\r\n\r\n") + 4:] if n else buf
            if deaf_after_requests is not None:
                n = max(0, min(n, deaf_after_requests - answered))
            if n:
                answered += n
                try:
                    conn.sendall(RESPONSE * n)
                except OSError:
                    pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--config")
    p.add_argument("--deaf-after-requests", type=int)
    p.add_argument("--prefix", help="like nginx -p: chdir here first, so a relative --config "
                                    "is resolved against the prefix")
    a = p.parse_args()
    if a.prefix:
        os.chdir(a.prefix)
    if a.config:
        with open(a.config) as f:
            sys.stdout.write(f.read())
            sys.stdout.flush()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((a.host, a.port))
    lsock.listen(1024)
    lsock.setblocking(False)
    workers = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            try:
                serve(lsock, a.deaf_after_requests)
            finally:
                os._exit(1)
        workers.append(pid)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    while not stopping:
        time.sleep(0.05)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in workers:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
