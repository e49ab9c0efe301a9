"""Verdicts: table-driven, one line per case with a label."""
import unittest

import common  # noqa: F401
from cbenchlib.format import verdict


def w(requests=100000, connect=0, read=0, write=0, timeout=0, status=0):
    return {"requests": requests,
            "errors": {"connect": connect, "read": read, "write": write, "timeout": timeout, "status": status}}


CASES = [
    # label, wrk, server util, client util, expected verdict, evidence fragment
    ("busy server, idle client", w(), 0.99, 0.40, "server-bound", "server CPU 99% of 1 CPU"),
    ("both busy: its own verdict", w(), 0.97, 0.98, "both-saturated", "server and client CPUs both saturated"),
    ("both at saturation", w(), 0.90, 0.90, "both-saturated", "client CPU 90% of 1 CPU"),
    ("busy client, server not", w(), 0.80, 0.98, "client-bound", "server CPU below saturation"),
    ("neither busy", w(), 0.30, 0.30, "unclear", "neither side's CPU reached 90%"),
    ("just under saturation", w(), 0.899, 0.5, "unclear", "server CPU 90%"),
    ("at saturation", w(), 0.90, 0.5, "server-bound", "server CPU 90% of 1 CPU"),
    ("errors beat CPU", w(requests=1000, timeout=50), 0.99, 0.3, "error-bound", "timeout 50"),
    ("non-2xx count as errors", w(requests=1000, status=20), 0.99, 0.3, "error-bound", "status>=400 20"),
    ("1% errors is tolerated", w(requests=990, read=10), 0.99, 0.3, "server-bound", "errors 10 of 1000 (1.00%"),
    ("no requests at all", w(requests=0), 0.0, 0.1, "error-bound", "errors 0 of 0"),
    ("missing CPU figures", w(), None, 0.5, "unclear", "CPU figures missing"),
]


class Verdicts(unittest.TestCase):
    def test_cases(self):
        for label, wrk, su, cu, expected, fragment in CASES:
            with self.subTest(label):
                v, evidence = verdict.judge(wrk, su, cu, 1, 1)
                self.assertEqual(v, expected, f"{label}: {evidence}")
                self.assertTrue(fragment, f"{label}: every case must name a fragment of its evidence")
                self.assertIn(fragment, evidence)

    def test_disturbed_points_say_so(self):
        v, evidence = verdict.judge(w(), 0.45, 0.5, 1, 1, other_cpu_util=1.08)
        self.assertEqual(v, "unclear")
        self.assertIn("DISTURBED: other processes used 108% of a CPU", evidence)
        _, evidence = verdict.judge(w(), 0.99, 0.5, 1, 1, other_cpu_util=0.05)
        self.assertNotIn("DISTURBED", evidence)

    def test_cpu_counts_are_named(self):
        _, evidence = verdict.judge(w(), 0.5, 0.5, 2, 1)
        self.assertIn("of 2 CPUs", evidence)

    def test_old_records_are_reread_with_both_saturated(self):
        cases = [
            ("old server-bound, client busy", {"verdict": "server-bound", "derived": {"client_cpu_util": 0.95}},
             "both-saturated"),
            ("server-bound, client idle", {"verdict": "server-bound", "derived": {"client_cpu_util": 0.40}},
             "server-bound"),
            ("no client figure", {"verdict": "server-bound"}, "server-bound"),
            ("client-bound stays", {"verdict": "client-bound", "derived": {"client_cpu_util": 0.99}}, "client-bound"),
            ("no verdict", {}, "unclear"),
        ]
        for label, p, want in cases:
            with self.subTest(label):
                self.assertEqual(verdict.point_verdict(p), want)

    def test_idle(self):
        self.assertEqual(verdict.judge_idle(100, 100)[0], "unclear")
        v, e = verdict.judge_idle(100, 90)
        self.assertEqual(v, "error-bound")
        self.assertIn("90 of 100", e)


if __name__ == "__main__":
    unittest.main()
