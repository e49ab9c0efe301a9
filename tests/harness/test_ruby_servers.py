"""The Ruby server peers (puma, unicorn, async-http, thin: scenario_types.py PEERS), live: each
is started through the harness's own peer path (ServerSession: render the template, spawn in its
own process group, ready on the first accepted connection) on 127.0.0.1 and a free port, and
must listen on that address only, run its processes under the started one (so the CPU sample
covers them), answer several GET / with 200 "Hello, world!" (on one connection where it keeps
connections alive; Unicorn closes after every response, which is its design), and be gone, every
process, after the harness's SIGTERM to the group alone (before any SIGKILL).

Runs as its own ctest test (harness_ruby_servers); harness_unit sets CBENCH_SKIP_E2E and skips
it. A server that is not installed is skipped, named (scripts/deps.sh installs them), unless
CBENCH_REQUIRE_RUBY_SERVERS=1 makes that a failure."""
import http.client
import os
import shutil
import signal
import tempfile
import time
import unittest

from common import REPO
from cbenchlib.format import scenario
from cbenchlib.run import procstat
from cbenchlib.run.context import RunContext
from cbenchlib.run.localhost import LocalHost
from cbenchlib.run.server import STOP_GRACE_S, ServerSession

REQUESTS = 5              # enough to see a kept-alive connection answer more than once
REQUEST_TIMEOUT_S = 10.0  # Ruby's start-up on a busy 2-core machine, not a speed limit
WORKERS_TIMEOUT_S = 20.0  # until every worker of a preforking server has been forked
GONE_TIMEOUT_S = 5.0      # after the leader has exited: its workers' exit must follow at once
POLL_S = 0.05

# (peer, the command that must be installed, processes it runs, keeps connections alive)
SERVERS = (
    ("puma", "puma", 5, True),          # master + 4 workers
    ("unicorn", "unicorn", 5, False),   # master + 4 workers; Connection: close by design
    ("async-http", "ruby", 5, True),    # supervisor + 4 forked servers
    ("thin", "thin", 1, True),          # one EventMachine process
)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group pgid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            out.append(int(entry))
    return out


def listeners(port: int) -> list[str]:
    """Local addresses (dotted IPv4, or "IPv6") of the TCP sockets listening on port."""
    found = []
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.append("IPv6" if v6 else ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


class RubyServers(unittest.TestCase):
    def setUp(self):
        if os.environ.get("CBENCH_SKIP_E2E") == "1":
            self.skipTest("CBENCH_SKIP_E2E=1: the Ruby servers run as their own ctest test (harness_ruby_servers)")
        self.host = LocalHost()
        self.run_dir = tempfile.mkdtemp(prefix="cbench-ruby-")
        self.addCleanup(shutil.rmtree, self.run_dir, True)
        self.addCleanup(self.host.kill_all)
        os.mkdir(os.path.join(self.run_dir, "logs"))

    def session(self, peer: str):
        sc = scenario.parse(f'[[rows]]\nkind = "peer"\nmodel = "{peer}"\nthreads = 2\n'
                            '[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n', "ruby.toml")
        ctx = RunContext(host=self.host, client_hosts=(self.host,), settings=sc.settings,
                         server_bin="/nonexistent", run_dir=self.run_dir,
                         logs_dir=os.path.join(self.run_dir, "logs"), repo=REPO)
        return ServerSession(ctx), sc.points()[0]

    def test_each_serves_hello_and_stops_on_sigterm(self):
        for peer, command, processes, keeps_alive in SERVERS:
            with self.subTest(peer=peer):
                if self.host.which(command) is None:
                    if os.environ.get("CBENCH_REQUIRE_RUBY_SERVERS") == "1":
                        self.fail(f"{command} is not installed (scripts/deps.sh installs it)")
                    self.skipTest(f"{command} is not installed (scripts/deps.sh installs it)")
                self.check_server(peer, processes, keeps_alive)

    def check_server(self, peer: str, processes: int, keeps_alive: bool):
        session, point = self.session(peer)
        record = {"logs": {}, "commands": {}}
        server = session.start(point, "0001", record)
        log = server.log_path
        try:
            self.assertEqual(listeners(server.port), ["127.0.0.1"], f"{peer} listens elsewhere too")
            self.check_requests(peer, server.port, keeps_alive, log)
            pids = self.wait_for_processes(server.pid, processes)
            self.assertEqual(len(pids), processes, f"{peer}: processes under the leader {pids}")
            self.assertEqual(sorted(procstat.sample(self.host, server.pid)["pids"]), sorted(pids),
                             f"{peer}: the CPU sample does not cover every process")
            server.proc.signal_group(signal.SIGTERM)
            status = server.proc.wait(STOP_GRACE_S)
            self.assertIsNotNone(status, f"{peer}: the leader still runs {STOP_GRACE_S:g} s after SIGTERM")
            deadline = time.monotonic() + GONE_TIMEOUT_S
            while group_members(server.pid) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            self.assertEqual(group_members(server.pid), [],
                             f"{peer}: processes left {GONE_TIMEOUT_S:g} s after the leader exited")
            self.assertEqual(listeners(server.port), [], f"{peer}: the port still listens")
        except AssertionError as exc:
            with open(log, errors="replace") as f:
                raise AssertionError(f"{exc}\n--- {peer}'s log:\n{f.read()[-4000:]}") from None
        finally:
            server.proc.stop(1.0)

    def check_requests(self, peer: str, port: int, keeps_alive: bool, log: str):
        """REQUESTS GETs of / on one client connection: each 200 "Hello, world!" in text/plain;
        the server kept the connection open after each, or (keeps_alive False) closed it."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        try:
            for i in range(REQUESTS):
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                what = f"{peer}: request {i + 1} of {REQUESTS}"
                self.assertEqual((resp.status, body), (200, b"Hello, world!"), what)
                self.assertEqual(resp.getheader("Content-Type"), "text/plain", what)
                self.assertEqual(resp.getheader("Content-Length"), "13", what)
                if keeps_alive:
                    self.assertIsNotNone(conn.sock, f"{what}: the server closed a keep-alive connection")
                else:
                    self.assertEqual((resp.getheader("Connection") or "").lower(), "close", what)
                    self.assertIsNone(conn.sock, f"{what}: the connection stayed open")
        finally:
            conn.close()

    def wait_for_processes(self, leader: int, processes: int) -> list[int]:
        """The live processes of the leader's tree once there are `processes` (a master forks its
        workers after it listens), or as many as there are at the deadline."""
        deadline = time.monotonic() + WORKERS_TIMEOUT_S
        while True:
            tree = [p for p in [leader] + self.host.descendants(leader) if p in group_members(leader)]
            if len(tree) >= processes or time.monotonic() >= deadline:
                return tree
            time.sleep(POLL_S)


if __name__ == "__main__":
    unittest.main()
