#!/usr/bin/python3
"""selector-pool's duplicate dispatch, forced and checked.

Starts cbench-server --model selector-pool with --test-worker-delay-us: a worker sleeps after it
pops a first dispatch and before it reads, so the connection's fd stays readable and the
level-triggered loop dispatches it again meanwhile. Sends REQUESTS sequential keep-alive requests
on each of CONNECTIONS connections (some pipelined in pairs), checks every response byte for byte,
then stops the server and reads its counters (--counters-out):
  --rearm level:   duplicate_dispatches > 0 (the race happened) and every response correct;
  --rearm oneshot: duplicate_dispatches == 0 (the monitor is disarmed before dispatch);
  --rearm level, --dispatch capped: the bound held readiness back (suppressed_duplicates > 0);
  --rearm level --dispatch unbounded (nio4r's mechanism): nothing held back
                   (suppressed_duplicates == 0), duplicates > 0, every response correct, and the
                   counters show the re-dispatch: more jobs pushed than requests answered;
  the defaults (no --rearm, --dispatch, --wakeup-write): the bounded stand-in, as --rearm level
                   --dispatch capped (the cap held readiness back).
Exit 0 if all hold, 1 with the counters and the first wrong response otherwise.

    duplicate_dispatch.py --server build/cbench-server [--threads 4]
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading

HOST = "127.0.0.1"
CONNECTIONS = 4
REQUESTS = 40            # per connection; with a 2 ms delay about 0.1 s of sleeping each
DELAY_US = 2000          # long against a loop round (microseconds): many rounds see the fd unread
TIMEOUT_S = 20.0
REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
BODY = b"Hello, world!"


def read_response(sock, buf):
    """One response (headers + Content-Length body) from sock; returns (response, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response head; have {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if not m:
        raise AssertionError(f"no Content-Length in {head!r}")
    n = int(m.group(1))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        rest += chunk
    return head, rest[:n], rest[n:]


def client(port, errors, i):
    try:
        with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as s:
            buf = b""
            sent = 0
            while sent < REQUESTS:
                batch = 2 if sent % 10 == 9 and sent + 2 <= REQUESTS else 1  # a few pipelined pairs
                s.sendall(REQUEST * batch)
                for _ in range(batch):
                    head, body, buf = read_response(s, buf)
                    if not head.startswith(b"HTTP/1.1 200 ") or body != BODY:
                        raise AssertionError(f"request {sent}: got {head!r} {body!r}")
                    sent += 1
            if buf:
                raise AssertionError(f"unexpected extra bytes after the last response: {buf!r}")
    except Exception as exc:  # noqa: BLE001 - reported by the main thread
        errors.append(f"connection {i}: {exc}")


# (label, --rearm, --dispatch): each mode's server arguments; None leaves the option at its default.
MODES = (("level", "level", "capped"), ("oneshot", "oneshot", "capped"), ("unbounded", "level", "unbounded"),
         ("default", None, None))


def run(server, threads, mode):
    label, rearm, dispatch = mode
    with tempfile.TemporaryDirectory() as tmp:
        counters = os.path.join(tmp, "counters.json")
        argv = [server, "--model", "selector-pool", "--host", HOST, "--port", "0", "--threads", str(threads),
                "--test-worker-delay-us", str(DELAY_US), "--counters-out", counters]
        if rearm is not None:
            argv += ["--rearm", rearm]
        if dispatch is not None:
            argv += ["--dispatch", dispatch]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            m = re.search(r" port=(\d+) ", line)
            if not m:
                return [f"{label}: no readiness line: {line!r} {proc.stderr.read()!r}"], None
            port = int(m.group(1))
            errors = []
            ts = [threading.Thread(target=client, args=(port, errors, i)) for i in range(CONNECTIONS)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(TIMEOUT_S * 2)
            if any(t.is_alive() for t in ts):
                errors.append("a client did not finish")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                status = "killed"
        if status != 0:
            errors.append(f"{label}: server exit status {status}; stderr {proc.stderr.read()[-2000:]!r}")
        try:
            with open(counters) as f:
                c = json.load(f)["counters"]
        except (OSError, ValueError) as exc:
            errors.append(f"{label}: no counters file: {exc}")
            c = None
        return errors, c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    failures = []
    for mode in MODES:
        label = mode[0]
        errors, c = run(a.server, a.threads, mode)
        failures += errors
        if c is None:
            continue
        total = CONNECTIONS * REQUESTS
        print(f"{label}: {total} requests, counters {json.dumps(c)}")
        dup, held = c["duplicate_dispatches"], c["suppressed_duplicates"]
        if label in ("level", "unbounded", "default") and dup <= 0:
            failures.append(f"{label}: duplicate_dispatches: expected > 0 (the forced race), got {dup}")
        if label == "oneshot" and dup != 0:
            failures.append(f"oneshot: duplicate_dispatches: expected 0, got {dup}")
        if label in ("level", "default") and held <= 0:
            failures.append(f"{label}: suppressed_duplicates: expected > 0 (the cap held readiness back), got {held}")
        if label == "unbounded" and held != 0:
            failures.append(f"{label}: suppressed_duplicates: expected 0 (every readiness pushed), got {held}")
        if label == "unbounded" and c["dispatches"] <= total:
            failures.append(f"unbounded: dispatches: expected > {total} (re-dispatch of unread connections), "
                            f"got {c['dispatches']}")
        if c["dispatches"] < total // 2:
            failures.append(f"{label}: dispatches: expected >= {total // 2}, got {c['dispatches']}")
    for f in failures:
        print("FAIL", f)
    print("ok" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
