"""`cbench regress` on simulated data: the gate's rule, its threshold from a
calibration, and the scenario field `binary` it relies on. Fast; the real A/A and handicapped
runs are tests/harness/regress_gate.py (ctest harness_regress)."""
import json
import os
import random
import tempfile
import unittest

import common  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.cmd import regress as cli_regress
from cbenchlib.analysis import findings
from cbenchlib.format import scenario, serverlist
from cbenchlib.analysis.runload import Cell

SCENARIO = """name = "x"
[[loads]]
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


class GateRule(unittest.TestCase):
    # (label, true ratio cand/base, noise cv, threshold %, expected gate)
    CASES = [
        ("A/A, tight", 1.00, 0.002, 10, cli_regress.PASS),
        ("5% slower, under a 10% threshold", 1.05, 0.002, 10, cli_regress.PASS),
        ("20% slower, over a 10% threshold", 1.20, 0.002, 10, cli_regress.FAIL),
        ("twice as slow (the test's handicap)", 2.00, 0.02, 10, cli_regress.FAIL),
        ("20% slower, over a 5% threshold", 1.20, 0.002, 5, cli_regress.FAIL),
        ("20% slower, under a 30% threshold", 1.20, 0.002, 30, cli_regress.PASS),
    ]

    def test_cases(self):
        for label, ratio, cv, thr, want in self.CASES:
            with self.subTest(label):
                r = cli_regress.judge(simulate(random.Random(1), ratio, cv), "m", thr)
                self.assertEqual(r["gate"], want, f"{label}: {r}")

    def test_noise_never_fails(self):
        """A/A with noisy rows (cv 10%, 3 blocks): no failure in 400 simulated gates."""
        rng = random.Random(7)
        fails = [i for i in range(400)
                 if cli_regress.judge(simulate(rng, 1.0, 0.10), "m", 10)["gate"] == cli_regress.FAIL]
        self.assertEqual(fails, [], "A/A gates that failed")

    def test_noisy_regression_is_undecided_not_failed(self):
        r = cli_regress.judge(simulate(random.Random(3), 1.15, 0.30), "m", 10)
        self.assertEqual((r["gate"], r["word"]), (cli_regress.PASS, findings.UNDECIDED), r)

    def test_candidate_failures_fail(self):
        run = FakeRun(cell([10, 10, 10]), cell([10, 10, 10], status=["ok", "failed", "ok"]))
        r = cli_regress.judge(run, "m", 10)
        self.assertEqual(r["gate"], cli_regress.FAIL, r)

    def test_error_bound_points_are_not_judged(self):
        run = FakeRun(cell([10, 10.1, 10]), cell([30, 30.2, 30], verdict="error-bound"))
        r = cli_regress.judge(run, "m", 10)
        self.assertEqual((r["gate"], r["word"]), (cli_regress.PASS, findings.UNDECIDED), r)

    def test_missing_model(self):
        r = cli_regress.judge(FakeRun(cell([1, 1]), cell([1, 1]), model="other"), "m", 10)
        self.assertEqual(r["word"], findings.NO_DATA)


class Threshold(unittest.TestCase):
    def calib(self, det: dict) -> str:
        d = tempfile.mkdtemp(prefix="cbench-regress-cal-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        body = {"trials": 10, "repetitions": 3, "duration_s": 1,
                **{f"ab_detection_B{k}": {"k": v, "n": 10, "ci": [0, 1]} for k, v in det.items()}}
        with open(os.path.join(d, "calibration.json"), "w") as f:
            json.dump(body, f)
        return d

    def test_smallest_detected_at_80_percent(self):
        # (label, detections of 10 per handicap %, expected threshold)
        for label, det, want in [("5% missed, 10% caught", {"5": 4, "10": 9}, 10.0),
                                 ("both caught", {"5": 8, "10": 10}, 5.0),
                                 ("none caught", {"5": 1, "10": 7}, None)]:
            with self.subTest(label):
                self.assertEqual(cli_regress.calibrated_threshold(self.calib(det))[0], want)

    def test_unreadable(self):
        with self.assertRaises(cli_regress.GateError):
            cli_regress.calibrated_threshold("/nonexistent-calibration")


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
                scenario.parse('name = "x"\n[[loads]]\nexplicit = [{ wrk_threads = 1, connections = 2 }]\n'
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
