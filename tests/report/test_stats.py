"""Statistics and formatting: medians, the ratio interval, geometric mean, wrk-style latency."""
import math
import unittest

import numpy as np
from scipy import stats as sps

import helpers  # noqa: F401 (sets sys.path)
from cbenchlib.analysis import stats
from cbenchlib.format import units
from cbenchlib.render import tables


class StatsTest(unittest.TestCase):
    def test_ratio_ci_is_deterministic_and_brackets_the_ratio(self):
        a, b = [110.0, 112.0, 111.0, 109.0], [100.0, 101.0, 99.0, 100.5]
        one = stats.ratio_ci(a, b, seed_name="x")
        two = stats.ratio_ci(a, b, seed_name="y")
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

    def test_welch_matches_scipy_ttest_on_logs(self):
        a, b = [200.0, 202.0, 190.0], [100.0, 101.0, 108.0, 97.0]
        ci = stats.ratio_ci(a, b)
        self.assertEqual(ci.method, "welch-t")
        ref = sps.ttest_ind(np.log(a), np.log(b), equal_var=False)
        self.assertAlmostEqual(ci.p_value(), ref.pvalue, places=10)
        self.assertAlmostEqual(math.log(ci.ratio), np.log(a).mean() - np.log(b).mean(), places=12)
        wide = stats.ratio_ci([100.0, 130.0], [110.0, 105.0])
        self.assertFalse(wide.significant)
        self.assertLess(wide.lo, 1.0)
        self.assertGreater(wide.hi, 1.0)

    def test_paired_matches_scipy_ttest_rel_and_is_used_only_with_common_blocks(self):
        a, b = [110.0, 95.0, 130.0, 101.0], [100.0, 87.0, 118.0, 93.0]
        ci = stats.ratio_ci(a, b, blocks_num=[0, 1, 2, 3], blocks_den=[0, 1, 2, 3])
        self.assertEqual(ci.method, "paired-t")
        ref = sps.ttest_rel(np.log(a), np.log(b))
        self.assertAlmostEqual(ci.p_value(), ref.pvalue, places=10)
        # Block drift hides the effect from Welch; pairing finds it.
        self.assertTrue(ci.significant)
        self.assertFalse(stats.ratio_ci(a, b).significant)
        # Missing blocks (an old run): Welch.
        self.assertEqual(stats.ratio_ci(a, b, blocks_num=[0, 1, 2, None], blocks_den=[0, 1, 2, 3]).method,
                         "welch-t")
        self.assertEqual(stats.ratio_ci(a, b, blocks_num=[0, 1, 2, 3], blocks_den=[4, 5, 6, 7]).method,
                         "welch-t")

    def test_t_quantiles_come_from_scipy(self):
        self.assertAlmostEqual(stats.t975(1), 12.7062, places=3)
        self.assertAlmostEqual(stats.t975(2.7), float(sps.t.ppf(0.975, 2.7)), places=12)
        self.assertAlmostEqual(stats.t975(1e6), 1.95996, places=4)

    def test_tost_equivalence(self):
        close = stats.ratio_ci([100.0, 101.0, 99.0, 100.5, 100.2], [100.4, 99.8, 100.1, 100.0, 99.6])
        self.assertTrue(stats.tost_equivalent(close, 1.05)[0])
        self.assertFalse(stats.tost_equivalent(close, 1.001)[0])
        noisy = stats.ratio_ci([100.0, 130.0], [110.0, 85.0])
        self.assertFalse(stats.tost_equivalent(noisy, 1.05)[0])

    def test_holm(self):
        # Textbook example: p = 0.01, 0.04, 0.03, 0.005 -> 0.03, 0.06, 0.06, 0.02.
        got = stats.holm([0.01, 0.04, 0.03, 0.005, None])
        for g, want in zip(got, [0.03, 0.06, 0.06, 0.02, None]):
            if want is None:
                self.assertIsNone(g)
            else:
                self.assertAlmostEqual(g, want)

    def test_clopper_pearson(self):
        lo, hi = stats.clopper_pearson(0, 10)
        self.assertEqual(lo, 0.0)
        self.assertAlmostEqual(hi, 0.30850, places=4)
        lo, hi = stats.clopper_pearson(5, 10)
        self.assertAlmostEqual(lo, 0.18709, places=4)
        self.assertAlmostEqual(hi, 0.81291, places=4)
        self.assertEqual(stats.clopper_pearson(10, 10)[1], 1.0)

    def test_repetitions_needed_grow_with_spread_and_shrink_with_effect(self):
        small = stats.ratio_ci([105.0, 95.0], [100.0, 98.0])
        big = stats.ratio_ci([150.0, 140.0], [100.0, 98.0])
        n_small, n_big = stats.reps_to_decide(small), stats.reps_to_decide(big)
        self.assertGreater(n_small, n_big)
        self.assertLessEqual(n_big, 3)
        same = stats.ratio_ci([100.0, 100.0], [100.0, 100.0 + 1e-9])
        self.assertIsNotNone(stats.reps_to_decide(same))
        n = stats.reps_for_half_width(small, 2.0)
        self.assertGreater(n, 2)

    def test_relative_differences_and_percentile(self):
        self.assertAlmostEqual(stats.relative_differences([90.0, 110.0])[0], 0.2)
        self.assertAlmostEqual(stats.percentile([1.0, 2.0, 3.0, 4.0], 0.5), 2.5)
        self.assertIsNone(stats.percentile([], 0.9))

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
                self.assertEqual(tables.fmt_latency_us(units.parse_latency(text)), text)


if __name__ == "__main__":
    unittest.main()
