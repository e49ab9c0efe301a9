"""The decision table (scripts/cbenchlib/analysis/decision.py) on synthetic fixture runs: cells of
a section without a run say "not yet run", a cell names its winning family only when the interval
says so and a tie within the margin as equivalence, every row links its run, and a change in the
data changes the cell. Simulated data only (test_decision_verdicts.py: margins, pairing, families,
memory among the rows that reach the throughput, capacity)."""
import os
import tempfile
import unittest

from helpers import point, write_run

from cbenchlib.analysis import decision
from cbenchlib.render import reportgen
from cbenchlib.analysis.runload import RunError


def pt(key, model, rps, path, rep, threads=1, rss_kb=8000, verdict="server-bound", conns=64):
    p = point(key, rps, load_key=f"-t2 -c{conns}", connections=conns, model=model, threads=threads,
              rep=rep, verdict=verdict, path=path)
    p["server"] = {"rss_peak_kb": rss_kb}
    return p


def blocking_run(tmp, tpc_rps, loop_rps, name="20260101T000000Z-handler-blocking"):
    pts = []
    for rep, j in enumerate((0.99, 1.0, 1.01)):
        pts.append(pt("thread-per-connection t1", "thread-per-connection", tpc_rps * j, "/sleep?ms=10", rep,
                      rss_kb=40000, verdict="unclear"))
        pts.append(pt("pull-loop t1", "pull-loop", loop_rps * j, "/sleep?ms=10", rep, rss_kb=8000 * j,
                      verdict="unclear"))
    return write_run(os.path.join(tmp, name), pts, {"scenario_name": "handler-blocking"})


def config(**runs):
    return {s.section: {"run": runs.get(s.section.replace("-", "_"), "")} for s in decision.SHAPES}


class TestDecisionTable(unittest.TestCase):
    def test_sections_without_a_run_say_not_yet_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            rows = decision.rows(config(), tmp)
        self.assertEqual(len(rows), len(decision.SHAPES))
        for r in rows:
            with self.subTest(r["shape"]):
                self.assertEqual((r["throughput"], r["memory"], r["capacity"]), (decision.NOT_YET_RUN,) * 3)

    def test_cells_follow_the_data(self):
        cases = [  # name, tpc req/s, loop req/s, the throughput cell's start, judged for memory
            ("threads win", 6200, 99, "**thread per connection wins**: `thread-per-connection t1`",
             "thread per connection only: `thread-per-connection t1`"),
            ("loop wins", 90, 99, "**event loop wins**: `pull-loop t1`", "event loop only: `pull-loop t1`"),
            ("tie", 99, 99, "thread per connection and event loop equivalent within 5%:",
             "**event loop wins**: `pull-loop t1`"),
        ]
        for name, a, b, want, want_mem in cases:
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                d = blocking_run(tmp, a, b)
                text = decision.render(config(handler_blocking=d), tmp, allow_synthetic=True)
                row = next(r for r in decision.rows(config(handler_blocking=d), tmp, allow_synthetic=True)
                           if r["shape"] == "blocking handler")
                self.assertTrue(row["throughput"].startswith(want), row["throughput"])
                # A fifth of the RSS wins only where both rows serve the shape's throughput.
                self.assertTrue(row["memory"].startswith(want_mem), row["memory"])
                self.assertIn(f"]({d}/)", text)
                self.assertIn("not yet run", text)  # the other shapes

    def test_a_faster_row_bound_by_the_load_generator_leaves_throughput_undecided(self):
        """Tiny handler (server-bound points decide): a row whose points were client-bound or
        both-saturated at a higher rate may be the faster one, so req/s names no winner and the
        lowest CPU per request is named instead; an error-bound faster row, or a slower
        generator-bound one, changes nothing."""
        cases = [  # label, the first row's verdict and req/s, texts in the throughput cell (undecided first)
            ("faster, both-saturated", "both-saturated", 80000,
             ["undecided by req/s: `pull-loop t1` (80000 req/s, both-saturated) served more than the fastest"
              " row that may decide, `worker-pool t1 shared` (40000 req/s)",
              "By server CPU per request: **event loop wins**: `pull-loop t1` (10.00 µs server CPU per request)"]),
            ("faster, client-bound", "client-bound", 80000,
             ["undecided by req/s: `pull-loop t1` (80000 req/s, client-bound) served more"]),
            ("no row may decide", "client-bound", 80000,
             ["undecided by req/s: no row may decide; `pull-loop t1` (80000 req/s, client-bound) ran at points"]),
            ("faster, error-bound", "error-bound", 80000, ["worker pool only: `worker-pool t1 shared` (40000 req/s)"]),
            ("slower, both-saturated", "both-saturated", 30000,
             ["worker pool only: `worker-pool t1 shared` (40000 req/s)"]),
        ]
        for label, verdict, rps, want in cases:
            others = "unclear" if label == "no row may decide" else "server-bound"
            with self.subTest(label), tempfile.TemporaryDirectory() as tmp:
                pts = []
                for rep, j in enumerate((0.99, 1.0, 1.01)):
                    for key, model, r, v, cpu in (("pull-loop t1", "pull-loop", rps, verdict, 10.0),
                                                  ("worker-pool t1 shared", "worker-pool", 40000, others, 20.0),
                                                  ("selector-pool t4", "selector-pool", 30000, others, 25.0)):
                        p = pt(key, model, r * j, "/", rep, verdict=v)
                        p["derived"] = {"server_cpu_us_per_req": cpu * j}
                        pts.append(p)
                d = write_run(os.path.join(tmp, "20260101T000000Z-ever-table"), pts, {"scenario_name": "ever-table"})
                row = next(r for r in decision.rows(config(ever_table=d), tmp, allow_synthetic=True)
                           if r["shape"] == "tiny handler")
                for w in want:
                    self.assertIn(w, row["throughput"])
                if not want[0].startswith("undecided"):
                    self.assertNotIn("undecided", row["throughput"])

    def test_synthetic_runs_are_refused_for_the_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = blocking_run(tmp, 6200, 99)
            with self.assertRaises(RunError):
                decision.render(config(handler_blocking=d), tmp)

    def test_report_renders_the_table_between_its_markers(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = blocking_run(tmp, 6200, 99)
            text = ("x\n<!-- BEGIN GENERATED: decision-table -->\n<!-- END GENERATED: decision-table -->\n")
            out = reportgen.regenerate(text, config(handler_blocking=d), allow_synthetic=True, root=tmp)
        self.assertIn("| blocking handler |", out)
        self.assertIn("**thread per connection wins**: `thread-per-connection t1`", out)


if __name__ == "__main__":
    unittest.main()
