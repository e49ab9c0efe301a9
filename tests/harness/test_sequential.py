"""The sweep's sequential design: extra whole blocks for the rows the stopping
rule names, `block` on every record, and why it stopped in meta.json.

The rule itself (scripts/cbenchlib/sequential.py) belongs to the statistics; here a scripted
stand-in with the same interface drives the executor against the fake server, so these tests
check what the executor does with a decision, not the statistics."""
import argparse
import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
import unittest

from common import private_fakes, processes_matching, run_cbench
from cbenchlib.cmd import sweep as cli_sweep
from cbenchlib.format import resultio


@dataclasses.dataclass
class Decision:  # the interface of sequential.Decision
    stop: bool
    reason: str
    rows: list


SCENARIO = """
duration_s = 1
warmup_s = 0
repetitions = 1
timeout_s = 2
ready_timeout_s = 5.0
target_ci_pct = 5
max_repetitions = 3
published = "ever"
sequential_points = 8
[[loads]]
wrk_threads = 1
connections = 2
[[loads]]
name = "two"
wrk_threads = 1
connections = 4
[[rows]]
model = "fake-ok"
threads = [1, 2]
"""


class SequentialBlocks(unittest.TestCase):
    def setUp(self):
        private_fakes(self)
        self.scen = os.path.join(self.tmp, "seq.toml")
        with open(self.scen, "w") as f:
            f.write(SCENARIO)
        self.calls = []

    def tearDown(self):
        left = processes_matching(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def sweep(self, decide, *extra):
        p = argparse.ArgumentParser()
        cli_sweep.add_arguments(p)
        args = p.parse_args([self.scen, "--server-bin", self.server, "--wrk-bin", self.wrk,
                             "--out", self.out, "--lock-timeout", "600"] + list(extra))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli_sweep.run(args, decide=decide)
        self.assertEqual(rc, 0, out.getvalue())
        (run_id,) = os.listdir(self.out)
        run = os.path.join(self.out, run_id)
        return resultio.read_meta(run), resultio.read_points(os.path.join(run, "points.jsonl")).points, out.getvalue()

    def rule(self, answers):
        """A stand-in rule that gives the scripted answers in turn and records its calls."""
        def decide(run_dir, published_name, target_ci_pct, max_repetitions):
            self.calls.append((run_dir, published_name, target_ci_pct, max_repetitions,
                               len(resultio.read_points(os.path.join(run_dir, "points.jsonl")).points)))
            return answers[min(len(self.calls) - 1, len(answers) - 1)]
        return decide

    def test_extra_blocks_run_only_the_named_rows_until_max_repetitions(self):
        target = "fake-ok|t1|-|gvl0|- / t1c2p1 GET /"  # one point, by its id
        meta, points, out = self.sweep(self.rule([Decision(False, "interval 12% wide", [target])]))
        # Initial block: all 4 points once. Then blocks 1 and 2 for the named point only.
        self.assertEqual(len(points), 6, [(p["point_id"], p["block"]) for p in points])
        extra = [p for p in points if p["block"] > 0]
        self.assertEqual({p["point_id"] for p in extra}, {target})
        self.assertEqual(sorted((p["block"], p["rep"]) for p in extra), [(1, 1), (2, 2)])
        self.assertTrue(all(p["block"] == 0 and p["rep"] == 0 for p in points if p["point_id"] != target))
        self.assertEqual([p["seq"] for p in points], list(range(6)))
        self.assertEqual(meta["sequential"]["stopped"], "max-repetitions")
        self.assertEqual(meta["sequential"]["extra_blocks"], 2)
        self.assertIn("interval 12% wide", meta["sequential"]["reason"])
        self.assertIsNotNone(meta["ended_utc"])
        # The rule saw the run as it grew, with the scenario's design.
        run_dir = os.path.join(self.out, os.listdir(self.out)[0])
        self.assertEqual([c[:4] for c in self.calls], [(run_dir, "ever", 5.0, 3)] * 3)
        self.assertEqual([c[4] for c in self.calls], [4, 5, 6])

    def test_the_rule_stops_and_says_why(self):
        answers = [Decision(False, "too wide", ["fake-ok t2"]),  # a row key: all its points
                   Decision(True, "interval 4.1% < 5%", [])]
        meta, points, out = self.sweep(self.rule(answers))
        extra = [p for p in points if p["block"] > 0]
        self.assertEqual(sorted(p["load"]["key"] for p in extra), ["-t1 -c2", "-t1 -c4"])
        self.assertEqual({p["row"]["key"] for p in extra}, {"fake-ok t2"})
        self.assertEqual({(p["block"], p["rep"]) for p in extra}, {(1, 1)})
        # Within the extra block, its points run back to back (seq continues the run's order).
        self.assertEqual(sorted(p["seq"] for p in extra), [4, 5])
        self.assertEqual(meta["sequential"]["stopped"], "rule")
        self.assertEqual(meta["sequential"]["reason"], "interval 4.1% < 5%")
        self.assertEqual(meta["sequential"]["extra_blocks"], 1)
        self.assertIn("sequential design stopped (rule)", out)

    def test_unknown_rows_and_an_absent_rule_stop_the_design(self):
        meta, points, _ = self.sweep(self.rule([Decision(False, "more", ["no-such-row"])]))
        self.assertEqual(len(points), 4)
        self.assertEqual(meta["sequential"]["stopped"], "no-such-rows")
        shutil.rmtree(self.out)
        meta, points, _ = self.sweep(None, "--max-repetitions", "2")
        # The real rule (scripts/cbenchlib/sequential.py): the fake rows are in no published
        # finding, so it asks for nothing and the design stops at once, saying so.
        self.assertEqual(len(points), 4)
        self.assertIn(meta["sequential"]["stopped"], ("rule", "rule-unavailable"))
        self.assertTrue(meta["sequential"]["reason"])
        self.assertEqual(meta["harness"]["design"]["max_repetitions"], 2)

    def test_target_zero_is_the_fixed_design(self):
        meta, points, _ = self.sweep(self.rule([Decision(False, "more", ["fake-ok t1"])]),
                                     "--target-ci", "0", "--repetitions", "2")
        self.assertEqual(self.calls, [])
        self.assertIsNone(meta["sequential"])
        self.assertEqual(sorted((p["block"], p["rep"]) for p in points),
                         [(0, 0)] * 4 + [(1, 1)] * 4)


class BudgetLine(unittest.TestCase):
    """`cbench sweep --dry-run` prints the sequential design's worst case: (max_repetitions -
    repetitions) blocks x min(sequential_points, points) x the longest point (1 s + 0 s warm-up +
    OVERHEAD_S 0.4 s here), on top of the initial blocks (4 points x 1.4 s)."""

    def test_cases(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        scen = os.path.join(tmp, "seq.toml")
        with open(scen, "w") as f:
            f.write(SCENARIO)
        # (label, extra flags, the budget line's words, or None when there is no budget line)
        cases = [
            ("scenario's cap: 2 blocks x 4 points x 1.4 s", [],
             "at most 2 blocks of at most 8 points (no point beyond 3 repetitions), up to 11s more"
             " (worst case: at most 17s in all)"),
            ("--max-repetitions 5: 4 blocks", ["--max-repetitions", "5"],
             "at most 4 blocks of at most 8 points (no point beyond 5 repetitions), up to 22s more"
             " (worst case: at most 28s in all)"),
            ("--target-ci 0: the fixed design, no budget", ["--target-ci", "0"], None),
        ]
        for label, extra, words in cases:
            with self.subTest(label):
                r = run_cbench(["sweep", scen, "--dry-run", "--server-bin", "/nonexistent/cbench-server"] + extra,
                               timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                lines = [ln for ln in r.stdout.splitlines() if ln.startswith("sequential budget:")]
                if words is None:
                    self.assertEqual(lines, [], r.stdout)
                    continue
                self.assertEqual(len(lines), 1, r.stdout)
                self.assertIn("'ever'", lines[0])
                self.assertIn(words, lines[0])


if __name__ == "__main__":
    unittest.main()
