"""report/index.html in a real browser (ctest report_browser): `cbench html` writes the page from
REPORT.md and the overview charts of the reference set; headless Chromium (tests/report/cdp.py,
the DevTools protocol) must load it with no console error, exception or failed load, and every
chart must be loaded and visible with a non-zero size. The screenshot of the page's top goes to
$CBENCH_ARTIFACTS/index.png when that is set (CI keeps it), else next to the page.

The checker is tested against broken pages too: a chart whose file is missing, a script that
throws, and a chart hidden by style each make it fail."""
import os
import shutil
import tempfile
import unittest

import cdp
from helpers import REPO, cbench

OVERVIEW_CHARTS = 4


class TestReportInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if cdp.chromium_binary() is None:
            raise RuntimeError("chromium is missing: scripts/deps.sh installs Debian's chromium")
        cls.tmp = tempfile.mkdtemp(prefix="cbench-browser-")
        cls.page = os.path.join(cls.tmp, "report", "index.html")
        rc, out, err = cbench("html", "--report", os.path.join(REPO, "REPORT.md"),
                              "--charts", os.path.join(cls.tmp, "report", "charts"), "-o", cls.page)
        assert rc == 0, f"cbench html failed: {err}{out}"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def page_with(self, body: str) -> str:
        path = os.path.join(self.tmp, f"broken-{self.id().rsplit('.', 1)[-1]}.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head><body>{body}</body></html>")
        return path

    def test_report_renders_with_every_chart_visible(self):
        arts = os.environ.get("CBENCH_ARTIFACTS")
        shot = os.path.join(arts, "index.png") if arts else os.path.join(os.path.dirname(self.page), "index.png")
        rep = cdp.check(self.page, shot)
        self.assertEqual(rep.problems(OVERVIEW_CHARTS), [], f"{self.page}: {len(rep.charts)} charts")
        self.assertGreater(os.path.getsize(shot), 10_000)
        print(f"report_browser: {len(rep.charts)} charts visible, no console error; screenshot {shot}")

    def test_missing_chart_fails(self):
        good = os.path.join(os.path.dirname(self.page), "charts", "decision.png")
        rep = cdp.check(self.page_with(f"<img src='file://{good}' alt='ok'><img src='no-such-chart.png' alt='gone'>"),
                        None)
        probs = rep.problems(2)
        self.assertTrue(any("gone" in p and "loaded=False" in p for p in probs), probs)
        self.assertFalse(any("'ok'" in p for p in probs), probs)

    def test_script_error_fails(self):
        good = os.path.join(os.path.dirname(self.page), "charts", "decision.png")
        rep = cdp.check(self.page_with(f"<img src='file://{good}' alt='ok'><script>undefinedFunction();</script>"),
                        None)
        self.assertTrue(any("undefinedFunction" in p for p in rep.problems(1)), rep.problems(1))

    def test_hidden_or_empty_chart_fails(self):
        good = os.path.join(os.path.dirname(self.page), "charts", "decision.png")
        rep = cdp.check(self.page_with(f"<div style='display:none'><img src='file://{good}' alt='hidden'></div>"
                                       "<svg width='0' height='0'></svg>"), None)
        self.assertEqual(len(rep.bad_charts()), 2, rep.charts)


if __name__ == "__main__":
    unittest.main()
