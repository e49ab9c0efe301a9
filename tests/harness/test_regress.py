"""`cbench regress` on simulated data: the gate's rule (pass, fail, undecided with the blocks that
would decide it), its exit statuses, its metrics from a calibration, and the scenario field
`binary` it relies on. Fast; the real A/A and handicapped
runs are tests/harness/regress_gate.py (ctest harness_regress)."""
import json
import math
import os
import random
import tempfile
import unittest

import common  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.cmd import calibrate
from cbenchlib.cmd import regress as cli_regress
from cbenchlib.analysis import findings, gate, stats
from cbenchlib.format import calibration, scenario, serverlist
from cbenchlib.analysis.runload import Cell

SCENARIO = """name = "x"
[[loads]]
generator = "wrk"
explicit = [{ wrk_threads = 1, connections = 2 }]
[[rows]]
key = "baseline pull-loop"
model = "pull-loop"
binary = "build-regress/abc/cbench-server"
[[rows]]
key = "candidate pull-loop"
model = "pull-loop"
"""


def cell(cpu_us: list[float], status: list[str] | None = None, verdict: str = "server-bound") -> Cell:
    pts = []
    for i, v in enumerate(cpu_us):
        st = status[i] if status else "ok"
        pts.append({"status": st, "block": i, "verdict": verdict,
                    "derived": {"server_cpu_us_per_req": v}, "wrk": {"req_per_s": 1e6 / v}})
    return Cell(row=None, load=None, points=pts)


class FakeRun:
    def __init__(self, base: Cell, cand: Cell, model: str = "m"):
        self.cells = {(f"baseline {model}", "l"): base, (f"candidate {model}", "l"): cand}


def simulate(rng: random.Random, ratio: float, cv: float, n: int = 3) -> FakeRun:
    """n blocks; a shared per-block drift (the busy machine) plus independent noise per row."""
    base, cand = [], []
    for _ in range(n):
        drift = rng.gauss(1.0, 0.05)
        base.append(10.0 * drift * rng.gauss(1.0, cv))
        cand.append(10.0 * ratio * drift * rng.gauss(1.0, cv))
    return FakeRun(cell(base), cell(cand))


P, F, U = cli_regress.PASS, cli_regress.FAIL, cli_regress.UNDECIDED
CPU = ("server_cpu_us_per_req",)  # the sweep metric the simulated cells carry


