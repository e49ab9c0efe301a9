"""The Ruby replicas of the published servers (servers/ruby/, peer rows ruby-*): a conformance
subset, and the Ruby versions recorded in meta.json.

Conformance: each replica is started exactly as the sweep starts its peer row (the registered
command of scenario.PEERS, rendered for 127.0.0.1 and a free port) and must answer every request
of a keep-alive connection with exactly the published 49 bytes, answer a request that arrives
in two pieces once, serve two interleaved connections, close a connection after the client's
EOF, and exit 0 on SIGTERM. Every socket operation has a timeout and tearDown kills a server still
running, so a broken replica fails the test instead of hanging it. The ctest test
harness_replicas runs it (about 2 s; harness_unit's discovery runs it too).
"""
import os
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
import unittest

from common import REPO
from cbenchlib.analysis import runload
from cbenchlib.format import scenario
from cbenchlib.render import tables
from cbenchlib.run import envinfo

HOST = "127.0.0.1"
PUBLISHED_RESPONSE = b"HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!"
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SOCKET_TIMEOUT_S = 5.0     # any one connect, send or receive
READY_TIMEOUT_S = 15.0     # from start to the first accepted connection (Ruby starts in ~0.1 s)
STOP_TIMEOUT_S = 5.0
KEEPALIVE_REQUESTS = 5

# (peer row, its $threads, racy): every Ruby replica, and the worker design with 1 and 4 workers.
# The published nio4r worker design leaves the monitor armed and has no per-connection lock, so
# with several workers a second worker can take the same connection while the first is writing
# (Ruby releases the GVL around the write): it sends the answer again, or, when the client's EOF
# is already there, has the connection closed before the first worker's answer goes out. The
# original example does this too (300 one-request connections closed at once against 4 workers:
# 296 one answer, 2 two, 2 none). For it, the checks that count answers accept any whole number
# of the published answers, never other bytes, and still require the close.
REPLICAS = (
    ("ruby-nio4r", 1, False),
    ("ruby-nio4r-workers", 1, False),
    ("ruby-nio4r-workers", 4, True),
    ("ruby-threads", 1, False),
    ("ruby-em", 1, False),
)

# The gems the replicas load; without them the conformance test cannot run here.
RUBY_REQUIRES = 'require "nio"; require "http/parser"; require "eventmachine"'


def connect(port: int) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_S)
    s.settimeout(SOCKET_TIMEOUT_S)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    """n bytes, or fewer when the server closes first (the caller's comparison then fails)."""
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def recv_until_eof(s: socket.socket) -> bytes:
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return buf
        buf += chunk


def assert_answers(test, data: bytes, expected: int, msg: str = "") -> None:
    """data is exactly `expected` published answers, or (a racy replica) a whole number of them."""
    if not test.racy:
        test.assertEqual(data, PUBLISHED_RESPONSE * expected, msg)
        return
    copies = len(data) // len(PUBLISHED_RESPONSE)
    test.assertEqual(data, PUBLISHED_RESPONSE * copies, msg)


def check_keepalive(test, port):
    with connect(port) as s:
        for i in range(KEEPALIVE_REQUESTS):
            s.sendall(REQUEST)
            test.assertEqual(recv_exactly(s, len(PUBLISHED_RESPONSE)), PUBLISHED_RESPONSE, f"request {i + 1}")


def check_split_request(test, port):
    with connect(port) as s:
        s.sendall(REQUEST[:20])
        time.sleep(0.05)  # lets the first piece arrive alone, so it is read alone
        s.sendall(REQUEST[20:])
        test.assertEqual(recv_exactly(s, len(PUBLISHED_RESPONSE)), PUBLISHED_RESPONSE)
        s.shutdown(socket.SHUT_WR)
        assert_answers(test, recv_until_eof(s), 0, "one request in two pieces got more than one answer")


