"""multiclient.merge: several generators' totals -> one point over the window they all share
(simulated generators with known answers; no processes)."""
import unittest

import common  # noqa: F401 - puts scripts/ on sys.path
from cbenchlib.run import multiclient


def gen(host, start, end, requests, errors=0, util=0.5):
    return {"host": host, "started_s": start, "ended_s": end, "requests": requests, "errors": errors,
            "cpu_util": util, "latency_us": {"p99": 100.0}}


class Merge(unittest.TestCase):
    # label, generators, (skew_s, window_s, requests, req_per_s, bounded, client-bound hosts)
    CASES = [
        ("one generator is its own window",
         [gen("a", 0.0, 10.0, 1000)], (0.0, 10.0, 1000.0, 100.0, True, [])),
        ("simultaneous: plain sums",
         [gen("a", 0.0, 10.0, 1000, 4), gen("b", 0.0, 10.0, 3000, 6)], (0.0, 10.0, 4000.0, 400.0, True, [])),
        ("10 ms skew: each scaled to the shared 9.99 s",
         [gen("a", 0.0, 10.0, 1000), gen("b", 0.01, 10.01, 1000)], (0.01, 9.99, 1998.0, 200.0, True, [])),
        ("one second late: over 5% unshared, not bounded",
         [gen("a", 0.0, 10.0, 1000), gen("b", 1.0, 11.0, 1000)], (1.0, 9.0, 1800.0, 200.0, False, [])),
        ("disjoint runs share nothing",
         [gen("a", 0.0, 1.0, 10), gen("b", 2.0, 3.0, 10)], (2.0, 0.0, 0.0, None, False, [])),
        ("a saturated generator marks its host client-bound",
         [gen("a", 0.0, 10.0, 1000, util=0.95), gen("b", 0.0, 10.0, 900, util=0.4)],
         (0.0, 10.0, 1900.0, 190.0, True, ["a"])),
    ]

    def test_cases(self):
        for label, gens, (skew, window, requests, rate, bounded, bound_hosts) in self.CASES:
            with self.subTest(label):
                m = multiclient.merge(gens)
                self.assertAlmostEqual(m["skew_s"], skew, places=6)
                self.assertAlmostEqual(m["window_s"], window, places=6)
                self.assertAlmostEqual(m["requests"], requests, places=0)
                if rate is None:
                    self.assertIsNone(m["req_per_s"])
                else:
                    self.assertAlmostEqual(m["req_per_s"], rate, places=0)
                self.assertEqual(m["bounded"], bounded)
                self.assertEqual(m["client_bound_hosts"], bound_hosts)
                self.assertFalse(m["latency_merged"])  # wrk's percentiles never merge
                self.assertEqual([g["latency_us"] for g in m["generators"]], [g["latency_us"] for g in gens])

    def test_a_generator_rate_is_over_its_own_duration(self):
        # wall 10.2 s (start-up and exit), own run 10 s: 100 req/s; the two share 10.1 s, so each
        # contributes its rate x the window, at most its total; the plain sums stay whole.
        a = dict(gen("a", 0.0, 10.2, 1000), duration_s=10.0)
        b = dict(gen("b", 0.1, 10.3, 2000), duration_s=10.0)
        m = multiclient.merge([a, b])
        self.assertAlmostEqual(m["window_s"], 10.1, places=6)
        self.assertEqual([g["requests_in_window"] for g in m["generators"]], [1000.0, 2000.0])
        self.assertAlmostEqual(m["req_per_s"], 3000 / 10.1, places=0)
        self.assertEqual((m["requests_sum"], m["errors_sum"]), (3000, 0))
        self.assertTrue(m["bounded"])
        self.assertAlmostEqual(m["max_unshared_fraction"], 1 - 10.1 / 10.2, places=6)

    def test_errors_are_summed_over_the_window(self):
        m = multiclient.merge([gen("a", 0.0, 10.0, 1000, 10), gen("b", 0.0, 10.0, 1000, 30)])
        self.assertEqual(m["errors"], 40.0)

    def test_no_generator_is_an_error(self):
        with self.assertRaises(ValueError):
            multiclient.merge([])


