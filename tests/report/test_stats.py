"""Statistics and formatting: medians, the ratio interval, geometric mean, wrk-style latency."""
import unittest

import helpers  # noqa: F401 (sets sys.path)
from cbenchlib import stats, tables


class StatsTest(unittest.TestCase):
    def test_ratio_ci_is_deterministic_and_brackets_the_ratio(self):
        a, b = [110.0, 112.0, 111.0, 109.0], [100.0, 101.0, 99.0, 100.5]
        one = stats.ratio_ci(a, b, seed_name="x")
        two = stats.ratio_ci(a, b, seed_name="x")
        self.assertEqual(one, two)
        self.assertLessEqual(one.lo, one.ratio)
        self.assertGreaterEqual(one.hi, one.ratio)
        self.assertTrue(one.significant)
        self.assertEqual(one.direction(), 1)

    def test_one_repetition_is_never_significant(self):
        ci = stats.ratio_ci([200.0], [100.0, 100.0, 100.0])
        self.assertAlmostEqual(ci.ratio, 2.0)
        self.assertFalse(ci.enough_reps)
        self.assertFalse(ci.significant)
        self.assertEqual(ci.direction(), 0)

    def test_two_repetitions_use_a_welch_t_interval(self):
        ci = stats.ratio_ci([200.0, 202.0], [100.0, 101.0])
        self.assertEqual(ci.method, "welch-t")
        self.assertAlmostEqual(ci.ratio, 2.0)
        self.assertTrue(ci.significant)
        wide = stats.ratio_ci([100.0, 130.0], [110.0, 105.0])
        self.assertFalse(wide.significant)
        self.assertLess(wide.lo, 1.0)
        self.assertGreater(wide.hi, 1.0)

    def test_t_quantiles(self):
        self.assertEqual(stats.t975(1), 12.706)
        self.assertEqual(stats.t975(2.7), 4.303)
        self.assertEqual(stats.t975(1000), 1.960)

    def test_overlapping_noise_is_not_significant(self):
        ci = stats.ratio_ci([100.0, 120.0, 90.0], [105.0, 95.0, 115.0], seed_name="n")
        self.assertFalse(ci.significant)

    def test_empty_or_zero_gives_none(self):
        self.assertIsNone(stats.ratio_ci([], [1.0]))
        self.assertIsNone(stats.ratio_ci([1.0], [0.0]))

    def test_geometric_mean(self):
        self.assertAlmostEqual(stats.geometric_mean([2.0, 0.5]), 1.0)
        self.assertAlmostEqual(stats.geometric_mean([4.0, 1.0]), 2.0)
        self.assertIsNone(stats.geometric_mean([]))

    def test_speed_words(self):
        cases = [(1.42, "1.42x faster"), (1 / 1.10, "1.10x slower"), (1.001, "same speed")]
        for ratio, want in cases:
            with self.subTest(ratio=ratio):
                self.assertEqual(stats.speed_words(ratio), want)

    def test_cv(self):
        self.assertIsNone(stats.cv_percent([5.0]))
        self.assertAlmostEqual(stats.cv_percent([90.0, 110.0]), 14.142, places=2)

    def test_latency_formats_like_wrk(self):
        cases = [(4270.0, "4.27ms"), (584780.0, "584.78ms"), (1210000.0, "1.21s"), (999.0, "999.00us"),
                 (6030000.0, "6.03s"), (90_000_000.0, "1.50m"), (None, "?")]
        for us, want in cases:
            with self.subTest(us=us):
                self.assertEqual(tables.fmt_latency_us(us), want)
        for text in ("4.27ms", "1.21s", "999.00us"):
            with self.subTest(text=text):
                self.assertEqual(tables.fmt_latency_us(tables.parse_latency(text)), text)


if __name__ == "__main__":
    unittest.main()
