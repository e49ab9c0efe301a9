"""Cluster mode's harness hooks: scenario rows with processes/keepalive, the command line they give,
the kernel's TCP counters (kernelnet) and their kernel-bound verdict, per-worker figures."""
import http.client
import os
import re
import subprocess
import tempfile
import time
import unittest

from common import REPO
from cbenchlib.run import kernelnet, runner, servercounters, workers
from cbenchlib.format import scenario

NETSTAT = """TcpExt: SyncookiesSent ListenOverflows ListenDrops TW TWRecycled TWKilled TCPTimeWaitOverflow TCPAbortOnData
TcpExt: 0 {lo} {ld} {tw} 0 0 {two} 0
IpExt: InNoRoutes
IpExt: 0
"""
SNMP = """Tcp: RtoAlgorithm ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab
Tcp: 1 {ao} {po} 0 0 {est}
"""
SOCKSTAT = "sockets: used 10\nTCP: inuse {inuse} orphan 0 tw {tw} alloc 9 mem 1\nUDP: inuse 0 mem 0\n"


class FakeHost:
    def __init__(self, files):
        self.files = files

    def read_proc(self, pid, name):
        if name not in self.files:
            raise FileNotFoundError(name)
        return self.files[name]


PORT = 8080
TCP_HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def tcp_table(port_tw: int, other_tw: int) -> str:
    """/proc/net/tcp text: port_tw TIME_WAIT sockets on PORT (half each end), other_tw on 9999,
    and a listener on PORT that is not in TIME_WAIT."""
    rows = [f"   0: 0100007F:{PORT:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1"]
    for i in range(port_tw):
        a, b = (f"0100007F:{PORT:04X}", f"0100007F:{40000 + i:04X}")
        rows.append(f"   {i + 1}: {a if i % 2 else b} {b if i % 2 else a} 06 0:0 00:0 0 0 0 0")
    for i in range(other_tw):
        rows.append(f"   {i}: 0100007F:270F 0100007F:{50000 + i:04X} 06 0:0 00:0 0 0 0 0")
    return TCP_HEAD + "\n".join(rows) + "\n"


def host(lo=0, ld=0, tw=0, two=0, ao=0, po=0, est=0, inuse=0, tw_level=0, port_tw=0, other_tw=0):
    return FakeHost({"net/netstat": NETSTAT.format(lo=lo, ld=ld, tw=tw, two=two),
                     "net/snmp": SNMP.format(ao=ao, po=po, est=est),
                     "net/sockstat": SOCKSTAT.format(inuse=inuse, tw=tw_level),
                     "net/tcp": tcp_table(port_tw, other_tw)})


LIMITS = {"tcp_max_tw_buckets": 1000, "ephemeral_ports": 28232}


