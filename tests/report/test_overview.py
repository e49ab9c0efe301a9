"""render/overview.write_overview writes exactly the four overview charts (PNG and SVG) and says
what each is; a section without a run still gets its chart (saying so), so the report's links
never break; the same input writes the same bytes."""
import filecmp
import os
import shutil
import tempfile
import unittest

from helpers import RUN_A, cbench

from cbenchlib.render import overview

NAMES = ["decision", "reproduction", "cost-account", "latency-load"]


class TestOverview(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-overview-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_four_charts_from_a_run_and_from_nothing(self):
        for runs, sub in (({"ever-table": RUN_A}, "a"), ({}, "empty")):
            out = os.path.join(self.tmp, sub)
            charts = overview.write_overview(runs, out)
            self.assertEqual([c["name"] for c in charts], NAMES)
            self.assertEqual(sorted(os.listdir(out)), sorted(f"{n}.{e}" for n in NAMES for e in ("png", "svg")))
            for c in charts:
                self.assertTrue(c["title"] and c["alt"], c)
                self.assertGreater(os.path.getsize(c["png"]), 1000, c["png"])
                self.assertEqual(os.path.dirname(c["svg"]), out)

    def test_same_input_same_bytes(self):
        a, b = os.path.join(self.tmp, "1"), os.path.join(self.tmp, "2")
        for d in (a, b):
            overview.write_overview({"ever-table": RUN_A}, d)
        names = sorted(os.listdir(a))
        self.assertEqual(filecmp.cmpfiles(a, b, names, shallow=False)[1:], ([], []))

    def test_cli_refuses_a_run_with_overview(self):
        rc, _out, err = cbench("plot", RUN_A, "--overview")
        self.assertEqual(rc, 2)
        self.assertIn("--overview", err)


if __name__ == "__main__":
    unittest.main()
