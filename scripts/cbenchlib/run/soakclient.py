"""The soak's churn client: threads that open and close connections continuously against one
server, each thread in one role, counting what the server answered.

Roles (ROLES; a thread keeps its role for the whole soak):
  keepalive  one connection, GET / after GET /; every MALFORMED_EVERY-th request is malformed
             instead, which must answer 4xx and close, after which the thread reconnects
  close      one GET / per connection, then the client closes
  abort      half a request, then the client closes (the server sees EOF mid-request)
  slow       GET /bytes?n=SLOW_BODY_BYTES read SLOW_READ_BYTES at a time with a pause: the server
             meets a full send buffer and must wait for the reader

It is a correctness client, not a load generator (cbench-load saturates the server beside it):
plain blocking sockets, one thread per connection, a response parsed just enough to know its
status and where it ends.
"""
from __future__ import annotations

import dataclasses
import socket
import threading
import time

ROLES = ("keepalive", "close", "abort", "slow")
MALFORMED_EVERY = 100
SLOW_BODY_BYTES = 256 * 1024
SLOW_READ_BYTES = 8192
SLOW_PAUSE_S = 0.005          # ~1.6 MB/s per slow reader: slower than loopback, a few KiB of stall
SOCKET_TIMEOUT_S = 10.0       # a server that does not answer within this has stopped answering
GOOD_REQUEST = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
HALF_REQUEST = b"GET / HTTP/1.1\r\nHo"
# A request line with no method, version or path: every model's codec answers 400 and closes.
MALFORMED_REQUEST = b"\x01 not http at all\r\nHost: soak\r\n\r\n"


@dataclasses.dataclass
class ChurnCounts:
    """What the client saw, summed over its threads. `unexpected` holds the first few surprises
    (wrong status, a timeout, a refused or reset connection where an answer was due)."""
    requests_ok: int = 0
    malformed_rejected: int = 0
    connections: int = 0
    aborted: int = 0
    slow_bytes: int = 0
    errors: int = 0
    unexpected: list = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class ResponseError(Exception):
    """The server's answer broke what the role expected; the message says how."""


def read_response(sock: socket.socket, buf: bytes, chunk_bytes: int = 65536,
                  pause_s: float = 0.0) -> tuple[int, int, bytes, bool]:
    """One response from sock after the bytes already in buf: (status, body bytes, the bytes
    after it, whether the server asked to close). Reads chunk_bytes at a time with pause_s
    between reads (a slow reader). Raises ResponseError on EOF before the end."""
    while b"\r\n\r\n" not in buf:
        buf += _recv(sock, chunk_bytes)
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ResponseError(f"bad status line {lines[0][:60]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    length = int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        if pause_s:
            time.sleep(pause_s)
        rest += _recv(sock, chunk_bytes)
    return int(parts[1]), length, rest[length:], headers.get(b"connection", b"").lower() == b"close"


def _recv(sock: socket.socket, n: int) -> bytes:
    data = sock.recv(n)
    if not data:
        raise ResponseError("connection closed before the response ended")
    return data


class ChurnClient:
    """Threads in the given roles against addr:port until stop(); counts() afterwards."""

    def __init__(self, addr: str, port: int, roles: list[str]):
        self.addr, self.port, self.roles = addr, port, list(roles)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counts = ChurnCounts()
        self._threads = [threading.Thread(target=self._loop, args=(role, i), daemon=True,
                                          name=f"soak-{role}-{i}") for i, role in enumerate(self.roles)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> ChurnCounts:
        """Stops every thread (each closes its connection) and returns the counts."""
        self._stop.set()
        for t in self._threads:
            t.join(SOCKET_TIMEOUT_S + 1.0)
        return self.counts()

    def counts(self) -> ChurnCounts:
        with self._lock:
            return dataclasses.replace(self._counts, unexpected=list(self._counts.unexpected))

    def _add(self, **deltas) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self._counts, key, getattr(self._counts, key) + value)

    def _surprise(self, role: str, what: str) -> None:
        with self._lock:
            self._counts.errors += 1
            if len(self._counts.unexpected) < 10:
                self._counts.unexpected.append(f"{role}: {what}")

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.addr, self.port), timeout=SOCKET_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._add(connections=1)
        return sock

    def _loop(self, role: str, index: int) -> None:
        step = {"keepalive": self._keepalive, "close": self._close,
                "abort": self._abort, "slow": self._slow}[role]
        while not self._stop.is_set():
            try:
                step(index)
            except (OSError, ResponseError) as exc:
                if self._stop.is_set():
                    return
                self._surprise(role, f"{exc.__class__.__name__}: {exc}")
                self._stop.wait(0.1)  # a server that refuses is not hammered in a tight loop

    def _keepalive(self, index: int) -> None:
        """Requests on one connection until a malformed one ends it (or the soak does)."""
        with self._connect() as sock:
            buf, n = b"", index * 37  # threads reach their malformed request at different times
            while not self._stop.is_set():
                n += 1
                if n % MALFORMED_EVERY == 0:
                    sock.sendall(MALFORMED_REQUEST)
                    status, _, _, _ = read_response(sock, buf)
                    if not 400 <= status < 500:
                        raise ResponseError(f"malformed request answered {status}, not 4xx")
                    self._expect_eof(sock)
                    self._add(malformed_rejected=1)
                    return
                sock.sendall(GOOD_REQUEST)
                status, _, buf, closing = read_response(sock, buf)
                self._count_ok(status, "GET /")
                if closing:
                    return

    def _close(self, index: int) -> None:
        with self._connect() as sock:
            sock.sendall(GOOD_REQUEST)
            status, _, _, _ = read_response(sock, b"")
            self._count_ok(status, "GET /")

    def _abort(self, index: int) -> None:
        with self._connect() as sock:
            sock.sendall(HALF_REQUEST)
        self._add(aborted=1)
        self._stop.wait(0.002)  # an abort is cheap: pace it so it does not crowd out the others

    def _slow(self, index: int) -> None:
        with self._connect() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.sendall(b"GET /bytes?n=%d HTTP/1.1\r\nHost: soak\r\n\r\n" % SLOW_BODY_BYTES)
            status, length, _, _ = read_response(sock, b"", SLOW_READ_BYTES, SLOW_PAUSE_S)
            self._count_ok(status, "GET /bytes")
            self._add(slow_bytes=length)

    def _count_ok(self, status: int, what: str) -> None:
        if status != 200:
            raise ResponseError(f"{what} answered {status}")
        self._add(requests_ok=1)

    @staticmethod
    def _expect_eof(sock: socket.socket) -> None:
        """After a 4xx with Connection: close the server must close: the next read is EOF."""
        try:
            data = sock.recv(1)
        except ConnectionResetError:
            return
        if data:
            raise ResponseError("the server kept the connection open after answering a malformed request")