class KernelCounters(unittest.TestCase):
    def window(self, before, after, requests=1000, lim=LIMITS, connect_failures=0):
        return kernelnet.window(kernelnet.sample(before, 1, PORT), kernelnet.sample(after, 1, PORT), lim,
                                requests, connect_failures)

    def test_time_wait_of_the_servers_port_only(self):
        self.assertEqual(kernelnet.count_time_wait(tcp_table(7, 5), PORT), 7)
        self.assertEqual(kernelnet.count_time_wait(tcp_table(0, 5), PORT), 0)

    def test_deltas_levels_and_per_request(self):
        k = self.window(host(tw=10, po=100, inuse=5, tw_level=3), host(tw=1010, po=1100, inuse=7, tw_level=400))
        self.assertEqual(k["deltas"]["TW"], 1000)
        self.assertEqual(k["deltas"]["PassiveOpens"], 1000)
        self.assertEqual(k["levels"]["tw"], {"before": 3, "after": 400})
        self.assertEqual(k["accepts_per_req"], 1.0)
        self.assertEqual(k["time_wait_per_req"], 1.0)
        self.assertIsNone(k["bound"])

    def test_bound_cases(self):
        small = {"tcp_max_tw_buckets": 100, "ephemeral_ports": 28232}
        few_ports = {"tcp_max_tw_buckets": 100000, "ephemeral_ports": 100}
        cases = [  # (label, before, after, limits, wrk connect errors + timeouts, reason fragment or None)
            ("nothing hit", host(), host(tw_level=100, port_tw=50), LIMITS, 0, None),
            ("listen overflow with connect failures", host(lo=5), host(lo=9, ld=9), LIMITS, 3, "accept queue full"),
            ("listen overflow elsewhere (no connect failure here)", host(lo=5), host(lo=9, ld=9), LIMITS, 0, None),
            ("time-wait overflow on this port", host(), host(two=3, port_tw=10), LIMITS, 0, "TIME_WAIT table full"),
            ("time-wait overflow elsewhere", host(), host(two=3, other_tw=10), LIMITS, 0, None),
            ("time-wait nearly full", host(), host(port_tw=96), small, 0, "nearly full"),
            ("others' time-wait fill the table", host(), host(other_tw=96), small, 0, None),
            ("ports nearly used up", host(), host(port_tw=96), few_ports, 0, "ephemeral ports"),
        ]
        for label, before, after, lim, failures, fragment in cases:
            with self.subTest(label):
                k = self.window(before, after, lim=lim, connect_failures=failures)
                if fragment is None:
                    self.assertIsNone(k["bound"])
                else:
                    self.assertIn(fragment, k["bound"])

    def test_unreadable_counters_give_no_kernel_object(self):
        self.assertIsNone(kernelnet.window(kernelnet.sample(FakeHost({}), 1), {}, LIMITS, 10))

    def test_kernel_bound_verdict_keeps_the_earlier_one_in_the_evidence(self):
        rec = {"verdict": "server-bound", "verdict_evidence": "server CPU 99%",
               "kernel": {"bound": "accept queue full: ListenOverflows +4, ListenDrops +4"}}
        kernelnet.apply_verdict(rec)
        self.assertEqual(rec["verdict"], "kernel-bound")
        self.assertIn("was server-bound", rec["verdict_evidence"])
        rec = {"verdict": "server-bound", "verdict_evidence": "x", "kernel": {"bound": None}}
        kernelnet.apply_verdict(rec)
        self.assertEqual(rec["verdict"], "server-bound")


