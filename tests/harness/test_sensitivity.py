"""Calibration statistics on constructed and simulated data with known answers: Clopper-Pearson
rates, the trial verdicts, the noncentral-t power against simulation, the 80%-power effect, a
calibration record from simulated trials, and calibration.json's two versions."""
import contextlib
import io
import json
import math
import os
import random
import shutil
import tempfile
import unittest

import common  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.analysis import gate, sensitivity, stats
from cbenchlib.cmd import calibrate
from cbenchlib.format import calibration
from cbenchlib.render import calibration_table


def trial(rng: random.Random, ratio: float, sd: float, blocks: int, shared_sd: float = 0.0) -> stats.RatioCI:
    """One simulated paired trial: per block a shared drift, the B/A log difference normal(log ratio, sd);
    SHARED_SD adds one offset to every block of the trial (what independent blocks exclude)."""
    a, b = {}, {}
    offset = rng.gauss(0.0, shared_sd) if shared_sd else 0.0
    for k in range(blocks):
        drift = rng.gauss(0.0, 0.05)
        a[k] = 1000.0 * math.exp(drift)
        b[k] = 1000.0 * math.exp(drift + math.log(ratio) + offset + rng.gauss(0.0, sd))
    return gate.paired_slowdown(a, b)


class Rates(unittest.TestCase):
    def test_clopper_pearson_known_values(self):
        # (k, n, lo, hi): exact intervals from the beta quantiles, checked against stats.clopper_pearson
        for k, n in [(0, 40), (1, 40), (2, 40), (38, 40), (40, 40), (5, 10)]:
            with self.subTest(f"{k}/{n}"):
                r = sensitivity.rate(k, n)
                lo, hi = stats.clopper_pearson(k, n)
                self.assertAlmostEqual(r["ci"][0], lo, places=9)
                self.assertAlmostEqual(r["ci"][1], hi, places=9)
        self.assertEqual(sensitivity.rate(0, 40)["ci"][0], 0.0)
        self.assertAlmostEqual(sensitivity.rate(0, 40)["ci"][1], 1 - 0.025 ** (1 / 40), places=9)
        self.assertEqual(sensitivity.rate(0, 0), {"k": 0, "n": 0, "ci": [0.0, 1.0]})

    def test_coverage(self):
        """Exact intervals cover the true rate in at least 95% of simulated binomial samples."""
        rng = random.Random(5)
        for p in (0.05, 0.5, 0.8):
            with self.subTest(p=p):
                hits = 0
                for _ in range(400):
                    k = sum(rng.random() < p for _ in range(40))
                    lo, hi = sensitivity.rate(k, 40)["ci"]
                    hits += lo <= p <= hi
                self.assertGreaterEqual(hits / 400, 0.93)


class Verdicts(unittest.TestCase):
    def test_table(self):
        # (label, interval, false positive on A/A, detected on A/B)
        for label, ci, fp, det in [
                ("straddles 1", stats.RatioCI(1.0, 0.99, 1.01, 3, 3, "paired-t", 0.01, 2, 0.02), False, False),
                ("above 1", stats.RatioCI(1.05, 1.01, 1.09, 3, 3, "paired-t", 0.01, 2, 0.02), True, True),
                ("below 1", stats.RatioCI(0.95, 0.91, 0.99, 3, 3, "paired-t", 0.01, 2, 0.02), True, False),
                ("no interval", stats.RatioCI(1.2, None, None, 1, 1, "none"), False, False),
                ("not measured", None, False, False)]:
            with self.subTest(label):
                self.assertEqual(sensitivity.false_positive(ci), fp)
                self.assertEqual(sensitivity.detected(ci), det)


