"""scripts/reproduce_all.py's pure parts: the time it prints first (from dry-run outputs and the
microbenchmarks' count), the plan (every scenario, the microbenchmarks, the calibration) and the
rewrite of results/reference-runs.toml that points each section at its new run."""
import importlib.util
import os
import sys
import unittest

from helpers import REPO

_spec = importlib.util.spec_from_file_location("reproduce_all", os.path.join(REPO, "scripts", "reproduce_all.py"))
ra = importlib.util.module_from_spec(_spec)
sys.modules["reproduce_all"] = ra  # its dataclass looks its module up while the module executes
_spec.loader.exec_module(ra)

CONFIG = '''# comment run = "x"
[sections.ever-table]
scenario = "ever-table"
run = "results/runs/old-ever-table"
kept = "results/runs/older"

[sections.handler-blocking]
scenario = "handler-blocking"
run = ""

[sections.micro]
scenario = "micro"
run = ""
kept = "results/runs/20261122T074820Z-micro"
'''


class TestReproduceAll(unittest.TestCase):
    def test_estimates(self):
        cases = [
            ("estimated time: 6m11s with every model\n", 371),
            ("estimated time: 25m49s with every model, 22m35s now (2 models not built)", 1549),
            ("estimated time: 18m10s with every model, 17m24s now; then extra blocks ... up to 6m58s more"
             " (at most 25m08s in all)", 1508),
            ("estimated time: 9s with every model", 9),
            ("no estimate here", None),
        ]
        for text, want in cases:
            with self.subTest(text):
                self.assertEqual(ra.estimate_from_dry_run(text), want)

    def test_set_run_changes_only_the_sections_of_that_scenario(self):
        text, changed = ra.set_run(CONFIG, "handler-blocking", "results/runs/new-handler-blocking")
        self.assertEqual(changed, ["handler-blocking"])
        self.assertIn('run = "results/runs/new-handler-blocking"', text)
        self.assertIn('run = "results/runs/old-ever-table"', text)
        self.assertIn('# comment run = "x"', text)
        text2, changed2 = ra.set_run(CONFIG, "tipi-table", "results/runs/t")
        self.assertEqual((text2, changed2), (CONFIG, []))

    def test_set_run_points_the_micro_section_at_the_micro_run(self):
        text, changed = ra.set_run(CONFIG, ra.MICRO_SCENARIO, "results/runs/20261201T150000Z-micro")
        self.assertEqual(changed, ["micro"])
        self.assertIn('run = "results/runs/20261201T150000Z-micro"\nkept = "results/runs/20261122T074820Z-micro"', text)

    def test_every_reference_scenario_is_planned(self):
        names = ra.scenarios()
        self.assertEqual(names[0], "ever-table")
        self.assertNotIn("smoke", names)
        self.assertNotIn("quick", names)
        self.assertIn("handler-blocking", names)

    def test_plan_runs_every_sweep_then_micro_then_calibrate(self):
        steps = ra.plan(dry_run=lambda name: "estimated time: 1m00s with every model", micro_count=lambda: 63)
        self.assertEqual([st.name for st in steps],
                         [f"sweep {n}" for n in ra.scenarios()] + ["micro", "calibrate"])
        micro = steps[-2]
        self.assertEqual((micro.argv, micro.suffix, micro.scenario), (["micro"], "-micro", "micro"))
        self.assertTrue(micro.parent.endswith(os.path.join("results", "runs")))
        self.assertEqual(micro.estimate_s, ra.micro_estimate_s(63, 3, 0.3))
        self.assertIn("63 benchmarks x 3 repetitions of at least 0.3 s", micro.note)
        self.assertEqual(sum(st.estimate_s for st in steps),
                         60 * len(ra.scenarios()) + micro.estimate_s + ra.CALIBRATE_ESTIMATE_S)
        # The microbenchmarks' section is listed in the committed config with scenario "micro",
        # so the plan's micro run reaches it.
        with open(ra.CONFIG, encoding="utf-8") as f:
            _, changed = ra.set_run(f.read(), micro.scenario, "results/runs/x-micro")
        self.assertEqual(changed, ["micro"])

    def test_the_tree_check_is_the_sweeps_rule(self):
        """A run made a minute ago and not yet committed (an untracked results/ directory) does
        not stop reproduce-all, as it does not stop a sweep (envinfo.git_info excludes results/);
        a change to code does, and names the file. (The first reference sitting of 2026-12-01's
        third session was refused by the old `git status --porcelain` check for exactly that.)"""
        from unittest import mock
        steps = ra.plan(dry_run=lambda name: "estimated time: 1m00s with every model", micro_count=lambda: 1)
        cases = [({"git_dirty": False}, 0, True),
                 ({"git_dirty": True, "git_dirty_files": ["servers/floor.cpp"]}, 1, False),
                 ({"git_dirty": None, "git_error": "git: not a repository"}, 1, False)]
        for git, rc, executed in cases:
            with self.subTest(git=git), mock.patch.object(ra, "plan", return_value=steps), \
                    mock.patch.object(ra.envinfo, "git_info", return_value=git), \
                    mock.patch.object(ra, "execute", return_value=0) as execute, \
                    mock.patch("sys.stdout"), mock.patch("sys.stderr") as err:
                self.assertEqual(ra.main([]), rc)
                self.assertEqual(execute.called, executed)
                if not executed:
                    written = "".join(c.args[0] for c in err.write.call_args_list)
                    self.assertIn((git.get("git_dirty_files") or [git.get("git_error")])[0], written)

    def test_micro_estimate(self):
        # 63 benchmarks x (3 + 1) x 0.3 s x 1.25 = 94.5 s, rounded up: about a minute and a half.
        self.assertEqual(ra.micro_estimate_s(63, 3, 0.3), 95)
        self.assertEqual(ra.micro_estimate_s(10, 1, 0.5), 13)  # 12.5
        self.assertEqual(ra.micro_estimate_s(10, 1, 0.4), 10)  # exactly 10: not rounded up to 11
        steps = ra.plan(dry_run=lambda name: "estimated time: 9s with every model", micro_count=lambda: None)
        self.assertIn(f"{ra.MICRO_BENCHMARKS_ASSUMED} benchmarks (assumed", steps[-2].note)

    def test_a_sweep_without_an_estimate_stops_the_plan(self):
        msg = ra.plan(dry_run=lambda name: "error: no such model", micro_count=lambda: 63)
        self.assertIsInstance(msg, str)
        self.assertIn("gave no estimate", msg)
        self.assertIn("no such model", msg)


if __name__ == "__main__":
    unittest.main()
