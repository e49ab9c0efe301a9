"""Golden-file tests: the exact text of `cbench table` and `cbench compare` on the fixture runs."""
import unittest

from helpers import RUN_A, RUN_B, cbench, check_golden


class GoldenTest(unittest.TestCase):
    def run_ok(self, *argv):
        rc, out, err = cbench(*argv)
        self.assertEqual(rc, 0, f"cbench {' '.join(argv)} exited {rc}: {err}")
        return out

    def test_table_default_max_latency(self):
        check_golden(self, "table-ever.md", self.run_ok("table", RUN_A))

    def test_table_p99(self):
        check_golden(self, "table-ever-p99.md", self.run_ok("table", RUN_A, "--latency", "p99"))

    def test_compare_published(self):
        check_golden(self, "compare-published-ever.md", self.run_ok("compare", RUN_A, "--published", "ever"))

    def test_compare_two_runs(self):
        check_golden(self, "compare-runs.md", self.run_ok("compare", RUN_A, RUN_B))


if __name__ == "__main__":
    unittest.main()