def load_text(text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        return scenario.load_file(f.name)
    finally:
        os.unlink(f.name)


class ClusterRows(unittest.TestCase):
    def load(self, text):
        return load_text(text)

    def test_processes_and_keepalive_reach_the_command_line(self):
        sc = self.load('[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n'
                       '[[rows]]\nmodel = "blocking-pool"\nprocesses = [2, 4]\nkeepalive = false\n'
                       '[[rows]]\nmodel = "blocking-pool"\n')
        argvs = [runner.model_command("srv", p, "127.0.0.1", ()) for p in sc.points()]
        self.assertEqual(argvs[0][-4:], ["--processes", "2", "--keepalive", "off"])
        self.assertEqual(argvs[1][-4:], ["--processes", "4", "--keepalive", "off"])
        self.assertNotIn("--processes", argvs[2])
        self.assertNotIn("--keepalive", argvs[2])
        # A row without the new fields keeps its earlier id and key.
        self.assertEqual(sc.rows[2].id, "blocking-pool|t1|-|gvl0|-")
        self.assertEqual(sc.rows[0].key, "blocking-pool t1 p2 keepalive-off")
        self.assertEqual(sc.rows[0].to_json()["processes"], 2)
        self.assertFalse(sc.rows[0].to_json()["keepalive"])

    def test_peer_rows_refuse_cluster_fields(self):
        with self.assertRaisesRegex(scenario.ScenarioError, "processes"):
            self.load('[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n'
                      '[[rows]]\nkind = "peer"\nmodel = "nginx"\nprocesses = 2\n')

    def test_tipi_table_maps_every_published_label(self):
        sc = scenario.load_file(os.path.join(REPO, "scenarios", "tipi-table.toml"))
        models = [r for r in sc.rows if r.kind == "model"]
        self.assertEqual({r.label for r in models}, {"Tipi", "Puma", "Falcon", "Unicorn"})
        self.assertTrue(all(r.processes == 4 for r in models))
        unicorn = sorted((r.keepalive, r.model, r.threads) for r in models if r.label == "Unicorn")
        self.assertEqual(unicorn, [(False, "blocking-pool", 1), (True, "blocking-pool", 1)])
        # The real Ruby servers beside them (their 4 processes are their own configuration's).
        self.assertEqual(sorted((r.label or "", r.model) for r in sc.rows if r.kind == "peer"),
                         [("", "thin"), ("Falcon", "async-http"), ("Puma", "puma"),
                          ("Tipi", "async-http"), ("Unicorn", "unicorn")])
        self.assertEqual({(p.load.wrk_threads, p.load.connections, p.load.path) for p in sc.points()},
                         {(4, 64, "/")})

    def test_tipi_table_rows_of_one_design_keep_their_own_points(self):
        sc = scenario.load_file(os.path.join(REPO, "scenarios", "tipi-table.toml"))
        ids = [p.id for p in sc.points()]
        self.assertEqual(len(ids), len(set(ids)))
        by_label = {(r.label, r.model) for r in sc.rows if r.alias}
        self.assertEqual(by_label, {("Tipi", "fiber"), ("Tipi", "asio-coro"),
                                    ("Falcon", "fiber"), ("Falcon", "asio-coro"),
                                    ("Tipi", "async-http"), ("Falcon", "async-http")})
        self.assertFalse(any(r.extra_args for r in sc.rows))  # no workaround flags left


class SharedCommands(unittest.TestCase):
    """Rows of one command on one load: allowed only under distinct published labels."""
    LOAD = '[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n'

    def rows(self, *labels):
        text = self.LOAD
        for label in labels:
            text += '[[rows]]\nmodel = "fiber"\n' + (f'label = "{label}"\n' if label is not None else "")
        return load_text(text)

    def test_cases(self):
        cases = [  # (labels of two rows running one command, allowed?)
            (("Tipi", "Falcon"), True),
            (("Tipi", "Tipi"), False),
            (("Tipi", "tipi"), False),     # one published row: labels match case-insensitively
            (("Tipi", " tipi "), False),   # ... and whatever the spacing
            ((None, None), False),
            (("Tipi", None), False),
        ]
        for labels, allowed in cases:
            with self.subTest(labels=labels):
                if allowed:
                    sc = self.rows(*labels)
                    self.assertEqual([r.id for r in sc.rows], [f"fiber|t1|-|gvl0|-|as={labels[0]}",
                                                               f"fiber|t1|-|gvl0|-|as={labels[1]}"])
                    self.assertEqual([r.key for r in sc.rows], [f"fiber t1 as {labels[0]}", f"fiber t1 as {labels[1]}"])
                    self.assertEqual(sc.rows[1].to_json()["alias"], labels[1])
                else:
                    with self.assertRaisesRegex(scenario.ScenarioError, "same server command|also the key"):
                        self.rows(*labels)

    def test_a_lone_labelled_row_keeps_its_id(self):
        sc = self.rows("Tipi")
        self.assertEqual(sc.rows[0].id, "fiber|t1|-|gvl0|-")
        self.assertNotIn("alias", sc.rows[0].to_json())


class ClusterCounters(unittest.TestCase):
    """Per-worker mechanism counters (cluster.h: PATH.w<slot>) summed per point."""

    @staticmethod
    def snap(*workers_counts):
        return [None if w is None else {"pid": w[0], "counters": {"accepts": w[1], "dispatches": w[2]}}
                for w in workers_counts]

    def test_sum_and_per_worker_figures(self):
        before = self.snap((11, 5, 10), (12, 0, 0), (13, 7, 7))
        after = self.snap((11, 15, 40), (12, 20, 50), (13, 7, 17))
        per_req, per_worker = servercounters.cluster_window(before, after, 100)
        self.assertEqual(per_req, {"accepts": 0.3, "dispatches": 0.9})
        self.assertEqual(per_worker[12], {"accepts": 20, "dispatches": 50})
        cluster = {"workers": [{"pid": 11}, {"pid": 13}, {"pid": 99}], "restarted": 0}
        servercounters.attach_workers(cluster, per_worker)
        self.assertEqual(cluster["workers"][1]["counters"], {"accepts": 0, "dispatches": 10})
        self.assertIsNone(cluster["workers"][2]["counters"])

    def test_no_sum_when_a_worker_restarted_or_did_not_answer(self):
        before = self.snap((11, 5, 10), (12, 0, 0))
        for after in (self.snap((11, 15, 40), (21, 3, 3)),   # slot 1 restarted: a new pid
                      self.snap((11, 15, 40), None)):        # slot 1 sent no fresh snapshot
            per_req, per_worker = servercounters.cluster_window(before, after, 100)
            self.assertIsNone(per_req)
            self.assertEqual(list(per_worker), [11])
        self.assertEqual(servercounters.cluster_window(None, before, 100), (None, {}))


SERVER_BIN = os.environ.get("CBENCH_SERVER_BIN") or os.path.join(REPO, "build", "cbench-server")


@unittest.skipUnless(os.access(SERVER_BIN, os.X_OK), f"no cbench-server at {SERVER_BIN}")
class ClusterCountersLive(unittest.TestCase):
    """A real cluster server: the workers' summed counters match the requests served. Bounded:
    a few dozen requests on 127.0.0.1, the server stopped with SIGTERM at the end."""

    def run_server(self, args, processes):
        tmp = tempfile.mkdtemp(prefix="cbench-cluster-counters-")
        path = os.path.join(tmp, "counters.json")
        proc = subprocess.Popen([SERVER_BIN, "--host", "127.0.0.1", "--port", "0", "--processes", str(processes),
                                 "--counters-out", path, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(self.stop, proc)
        line = proc.stdout.readline()
        m = re.search(r"port=(\d+).*workers=([\d,]+)", line)
        self.assertIsNotNone(m, line)
        return proc, path, int(m.group(1)), {int(p) for p in m.group(2).split(",")}

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()

    def get(self, port, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        return c

    def test_connection_per_request_workers_sum_to_the_requests(self):
        proc, path, port, pids = self.run_server(["--model", "blocking-pool", "--threads", "1",
                                                  "--keepalive", "off"], 3)
        self.get(port).close()  # a warm-up request before the window, as the harness's primer
        time.sleep(0.2)  # its close is counted after its response went out: before the window, not in it
        before = servercounters.snapshot_cluster(proc.pid, path, 3, timeout_s=5)
        n = 30
        for _ in range(n):
            self.get(port).close()
        time.sleep(0.2)  # the last close is counted after the response went out
        after = servercounters.snapshot_cluster(proc.pid, path, 3, timeout_s=5)
        self.assertEqual({w["pid"] for w in after}, pids)
        per_req, per_worker = servercounters.cluster_window(before, after, n)
        self.assertEqual(per_req["accepts"], 1.0)
        self.assertEqual(per_req["closes"], 1.0)
        self.assertEqual(sum(w["accepts"] for w in per_worker.values()), n)

    def test_keep_alive_fibers_dispatch_once_per_request(self):
        proc, path, port, pids = self.run_server(["--model", "fiber", "--threads", "1"], 2)
        conns = [self.get(port) for _ in range(4)]  # warm-up: connections open, one request each
        before = servercounters.snapshot_cluster(proc.pid, path, 2, timeout_s=5)
        n = 40
        for i in range(n):
            self.get(port, conns[i % 4])
        after = servercounters.snapshot_cluster(proc.pid, path, 2, timeout_s=5)
        for c in conns:
            c.close()
        per_req, per_worker = servercounters.cluster_window(before, after, n)
        self.assertEqual(set(per_worker), pids)
        self.assertEqual(per_req["accepts"], 0.0)
        total = sum(w["dispatches"] for w in per_worker.values())
        self.assertGreaterEqual(total, n)
        self.assertLessEqual(total, n + 4)  # at most one spurious wake per connection


class PerWorker(unittest.TestCase):
    def test_workers_present_at_both_samples_and_restarts_counted(self):
        def s(cpu, rss):
            return {"t": 0.0, "cpu_user_s": cpu, "cpu_sys_s": 0.0, "rss_kb": rss, "hwm_kb": rss, "vmsize_kb": 1,
                    "threads": 2, "ctx_voluntary": 1, "ctx_involuntary": 0, "syscr": 0, "syscw": 0, "pids": [1]}
        w = workers.window({11: s(1.0, 100), 12: s(2.0, 100)}, {11: s(1.5, 120), 13: s(0.1, 90)})
        self.assertEqual([r["pid"] for r in w["workers"]], [11])
        self.assertEqual(w["workers"][0]["cpu_user_s"], 0.5)
        self.assertEqual(w["restarted"], 1)
        self.assertIsNone(workers.window({}, {}))


if __name__ == "__main__":
    unittest.main()