class GateRule(unittest.TestCase):
    """Non-inferiority: pass only when the whole interval lies below 1 + threshold, fail only when
    it lies above, undecided (which does not pass) otherwise."""
    # (label, true ratio cand/base, noise cv, blocks, threshold %, expected gate)
    CASES = [
        ("A/A, tight", 1.00, 0.002, 3, 10, P),
        ("5% slower, under a 10% threshold", 1.05, 0.002, 3, 10, P),
        ("20% slower, over a 10% threshold", 1.20, 0.002, 3, 10, F),
        ("twice as slow", 2.00, 0.02, 3, 10, F),
        ("20% slower, over a 5% threshold", 1.20, 0.002, 3, 5, F),
        ("20% slower, under a 30% threshold", 1.20, 0.002, 3, 30, P),
        ("A/A, noisy: undecided, not passed", 1.00, 0.10, 3, 10, U),
        ("10% slower, at the threshold", 1.10, 0.01, 5, 10, U),
        ("15% slower, noisy: undecided, not failed", 1.15, 0.30, 3, 10, U),
        ("one block: no interval", 1.00, 0.002, 1, 10, U),
    ]

    def test_cases(self):
        for label, ratio, cv, n, thr, want in self.CASES:
            with self.subTest(label):
                r = cli_regress.judge(simulate(random.Random(1), ratio, cv, n), "m", thr, CPU)
                self.assertEqual(r["gate"], want, f"{label}: {r}")
                self.assertEqual(cli_regress.exit_status([r]), {P: 0, F: 1, U: 3}[want])

    def test_noise_never_fails_and_a_regression_never_passes(self):
        """400 simulated gates each, 5 blocks: an A/A with noisy rows (cv 10%) fails, and a 20%
        regression with the same noise passes, in at most 1% of them (each is a one-sided 2.5%
        error at the threshold itself, and rarer the farther the truth lies from it)."""
        rng = random.Random(7)
        for label, ratio, never in [("A/A", 1.0, F), ("+20%", 1.2, P)]:
            with self.subTest(label):
                got = [cli_regress.judge(simulate(rng, ratio, 0.10, 5), "m", 10, CPU)["gate"] for _ in range(400)]
                self.assertLessEqual(got.count(never), 4, f"{label}: {got.count(never)} of 400 {never}")
                self.assertGreater(got.count(U), 0)

    def test_undecided_says_how_many_blocks_would_decide(self):
        r = cli_regress.judge(simulate(random.Random(1), 1.00, 0.05, 3), "m", 10, CPU)
        self.assertEqual(r["gate"], U, r)
        n = r["blocks_needed"]
        self.assertGreater(n, 3)
        self.assertIn(f"--repetitions {n}", r["reason"])
        ci = r["metrics"]["server_cpu_us_per_req"]["slowdown"]
        # The rule it comes from: the smallest n with t(0.975, n-1) * sd / sqrt(n) below the
        # distance from the observed ratio to the threshold, on the log scale.
        run = simulate(random.Random(1), 1.00, 0.05, 3)
        sd = findings.effect(run.cells[("candidate m", "l")], run.cells[("baseline m", "l")],
                             "server_cpu_us_per_req").log_sd
        dist = math.log(1.1) - math.log(ci["ratio"])
        half = lambda k: stats.t975(k - 1) * sd / math.sqrt(k)  # noqa: E731
        self.assertLess(half(n), dist)
        self.assertGreaterEqual(half(n - 1), dist)

    def test_blocks_estimate_cap_and_unknown(self):
        # (label, ci, expected): on the threshold no count decides; without a spread none is known
        for label, ci, want in [
                ("on the threshold", stats.RatioCI(1.1, 1.0, 1.2, 3, 3, "paired-t", 0.02, 2.0, 0.035),
                 gate.MAX_BLOCKS + 1),
                ("no spread known", stats.RatioCI(1.0, None, None, 1, 1, "none"), None)]:
            with self.subTest(label):
                self.assertEqual(gate.blocks_to_decide(ci, 1.1), want)
                self.assertIn("blocks" if want else "unknown", gate.blocks_text(want))

    def test_candidate_failures_fail(self):
        run = FakeRun(cell([10, 10, 10]), cell([10, 10, 10], status=["ok", "failed", "ok"]))
        r = cli_regress.judge(run, "m", 10, CPU)
        self.assertEqual(r["gate"], F, r)

    def test_error_bound_points(self):
        # (label, baseline verdict, candidate verdict, expected gate)
        for label, vb, vc, want in [("candidate error-bound: fails", "server-bound", "error-bound", F),
                                    ("both error-bound: the candidate still fails", "error-bound", "error-bound", F),
                                    ("baseline error-bound only: not judged", "error-bound", "server-bound", U)]:
            with self.subTest(label):
                run = FakeRun(cell([10, 10.1, 10], verdict=vb), cell([10, 10.2, 10], verdict=vc))
                self.assertEqual(cli_regress.judge(run, "m", 10, CPU)["gate"], want)

    def test_missing_model(self):
        r = cli_regress.judge(FakeRun(cell([1, 1]), cell([1, 1]), model="other"), "m", 10, CPU)
        self.assertEqual((r["gate"], r["word"]), (U, cli_regress.NO_DATA))

    def test_req_per_s_is_judged_as_a_throughput(self):
        """req/s falls when the candidate is slower: the gate judges base/cand on it."""
        for label, ratio, want in [("20% slower", 1.2, F), ("same", 1.0, P)]:
            with self.subTest(label):
                r = cli_regress.judge(simulate(random.Random(1), ratio, 0.002), "m", 10, ("req_per_s",))
                self.assertEqual(r["gate"], want, r)

    def test_every_metric_must_pass(self):
        # CPU per request passes; req/s is not judged at client-bound points: undecided.
        run = FakeRun(cell([10, 10.1, 10], verdict="client-bound"), cell([10, 10.1, 10], verdict="client-bound"))
        r = cli_regress.judge(run, "m", 10, ("server_cpu_us_per_req", "req_per_s"))
        self.assertEqual(r["gate"], U, r)
        self.assertEqual(r["metrics"]["server_cpu_us_per_req"]["gate"], P)