class SplitConnections(unittest.TestCase):
    # label, connections, hosts, shares (None: refused)
    CASES = [
        ("one host takes all", 10, 1, [10]),
        ("even", 10, 2, [5, 5]),
        ("the first hosts take the remainder", 10, 3, [4, 3, 3]),
        ("one each", 3, 3, [1, 1, 1]),
        ("fewer connections than hosts", 2, 3, None),
    ]

    def test_cases(self):
        for label, conns, hosts, shares in self.CASES:
            with self.subTest(label):
                if shares is None:
                    with self.assertRaises(ValueError):
                        multiclient.split_connections(conns, hosts)
                else:
                    got = multiclient.split_connections(conns, hosts)
                    self.assertEqual(got, shares)
                    self.assertEqual(sum(got), conns)


def buckets(values):
    """A cbench-load-like histogram of values: one bucket [v*0.99, v*1.01] per distinct value."""
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return [[round(v * 0.99, 3), round(v * 1.01, 3), n] for v, n in sorted(out.items())]


def loadgen_result(values, requests=None):
    lat = {"min": min(values), "max": max(values), "mean": sum(values) / len(values), "stdev": None,
           "p50": None, "p75": None, "p90": None, "p99": None, "p99.9": None, "p99.99": None}
    n = len(values) if requests is None else requests
    return {"generator": "cbench-load", "requests": n, "duration_us": 1_000_000, "bytes": 10 * n,
            "errors": {"connect": 0, "read": 1, "write": 0, "status": 0, "timeout": 0},
            "errors_detail": {"connect": 0, "read": 1, "closed": 0, "malformed": 0},
            "latency_us": lat, "req_per_s": float(n), "non_2xx": 0, "overloaded": False,
            "generator_bound": False, "latency_histogram_us": buckets(values), "latency_series": [1]}


def wrk_result(requests, lo, hi, p99):
    return {"generator": "wrk", "requests": requests, "duration_us": 1_000_000, "bytes": 0,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": 2, "timeout": 0},
            "latency_us": {"min": lo, "max": hi, "mean": 5.0, "stdev": 1.0, "p50": 5.0, "p75": 6.0,
                           "p90": 7.0, "p99": p99, "p99.9": p99},
            "req_per_s": float(requests), "non_2xx": 2}


class MergeResults(unittest.TestCase):
    MERGED = {"req_per_s": 300.0, "latency_note": "note"}

    def test_histograms_of_two_generators_merge_into_the_union_percentiles(self):
        # 100 fast answers on one host, 100 slower ones on the other: the union's median is the
        # fast side's top (10 us), its p75 the slow side's body (100 us), its p99 the slow side's
        # tail (1000 us); a mean of the two hosts' p99s (505 us) would be wrong.
        fast, slow = [10.0] * 100, [100.0] * 97 + [1000.0] * 3
        r = multiclient.merge_results([loadgen_result(fast), loadgen_result(slow)], self.MERGED)
        self.assertTrue(r["latency_merged"])
        self.assertAlmostEqual(r["latency_us"]["p50"], 10.0, delta=0.2)
        self.assertAlmostEqual(r["latency_us"]["p75"], 100.0, delta=2)
        self.assertAlmostEqual(r["latency_us"]["p99"], 1000.0, delta=20)
        self.assertEqual((r["latency_us"]["min"], r["latency_us"]["max"]), (10.0, 1000.0))
        self.assertEqual(r["requests"], 200)
        self.assertEqual(r["errors"]["read"], 2)
        self.assertEqual(r["errors_detail"]["read"], 2)
        self.assertEqual(r["bytes"], 2000)
        self.assertEqual(r["req_per_s"], 300.0)  # the window's rate, not a sum of the parts
        self.assertEqual(sum(n for _, _, n in r["latency_histogram_us"]), 200)
        self.assertNotIn("latency_series", r)
        self.assertEqual(r["hosts"], 2)

    def test_wrk_percentiles_are_not_merged(self):
        r = multiclient.merge_results([wrk_result(100, 2.0, 50.0, 40.0), wrk_result(300, 1.0, 90.0, 80.0)],
                                      self.MERGED)
        self.assertFalse(r["latency_merged"])
        self.assertEqual({k: v for k, v in r["latency_us"].items() if v is not None}, {"min": 1.0, "max": 90.0})
        self.assertEqual((r["requests"], r["errors"]["status"], r["non_2xx"]), (400, 4, 4))
        self.assertIn("cannot be merged", r["latency_note"])

    def test_an_overloaded_generator_keeps_the_merged_percentiles_null(self):
        a, b = loadgen_result([10.0] * 10), loadgen_result([20.0] * 10)
        b["overloaded"] = True
        r = multiclient.merge_results([a, b], self.MERGED)
        self.assertTrue(r["overloaded"])
        self.assertIsNone(r["latency_us"]["p99"])
        self.assertEqual(r["latency_us"]["max"], 20.0)