class Power(unittest.TestCase):
    def test_power_matches_simulation(self):
        """The noncentral-t power of "interval wholly above 1" against 2,000 simulated trials."""
        rng = random.Random(11)
        for effect, sd, blocks in [(2.0, 0.01, 3), (1.0, 0.005, 5), (5.0, 0.03, 3), (0.0, 0.01, 3)]:
            with self.subTest(effect=effect, sd=sd, blocks=blocks):
                want = sensitivity.power(effect, sd, blocks)
                got = sum(sensitivity.detected(trial(rng, 1 + effect / 100, sd, blocks)) for _ in range(2000)) / 2000
                self.assertLess(abs(got - want), 0.035, f"simulated {got:.3f}, noncentral t {want:.3f}")
        self.assertAlmostEqual(sensitivity.power(0.0, 0.01, 3), 0.025, places=3)  # the one-sided level

    def test_min_detectable_effect_has_80_percent_power(self):
        for sd, blocks in [(0.001, 3), (0.01, 3), (0.02, 10)]:
            with self.subTest(sd=sd, blocks=blocks):
                mde = sensitivity.min_detectable_pct(sd, blocks)
                self.assertAlmostEqual(sensitivity.power(mde, sd, blocks), 0.8, places=4)
                self.assertLess(sensitivity.power(mde * 0.9, sd, blocks), 0.8)
        self.assertIsNone(sensitivity.min_detectable_pct(None, 3))
        self.assertIsNone(sensitivity.min_detectable_pct(0.01, 1))
        self.assertEqual(sensitivity.min_detectable_pct(0.0, 3), 0.0)
        # More blocks, smaller effect: the design's sensitivity grows with blocks.
        self.assertLess(sensitivity.min_detectable_pct(0.01, 10), sensitivity.min_detectable_pct(0.01, 3))

    def test_blocks_for_power_is_the_fewest_that_reach_80_percent(self):
        """Table: (block spread, effect %) -> the fewest blocks with power >= 0.8; one fewer falls
        short. None where the spread is unknown or the effect not positive."""
        cases = [(0.001, 1.0, 3), (0.001, 10.0, 2), (0.02, 5.0, 4), (0.0862, 5.0, 27), (0.0862, 1.0, 591),
                 (0.3, 10.0, 80)]
        for sd, effect, want in cases:
            with self.subTest(sd=sd, effect=effect):
                n = sensitivity.blocks_for_power(sd, effect)
                self.assertEqual(n, want)
                self.assertGreaterEqual(sensitivity.power(effect, sd, n), 0.8)
                if n > 2:
                    self.assertLess(sensitivity.power(effect, sd, n - 1), 0.8)
                # The planned 80%-power effect at that many blocks is at most the effect asked.
                self.assertLessEqual(sensitivity.min_detectable_pct(sd, n), effect + 1e-6)
        self.assertIsNone(sensitivity.blocks_for_power(None, 5.0))
        self.assertIsNone(sensitivity.blocks_for_power(0.02, 0.0))
        self.assertIsNone(sensitivity.blocks_for_power(50.0, 0.01))  # beyond MAX_BLOCKS_SEARCHED

    def test_summary_of_simulated_trials(self):
        """40 simulated trials at 0.1% spread (callgrind's): +1% detected in nearly all, A/A false
        positives near the two-sided 5%, the planned 80%-power effect near the true one."""
        rng = random.Random(2)
        sd, blocks = 0.001, 3
        aa = [trial(rng, 1.0, sd, blocks) for _ in range(40)]
        ab = {p: [trial(rng, 1 + p / 100, sd, blocks) for _ in range(40)] for p in (1, 5, 10)}
        s = sensitivity.summarize(aa, ab, blocks)
        self.assertEqual((s["trials"], s["blocks"]), (40, 3))
        self.assertLessEqual(s["aa_false_positive"]["k"], 6)
        self.assertGreaterEqual(s["detection"]["1"]["k"], 38)
        self.assertEqual(s["smallest_detected_pct"], 1)
        self.assertAlmostEqual(s["block_log_sd"], sd, delta=sd * 0.35)
        want = sensitivity.min_detectable_pct(sd, blocks)
        self.assertAlmostEqual(s["planned_80pct_power_pct"], want, delta=want * 0.5)

    def test_noisy_metric_detects_nothing_small(self):
        rng = random.Random(3)
        aa = [trial(rng, 1.0, 0.05, 3) for _ in range(40)]
        ab = {5: [trial(rng, 1.05, 0.05, 3) for _ in range(40)]}
        s = sensitivity.summarize(aa, ab, 3)
        self.assertIsNone(s["smallest_detected_pct"])
        self.assertGreater(s["planned_80pct_power_pct"], 5)


