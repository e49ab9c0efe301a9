"""The stopping rule's trend steps (sequential.trend_comparisons, decide(..., trends=True)): each
step of a published trend (a/b at two successive published columns) is sized like a comparison,
claimed as the published step says, and only when the scenario asks for it. Seeded simulated runs;
no timing."""
import json
import math
import os
import random
import tempfile
import unittest

import helpers  # noqa: F401 (sets sys.path)
from cbenchlib.analysis import runload, sequential

COLUMNS = [(2, 10), (4, 64), (8, 256)]

# a/b falls across the columns as published (0.75, 0.50, 0.25: each step x0.67 or x0.5, beyond
# the 1.1 tolerance), a finding at the middle column, and effect C over every column.
PUB = {
    "name": "simtrend", "title": "simulated trend", "provenance": {"source": "test_sequential_trend.py"},
    "columns": [{"key": f"-t{t} -c{c}", "wrk_threads": t, "connections": c, "path": "/", "pipeline": 1}
                for t, c in COLUMNS],
    "rows": [{"label": "sim a", "family": "sim", "cells": ["30000", "20000", "10000"]},
             {"label": "sim b", "family": "sim", "cells": ["40000", "40000", "40000"]}],
    "findings": [{"id": "S", "title": "a is slower than b", "claim": "a serves fewer requests than b",
                  "primary": {"path": "/", "load": "-t4 -c64"}, "published_column": "-t4 -c64",
                  "direction": "less", "metrics": ["req_per_s"],
                  "comparisons": [{"a": "sim a", "b": "sim b"}]}],
    "scorecard": {"trend_tolerance": 1.1,
                  "effects": [{"id": "C", "title": "a collapses", "claim": "a/b shrinks", "path": "/",
                               "direction": "less", "comparisons": [{"a": "sim a", "b": "sim b"}]}]},
}


def point(row, label, t, c, block, rps):
    load = f"-t{t} -c{c}"
    return {"point_id": f"{row} / {load}", "rep": block, "block": block,
            "row": {"key": row, "label": label, "kind": "model", "model": row, "threads": 1, "queues": None,
                    "gvl": False, "backend": None, "extra_args": []},
            "load": {"key": load, "wrk_threads": t, "connections": c, "pipeline": 1, "path": "/"},
            "status": "ok", "verdict": "server-bound",
            "wrk": {"req_per_s": rps, "requests": int(rps * 2), "duration_us": 2_000_000},
            "derived": {"server_cpu_util": 0.99, "client_cpu_util": 0.55}}


class TrendSteps(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.pub = os.path.join(self.tmp.name, "simtrend.json")
        with open(self.pub, "w") as f:
            json.dump(PUB, f)
        self.n = 0

    def run_with(self, ratios, blocks, cv):
        """A run whose a/b is `ratios` at the three columns, with lognormal noise of cv."""
        self.n += 1
        d = os.path.join(self.tmp.name, f"run{self.n}")
        os.makedirs(d)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"schema": 1, "run_id": f"t{self.n}", "synthetic": True, "env": {}}, f)
        rng = random.Random(self.n)
        with open(os.path.join(d, "points.jsonl"), "w") as f:
            for b in range(blocks):
                for (t, c), ratio in zip(COLUMNS, ratios):
                    for row, r in (("a", ratio), ("b", 1.0)):
                        f.write(json.dumps(point(row, f"sim {row}", t, c, b, 40000 * r * math.exp(rng.gauss(0, cv))))
                                + "\n")
        return d

    def test_steps_are_claimed_as_published(self):
        run = runload.load_run(self.run_with((0.75, 0.5, 0.25), 4, 0.01))
        steps = sequential.trend_comparisons(run, self.pub)
        # finding S and effect C, each two steps, on the C++ stack (no Ruby rows)
        self.assertEqual(len(steps), 4)
        self.assertTrue(all(s.claim.direction == "less" for s in steps))
        self.assertIn("-t2 -c10 → -t4 -c64", steps[0].name)
        self.assertAlmostEqual(steps[0].ci().ratio, 0.5 / 0.75, delta=0.02)
        self.assertEqual(len(steps[0].point_ids()), 4)

    def test_cases(self):
        # (name, measured a/b at the columns, blocks, noise, trends?, stop?, points asked for)
        cases = [
            ("a falling trend at low noise is decided", (0.75, 0.5, 0.25), 4, 0.01, True, True, set()),
            ("a flat measurement decides the published fall against it", (0.5, 0.5, 0.5), 4, 0.01, True, True, set()),
            ("a noisy trend asks for its steps' points", (0.75, 0.7, 0.65), 4, 0.08, True, False,
             {"a / -t2 -c10", "b / -t2 -c10", "a / -t8 -c256", "b / -t8 -c256"}),
            ("without trends the same run sizes only the finding", (0.75, 0.7, 0.65), 4, 0.08, False, None,
             set()),
        ]
        for name, ratios, blocks, cv, trends, stop, asked in cases:
            with self.subTest(name):
                d = sequential.decide(self.run_with(ratios, blocks, cv), self.pub, 10.0, 8, trends=trends)
                if stop is not None:
                    self.assertEqual(d.stop, stop, d.reason)
                self.assertTrue(asked <= set(d.rows), (asked, d.rows))
                if not trends:
                    self.assertTrue(set(d.rows) <= {"a / -t4 -c64", "b / -t4 -c64"}, d.rows)


if __name__ == "__main__":
    unittest.main()
