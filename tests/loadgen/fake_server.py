#!/usr/bin/python3
"""Test servers for cbench-load (tests/loadgen), one thread, one loop, loopback only.

Modes (--mode):
  ok       answers every request with a 2-byte Content-Length body.
  chunked  answers with a chunked body (the generator must frame it).
  stall    like ok, but blocks its only thread ONCE, for exactly --stall-s seconds, when
           --stall-after-s seconds have passed since the first request: the coordinated-omission
           case (a closed-loop generator hides the stall; an open-loop one must not).
  close    accepts and closes every connection at once.
  garbage  answers every request with bytes that are not HTTP.

Prints "fake-server ready port=P" once listening; exits after --lifetime-s seconds (so a test that
dies never leaves it behind) or on SIGTERM.
"""
import argparse
import selectors
import socket
import sys
import time

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n"
GARBAGE = b"this is not http at all\r\n\r\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ok", "chunked", "stall", "close", "garbage"], default="ok")
    ap.add_argument("--stall-after-s", type=float, default=1.0)
    ap.add_argument("--stall-s", type=float, default=1.0)
    ap.add_argument("--lifetime-s", type=float, default=60.0)
    args = ap.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    print(f"fake-server ready port={listener.getsockname()[1]}", flush=True)

    reply = {"ok": OK, "stall": OK, "chunked": CHUNKED, "garbage": GARBAGE}.get(args.mode)
    deadline = time.monotonic() + args.lifetime_s
    first_request_at = None
    stalled = False
    pending = {}  # conn -> unparsed request bytes
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            if key.data is None:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    if args.mode == "close":
                        conn.close()
                        continue
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(conn, selectors.EVENT_READ, "conn")
                    pending[conn] = b""
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except (ConnectionError, BlockingIOError):
                data = b""
            if not data:
                sel.unregister(conn)
                pending.pop(conn, None)
                conn.close()
                continue
            buf = pending[conn] + data
            out = b""
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                now = time.monotonic()
                if first_request_at is None:
                    first_request_at = now
                if args.mode == "stall" and not stalled and now - first_request_at >= args.stall_after_s:
                    stalled = True
                    time.sleep(args.stall_s)  # the one loop thread blocks: nothing is read or sent
                out += reply
            pending[conn] = buf
            try:
                conn.sendall(out)
            except ConnectionError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
