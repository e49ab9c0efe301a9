"""The stopping rule's interface and decisions (sequential.decide), on small seeded runs."""
import json
import math
import os
import random
import tempfile
import unittest

import helpers  # noqa: F401
from cbenchlib.analysis import sequential, stats
from simulation_judging import LOAD, PUB, pt


class SequentialTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.pub = os.path.join(self.tmp.name, "sim.json")
        with open(self.pub, "w") as f:
            json.dump(PUB, f)

    def run_with(self, blocks, cv, seed=5, rows=("a", "b"), ratio=0.9):
        d = os.path.join(self.tmp.name, f"run{blocks}-{cv}-{seed}-{len(rows)}")
        os.makedirs(d)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"schema": 1, "run_id": "s", "env": {}}, f)
        rng = random.Random(seed)
        with open(os.path.join(d, "points.jsonl"), "w") as f:
            for b in range(blocks):
                for r in rows:
                    v = 40000 * (ratio if r == "a" else 1.0) * math.exp(rng.gauss(0, cv))
                    f.write(json.dumps(pt(r, f"sim {r}", b, v)) + "\n")
        return d

    def test_pilot_unfinished_asks_for_both_rows(self):
        d = sequential.decide(self.run_with(2, 0.05), self.pub, 2.0, 20)
        self.assertFalse(d.stop)
        self.assertEqual(sorted(d.rows), [f"a / {LOAD}", f"b / {LOAD}"])  # point ids: only that point
        self.assertIn("pilot", d.reason)

    def test_tight_rows_stop_after_the_pilot(self):
        d = sequential.decide(self.run_with(4, 0.001), self.pub, 2.0, 20)
        self.assertTrue(d.stop, d.reason)
        self.assertEqual(d.rows, [])

    def test_noisy_rows_continue_until_the_cap(self):
        self.assertFalse(sequential.decide(self.run_with(6, 0.05), self.pub, 1.0, 8).stop)
        d = sequential.decide(self.run_with(8, 0.05), self.pub, 1.0, 8)
        self.assertTrue(d.stop)
        self.assertIn("--max-repetitions 8", d.reason)

    def test_missing_row_asks_for_nothing_it_cannot_use(self):
        d = sequential.decide(self.run_with(3, 0.05, rows=("a",)), self.pub, 2.0, 20)
        self.assertTrue(d.stop)
        self.assertIn("nothing to sample", d.reason)

    def test_without_a_published_table_every_row_is_sized(self):
        d = sequential.decide(self.run_with(2, 0.05), None, 2.0, 20)
        self.assertFalse(d.stop)
        self.assertEqual(sorted(d.rows), [f"a / {LOAD}", f"b / {LOAD}"])
        d = sequential.decide(self.run_with(4, 0.0005), None, 2.0, 20)
        self.assertTrue(d.stop, d.reason)

    def test_a_comparison_the_budget_can_decide_is_sampled_until_it_is(self):
        # A 5% effect at a 4% spread: the pilot's interval is already narrower than the ±10% target,
        # so the width alone would stop; about 17 blocks decide it at the corrected level, within
        # the cap of 20, so the rule asks for them.
        d = sequential.decide(self.run_with(4, 0.04, ratio=0.95, seed=7), self.pub, 10.0, 20)
        self.assertFalse(d.stop, d.reason)
        self.assertEqual(sorted(d.rows), [f"a / {LOAD}", f"b / {LOAD}"])

    def test_reps_to_decide(self):
        C = sequential.Claim

        def pilot(ratio, sd, paired=True):
            return stats.RatioCI(ratio, ratio * 0.9, ratio * 1.1, 4, 4, "paired-t" if paired else "welch-t",
                                 sd / 2.0, 3.0, sd)
        cases = [  # label, pilot, claim, looks, cap, expect a count (True) or None (False)
            ("a clear effect decides within the cap", pilot(1.10, 0.05), C("greater"), 1, 10, True),
            ("no effect never decides a directional claim", pilot(1.0, 0.05), C("greater"), 1, 50, False),
            ("a tie decides an equivalence claim", pilot(1.01, 0.03), C("equivalent", 1.0, 1.10), 1, 10, True),
            ("a tie also decides a directional claim with a margin", pilot(1.0, 0.03), C("greater", 1.0, 1.10),
             1, 10, True),
            ("against a null of 0.85: 0.80 decides", pilot(0.80, 0.03), C("less", 0.85), 1, 10, True),
            ("against a null of 0.85: 0.86 does not, within 10", pilot(0.86, 0.05), C("less", 0.85), 1, 10, False),
            ("more looks need more blocks", pilot(1.05, 0.05), C("greater"), 17, 8, False),
            ("a claim that decides nothing", pilot(1.5, 0.05), C("none"), 1, 10, False),
        ]
        for label, ci, claim, looks, cap, some in cases:
            with self.subTest(label):
                n = sequential.reps_to_decide(ci, claim, looks, cap)
                self.assertEqual(n is not None, some, f"{label}: {n}")
                if n is not None:
                    self.assertTrue(4 < n <= cap, n)
        self.assertLess(sequential.reps_to_decide(pilot(1.05, 0.05), C("greater"), 1, 50),
                        sequential.reps_to_decide(pilot(1.05, 0.05), C("greater"), 17, 50))

    def test_decision_fields(self):
        d = sequential.decide(self.run_with(2, 0.05), self.pub, 2.0, 20)
        self.assertIsInstance(d, sequential.Decision)
        self.assertEqual(set(vars(d)), {"stop", "reason", "rows"})


if __name__ == "__main__":
    unittest.main()
