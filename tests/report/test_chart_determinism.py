"""Plotting an unchanged run changes no file: `cbench plot` in place twice leaves every file of
RUN/charts/ (PNG, SVG and charts.json) byte for byte as it was. Without a fixed SVG hash salt and without the timestamps, every SVG differed."""
import filecmp
import os
import shutil
import tempfile
import unittest

from helpers import RUN_A, cbench


def listing(d):
    return sorted(os.listdir(d))


class TestChartDeterminism(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-determinism-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assert_same_files(self, a, b):
        self.assertEqual(listing(a), listing(b))
        self.assertTrue(any(n.endswith(".svg") for n in listing(a)), f"no SVG written in {a}")
        match, mismatch, errors = filecmp.cmpfiles(a, b, listing(a), shallow=False)
        self.assertEqual((mismatch, errors), ([], []), f"files differ between {a} and {b}")

    def test_plot_twice_changes_nothing(self):
        """Plot a copy of a fixture run in place, keep its charts, plot again: every byte the same
        (PNG, SVG, charts.json), and no SVG carries a date."""
        run = os.path.join(self.tmp, os.path.basename(RUN_A))
        shutil.copytree(RUN_A, run, ignore=shutil.ignore_patterns("charts"))
        rc, _out, err = cbench("plot", run)
        self.assertEqual(rc, 0, err)
        before = os.path.join(self.tmp, "before")
        shutil.copytree(os.path.join(run, "charts"), before)
        rc, _out, err = cbench("plot", run)
        self.assertEqual(rc, 0, err)
        self.assert_same_files(before, os.path.join(run, "charts"))
        for name in listing(before):
            if name.endswith(".svg"):
                with open(os.path.join(before, name), encoding="utf-8") as f:
                    self.assertNotIn("<dc:date>", f.read(), name)


if __name__ == "__main__":
    unittest.main()
