"""Golden-file tests: the exact text of `cbench table` and `cbench compare` on the fixture runs."""
import unittest

from helpers import RUN_A, RUN_B, cbench, check_golden

# name of the golden file -> the cbench arguments that produce it; update_golden.py reads this
# table too, so the command that rewrites a golden is exactly the one the test checks.
GOLDEN_COMMANDS = {
    "table-ever.md": ("table", RUN_A),
    "table-ever-p99.md": ("table", RUN_A, "--latency", "p99"),
    "compare-published-ever.md": ("compare", RUN_A, "--published", "ever"),
    "compare-runs.md": ("compare", RUN_A, RUN_B),
}


class GoldenTest(unittest.TestCase):
    def run_ok(self, *argv):
        rc, out, err = cbench(*argv)
        self.assertEqual(rc, 0, f"cbench {' '.join(argv)} exited {rc}: {err}")
        return out

    def test_table_default_max_latency(self):
        check_golden(self, "table-ever.md", self.run_ok(*GOLDEN_COMMANDS["table-ever.md"]))

    def test_table_p99(self):
        check_golden(self, "table-ever-p99.md", self.run_ok(*GOLDEN_COMMANDS["table-ever-p99.md"]))

    def test_compare_published(self):
        check_golden(self, "compare-published-ever.md", self.run_ok(*GOLDEN_COMMANDS["compare-published-ever.md"]))

    def test_compare_two_runs(self):
        check_golden(self, "compare-runs.md", self.run_ok(*GOLDEN_COMMANDS["compare-runs.md"]))

    def test_golden_check_can_fail(self):
        """check_golden fails on a one-character difference and under UPDATE_GOLDEN."""
        import os
        from unittest import mock
        name = "table-ever.md"
        text = self.run_ok(*GOLDEN_COMMANDS[name])
        with self.assertRaises(AssertionError):
            check_golden(self, name, text + "x")
        with mock.patch.dict(os.environ, {"UPDATE_GOLDEN": "1"}):
            with self.assertRaises(AssertionError):
                check_golden(self, name, text)


if __name__ == "__main__":
    unittest.main()
