"""The whole judging pipeline on seeded simulated runs with a known answer.

Each trial writes a run directory (points.jsonl with blocks, as the sweep writes it), then runs
the sequential stopping rule (sequential.decide) between blocks as the sweep executor does, adding
one block for the rows it names, and finally judges a declared finding (findings.Analysis, the
code behind `compare --published`). Noise: 5% CV per repetition, a drift per block shared by
the rows of the block, and 5% of repetitions slowed by 20-40% (outliers). True ratios a/b: 1.00,
0.95, 0.90, 0.70; the finding claims a/b < 1.

Requirements: wrong-direction ("contradicted" for a true effect) or false "supported" /
"contradicted" (for ratio 1.00) verdicts at most 5%: a two-sided 95% interval has exactly 5% by
design at ratio 1.00, so the check is that the observed rate is not significantly above 5% (the
lower Clopper-Pearson 95% bound of the observed rate at most 5%; a judge with a 10% rate fails it
at 150 trials, see test_a_judge_that_decides_on_noise_fails); intervals cover the true ratio at least 93%
of the time; at least 80% of the 10% effects decided. A judge that prints "undecided" everywhere
must fail (checked by running the same checks on such a judge). Design: --target-ci 2
--max-repetitions 20, two blocks to start (the pilot stage of sequential.py then asks for the rest).
About 20 s of CPU (150 trials per ratio).
"""
import json
import math
import os
import random
import tempfile
import unittest

import helpers  # noqa: F401 (sets sys.path)
from cbenchlib.analysis import findings, runload, sequential, stats
from cbenchlib.format import published

PATH = "/spin?us=10"
LOAD = "-t4 -c64 /spin?us=10"
TRUE_RATIOS = (1.00, 0.95, 0.90, 0.70)
TRIALS = 150
START_BLOCKS = 2
TARGET_CI_PCT = 2.0
MAX_REPS = 20
BASE_RPS = 40000.0
CV = 0.05
BLOCK_DRIFT = 0.03
OUTLIER_P = 0.05
SEED = 20261201

PUB = {
    "name": "sim", "title": "simulated", "provenance": {"source": "simulation_judging.py"},
    "columns": ["-t4 -c64"],
    "rows": [{"label": "sim a", "family": "sim", "cells": ["30000"]},
             {"label": "sim b", "family": "sim", "cells": ["40000"]}],
    "findings": [{"id": "S", "title": "a is slower than b", "claim": "a serves fewer requests than b",
                  "primary": {"path": PATH, "load": LOAD}, "published_column": "-t4 -c64",
                  "direction": "less", "metrics": ["req_per_s"],
                  "comparisons": [{"a": "sim a", "b": "sim b"}]}],
}


def sample(rng, mean):
    v = mean * math.exp(rng.gauss(0.0, CV))
    if rng.random() < OUTLIER_P:
        v *= 1.0 - rng.uniform(0.20, 0.40)
    return v


def pt(row, label, block, rps):
    return {"point_id": f"{row} / {LOAD}", "rep": block, "block": block,
            "row": {"key": row, "label": label, "kind": "model", "model": row, "threads": 1, "queues": None,
                    "gvl": False, "backend": None, "extra_args": []},
            "load": {"key": LOAD, "wrk_threads": 4, "connections": 64, "pipeline": 1, "path": PATH},
            "status": "ok", "verdict": "server-bound",
            "wrk": {"req_per_s": rps, "requests": int(rps * 2), "duration_us": 2_000_000},
            "derived": {"server_cpu_util": 0.99, "client_cpu_util": 0.55}}