class TrialWidening(unittest.TestCase):
    """A calibration's between-trial variance widens the gate's intervals (gate.trial_variances)."""

    def test_a_shared_component_the_blocks_hide(self):
        # 400 sittings of an unchanged candidate, each with an offset its blocks share (sd 5%) and
        # tight blocks (cv 0.5%), at a 5% threshold: the blocks' own intervals fail the sittings
        # whose offset exceeds 5% (about one in six), widened by the offset's variance at most 1%.
        rng = random.Random(21)
        var = 0.05 ** 2
        got = {0.0: [], var: []}
        for _ in range(400):
            run = simulate(rng, math.exp(rng.gauss(0.0, 0.05)), 0.005, 3)
            for v in got:
                got[v].append(cli_regress.judge(run, "m", 5, CPU, trial_log_var={"server_cpu_us_per_req": v})["gate"])
        self.assertGreater(got[0.0].count(F), 40)
        self.assertLessEqual(got[var].count(F), 4)
        self.assertEqual(got[var].count(P) + got[var].count(U) + got[var].count(F), 400)

    def test_more_blocks_do_not_shrink_the_shared_part(self):
        ci = stats.widen(stats.RatioCI(1.02, 0.99, 1.05, 3, 3, "paired-t", 0.005, 2.0, 0.0087), 0.03 ** 2)
        # t(0.975, n-1) * 0.03 alone exceeds log(1.05 / 1.02) at every n: no count decides
        self.assertEqual(gate.blocks_to_decide(ci, 1.05), gate.MAX_BLOCKS + 1)
        self.assertLess(gate.blocks_to_decide(stats.widen(ci, None), 1.2), gate.MAX_BLOCKS + 1)

    def test_from_a_calibration(self):
        # (label, entries' aa_between_trial, expected variances): only the gate's loads, only above 0
        for label, ents, want in [
                ("saturated CPU", {"server_cpu_us_per_req@saturated": {"trial_log_var": 4e-5}},
                 {"server_cpu_us_per_req": 4e-5}),
                ("zero left out, fixed rate its own", {"instructions_per_req@callgrind": {"trial_log_var": 0.0},
                                                       "server_cpu_us_per_req@fixed-rate": {"trial_log_var": 4e-5}},
                 {gate.FIXED_CPU: 4e-5}),
                ("a load the gate does not measure", {"req_per_s@fixed-rate": {"trial_log_var": 4e-5}}, {}),
                ("written before it existed", {"req_per_s@saturated": None}, {})]:
            with self.subTest(label):
                cal = {"version": 2, "metrics": {k: {"trials": 40, "blocks": 3, "aa_between_trial": b,
                                                     "aa_false_positive": {"k": 0, "n": 40, "ci": [0, 1]},
                                                     "detection": {}} for k, b in ents.items()}}
                self.assertEqual(gate.trial_variances(cal), want)
        self.assertEqual(gate.trial_variances(None), {})


