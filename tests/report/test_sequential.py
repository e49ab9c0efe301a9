"""The stopping rule's interface and decisions (sequential.decide), on small seeded runs."""
import json
import math
import os
import random
import tempfile
import unittest

import helpers  # noqa: F401
from cbenchlib.analysis import sequential
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

    def test_decision_fields(self):
        d = sequential.decide(self.run_with(2, 0.05), self.pub, 2.0, 20)
        self.assertIsInstance(d, sequential.Decision)
        self.assertEqual(set(vars(d)), {"stop", "reason", "rows"})


if __name__ == "__main__":
    unittest.main()