def check_interleaved(test, port):
    with connect(port) as a, connect(port) as b:
        a.sendall(REQUEST)
        b.sendall(REQUEST)
        test.assertEqual(recv_exactly(b, len(PUBLISHED_RESPONSE)), PUBLISHED_RESPONSE, "b, first")
        test.assertEqual(recv_exactly(a, len(PUBLISHED_RESPONSE)), PUBLISHED_RESPONSE, "a, first")
        a.sendall(REQUEST)
        test.assertEqual(recv_exactly(a, len(PUBLISHED_RESPONSE)), PUBLISHED_RESPONSE, "a, second")
        b.sendall(REQUEST)
        test.assertEqual(recv_exactly(b, len(PUBLISHED_RESPONSE)), PUBLISHED_RESPONSE, "b, second")


def check_close_after_eof(test, port):
    """After a request and the client's EOF, the server sends exactly one answer and closes."""
    with connect(port) as s:
        s.sendall(REQUEST)
        s.shutdown(socket.SHUT_WR)
        assert_answers(test, recv_until_eof(s), 1)


CHECKS = (
    ("keep-alive: every request answered with the published 49 bytes", check_keepalive),
    ("a request in two pieces: one answer", check_split_request),
    ("two interleaved connections", check_interleaved),
    ("closes after the client's EOF", check_close_after_eof),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ReplicaConformance(unittest.TestCase):
    def setUp(self):
        ruby = shutil.which("ruby")
        if ruby is None:
            self.skipTest("no ruby on PATH (scripts/deps.sh installs it)")
        probe = subprocess.run([ruby, "-e", RUBY_REQUIRES], capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            self.skipTest(f"the replicas' gems are missing (scripts/deps.sh installs them): {probe.stderr.strip()}")
        self.servers = []

    def tearDown(self):
        for proc in self.servers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
            proc.stdout.close()

    def start(self, model: str, threads: int) -> tuple[subprocess.Popen, int]:
        """The peer row's registered command, rendered as the sweep renders it, running and
        accepting (the sweep's readiness rule)."""
        port = free_port()
        values = {"repo": REPO, "host": HOST, "port": str(port), "threads": str(threads)}
        argv = [string.Template(a).substitute(values) for a in scenario.PEERS[model]["command"]]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.servers.append(proc)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail(f"{model} exited with status {proc.returncode} before it accepted: "
                          f"{proc.stdout.read().decode(errors='replace')}")
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return proc, port
            except OSError:
                time.sleep(0.05)
        self.fail(f"{model} accepted no connection within {READY_TIMEOUT_S:g} s")

    def test_every_replica_passes_every_check(self):
        for model, threads, racy in REPLICAS:
            with self.subTest(replica=model, threads=threads):
                self.racy = racy
                proc, port = self.start(model, threads)
                for label, check in CHECKS:
                    with self.subTest(replica=model, threads=threads, check=label):
                        check(self, port)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(STOP_TIMEOUT_S), 0, f"{model}: exit status after SIGTERM")


class ReplicaCounters(ReplicaConformance):
    """The replicas that declare `counters` in PEERS take --counters-out PATH (as the sweep adds
    it: run/server.peer_counts) and write cbench-server's counters file on SIGUSR1: a snapshot
    number that grows, the pid, and counts that match what the test sent."""

    test_every_replica_passes_every_check = None  # the parent's start and tearDown only, not its test

    def test_counting_replicas_write_snapshots(self):
        import json
        from cbenchlib.run import server as run_server, servercounters
        tmp = tempfile.mkdtemp(prefix="cbench-counters-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # One worker: with two or more, two workers may hold one connection at once (the published
        # design's duplicate dispatch) and update its counts without a lock, so an answer can go
        # uncounted (a fresh clone's run read 2 of 3): the design's race, not the counters file's.
        for model, threads in (("ruby-nio4r", 1), ("ruby-nio4r-workers", 1)):
            with self.subTest(replica=model):
                self.assertTrue(scenario.PEERS[model].get("counters"))
                path = os.path.join(tmp, f"{model}.json")
                saved = scenario.PEERS[model]["command"]
                scenario.PEERS[model] = dict(scenario.PEERS[model], command=tuple(saved) + ("--counters-out", path))
                try:
                    proc, port = self.start(model, threads)
                finally:
                    scenario.PEERS[model] = dict(scenario.PEERS[model], command=saved)
                before = servercounters.snapshot(proc.pid, path)
                self.assertIsNotNone(before, f"{model}: no snapshot on SIGUSR1")
                with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_S) as conn:
                    for _ in range(3):
                        conn.sendall(REQUEST)
                        got = b""
                        while len(got) < len(PUBLISHED_RESPONSE):
                            got += conn.recv(4096)
                # A worker counts an answer just after its write returns: the client may read the
                # bytes first, so the last count can come a moment after the last answer.
                deadline = time.monotonic() + STOP_TIMEOUT_S
                while True:
                    per = servercounters.per_request(before, servercounters.snapshot(proc.pid, path), 3)
                    if per["answers"] >= 1.0 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                self.assertEqual(per["answers"], 1.0, per)
                self.assertGreaterEqual(per["dispatches"], 1.0, per)
                with open(path) as f:
                    self.assertEqual(json.load(f)["pid"], proc.pid)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(STOP_TIMEOUT_S), 0)
        rows = scenario.parse('[[rows]]\nkind = "peer"\nmodel = "ruby-nio4r-workers"\nthreads = 4\n'
                              '[[rows]]\nkind = "peer"\nmodel = "ruby-nio4r-workers"\nthreads = 2\n'
                              'command = ["my-ruby", "x.rb"]\n'
                              '[[rows]]\nkind = "peer"\nmodel = "nginx"\n'
                              '[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n', "counters.toml").rows
        got = [run_server.peer_counts(type("P", (), {"row": r})()) for r in rows]
        self.assertEqual(got, [True, False, False])  # its own command may not take the flag


