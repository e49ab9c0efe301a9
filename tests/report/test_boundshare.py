"""The share of server-bound points (analysis/boundshare.py) on constructed runs: which points
count, when a point is server-bound, the split by generator, its line in a run's report.md and
in `cbench compare`. Table driven: each case is one point's repetitions and what it must count as."""
import os
import shutil
import tempfile
import unittest

from helpers import generator_point, write_run  # noqa: E402 (helpers puts scripts/ on sys.path)

from cbenchlib.analysis import boundshare  # noqa: E402
from cbenchlib.analysis.runload import load_run  # noqa: E402
from cbenchlib.render import boundtext, reportgen, runcompare  # noqa: E402

SB, CB, BS, UN = "server-bound", "client-bound", "both-saturated", "unclear"

# (label, connections, generator, [(status, verdict, client CPU util) per repetition],
#  counted, server-bound)
CASES = [
    ("every repetition server-bound", 1, "wrk", [("ok", SB, 0.5), ("ok", SB, 0.6)], True, True),
    ("one client-bound repetition", 2, "wrk", [("ok", SB, 0.5), ("ok", CB, 0.95)], True, False),
    ("old record: server-bound with the client saturated", 3, "wrk", [("ok", SB, 0.95)], True, False),
    ("a failed repetition", 4, "cbench-load", [("ok", SB, 0.5), ("failed", None, None)], True, False),
    ("unclear", 5, "cbench-load", [("ok", UN, 0.4)], True, False),
    ("cbench-load server-bound", 6, "cbench-load", [("ok", SB, 0.5), ("ok", SB, 0.5), ("ok", SB, 0.6)], True, True),
    ("both saturated", 7, "cbench-load", [("ok", BS, 0.95)], True, False),
    ("open loop: not counted", 8, "cbench-load@", [("ok", UN, 0.3)], False, False),
    ("idle: not counted", 9, "idle", [("ok", UN, None)], False, False),
]


def case_points(conns, gen, reps):
    out = []
    for rep, (status, verdict, client) in enumerate(reps):
        p = generator_point("m t1", gen, conns, 1000.0, rep, status=status, verdict=verdict or "unclear")
        if gen == "idle":
            p["load"] = {"key": f"idle {conns}", "idle_connections": conns}
        elif gen.endswith("@"):  # an open-loop cbench-load point
            p["load"]["generator"] = "cbench-load"
            p["load"]["rate"] = 500.0
        if client is not None:
            p["derived"] = {"client_cpu_util": client}
        out.append(p)
    return out


class BoundShareTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="boundshare-")
        pts = [p for _l, c, g, reps, _c, _b in CASES for p in case_points(c, g, reps)]
        cls.loaded = load_run(write_run(os.path.join(cls.tmp, "20260101T000000Z-unit"), pts))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cell(self, conns):
        return next(c for c in self.loaded.cells.values()
                    if c.load.lid.connections == conns or c.load.lid.idle_connections == conns)

    def test_each_point_counted_and_judged(self):
        for label, conns, _g, _reps, counted, bound in CASES:
            with self.subTest(label):
                c = self.cell(conns)
                self.assertEqual(boundshare.counted(c), counted, label)
                if counted:
                    self.assertEqual(boundshare.cell_server_bound(c), bound, label)

    def test_share_and_split_by_generator(self):
        s = boundshare.share(self.loaded)
        self.assertEqual(s.total, boundshare.Count(2, 7))
        self.assertEqual(s.by_generator, {"cbench-load": boundshare.Count(1, 4), "wrk": boundshare.Count(1, 3)})
        self.assertEqual(boundtext.share_text(s),
                         "2 of 7 (29%); by generator: cbench-load 1 of 4 (25%), wrk 1 of 3 (33%)")

    def test_pooled_adds_runs(self):
        s = boundshare.share(self.loaded)
        p = boundshare.pooled([s, s])
        self.assertEqual(p.total, boundshare.Count(4, 14))
        self.assertEqual(p.by_generator["wrk"], boundshare.Count(2, 6))
        self.assertIsNone(boundshare.Count().fraction)
        self.assertEqual(boundtext.fmt_count(boundshare.Count()), "no point")

    def test_in_report_and_compare(self):
        text = reportgen.run_report(self.loaded)
        self.assertIn("Server-bound points: 2 of 7 (29%)", text)
        only_wrk = [p for _l, c, g, reps, _c, _b in CASES if g == "wrk" for p in case_points(c, g, reps)]
        a = load_run(write_run(os.path.join(self.tmp, "20260101T000001Z-unit"), only_wrk))
        cmp = runcompare.render_run_comparison(a, self.loaded)
        self.assertIn("- A: 1 of 3 (33%), all driven by wrk", cmp)
        self.assertIn("- B: 2 of 7 (29%)", cmp)
        self.assertIn("- B − A: -5 percentage points", cmp)


if __name__ == "__main__":
    unittest.main()