class Instructions(unittest.TestCase):
    """Instructions per request, measured block by block outside the sweep, judged by the same rule."""

    @staticmethod
    def blocks(rng: random.Random, ratio: float, cv: float, n: int = 3) -> dict:
        base = {b: 1284.0 * rng.gauss(1.0, cv) for b in range(n)}
        return {"baseline": base, "candidate": {b: 1284.0 * ratio * rng.gauss(1.0, cv) for b in range(n)}}

    def test_cases(self):
        # (label, true ratio, cv between processes, blocks, expected gate); 0.2% is callgrind's spread
        for label, ratio, cv, n, want in [("A/A", 1.0, 0.002, 3, P), ("+10% at the threshold", 1.10, 0.002, 3, U),
                                          ("+20%", 1.2, 0.002, 3, F), ("one block", 1.0, 0.002, 1, U)]:
            with self.subTest(label):
                r = cli_regress.judge(None, "m", 10, ("instructions_per_req",),
                                      self.blocks(random.Random(3), ratio, cv, n))
                self.assertEqual(r["gate"], want, r)
                self.assertEqual(cli_regress.exit_status([r]), {P: 0, F: 1, U: 3}[want])
                if want == U and n > 1:
                    self.assertIn("blocks", r["reason"])
                self.assertEqual(len(r["instructions_per_req"]["candidate"]), n)

    def test_with_a_sweep_metric_both_must_pass(self):
        run = simulate(random.Random(1), 1.0, 0.10, 3)  # CPU per request too noisy to pass
        ins = self.blocks(random.Random(1), 1.0, 0.002)
        r = cli_regress.judge(run, "m", 10, ("instructions_per_req", "server_cpu_us_per_req"), ins)
        self.assertEqual(r["metrics"]["instructions_per_req"]["gate"], P, r)
        self.assertEqual(r["gate"], r["metrics"]["server_cpu_us_per_req"]["gate"], r)

    def test_not_measured(self):
        r = cli_regress.judge(None, "m", 10, ("instructions_per_req",), None)
        self.assertEqual(r["gate"], U)

    def test_regress_md_says_what_was_measured(self):
        r = cli_regress.judge(None, "m", 10, ("instructions_per_req",), self.blocks(random.Random(3), 1.2, 0.002))
        meta = {"baseline_commit": "a" * 40, "baseline_rev": "HEAD", "baseline_how": "copied", "candidate_commit": "b",
                "candidate_dirty": False, "candidate_args": "--handicap-loops 26", "path": "/spin?us=10",
                "wrk_threads": 4, "connections": 64, "threads": 1, "repetitions": 3, "duration_s": 1,
                "instructions_requests": {"warm": 1000, "window": 1000}, "threshold_pct": 10,
                "threshold_source": "default", "metrics": ["instructions_per_req"], "metrics_source": "default list",
                "run": None, "notes": []}
        text = cli_regress.render([r], meta)
        self.assertIn("- instructions: 3 blocks, each one server per side under callgrind counted over 1000", text)
        self.assertNotIn("- point:", text)
        self.assertIn("| m | FAIL | instructions/request 1.", text)


class ExitStatus(unittest.TestCase):
    def test_table(self):
        def r(g, word=None):
            return {"model": "m", "gate": g, "word": word or g, "reason": ""}
        # (label, model results, exit status)
        for label, results, want in [
                ("all pass", [r(P), r(P)], 0), ("one fails", [r(P), r(F), r(U)], 1),
                ("one undecided", [r(P), r(U)], 3), ("one not measured", [r(P), r(U, cli_regress.NO_DATA)], 3),
                ("nothing measured", [r(U, cli_regress.NO_DATA)], 2)]:
            with self.subTest(label):
                self.assertEqual(cli_regress.exit_status(results), want)


FIXED = gate.FIXED_CPU


class FixedRateLoad:
    """A points.jsonl load of a fixed-rate load, as runload gives it (cell.load.raw)."""
    raw = {"rate_common_fraction": 0.5, "alternate_ms": 500}


def fixed_cell(cpu_us: list[float], overloaded: list[bool] | None = None, verdict: str = "unclear") -> Cell:
    """Open-loop repetitions at 20,000 req/s offered, one per block."""
    c = cell(cpu_us, verdict=verdict)
    for i, p in enumerate(c.points):
        over = bool(overloaded and overloaded[i])
        p["wrk"] = {"mode": "open", "rate_offered": 20000.0, "overloaded": over,
                    "req_per_s": 15000.0 if over else 20000.0}
    c.load = FixedRateLoad()
    return c