class Simulator:
    def __init__(self, tmp):
        self.tmp = tmp
        self.pub_path = os.path.join(tmp, "sim.json")
        with open(self.pub_path, "w") as f:
            json.dump(PUB, f)
        self.pub = published.load_published(self.pub_path)
        self.n = 0

    def trial(self, rng, ratio, judge=None):
        """(verdict word, interval lo, hi, blocks used) of one simulated run."""
        self.n += 1
        run_dir = os.path.join(self.tmp, f"run{self.n}")
        os.makedirs(run_dir)
        with open(os.path.join(run_dir, "meta.json"), "w") as f:
            json.dump({"schema": 1, "run_id": f"sim{self.n}", "synthetic": True, "env": {}}, f)
        means = {"a": BASE_RPS * ratio, "b": BASE_RPS}
        labels = {"a": "sim a", "b": "sim b"}
        block = 0

        def add_block(rows):
            nonlocal block
            drift = math.exp(rng.gauss(0.0, BLOCK_DRIFT))
            with open(os.path.join(run_dir, "points.jsonl"), "a") as f:
                for r in rows:
                    f.write(json.dumps(pt(r, labels[r], block, sample(rng, means[r] * drift))) + "\n")
            block += 1

        for _ in range(START_BLOCKS):
            add_block(["a", "b"])
        for _ in range(MAX_REPS):
            d = sequential.decide(run_dir, self.pub_path, TARGET_CI_PCT, MAX_REPS)
            if d.stop:
                break
            add_block([r for r in ("a", "b") if f"{r} / {LOAD}" in d.rows])
        an = findings.Analysis(runload.load_run(run_dir), self.pub)
        ln = an.findings[0].lines[0]
        ci = ln.results[0].primary.ci
        word = ln.decision.word if judge is None else judge(ln)
        return word, ci.lo, ci.hi, block


def run_trials(sim, judge=None):
    rng = random.Random(SEED)
    out = {}
    for ratio in TRUE_RATIOS:
        out[ratio] = [sim.trial(rng, ratio, judge) for _ in range(TRIALS)]
    return out


def failures(results):
    """The requirements of the module docstring that these results break (empty: all hold)."""
    bad = []
    n_cover = n_all = 0
    for ratio, trials in results.items():
        words = [t[0] for t in trials]
        if ratio == 1.0:
            false = sum(w in (findings.SUPPORTED, findings.CONTRADICTED) for w in words)
            if stats.clopper_pearson(false, len(words))[0] > 0.05:
                bad.append(f"ratio 1.00: {false} of {len(words)} false supported/contradicted")
        else:
            wrong = sum(w == findings.CONTRADICTED for w in words)
            if stats.clopper_pearson(wrong, len(words))[0] > 0.05:
                bad.append(f"ratio {ratio}: {wrong} of {len(words)} wrong-direction verdicts")
        if ratio == 0.90:
            decided = sum(w != findings.UNDECIDED for w in words)
            if decided < 0.80 * len(words):
                bad.append(f"ratio 0.90: only {decided} of {len(words)} decided")
        for _w, lo, hi, _n in trials:
            n_all += 1
            n_cover += lo <= ratio <= hi
    if n_cover < 0.93 * n_all:
        bad.append(f"coverage {n_cover} of {n_all} < 93%")
    return bad


class SimulationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.results = run_trials(Simulator(cls.tmp.name))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_error_rates_coverage_and_power(self):
        summary = {r: {w: sum(t[0] == w for t in ts) for w in findings.VERDICT_WORDS}
                   for r, ts in self.results.items()}
        self.assertEqual(failures(self.results), [], f"verdict counts per true ratio: {summary}")

    def test_large_effects_are_decided_and_sequential_stops_by_the_cap(self):
        words = [t[0] for t in self.results[0.70]]
        self.assertGreaterEqual(words.count(findings.SUPPORTED), 0.95 * len(words))
        self.assertTrue(all(START_BLOCKS <= t[3] <= MAX_REPS for ts in self.results.values() for t in ts))
        # With 5% CV a ±3% interval needs more blocks than the start: the rule did add some.
        self.assertTrue(any(t[3] > START_BLOCKS for t in self.results[1.0]))

    def test_a_judge_that_never_decides_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            global TRIALS
            saved, TRIALS = TRIALS, 10
            try:
                lazy = run_trials(Simulator(tmp), judge=lambda ln: findings.UNDECIDED)
            finally:
                TRIALS = saved
        self.assertTrue(any("decided" in b for b in failures(lazy)))

    def test_a_judge_that_decides_on_noise_fails(self):
        # "supported" whenever the point estimate is below 1 and the interval narrower than ±5%:
        # decides on noise at ratio 1.00.
        def eager(ln):
            ci = ln.results[0].primary.ci
            return findings.SUPPORTED if ci.ratio < 1.0 and ci.half_width_pct < 8.0 else findings.UNDECIDED
        with tempfile.TemporaryDirectory() as tmp:
            sim, rng = Simulator(tmp), random.Random(SEED)
            noisy = {1.0: [sim.trial(rng, 1.0, judge=eager) for _ in range(40)]}
        self.assertTrue(any("false supported" in b for b in failures(noisy)), failures(noisy))


if __name__ == "__main__":
    unittest.main()
