#!/usr/bin/python3
"""Behaviour of bench/regress_trials.py without a benchmark: its rates and exact intervals from
gate verdicts (table), the summary's table, and bad arguments exit 2 with one line before any
gate runs."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import regress_trials  # noqa: E402


def args(**kw):
    a = regress_trials.parse_args(["--handicaps-pct", "0,10", "--trials", "3"])
    for k, v in kw.items():
        setattr(a, k, v)
    return a


class Rates(unittest.TestCase):
    def test_table(self):
        # (label, gates of the A/A, gates of +10%, expected (passed of A/A, not passed of +10%, FAIL of +10%))
        for label, aa, ab, want in [
                ("ideal", ["pass"] * 3, ["FAIL"] * 3, (3, 3, 3)),
                ("undecided is caught, not failed", ["pass", "undecided", "pass"], ["undecided", "FAIL", "pass"], (2, 2, 1)),
                ("nothing passes", ["undecided"] * 3, ["undecided"] * 3, (0, 3, 0))]:
            with self.subTest(label):
                rows = [{"handicap_pct": 0.0, "gate": g, "slowdown": {"ratio": 1.0}} for g in aa] + \
                       [{"handicap_pct": 10.0, "gate": g, "slowdown": None} for g in ab]
                s = regress_trials.summarize(args(), rows, {0.0: 0, 10.0: 2700})
                self.assertEqual((s["0"]["pass"]["k"], s["10"]["not_passed"]["k"], s["10"]["fail"]["k"]), want)
                self.assertEqual(s["10"]["handicap_ns"], 2700)
                lo, hi = s["0"]["pass"]["ci"]
                self.assertLessEqual(lo, want[0] / 3)
                self.assertGreaterEqual(hi, want[0] / 3)

    def test_exact_interval(self):
        # Clopper-Pearson for 9 of 10: 0.555-0.997
        r = regress_trials.rate(9, 10)
        self.assertAlmostEqual(r["ci"][0], 0.555, places=3)
        self.assertAlmostEqual(r["ci"][1], 0.9975, places=3)
        self.assertIsNone(regress_trials.rate(0, 0)["ci"])

    def test_summary_table(self):
        rows = [{"handicap_pct": 0.0, "gate": "pass", "slowdown": {"ratio": 1.01}},
                {"handicap_pct": 10.0, "gate": "FAIL", "slowdown": {"ratio": 1.12}}]
        a = args()
        meta = {"commit": "c" * 40, "machine": "m", "started": "s", "ended": "e", "baseline_cpu_us_per_req": 27.0,
                "command": "bench/regress_trials.py"}
        text = regress_trials.render(a, meta, regress_trials.summarize(a, rows, {0.0: 0, 10.0: 2700}))
        self.assertIn("| +0% | 0 | 1/1 (3%-100%) | 0/1 (0%-98%) | 0/1 (0%-98%) | 1.010 |", text)
        self.assertIn("| +10% | 2700 | 0/1", text)


class BadArguments(unittest.TestCase):
    def test_one_line_and_exit_2(self):
        for argv in (["--handicaps-pct", "10,0"], ["--handicaps-pct", "x"], ["--trials", "0"]):
            with self.subTest(argv):
                p = subprocess.run([sys.executable, os.path.join(HERE, "regress_trials.py")] + argv,
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertNotIn("Traceback", p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()[-1:]), 1)


if __name__ == "__main__":
    unittest.main()
