"""Issue 15's harness hooks: scenario rows with processes/keepalive, the command line they give,
the kernel's TCP counters (kernelnet) and their kernel-bound verdict, per-worker figures."""
import os
import tempfile
import unittest

from common import REPO
from cbenchlib import kernelnet, runner, scenario, workers

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


class ClusterRows(unittest.TestCase):
    def load(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(text)
        try:
            return scenario.load_file(f.name)
        finally:
            os.unlink(f.name)

    def test_processes_and_keepalive_reach_the_command_line(self):
        sc = self.load('[[loads]]\nwrk_threads = 1\nconnections = 1\n'
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
            self.load('[[loads]]\nwrk_threads = 1\nconnections = 1\n'
                      '[[rows]]\nkind = "peer"\nmodel = "nginx"\nprocesses = 2\n')

    def test_tipi_table_maps_every_published_label(self):
        sc = scenario.load_file(os.path.join(REPO, "scenarios", "tipi-table.toml"))
        self.assertEqual({r.label for r in sc.rows}, {"Tipi", "Puma", "Falcon", "Unicorn"})
        self.assertTrue(all(r.processes == 4 for r in sc.rows))
        unicorn = sorted((r.keepalive, r.model, r.threads) for r in sc.rows if r.label == "Unicorn")
        self.assertEqual(unicorn, [(False, "blocking-pool", 1), (True, "blocking-pool", 1)])
        self.assertEqual({(p.load.wrk_threads, p.load.connections, p.load.path) for p in sc.points()},
                         {(4, 64, "/")})


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