class BetweenTrial(unittest.TestCase):
    """The A/A trials' check of independent blocks, on simulated trials with a known answer."""

    def test_table(self):
        # (label, block sd, trial-shared sd, blocks, ratio expected roughly, p below 0.05)
        cases = [("independent blocks", 0.02, 0.0, 6, 1.0, False),
                 ("a shared component as large as a block's", 0.02, 0.02, 6, 7.0, True),
                 ("a small shared component", 0.02, 0.008, 6, 1.0 + 6 * 0.008 ** 2 / 0.02 ** 2, None)]
        for label, sd, shared, blocks, want, significant in cases:
            with self.subTest(label):
                rng = random.Random(11)
                got = sensitivity.between_trial([trial(rng, 1.0, sd, blocks, shared) for _ in range(400)], blocks)
                self.assertEqual(got["df"], [399, 400 * (blocks - 1)])
                self.assertAlmostEqual(got["variance_ratio"], want, delta=want * 0.25)
                self.assertAlmostEqual(got["interval_scale"], math.sqrt(max(1.0, got["variance_ratio"])), places=3)
                if significant is not None:
                    self.assertEqual(got["p"] < 0.05, significant)

    def test_not_judged_without_enough_trials(self):
        rng = random.Random(12)
        self.assertIsNone(sensitivity.between_trial([trial(rng, 1.0, 0.02, 6) for _ in range(2)], 6))
        self.assertIsNone(sensitivity.between_trial([None, None, None], 6))
        self.assertIsNone(sensitivity.between_trial([trial(rng, 1.0, 0.02, 6) for _ in range(5)], 1))

    def test_drift_between_trials_shows_in_the_lag1_correlation(self):
        # (label, per-trial offsets, sign of the lag-1 correlation)
        rng = random.Random(14)
        walk, x = [], 0.0
        for _ in range(200):
            x = 0.9 * x + rng.gauss(0.0, 0.02)
            walk.append(x)
        cases = [("slow drift", walk, 1), ("alternating", [0.02 * (-1) ** i for i in range(200)], -1)]
        for label, offsets, sign in cases:
            with self.subTest(label):
                r = random.Random(15)
                aa = [trial(r, math.exp(o), 0.01, 6) for o in offsets]
                got = sensitivity.between_trial(aa, 6)["trial_lag1_corr"]
                self.assertGreater(got * sign, 0.5, got)

    def test_trial_component_estimated(self):
        # (label, block sd, shared sd, blocks): the method-of-moments variance is the shared sd's
        # square (0 for independent blocks, where it may come out as a little above 0)
        for label, sd, shared, blocks in [("independent blocks", 0.02, 0.0, 6),
                                          ("shared as large as a block's mean", 0.02, 0.008, 6),
                                          ("shared larger, 3 blocks", 0.01, 0.02, 3)]:
            with self.subTest(label):
                rng = random.Random(16)
                got = sensitivity.trial_log_var([trial(rng, 1.0, sd, blocks, shared) for _ in range(400)], blocks)
                self.assertAlmostEqual(got, shared ** 2, delta=0.25 * shared ** 2 + 0.1 * sd ** 2 / blocks)

    def test_widened_rates_hold_the_level_that_the_blocks_alone_miss(self):
        # A trial component as large as the blocks' standard error of the mean: the blocks' own
        # interval sees A/A differences in about 17% of trials; widened (leave one out) near the 5%
        # it promises, and a large effect is still detected.
        rng = random.Random(17)
        sd, blocks, shared = 0.02, 6, 0.02 / math.sqrt(6)
        aa = [trial(rng, 1.0, sd, blocks, shared) for _ in range(400)]
        ab = {10: [trial(rng, 1.10, sd, blocks, shared) for _ in range(400)]}
        raw = sum(map(sensitivity.false_positive, aa)) / 400
        w = sensitivity.widened(aa, ab, blocks)
        self.assertGreater(raw, 0.10)
        self.assertLess(w["aa_false_positive"]["k"] / 400, 0.08)
        self.assertGreater(w["aa_false_positive"]["k"] / 400, 0.01)
        self.assertGreater(w["detection"]["10"]["k"] / 400, 0.8)
        self.assertEqual(w["smallest_detected_pct"], 10)
        self.assertIsNone(sensitivity.widened(aa[:3], {}, blocks))

    def test_widen_adds_the_variance_to_the_standard_error(self):
        rng = random.Random(18)
        ci = trial(rng, 1.05, 0.02, 6)
        w = stats.widen(ci, 1e-4)
        self.assertAlmostEqual(w.log_se ** 2, ci.log_se ** 2 + 1e-4, places=12)
        self.assertEqual((w.ratio, w.df, w.log_sd), (ci.ratio, ci.df, ci.log_sd))
        self.assertLess(w.lo, ci.lo)
        self.assertGreater(w.hi, ci.hi)
        self.assertAlmostEqual(math.log(w.hi / w.ratio), stats.t975(5) * w.log_se, places=9)
        self.assertEqual(w.trial_log_var, 1e-4)
        for same in (0.0, None, -1.0):
            self.assertIs(stats.widen(ci, same), ci)
        welch = stats.welch_log_ratio([1.0, 1.1, 1.2], [1.0, 1.05, 1.1])
        self.assertIs(stats.widen(welch, 1e-4), welch)
        self.assertIsNone(stats.widen(None, 1e-4))

    def test_in_the_summary(self):
        rng = random.Random(13)
        s = sensitivity.summarize([trial(rng, 1.0, 0.02, 6, 0.03) for _ in range(40)], {}, 6)
        self.assertGreater(s["aa_between_trial"]["variance_ratio"], 3)
        self.assertLess(s["aa_between_trial"]["p"], 0.01)
        self.assertAlmostEqual(s["aa_between_trial"]["trial_log_var"], 0.03 ** 2, delta=0.6 * 0.03 ** 2)
        self.assertEqual(s["widened"]["aa_false_positive"]["n"], 40)