class ClientHostsPlan(unittest.TestCase):
    """cli_sweep.check_client_hosts: what a sweep with several client hosts refuses before it runs."""

    def point(self, connections, rate_fraction=None, idle=False):
        from types import SimpleNamespace
        load = SimpleNamespace(is_idle=idle, connections=connections, rate_fraction=rate_fraction)
        return SimpleNamespace(id=f"p c{connections}", load=load)

    def test_cases(self):
        from cbenchlib.cmd import sweep as cli_sweep
        # label, client hosts, points, refusal substring (None: accepted)
        cases = [
            ("one host, anything goes", ["local"], [self.point(1, rate_fraction=0.5)], None),
            ("two hosts, divisible", ["netns:a", "netns:b"], [self.point(4), self.point(3)], None),
            ("idle points are not divided", ["netns:a", "netns:b"], [self.point(None, idle=True)], None),
            ("a host named twice", ["netns:a", "netns:a"], [self.point(4)], "more than once"),
            ("fewer connections than hosts", ["netns:a", "netns:b", "netns:c"], [self.point(2)],
             "cannot be split"),
            ("rate_fraction", ["netns:a", "netns:b"], [self.point(4, rate_fraction=0.5)], "rate_fraction"),
        ]
        for label, clients, points, refusal in cases:
            with self.subTest(label):
                if refusal is None:
                    cli_sweep.check_client_hosts(clients, points)
                else:
                    with self.assertRaises(cli_sweep.PlanError) as cm:
                        cli_sweep.check_client_hosts(clients, points)
                    self.assertIn(refusal, str(cm.exception))


class BinaryCheck(unittest.TestCase):
    """hostcheck.check_binary for cbench-load on a client host (a scripted host answers the
    three commands the check runs; this machine's binary is a script printing its version)."""

    class Host:
        def __init__(self, name, answers):
            self.name, self.answers = name, answers

        def capture(self, argv, timeout_s=30.0):
            import subprocess
            rc, out = self.answers.get(argv[0] if argv[0] in ("test", "sha256sum") else "version", (127, ""))
            return subprocess.CompletedProcess(argv, rc, out, "")

    def test_cases(self):
        import os
        import stat
        import tempfile
        from cbenchlib.run import hostcheck
        with tempfile.TemporaryDirectory(prefix="cbench-hostcheck-") as tmp:
            path = os.path.join(tmp, "cbench-load")
            with open(path, "w") as f:
                f.write("#!/bin/sh\necho 'cbench-load abc123'\n")
            os.chmod(path, stat.S_IRWXU)
            # label, the client host's answers, refusal substring (None: accepted)
            cases = [
                ("the same commit", {"test": (0, ""), "version": (0, "cbench-load abc123\n")}, None),
                ("no binary there", {"test": (1, "")}, f"netns:x lacks the load generator binary {path}"),
                ("another commit", {"test": (0, ""), "version": (0, "cbench-load def456\n")},
                 "reports 'cbench-load def456', this machine's reports 'cbench-load abc123'"),
                ("a build without --version", {"test": (0, ""), "version": (1, ""), "sha256sum": (0, "ff  x\n")},
                 "reports 'sha256 ff'"),
            ]
            for label, answers, refusal in cases:
                with self.subTest(label):
                    got = hostcheck.check_binary(self.Host("netns:x", answers), path, "cbench-load")
                    if refusal is None:
                        self.assertIsNone(got)
                    else:
                        self.assertIn(refusal, got or "")


