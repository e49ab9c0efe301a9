"""scripts/reproduce_all.py's pure parts: the time it prints first (from dry-run outputs) and the
rewrite of results/reference-runs.toml that points each section at its new run."""
import importlib.util
import os
import unittest

from helpers import REPO

_spec = importlib.util.spec_from_file_location("reproduce_all", os.path.join(REPO, "scripts", "reproduce_all.py"))
ra = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ra)

CONFIG = '''# comment run = "x"
[sections.ever-table]
scenario = "ever-table"
run = "results/runs/old-ever-table"
kept = "results/runs/older"

[sections.handler-blocking]
scenario = "handler-blocking"
run = ""
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

    def test_every_reference_scenario_is_planned(self):
        names = ra.scenarios()
        self.assertEqual(names[0], "ever-table")
        self.assertNotIn("smoke", names)
        self.assertIn("handler-blocking", names)


if __name__ == "__main__":
    unittest.main()