class CalibrationFile(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="cbench-cal-")
        self.addCleanup(shutil.rmtree, self.d)

    def write(self, body: dict) -> dict:
        with open(os.path.join(self.d, calibration.FILE), "w") as f:
            json.dump(body, f)
        return calibration.read(self.d)

    def test_version_2_round_trip(self):
        rng = random.Random(4)
        entry = sensitivity.summarize([trial(rng, 1.0, 0.001, 3) for _ in range(5)],
                                      {1: [trial(rng, 1.01, 0.001, 3) for _ in range(5)]}, 3)
        body = {"version": calibration.VERSION, "design": {}, "metrics": {"instructions_per_req@callgrind": entry}}
        calibration.write(self.d, body)
        ents = calibration.entries(calibration.read(self.d))
        self.assertEqual(list(ents), ["instructions_per_req@callgrind"])
        self.assertEqual(calibration.split_key("server_cpu_us_per_req@fixed-rate"), ("server_cpu_us_per_req", "fixed-rate"))

    def test_version_1_reads_as_one_entry(self):
        cal = self.write({"trials": 10, "repetitions": 3, "aa_false_positive": {"k": 1, "n": 10, "ci": [0, 0.4]},
                          "ab_detection_B5": {"k": 4, "n": 10, "ci": [0.1, 0.7]},
                          "ab_detection_B10": {"k": 9, "n": 10, "ci": [0.5, 1]}})
        (key, e), = calibration.entries(cal).items()
        self.assertEqual(key, "req_per_s@saturated")
        self.assertEqual(e["smallest_detected_pct"], 10)
        self.assertEqual(list(e["detection"]), ["5", "10"])

    def test_bad_version_2_refused(self):
        with self.assertRaises(calibration.CalibrationError):
            self.write({"version": calibration.VERSION, "metrics": {"x@y": {"detection": {}}}})


