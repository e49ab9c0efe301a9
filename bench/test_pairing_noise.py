#!/usr/bin/python3
"""Behaviour of bench/pairing_noise.py without a benchmark: its summary's t interval covers a
simulated mean at its nominal rate, small samples give no interval, and bad arguments exit 2
with one line (before any server starts)."""
import os
import subprocess
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pairing_noise  # noqa: E402


class Summary(unittest.TestCase):
    def test_interval_covers_the_mean_at_its_nominal_rate(self):
        rng = np.random.default_rng(7)
        trials = 2000
        covered = 0
        for _ in range(trials):
            s = pairing_noise.summarize(list(rng.normal(0.05, 0.08, 14)))
            covered += s["ci95"][0] <= 0.05 <= s["ci95"][1]
        self.assertGreater(covered / trials, 0.93)
        self.assertLess(covered / trials, 0.97)

    def test_table(self):
        cases = [([], 0, None), ([0.1], 1, None), ([0.0, 0.2], 2, 0.1)]
        for ratios, n, mean in cases:
            with self.subTest(ratios=ratios):
                s = pairing_noise.summarize(ratios)
                self.assertEqual(s["n"], n)
                if n < 2:
                    self.assertIsNone(s["ci95"])
                else:
                    self.assertAlmostEqual(s["mean"], mean)
                    self.assertAlmostEqual(s["sd"], np.std(ratios, ddof=1))


class BadArguments(unittest.TestCase):
    def test_one_line_and_exit_2(self):
        cases = [["--pairs", "1"], ["--handicaps-ns", "x"], ["--duration", "0"], ["--slice", "0"],
                 ["--designs", "sequential,parallel"], ["--designs", "alternating,"], []]
        for extra in cases:
            with self.subTest(extra=extra):
                out = "/tmp/pairing-noise-test-never-written"
                argv = extra if not extra else extra + ["--out", out]
                p = subprocess.run([sys.executable, os.path.join(HERE, "pairing_noise.py"), *argv],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2)
                self.assertNotIn("Traceback", p.stderr)
                self.assertTrue(p.stderr.strip().splitlines()[-1].startswith("pairing_noise.py: error:"))
                self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
