"""The Ruby replicas of Ever's example servers (servers/ruby/ever_*.rb) on the project's Ever
extension (build/ruby/ever.so): each answers several keep-alive requests per connection with the
exact published bytes, answers requests split across reads, closes after the client's EOF or a
malformed request, binds the address it is given, refuses bad arguments in one line and exits 0
on SIGTERM.

The extension's directory is $CBENCH_RUBY_EXT_DIR (ctest sets it) or <repo>/build/ruby; without
ever.so there the tests are skipped, saying so.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from common import REPO
from cbenchlib.format import scenario
from cbenchlib.run import server as run_server

EXT_DIR = os.environ.get("CBENCH_RUBY_EXT_DIR") or os.path.join(REPO, "build", "ruby")
RUBY = shutil.which("ruby")
SKIP_REASON = (f"the Ever extension is not built: {os.path.join(EXT_DIR, 'ever.so')}" if RUBY
               else "ruby is not installed")
BUILT = RUBY is not None and os.path.isfile(os.path.join(EXT_DIR, "ever.so"))

RESPONSE = b"HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!"
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
LISTENING_RE = re.compile(r"listening on ([0-9.]+):(\d+)")
TIMEOUT_S = 10.0  # generous: a bound on a hang, not a speed requirement

# name, script, extra arguments
REPLICAS = [
    ("single", "ever_single.rb", []),
    ("workers 1", "ever_workers.rb", ["--workers", "1"]),
    ("workers 4", "ever_workers.rb", ["--workers", "4"]),
    ("queues 4", "ever_queues.rb", ["--workers", "4"]),
]


def script_path(script: str) -> str:
    return os.path.join(REPO, "servers", "ruby", script)


class Replica:
    """A replica started on 127.0.0.1 and an ephemeral port, stopped with SIGTERM."""

    def __init__(self, script: str, args: list[str]):
        self.proc = subprocess.Popen([RUBY, "-I", EXT_DIR, script_path(script), "--port", "0"] + args,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        m = LISTENING_RE.search(line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"{script}: no listening line: {line!r}{self.proc.stdout.read()!r}")
        self.host, self.port = m.group(1), int(m.group(2))

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -signal.SIGKILL
        finally:
            self.proc.stdout.close()


def read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (EOF or reset) within TIMEOUT_S."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@unittest.skipUnless(BUILT, SKIP_REASON)
class EverReplicas(unittest.TestCase):
    def each_replica(self, body):
        for name, script, args in REPLICAS:
            with self.subTest(name):
                server = Replica(script, args)
                try:
                    body(server)
                finally:
                    status = server.stop()
                self.assertEqual(status, 0, f"{name}: exit status after SIGTERM")

    def test_keepalive_requests_get_the_exact_response(self):
        def body(server):
            with server.connect() as sock:
                for i in range(5):
                    sock.sendall(REQUEST)
                    self.assertEqual(read_exactly(sock, len(RESPONSE)), RESPONSE, f"request {i + 1}")
        self.each_replica(body)

    def test_several_connections_interleaved(self):
        def body(server):
            socks = [server.connect() for _ in range(6)]
            try:
                for round_ in range(3):
                    for sock in socks:
                        sock.sendall(REQUEST)
                    for n, sock in enumerate(socks):
                        self.assertEqual(read_exactly(sock, len(RESPONSE)), RESPONSE,
                                         f"round {round_ + 1}, connection {n + 1}")
            finally:
                for sock in socks:
                    sock.close()
        self.each_replica(body)

    def test_request_split_across_reads(self):
        def body(server):
            with server.connect() as sock:
                sock.sendall(REQUEST[:9])
                time.sleep(0.05)  # lets the first piece arrive alone (the answer waits either way)
                sock.sendall(REQUEST[9:])
                self.assertEqual(read_exactly(sock, len(RESPONSE)), RESPONSE)
        self.each_replica(body)

    def test_two_requests_in_one_write_get_two_responses(self):
        def body(server):
            with server.connect() as sock:
                sock.sendall(REQUEST * 2)
                self.assertEqual(read_exactly(sock, 2 * len(RESPONSE)), 2 * RESPONSE)
        self.each_replica(body)

    def test_closes_after_client_eof(self):
        def body(server):
            with server.connect() as sock:
                sock.sendall(REQUEST)
                self.assertEqual(read_exactly(sock, len(RESPONSE)), RESPONSE)
                sock.shutdown(socket.SHUT_WR)
                self.assertTrue(closed_by_server(sock), "the connection stayed open after EOF")
            with server.connect() as sock:  # still serving
                sock.sendall(REQUEST)
                self.assertEqual(read_exactly(sock, len(RESPONSE)), RESPONSE)
        self.each_replica(body)

    def test_closes_after_a_malformed_request(self):
        def body(server):
            with server.connect() as sock:
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                self.assertTrue(closed_by_server(sock), "the connection stayed open after a parse error")
        self.each_replica(body)

    def test_binds_the_loopback_address_by_default(self):
        def body(server):
            self.assertEqual(server.host, "127.0.0.1")
        self.each_replica(body)


BAD_ARGUMENTS = [
    # label, script, arguments, expected text of the one-line error
    ("unknown option", "ever_single.rb", ["--bogus"], "invalid option: --bogus"),
    ("port out of range", "ever_workers.rb", ["--port", "70000"], "--port 70000"),
    ("port not a number", "ever_queues.rb", ["--port", "x"], "invalid argument: --port x"),
    ("zero workers", "ever_workers.rb", ["--workers", "0"], "--workers 0"),
    ("zero queues", "ever_queues.rb", ["--workers", "0"], "--workers 0"),
    ("single with workers", "ever_single.rb", ["--workers", "4"], "--workers 4"),
    ("unusable address", "ever_single.rb", ["--host", "256.1.1.1"], "unable to listen on 256.1.1.1"),
]


@unittest.skipUnless(BUILT, SKIP_REASON)
class EverReplicaArguments(unittest.TestCase):
    def test_bad_arguments_fail_in_one_line(self):
        for label, script, args, expected in BAD_ARGUMENTS:
            with self.subTest(label):
                proc = subprocess.run([RUBY, "-I", EXT_DIR, script_path(script)] + args,
                                      capture_output=True, text=True, timeout=TIMEOUT_S)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                lines = proc.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, proc.stderr)
                self.assertIn(expected, lines[0])
                self.assertTrue(lines[0].startswith(script + ": "), lines[0])

    def test_missing_extension_is_one_line(self):
        proc = subprocess.run([RUBY, script_path("ever_single.rb")], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env={**os.environ, "RUBYLIB": ""})
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertTrue(proc.stderr.startswith("ever_single.rb: cannot load such file -- ever"), proc.stderr)


class EverPeerRows(unittest.TestCase):
    """The built-in peers run the replicas with ruby -I $ruby_ext_dir; render_peer finds the
    extension beside the sweep's server binary or fails in one line. Needs no build."""

    ROWS = [
        # model, threads, script, workers argument
        ("ruby-ever", 1, "ever_single.rb", None),
        ("ruby-ever-workers", 4, "ever_workers.rb", "4"),
        ("ruby-ever-queues", 8, "ever_queues.rb", "8"),
    ]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-ever-peer-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        os.mkdir(os.path.join(self.tmp, "logs"))
        self.server_bin = os.path.join(self.tmp, "build", "cbench-server")
        os.makedirs(os.path.dirname(self.server_bin))

    def point(self, model: str, threads: int):
        text = f'[[rows]]\nkind = "peer"\nmodel = "{model}"\nthreads = {threads}\n' \
               '[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n'
        return scenario.parse(text, "ever.toml").points()[0]

    def test_commands_name_the_extension_directory_and_the_script(self):
        ext_dir = os.path.join(self.tmp, "build", "ruby")
        os.mkdir(ext_dir)
        open(os.path.join(ext_dir, "ever.so"), "w").close()
        for model, threads, script, workers in self.ROWS:
            with self.subTest(model):
                argv, config = run_server.render_peer(self.point(model, threads), "127.0.0.1", 18123,
                                                      self.tmp, REPO, "0001", self.server_bin)
                self.assertIsNone(config)
                expected = ["ruby", "-I", ext_dir, os.path.join(REPO, "servers", "ruby", script),
                            "--host", "127.0.0.1", "--port", "18123"]
                if workers:
                    expected += ["--workers", workers]
                self.assertEqual(argv, expected)
                self.assertTrue(os.path.isfile(expected[3]), expected[3])

    def test_missing_extension_is_a_one_line_error(self):
        for model, threads, _script, _workers in self.ROWS:
            with self.subTest(model), self.assertRaises(ValueError) as caught:
                run_server.render_peer(self.point(model, threads), "127.0.0.1", 18123, self.tmp, REPO,
                                       "0001", self.server_bin)
            self.assertEqual(str(caught.exception), "the Ever extension is not built: "
                             + os.path.join(self.tmp, "build", "ruby", "ever.so"))

    def test_without_a_server_binary_the_placeholder_is_refused(self):
        with self.assertRaisesRegex(ValueError, r"\$ruby_ext_dir needs the sweep's server binary"):
            run_server.render_peer(self.point("ruby-ever", 1), "127.0.0.1", 18123, self.tmp, REPO, "0001")


if __name__ == "__main__":
    unittest.main()