class Command(unittest.TestCase):
    def test_entries_and_estimate(self):
        self.assertEqual(calibrate.parse_entries("all"), list(calibrate.ENTRIES))
        self.assertEqual(calibrate.parse_entries("server_cpu_us_per_req@fixed-rate,instructions_per_req@callgrind"),
                         [calibrate.INSTR, calibrate.FIXED_CPU])
        with self.assertRaises(ValueError):
            calibrate.parse_entries("p99@saturated")
        eff = {e: calibrate.effects_for(e, None) for e in calibrate.ENTRIES}
        self.assertEqual(eff[calibrate.INSTR], [1, 5, 10])
        est = calibrate.estimate_s(list(calibrate.ENTRIES), 40, 3, eff, 1, 0.2)
        # Both saturated entries share one sweep per trial; the fixed-rate load has its own.
        self.assertEqual(set(est), {"stage 1 (callgrind)", calibrate.INSTR, "stage 1 (sweeps)", "saturated",
                                    calibrate.FIXED_CPU})
        self.assertAlmostEqual(est["saturated"], est[calibrate.FIXED_CPU])
        self.assertAlmostEqual(est[calibrate.INSTR], 40 * 3 * 5 * calibrate.INSTR_VALUE_S / 2)
        self.assertAlmostEqual(calibrate.default_estimate_s(),
                               sum(calibrate.estimate_s(list(calibrate.DEFAULT_ENTRIES), 40, 3,
                                                        {e: eff[e] for e in calibrate.DEFAULT_ENTRIES}, 1, 0.2).values()))

    def test_summary_table(self):
        rng = random.Random(6)
        e = sensitivity.summarize([trial(rng, 1.0, 0.001, 3) for _ in range(40)],
                                  {1: [trial(rng, 1.01, 0.001, 3) for _ in range(40)]}, 3)
        noisy = sensitivity.summarize([trial(rng, 1.0, 0.2, 3) for _ in range(4)],
                                      {5: [trial(rng, 1.05, 0.2, 3) for _ in range(4)]}, 3)
        lines = calibration_table.lines({calibrate.INSTR: e, calibrate.FIXED_CPU: noisy})
        row = next(x for x in lines if x.startswith(f"| {calibrate.INSTR} |"))
        self.assertIn("+1%: ", row)
        self.assertIn("| +1% |", row)
        self.assertRegex(row.split(" | ")[-1], r"^A/A \d+/40 .*; \+1%: \d+/40 ")  # widened, leave one out
        self.assertIn("none of those tried", next(x for x in lines if x.startswith(f"| {calibrate.FIXED_CPU} |")))
        # The blocks each tried effect would need at the A/A spread, beside this design's.
        want = sensitivity.blocks_for_power(noisy["block_log_sd"], 5.0)
        self.assertIn(f"| +5%: {want} (this design: 3) |", next(x for x in lines if x.startswith(f"| {calibrate.FIXED_CPU} |")))