class ReplicaRows(unittest.TestCase):
    """The peer rows of the replicas say they are not hardened: in each point's row and in tables."""

    def test_replica_rows_say_they_are_not_hardened(self):
        sc = scenario.parse('[[rows]]\nkind = "peer"\nmodel = "ruby-nio4r-workers"\nthreads = 4\n'
                            '[[rows]]\nkind = "peer"\nmodel = "nginx"\n'
                            '[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n', "replicas.toml")
        by = {r.model: r.to_json() for r in sc.rows}
        self.assertEqual(by["ruby-nio4r-workers"]["hardening"], "replica: not hardened")
        self.assertNotIn("hardening", by["nginx"])
        self.assertEqual(sc.rows[0].command[-2:], ("--workers", "$threads"))

    def test_selector_pool_rows_with_the_original_flags_are_not_hardened(self):
        # (extra_args, hardening): the default is the bounded stand-in; either of nio4r's own
        # mechanisms (unbounded re-dispatch, a wake-up write that waits) makes it the original.
        cases = [((), None),
                 (("--gvl-emulation", "fifo"), None),
                 (("--dispatch", "capped"), None),
                 (("--rearm", "oneshot"), None),
                 (("--dispatch", "unbounded"), "nio4r's design: not hardened"),
                 (("--dispatch=unbounded",), "nio4r's design: not hardened"),
                 (("--wakeup-write", "blocking"), "nio4r's design: not hardened"),
                 (("--dispatch", "unbounded", "--wakeup-write", "blocking"), "nio4r's design: not hardened")]
        for extra, want in cases:
            args = "".join(f', "{a}"' for a in extra)[2:]
            sc = scenario.parse(f'[[rows]]\nmodel = "selector-pool"\nthreads = 4\nextra_args = [{args}]\n'
                                '[[rows]]\nmodel = "selector"\n'
                                '[[loads]]\nwrk_threads = 1\nconnections = 1\n', "sp.toml")
            with self.subTest(extra=extra):
                self.assertEqual(sc.rows[0].hardening, want)
                self.assertEqual(sc.rows[0].to_json().get("hardening"), want)
                self.assertIsNone(sc.rows[1].hardening)

    def test_tables_name_the_hardening_beside_the_row(self):
        def row(model, raw):
            return runload.Row(key=f"{model} t1", label=None, kind="peer", model=model, threads=1,
                               queues=None, gvl=False, backend=None, extra_args=(), raw=raw)
        self.assertEqual(row("ruby-em", {"hardening": "replica: not hardened"}).display(),
                         "ruby-em t1 (peer; replica: not hardened)")
        self.assertEqual(row("nginx", {}).display(), "nginx t1 (peer)")
        model = runload.Row(key="selector-pool t4", label=None, kind="model", model="selector-pool", threads=4,
                            queues=None, gvl=True, backend=None, extra_args=(),
                            raw={"hardening": "nio4r's design: not hardened"})
        self.assertEqual(model.display(), "selector-pool t4 (nio4r's design: not hardened)")

    def test_tables_mark_a_design_that_stopped_answering_after_its_load(self):
        # (the row's hardening, post-check records of the ok repetitions, mark expected, legend
        # text expected for the unanswered mark, for the answer time)
        unhardened = "nio4r's design: not hardened"
        cases = [(None, [{"answered_ms": 1.2}, {"answered_ms": 0.9}], False, None, None),
                 (unhardened, [{"answered_ms": 3200.0}, {"answered_ms": 4800.0}], False, None, "(4.00s, 2/2)"),
                 (None, [None, None], False, None, None),
                 (unhardened, [{"failed": "post-check ...", "waited_s": 10.0}, {"answered_ms": 4.0}], True,
                  "(1/2, waited 10 s)", "(4.00ms, 1/2)"),
                 (unhardened, [{"failed": "post-check ..."}] * 3, True, "(3/3)", None)]  # runs before waited_s
        for hardening, checks, marked, silent_text, late_text in cases:
            points = [{"status": "ok", "verdict": "server-bound", "row": {"hardening": hardening},
                       **({"post_check": c} if c else {})} for c in checks]
            legend = tables.Legend()
            marks = legend.mark_cell(runload.Cell(row=None, load=None, points=points), "row at -c64")
            with self.subTest(checks=checks):
                self.assertEqual(tables.UNANSWERED_MARK in marks, marked)
                rendered = legend.render()
                silent = [ln for ln in rendered if ln.startswith(f"- {tables.UNANSWERED_MARK}")]
                late = [ln for ln in rendered if "answer to a request once the load stopped" in ln]
                self.assertEqual(len(silent), int(marked))
                self.assertEqual(len(late), int(late_text is not None))
                if silent_text:
                    self.assertIn(f"row at -c64 {silent_text}", silent[0])
                if late_text:
                    self.assertIn(f"row at -c64 {late_text}", late[0])


