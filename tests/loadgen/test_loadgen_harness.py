#!/usr/bin/python3
"""The harness side of the generators (scripts/cbenchlib/loadgen.py, latencycurve.py, the scenario
keys): parsing of cbench-load and h2load output, scenario validation, and the capacity rule on
simulated curves. Reads fixtures only; runs no load."""
import os
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from cbenchlib.analysis import latencycurve  # noqa: E402
from cbenchlib.format import loadgen, scenario
from cbenchlib.run import generators  # noqa: E402

CBENCH_LOAD_JSON = """{
  "generator": "cbench-load", "mode": "open", "arrivals": "constant", "seed": 1, "url_path": "/",
  "connections": 10, "threads": 1, "pipeline": 1, "duration_s": 5.000, "rate_offered": 200.000,
  "requests": 486, "rate_achieved": 97.192, "scheduled": 1000, "sent": 496, "unfinished": 514,
  "non2xx": 0, "reconnects": 0, "bytes_read": 63666,
  "errors": {"connect": 0, "read": 0, "closed": 1, "malformed": 0, "aborted": 1, "backlog_overflow": 0},
  "histogram_relative_error": 0.010,
  "latency_us": {"p50": 1289502.0, "p75": 1916132.2, "p90": 2335754.4, "p99": 2528295.7, "p99.9": 2578861.6,
                 "p99.99": 2578861.6, "max": 2593601.6, "min": 10492.0, "mean": 1295554.7, "count": 486},
  "latency_histogram_us": [[10400.0, 10608.0, 1]],
  "send_lag_us": {"p50": 78.7, "p75": 81.9, "p90": 85.2, "p99": 88.5, "p99.9": 88.5, "p99.99": 88.5,
                  "max": 88.5, "min": 73.6, "mean": 78.8, "count": 18},
  "send_lag_histogram_us": [], "send_lag_bound_us": 1000.000, "generator_bound": false,
  "cpu_s": 0.066, "cpu_us_per_request": 136.416, "overloaded": true,
  "latency_series": [{"t_s": 0, "count": 97, "p50_us": 264489.4, "p99_us": 550319.1, "max_us": 553796.3}]
}
"""

H2LOAD_OUT = """starting benchmark...
finished in 1.00s, 19572.00 req/s, 764.53KB/s
requests: 19572 total, 19580 started, 19572 done, 19570 succeeded, 2 failed, 1 errored, 0 timeout
status codes: 19570 2xx, 0 3xx, 2 4xx, 0 5xx
traffic: 764.53KB (782880) total, 286.73KB (293610) headers (space savings 0.00%), 38.23KB (39148) data
                     min         max         mean         sd        +/- sd
time for request:       59us     11.49ms       406us      1.10ms    94.22%
"""


class ParseTest(unittest.TestCase):
    def test_cbench_load_overloaded_point_drops_percentiles(self):
        r = loadgen.parse("cbench-load", CBENCH_LOAD_JSON, 1)
        self.assertEqual(r["requests"], 486)
        self.assertAlmostEqual(r["req_per_s"], 97.192)
        self.assertTrue(r["overloaded"])
        self.assertIsNone(r["latency_us"]["p50"])
        self.assertEqual(r["latency_us"]["max"], 2593601.6)
        self.assertEqual(r["latency_us_overloaded"]["p50"], 1289502.0)
        self.assertIn("latency_series", r)
        self.assertEqual(r["errors"]["read"], 1)  # closed is a read error in wrk's terms
        self.assertFalse(r["latency_co_corrected"])
        self.assertIsNone(r["engine"])  # the fixture predates --engine
        with_engine = CBENCH_LOAD_JSON.replace('"generator_bound": false,', '"generator_bound": false, "engine": "uring",')
        self.assertEqual(loadgen.parse("cbench-load", with_engine, 1)["engine"], "uring")

    def test_cbench_load_garbage(self):
        for text in ("", "cbench-load: no response parsed", "{not json"):
            with self.subTest(text=text), self.assertRaises(loadgen.LoadgenOutputError):
                loadgen.parse("cbench-load", text)

    def test_h2load(self):
        r = loadgen.parse("h2load", H2LOAD_OUT, 1)
        self.assertEqual(r["requests"], 19570)
        self.assertEqual(r["non_2xx"], 2)
        self.assertEqual(r["duration_us"], 1_000_000)
        self.assertAlmostEqual(r["latency_us"]["max"], 11490.0)
        self.assertAlmostEqual(r["latency_us"]["min"], 59.0)
        self.assertIsNone(r["latency_us"]["p99"])
        self.assertEqual(r["bytes"], 782880)

    def test_h2load_garbage(self):
        with self.assertRaises(loadgen.LoadgenOutputError):
            loadgen.parse("h2load", "h2load: connect failed")


BASE = """
name = "t"
[[rows]]
model = "pull-loop"
[[loads]]
path = "/"
wrk_threads = 1
connections = 8
"""