class FixedRate(unittest.TestCase):
    """CPU per request at the fixed-rate load: judged on that load's cells only, by the same rule,
    where every repetition kept the offered rate (loadgen.fixed_rate_refusal)."""

    def run_of(self, base: Cell, cand: Cell, sat: tuple | None = None) -> FakeRun:
        run = FakeRun(*(sat or (cell([10, 10, 10]), cell([10, 10, 10]))))
        run.cells.update({("baseline m", "f"): base, ("candidate m", "f"): cand})
        return run

    def test_cases(self):
        # (label, baseline cpu, candidate cpu, candidate overloaded, expected gate, words in the reason)
        for label, b, c, over, want, words in [
                ("A/A, tight", [8.0, 8.1, 7.9], [8.02, 8.1, 7.92], None, P, "lies below 1.1"),
                ("+20%", [8.0, 8.1, 7.9], [9.6, 9.7, 9.5], None, F, "lies above 1.1"),
                ("the candidate could not keep the rate", [8.0, 8.1, 7.9], [8.0, 8.1, 7.9], [False, True, False],
                 U, "not judged: points were overloaded"),
                ("one block", [8.0], [8.0], None, U, "no interval")]:
            with self.subTest(label):
                r = cli_regress.judge(self.run_of(fixed_cell(b), fixed_cell(c, over)), "m", 10, (FIXED,))
                self.assertEqual(r["gate"], want, r)
                self.assertIn(words, r["reason"])
                self.assertEqual(set(r["loads"]), {gate.SATURATED, gate.FIXED_RATE})

    def test_each_metric_reads_its_own_load(self):
        # The saturated cells say +30% (client-bound, where CPU per request may judge), the fixed-rate
        # cells an unchanged candidate: each metric gives its own load's verdict.
        sat = (cell([10, 10.1, 10], verdict="client-bound"), cell([13, 13.1, 13], verdict="client-bound"))
        run = self.run_of(fixed_cell([8.0, 8.1, 7.9]), fixed_cell([8.0, 8.1, 7.9]), sat)
        r = cli_regress.judge(run, "m", 10, ("server_cpu_us_per_req", FIXED))
        self.assertEqual((r["metrics"]["server_cpu_us_per_req"]["gate"], r["metrics"][FIXED]["gate"]), (F, P), r)
        self.assertEqual(r["gate"], F)
        self.assertAlmostEqual(r["loads"][gate.SATURATED]["cpu_ratio"]["ratio"], 1.3, places=2)

    def test_not_measured_without_the_fixed_rate_cells(self):
        r = cli_regress.judge(FakeRun(cell([10, 10, 10]), cell([10, 10, 10])), "m", 10, (FIXED,))
        self.assertEqual((r["gate"], r["word"]), (U, cli_regress.NO_DATA))

    def test_error_bound_candidate_at_the_fixed_rate_fails(self):
        run = self.run_of(fixed_cell([8.0, 8.1, 7.9]), fixed_cell([8.0, 8.1, 7.9], verdict="error-bound"))
        self.assertEqual(cli_regress.judge(run, "m", 10, (FIXED,))["gate"], F)

    def test_scenario_loads_follow_the_metrics(self):
        class A:
            warmup, path, wrk_threads, connections, threads = 0.5, "/spin?us=10", 4, 64, 1
        # (metrics, expected loads: name -> (generator, rate_common_fraction, alternate_ms))
        # The saturated point's generator is the default one (cbench-load), closed loop.
        for metrics, want in [(("server_cpu_us_per_req",), {"regress": ("cbench-load", None, None)}),
                              ((FIXED,), {"fixed-rate": ("cbench-load", 0.5, 500)}),
                              (("req_per_s", FIXED), {"regress": ("cbench-load", None, None),
                                                      "fixed-rate": ("cbench-load", 0.5, 500)})]:
            with self.subTest(metrics):
                sc = scenario.parse(cli_regress.scenario_toml(A, ["epoll-reactor"], "/abs/base/cbench-server", [], 3, 1,
                                                              seed=5, metrics=metrics), "regress.toml")
                got = {name: (ls[0].generator, ls[0].rate_common_fraction, ls[0].alternate_ms)
                       for name, ls in sc.load_sets.items()}
                self.assertEqual(got, want)
                for ls in sc.load_sets.values():
                    self.assertEqual((ls[0].path, ls[0].connections), ("/spin?us=10", 64))

    def test_regress_md_names_the_fixed_rate_load(self):
        r = cli_regress.judge(self.run_of(fixed_cell([8.0, 8.1, 7.9]), fixed_cell([8.0, 8.1, 7.9])), "m", 10, (FIXED,))
        meta = {"baseline_commit": "a" * 40, "baseline_rev": "HEAD", "baseline_how": "copied", "candidate_commit": "b",
                "candidate_dirty": False, "candidate_args": "", "path": "/spin?us=10", "wrk_threads": 4,
                "connections": 64, "threads": 1, "repetitions": 3, "duration_s": 1, "threshold_pct": 10,
                "threshold_source": "default", "metrics": [FIXED], "metrics_source": "named with --metrics",
                "run": "runs/x", "notes": []}
        text = cli_regress.render([r], meta)
        self.assertIn("fixed rate: cbench-load -t4 -c64 open loop at 0.5x the lowest closed-loop peak", text)
        self.assertNotIn("saturated:", text)
        self.assertIn("| m | pass | server CPU/request at a fixed rate 1.", text)


