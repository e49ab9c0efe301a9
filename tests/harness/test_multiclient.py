"""multiclient.merge: several generators' totals -> one point over the window they all share
(simulated generators with known answers; no processes)."""
import unittest

import common  # noqa: F401 - puts scripts/ on sys.path
from cbenchlib import multiclient


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

    def test_errors_are_summed_over_the_window(self):
        m = multiclient.merge([gen("a", 0.0, 10.0, 1000, 10), gen("b", 0.0, 10.0, 1000, 30)])
        self.assertEqual(m["errors"], 40.0)

    def test_no_generator_is_an_error(self):
        with self.assertRaises(ValueError):
            multiclient.merge([])


if __name__ == "__main__":
    unittest.main()