class StartGate(unittest.TestCase):
    """host.GATE_SCRIPT on this machine (no namespace, no ssh): a gated command does not run
    until released, reports its release on the harness's clock, and never runs if its gate
    sees EOF; REMOTE_WRAPPER --gated passes the release byte on."""

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="cbench-gate-")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def err_text(self, path):
        with open(path) as f:
            return f.read()

    def wait_armed(self, path):
        import time
        from cbenchlib.run import host
        deadline = time.monotonic() + 10
        while host.GATE_ARMED not in self.err_text(path):
            self.assertLess(time.monotonic(), deadline, "the gate never armed")
            time.sleep(0.01)

    def test_a_gated_command_runs_only_when_released(self):
        import os
        import time
        from cbenchlib.run import host
        h = host.LocalHost()
        out, err = os.path.join(self.tmp, "out"), os.path.join(self.tmp, "err")
        proc = h.spawn(["sh", "-c", "echo ran; cat"], stdout=out, stderr=err, gate=True)
        try:
            self.wait_armed(err)
            self.assertIsNone(proc.poll())
            with open(out) as f:
                self.assertEqual(f.read(), "")  # armed, not running
            released = time.monotonic()
            proc.release()
            self.assertEqual(proc.wait(10), 0)
        finally:
            proc.stop(1.0)
        with open(out) as f:
            self.assertEqual(f.read(), "ran\n")
        m = host.GATE_GO_RE.search(self.err_text(err))
        self.assertIsNotNone(m, self.err_text(err))
        self.assertGreaterEqual(int(m.group(1)) / 1e9, released)  # the harness's own clock
        self.assertLessEqual(int(m.group(1)) / 1e9, proc.ended)

    def test_eof_instead_of_the_release_never_runs_the_command(self):
        import os
        from cbenchlib.run import host
        h = host.LocalHost()
        out, err = os.path.join(self.tmp, "out"), os.path.join(self.tmp, "err")
        proc = h.spawn(["sh", "-c", "echo ran"], stdout=out, stderr=err, gate=True)
        try:
            self.wait_armed(err)
            proc.popen.stdin.close()
            self.assertEqual(proc.wait(10), 125)
        finally:
            proc.stop(1.0)
        with open(out) as f:
            self.assertEqual(f.read(), "")

    def test_the_remote_wrapper_passes_the_release_on(self):
        # The wrapper as an ssh host runs it, minus ssh: its stdin is the connection.
        import os
        import subprocess
        from cbenchlib.run import host
        out, err = os.path.join(self.tmp, "out"), os.path.join(self.tmp, "err")
        with open(out, "wb") as o, open(err, "wb") as e:
            p = subprocess.Popen(["python3", "-c", host.REMOTE_WRAPPER, "--gated"] + host.GATE_ARGV
                                 + ["sh", "-c", "echo ran"], stdin=subprocess.PIPE, stdout=o, stderr=e)
        try:
            self.wait_armed(err)
            p.stdin.write(b"g")
            p.stdin.flush()  # the lifeline stays open: the command runs to its end
            self.assertEqual(p.wait(10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdin.close()
        with open(out) as f:
            self.assertEqual(f.read(), "ran\n")
        text = self.err_text(err)
        self.assertIsNotNone(host.GATE_GO_RE.search(text), text)
        self.assertIsNotNone(host.REMOTE_EXIT_RE.search(text), text)


if __name__ == "__main__":
    unittest.main()