class Metrics(unittest.TestCase):
    def calib(self, det: dict, metric: str | None = None) -> str:
        d = tempfile.mkdtemp(prefix="cbench-regress-cal-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        body = {"trials": 10, "repetitions": 3, "duration_s": 1,
                **{f"ab_detection_B{k}": {"k": v, "n": 10, "ci": [0, 1]} for k, v in det.items()}}
        if metric:
            body["metric"] = metric
        with open(os.path.join(d, "calibration.json"), "w") as f:
            json.dump(body, f)
        return d

    def calib_v2(self, entries: dict) -> str:
        """A version-2 calibration: {"<metric>@<load>": {effect %: detections of 40}}."""
        d = tempfile.mkdtemp(prefix="cbench-regress-cal-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        rate = lambda k: {"k": k, "n": 40, "ci": [0, 1]}  # noqa: E731
        body = {"version": 2, "metrics": {key: {"trials": 40, "blocks": 3, "aa_false_positive": rate(1),
                                               "detection": {p: rate(k) for p, k in det.items()}}
                                         for key, det in entries.items()}}
        with open(os.path.join(d, "calibration.json"), "w") as f:
            json.dump(body, f)
        return d

    def test_metrics_that_catch_the_threshold(self):
        # (label, detections of 10 per handicap %, calibration's metric, threshold, expected metrics)
        for label, det, metric, thr, want in [
                ("10% caught on req/s (calibrate's metric)", {"5": 4, "10": 9}, None, 10, ["req_per_s"]),
                ("5% caught catches 10% too", {"5": 8, "10": 7}, None, 10, ["req_per_s"]),
                ("10% caught, threshold 5%: the default list", {"5": 4, "10": 9}, None, 5, ["instructions_per_req"]),
                ("none caught: the default list", {"5": 1, "10": 7}, None, 10, ["instructions_per_req"]),
                ("caught on CPU per request", {"10": 10}, "server_cpu_us_per_req", 10, ["server_cpu_us_per_req"])]:
            with self.subTest(label):
                metrics, why, _cal = cli_regress.choose_metrics(self.calib(det, metric), thr)
                self.assertEqual(metrics, want, why)
                self.assertEqual("default list" in why, want == ["instructions_per_req"], why)

    def test_version_2_entries(self):
        # (label, entries, threshold, expected metrics): only entries at the gate's loads count,
        # instructions first; a fixed-rate entry is not the gate's measurement.
        for label, ents, thr, want in [
                ("instructions and saturated CPU", {"instructions_per_req@callgrind": {"1": 40, "5": 40, "10": 40},
                                                    "server_cpu_us_per_req@saturated": {"5": 20, "10": 35}},
                 10, ["instructions_per_req", "server_cpu_us_per_req"]),
                ("saturated CPU misses 10%", {"instructions_per_req@callgrind": {"1": 40},
                                              "server_cpu_us_per_req@saturated": {"5": 10, "10": 31}},
                 10, ["instructions_per_req"]),
                ("fixed rate: the gate's fixed-rate load", {"server_cpu_us_per_req@fixed-rate": {"5": 40}},
                 10, ["server_cpu_us_per_req@fixed-rate"]),
                ("fixed rate misses 10%", {"instructions_per_req@callgrind": {"1": 40},
                                           "server_cpu_us_per_req@fixed-rate": {"5": 9, "10": 30}},
                 10, ["instructions_per_req"]),
                ("an entry at a load the gate does not measure", {"req_per_s@fixed-rate": {"5": 40}},
                 10, ["instructions_per_req"])]:
            with self.subTest(label):
                metrics, why, _cal = cli_regress.choose_metrics(self.calib_v2(ents), thr)
                self.assertEqual(metrics, want, why)
        _m, why, _c = cli_regress.choose_metrics(self.calib_v2({"req_per_s@fixed-rate": {"5": 40}}), 10)
        self.assertIn("not measured by the gate: req_per_s@fixed-rate", why)

    def test_named_metrics(self):
        self.assertEqual(cli_regress.choose_metrics(None, 10, "req_per_s, instructions_per_req")[0],
                         ["req_per_s", "instructions_per_req"])
        with self.assertRaises(cli_regress.GateError):
            cli_regress.choose_metrics(None, 10, "p99")

    def test_without_calibration(self):
        metrics, why, cal = cli_regress.choose_metrics(None, 10)
        self.assertEqual((metrics, cal), (["instructions_per_req"], None))
        self.assertIn("default list", why)

    def test_unreadable(self):
        with self.assertRaises(cli_regress.GateError):
            cli_regress.choose_metrics("/nonexistent-calibration", 10)


class CalibrationTrials(unittest.TestCase):
    """`cbench calibrate` judges each trial's B/A on the points the gate would judge (gate.refusals)."""

    def test_table(self):
        # (label, metric, verdict of both rows, judged: B is 10% slower in every block)
        for label, metric, verdict, judged in [
                ("CPU at a client-bound point", "server_cpu_us_per_req", "client-bound", True),
                ("req/s at a client-bound point", "req_per_s", "client-bound", False),
                ("req/s at a server-bound point", "req_per_s", "server-bound", True),
                ("CPU at an error-bound point", "server_cpu_us_per_req", "error-bound", False)]:
            with self.subTest(label):
                run = FakeRun(cell([10, 10.1, 10], verdict=verdict), cell([11, 11.1, 11], verdict=verdict))
                run.cells = {("A", "l"): run.cells[("baseline m", "l")], ("B5", "l"): run.cells[("candidate m", "l")]}
                ci = calibrate.wall_slowdown(run, "B5", metric)
                self.assertEqual(ci is not None, judged)
                if judged:
                    self.assertAlmostEqual(ci.ratio, 1.1, places=2)


class CalibratedDesign(unittest.TestCase):
    """With --calibration the gate runs the calibrated design's blocks and window (its rates speak
    for that design), from either version of calibration.json."""

    def test_table(self):
        v2 = lambda design: {"version": calibration.VERSION, "design": design, "metrics": {}}  # noqa: E731
        for label, cal, want in [
                ("version 1", {"trials": 10, "repetitions": 5, "duration_s": 2}, (5, 2)),
                ("version 2, fixed rate", v2({"blocks": 6, "fixed-rate": {"duration_s": 2}}), (6, 2)),
                ("version 2, saturated", v2({"blocks": 4, "saturated": {"duration_s": 3}}), (4, 3)),
                ("version 2, instructions only", v2({"blocks": 3}), (3, None)),
                ("nothing said", v2({}), (None, None)),
                ("a boolean is no count", {"repetitions": True}, (None, None)),
                ("no calibration", None, (None, None))]:
            with self.subTest(label):
                self.assertEqual((calibration.design_blocks(cal), calibration.design_duration_s(cal)), want)


class DefaultModels(unittest.TestCase):
    """Without --models the gate judges concurrency models only: the traits column of --list
    (not the summary text) leaves out instruments and bounded models."""
    LIST = ("epoll-reactor\t-\tone thread, level-triggered epoll\n"
            "floor\tinstrument\tsyscall floor, not a model\n"
            "floor-uring\tinstrument\tcompletion floor\n"
            "blocking-pool\tbounded\tN threads, each serving one connection\n"
            "odd\tbounded,instrument\tboth traits\n"
            "pull-loop\t-\t[instrument] in the summary text is not a trait\n")

    def test_instruments_and_bounded_models_are_left_out(self):
        class A:
            models = None
        listed = serverlist.parse(self.LIST)
        models, notes = cli_regress.choose_models(A, listed, listed)
        self.assertEqual(models, ["epoll-reactor", "pull-loop"])
        self.assertTrue(any("blocking-pool" in n and "floor" in n for n in notes), notes)

    def test_named_models_are_judged_whatever_their_traits(self):
        class A:
            models = "floor,epoll-reactor"
        listed = serverlist.parse(self.LIST)
        self.assertEqual(cli_regress.choose_models(A, listed, listed)[0], ["floor", "epoll-reactor"])

    def test_a_list_without_the_traits_column_is_refused(self):
        with self.assertRaises(serverlist.ServerListError):
            serverlist.parse("floor\tsyscall floor, not a model\n")


class BinaryField(unittest.TestCase):
    def test_rows_of_two_builds_may_meet(self):
        sc = scenario.parse(SCENARIO, "x.toml")
        base, cand = sc.rows
        self.assertEqual(base.binary, "build-regress/abc/cbench-server")
        self.assertIsNone(cand.binary)
        self.assertNotEqual(base.id, cand.id)
        self.assertEqual(base.to_json()["binary"], base.binary)
        self.assertNotIn("binary", cand.to_json())

    def test_same_build_twice_refused(self):
        both = SCENARIO + '[[rows]]\nkey = "again"\nmodel = "pull-loop"\nbinary = "build-regress/abc/cbench-server"\n'
        with self.assertRaises(scenario.ScenarioError):
            scenario.parse(both, "x.toml")

    def test_refused_on_peers_and_empty(self):
        for label, row in [("peer", 'kind = "peer"\nmodel = "nginx"\nbinary = "x"\n'),
                           ("empty", 'model = "pull-loop"\nbinary = ""\n')]:
            with self.subTest(label), self.assertRaises(scenario.ScenarioError):
                scenario.parse('name = "x"\n[[loads]]\ngenerator = \"wrk\"\nexplicit = [{ wrk_threads = 1, connections = 2 }]\n'
                               "[[rows]]\n" + row, "x.toml")

    def test_scenario_generated_by_the_gate_parses(self):
        class A:
            warmup, path, wrk_threads, connections, threads = 0.5, "/spin?us=10", 4, 64, 1
        toml = cli_regress.scenario_toml(A, ["epoll-reactor", "pull-loop"], "/abs/base/cbench-server",
                                         ["--handicap-ns", "20000"], 3, 1, seed=5)
        sc = scenario.parse(toml, "regress.toml")
        self.assertEqual([r.key for r in sc.rows], ["baseline epoll-reactor", "candidate epoll-reactor",
                                                    "baseline pull-loop", "candidate pull-loop"])
        self.assertEqual(sc.rows[1].extra_args, ("--handicap-ns", "20000"))
        self.assertEqual(sc.rows[0].extra_args, ())
        self.assertEqual(sc.settings.order, "blocked")


if __name__ == "__main__":
    unittest.main()