class ScenarioTest(unittest.TestCase):
    def parse(self, extra):
        return scenario.parse(BASE + extra, "t.toml")

    def test_generator_and_fractions(self):
        sc = self.parse('generator = "cbench-load"\nrate_fraction = [0.5, 1.1]\n')
        loads = sc.load_sets["load0"]
        self.assertEqual([ld.rate_fraction for ld in loads], [0.5, 1.1])
        self.assertTrue(all(ld.generator == "cbench-load" for ld in loads))
        self.assertIn("@0.5xpeak", loads[0].key)
        self.assertNotEqual(loads[0].id, loads[1].id)

    def test_rates(self):
        sc = self.parse('generator = "cbench-load"\nrate = [100, 200]\narrivals = "poisson"\n')
        self.assertEqual([ld.rate for ld in sc.load_sets["load0"]], [100.0, 200.0])

    def test_read_rate(self):
        # slow readers: a per-set scalar, in the key and id, passed as --read-rate
        ld = self.parse('generator = "cbench-load"\nread_rate = 4000000\n').load_sets["load0"][0]
        self.assertEqual(ld.read_rate, 4e6)
        self.assertIn("read 4000000B/s", ld.key)
        self.assertNotEqual(ld.id, self.parse('generator = "cbench-load"\n').load_sets["load0"][0].id)
        argv = generators.command("/x/cbench-load", ld, "http://127.0.0.1:1/", 2.0)
        self.assertEqual(argv[argv.index("--read-rate") + 1], "4e+06")
        self.assertNotIn("--read-rate", generators.command("/x/cbench-load", self.parse('generator = "cbench-load"\n')
                                                          .load_sets["load0"][0], "http://127.0.0.1:1/", 2.0))

    def test_default_is_cbench_load(self):
        # A load that names no generator runs cbench-load (loadgen.DEFAULT_GENERATOR); its key
        # names it, as every generator but wrk is named, and wrk stays one line away.
        ld = self.parse("").load_sets["load0"][0]
        self.assertEqual(ld.generator, "cbench-load")
        self.assertEqual(ld.key, "-t1 -c8 [cbench-load]")
        ld = self.parse('generator = "wrk"\n').load_sets["load0"][0]
        self.assertEqual(ld.generator, "wrk")
        self.assertEqual(ld.key, "-t1 -c8")

    def test_errors(self):
        cases = [('generator = "ab"\n', "generator"),
                 ('generator = "wrk"\nrate = [100]\n', "needs generator"),
                 ('generator = "h2load"\nrate = 5\n', "needs generator"),
                 ('generator = "cbench-load"\nrate = 0\n', "rate"),
                 ('generator = "cbench-load"\nrate = 5\nrate_fraction = 0.5\n', "not several"),
                 ('generator = "cbench-load"\nrate = 5\narrivals = "bursty"\n', "arrivals"),
                 ('generator = "wrk"\nread_rate = 1000\n', "needs generator"),
                 ('generator = "cbench-load"\nread_rate = 0\n', "read_rate"),
                 ('generator = "cbench-load"\nread_rate = "fast"\n', "read_rate")]
        for extra, needle in cases:
            with self.subTest(extra=extra):
                with self.assertRaises(scenario.ScenarioError) as cm:
                    self.parse(extra)
                self.assertIn(needle, str(cm.exception))

    def test_shipped_scenarios_parse(self):
        for name in ("latency-curve", "generator-crosscheck", "large-responses"):
            sc = scenario.load_file(os.path.join(REPO, "scenarios", f"{name}.toml"))
            self.assertTrue(sc.points())


def curve(*pts):
    return [{"rate": r, "fraction": None, "reps": 1, "overloaded": o, "generator_bound": False,
             "achieved": r, "p50": p99 / 4, "p99": p99, "p99.9": p99 * 2} for r, p99, o in pts]


class CapacityTest(unittest.TestCase):
    # (label, curve, expected capacity, expected bracket high)
    CASES = [
        ("breaks_in_the_middle", curve((100, 1e3, False), (200, 5e3, False), (300, 20e3, False)), 200, 300),
        ("overload_ends_it", curve((100, 1e3, False), (200, 2e3, True)), 100, 200),
        ("not_monotone_stops_at_first_failure", curve((100, 1e3, False), (200, 50e3, False), (300, 1e3, False)), 100, 200),
        ("never_passes", curve((100, 20e3, False)), None, 100),
        ("always_passes", curve((100, 1e3, False), (200, 2e3, False)), 200, None),
    ]

    def test_table(self):
        for label, entries, want, high in self.CASES:
            with self.subTest(label):
                c = latencycurve.capacity(entries, 10e3)
                self.assertEqual(c["capacity"], want)
                self.assertEqual(c["high"], high)

    def test_curve_points_from_records(self):
        def rec(key, rate, p99, overloaded=False, status="ok"):
            lat = {"p50": p99 / 2, "p99": p99, "p99.9": p99}
            w = {"mode": "open", "overloaded": overloaded, "req_per_s": rate, "latency_us": lat}
            return {"status": status, "row": {"key": key}, "load": {"rate": rate, "rate_fraction": 0.5}, "wrk": w}
        pts = [rec("a", 100, 1e3), rec("a", 100, 3e3), rec("a", 200, 9e3), rec("b", 50, 1e3, status="failed")]
        c = latencycurve.curve_points(pts)
        self.assertEqual(list(c), ["a"])
        self.assertEqual([e["rate"] for e in c["a"]], [100, 200])
        self.assertEqual(c["a"][0]["p99"], 2e3)  # median over repetitions

    def test_curve_points_group_by_the_shared_load_identity(self):
        # loadpoint.load_id and loadpoint.measured: repetitions of one load are one entry at its
        # rounded offered rate, and a record without a status (older records) is measured.
        def rec(rate, p99, key="-t1 -c4 [cbench-load] @0.5xpeak", **extra):
            w = {"mode": "open", "overloaded": False, "req_per_s": rate,
                 "latency_us": {"p50": p99, "p99": p99, "p99.9": p99}}
            return {"row": {"key": "a"}, "load": {"key": key, "rate": rate, "rate_fraction": 0.5}, "wrk": w, **extra}
        c = latencycurve.curve_points([rec(100.0001, 1e3), rec(100.0002, 3e3, status="ok"),
                                       rec(50, 1e3, key="-t1 -c4 [cbench-load] @0.25xpeak", status="failed")])
        self.assertEqual([(e["rate"], e["reps"]) for e in c["a"]], [(100.0, 2)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