class TrialNames(unittest.TestCase):
    def test_a_trial_run_directory_gives_back_its_number(self):
        name = calibrate.trial_sweep_name("fixed-rate", 12)
        # (run directory, load, trial number or None)
        for run_dir, load, want in [(f"20261205T050625Z-{name}", "fixed-rate", 12),
                                    (f"/r/runs/20261205T050625Z-{calibrate.trial_sweep_name('fixed-rate', 0)}/", "fixed-rate", 0),
                                    (f"20261205T050625Z-{name}", "saturated", None),
                                    (f"20261205T050625Z-{name}x", "fixed-rate", None),
                                    ("20261205T050625Z-calibrate-fixed-rate-trial", "fixed-rate", None),
                                    ("20261205T050625Z-calibrate-stage1-fixed-rate", "fixed-rate", None)]:
            with self.subTest(run_dir):
                self.assertEqual(calibrate.trial_number(run_dir, load), want)


class Rejudge(unittest.TestCase):
    """`cbench calibrate --rejudge DIR` on a copy of a committed calibration: its trials judged again."""
    CAL = os.path.join(calibrate.DEFAULT_OUT, "20261204T223951Z-calibrate")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-rejudge-")
        shutil.copy(os.path.join(self.CAL, calibration.FILE), self.tmp)
        os.symlink(os.path.join(self.CAL, calibration.RUNS_DIR), os.path.join(self.tmp, calibration.RUNS_DIR))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def rejudge(self) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = calibrate.rejudge(self.tmp)
        return rc, out.getvalue()

    def test_reproduces_the_recorded_rates_and_adds_the_between_trial_check(self):
        before = calibration.read(self.tmp)["metrics"][calibrate.FIXED_CPU]
        rc, out = self.rejudge()
        self.assertEqual(rc, 0, out)
        self.assertIn("40 trials judged again; rates as recorded", out)
        after = calibration.read(self.tmp)["metrics"][calibrate.FIXED_CPU]
        for k in ("aa_false_positive", "detection", "smallest_detected_pct", "planned_80pct_power_pct"):
            self.assertEqual(after[k], before[k], k)
        b = after["aa_between_trial"]
        self.assertEqual(b["df"], [39, 200])
        self.assertGreater(b["variance_ratio"], 1.0)
        self.assertAlmostEqual(b["interval_scale"], math.sqrt(b["variance_ratio"]), places=3)

    def test_a_stored_rate_the_rules_do_not_reproduce_is_named(self):
        path = os.path.join(self.tmp, calibration.FILE)
        with open(path) as f:
            cal = json.load(f)
        cal["metrics"][calibrate.FIXED_CPU]["aa_false_positive"]["k"] = 0
        with open(path, "w") as f:
            json.dump(cal, f)
        rc, out = self.rejudge()
        self.assertEqual(rc, 0, out)
        self.assertIn("changed by this version's rules: aa_false_positive", out)

    def test_refuses_what_it_cannot_judge(self):
        # (what the directory holds, exit status, message)
        cases = [("no calibration.json", 2, "unreadable"), ("no trial runs", 1, "no trial runs")]
        for label, rc_want, msg in cases:
            with self.subTest(label):
                if label == "no calibration.json":
                    os.remove(os.path.join(self.tmp, calibration.FILE))
                else:
                    shutil.copy(os.path.join(self.CAL, calibration.FILE), self.tmp)
                    os.remove(os.path.join(self.tmp, calibration.RUNS_DIR))
                    os.mkdir(os.path.join(self.tmp, calibration.RUNS_DIR))
                rc, out = self.rejudge()
                self.assertEqual(rc, rc_want, out)
                self.assertIn(msg, out)
                self.assertEqual(len(out.strip().splitlines()), 1, out)


class DesignText(unittest.TestCase):
    def test_the_design_text_names_the_design_that_ran(self):
        self.assertEqual(calibrate.design_why(calibrate.DEFAULT_BLOCKS, calibrate.DEFAULT_DURATION_S,
                                              calibrate.DEFAULT_WARMUP_S), calibrate.DESIGN_WHY)
        longer = calibrate.design_why(6, 3, 1.0)
        self.assertIn("6 blocks", longer)
        self.assertIn("3 s windows after 1 s of warm-up", longer)
        self.assertIn("not the regression gate's design", longer)


if __name__ == "__main__":
    unittest.main()