class RubyVersions(unittest.TestCase):
    """meta.json's env.versions: the Ruby interpreter and the gems the Ruby peers load."""

    def test_gem_lines_are_parsed(self):
        cases = (
            ("all three", "nio4r 2.5.8\nhttp_parser.rb 0.6.0\neventmachine 1.3.0.dev.1\n",
             {"nio4r": "2.5.8", "http_parser.rb": "0.6.0", "eventmachine": "1.3.0.dev.1"}),
            ("only what is installed", "nio4r 2.5.8\n", {"nio4r": "2.5.8"}),
            ("nothing installed", "", {}),
            ("a gem not asked for", "rails 7.0.0\nrack 2.2.22\n", {"rack": "2.2.22"}),
            ("a warning line", "warning: something odd here\neventmachine 1.3.0\n", {"eventmachine": "1.3.0"}),
        )
        for label, text, want in cases:
            with self.subTest(label):
                self.assertEqual(envinfo.parse_gem_versions(text), want)

    def test_ruby_and_its_gems_join_the_peer_versions_only_when_present(self):
        tmp = tempfile.mkdtemp(prefix="cbench-test-ruby-")
        self.addCleanup(shutil.rmtree, tmp)
        fake = os.path.join(tmp, "ruby")
        with open(fake, "w") as f:  # -v: the version line; -e SCRIPT GEMS: two gems installed
            f.write('#!/bin/sh\nif [ "$1" = -v ]; then\n'
                    '  echo "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]"\n'
                    'else\n  echo "nio4r 2.5.8"; echo "http_parser.rb 0.6.0"\nfi\n')
        os.chmod(fake, 0o755)
        found = envinfo.peer_versions(which=lambda name: fake if name == "ruby" else None)
        self.assertEqual(found, {"ruby": "3.1.2p20", "nio4r": "2.5.8", "http_parser.rb": "0.6.0"})
        self.assertEqual(envinfo.peer_versions(which=lambda name: None), {})


if __name__ == "__main__":
    unittest.main()
