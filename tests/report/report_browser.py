"""The report's HTML view in a real browser (ctest report_browser; headless chromium through
browser_check.py): `cbench html` on the repository's report renders without a console error, with
every chart visible, and a screenshot is saved beside the page ($CBENCH_ARTIFACTS when set, so CI
keeps index.html and index.png among its artefacts; else $CBENCH_BROWSER_OUT, the build tree).

The judge is tested too: pages with a missing chart, an uncaught exception, a console error, a
hidden chart and an empty figure must each fail, so a check that passes everything cannot pass
here. Not part of report_unit (test*.py): each page costs a browser start (~2 s)."""
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

import browser_check
from helpers import REPO, SCRIPTS

CBENCH = os.path.join(SCRIPTS, "cbench")
# The four overview charts of the one-page report (cbench plot --overview --out report/charts):
# once report/charts/ exists, each must be on the page and visible.
OVERVIEW = ("decision", "reproduction", "cost-account", "latency-load")
PY = "/usr/bin/python3"


def tiny_png(width: int = 60, height: int = 40) -> bytes:
    """A valid grey PNG of the given size, without matplotlib."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60" viewBox="0 0 120 60">'
       '<rect width="120" height="60" fill="#37c"/></svg>')


def out_dir() -> str:
    d = os.environ.get("CBENCH_ARTIFACTS") or os.environ.get("CBENCH_BROWSER_OUT") \
        or os.path.join(tempfile.gettempdir(), "cbench-report-browser")
    os.makedirs(d, exist_ok=True)
    return d


def cbench_html(root: str, output: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, CBENCH, "html", "--root", root, "--output", output],
                          capture_output=True, text=True, timeout=120)


class ReportPage(unittest.TestCase):
    def test_report_renders_with_every_chart_visible(self):
        """The repository's report as one page: cbench html succeeds (no embedded image is
        missing), chromium shows it with no console error, every chart has a size, and the
        screenshot is a PNG of the viewport."""
        d = out_dir()
        page, shot = os.path.join(d, "index.html"), os.path.join(d, "index.png")
        r = cbench_html(REPO, page)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(page, encoding="utf-8") as f:
            figures = f.read().count('<figure class="chart"')
        verdict = browser_check.check_page(page, screenshot=shot, min_charts=figures)
        self.assertEqual(verdict.failures, [], "\n".join(verdict.failures))
        self.assertEqual(len(verdict.charts), figures)
        if os.path.isdir(os.path.join(REPO, "report", "charts")):
            shown = {os.path.splitext(os.path.basename(c["name"]))[0] for c in verdict.charts}
            self.assertEqual([n for n in OVERVIEW if n not in shown], [], f"overview charts missing; shown: {shown}")
        with open(shot, "rb") as f:
            head = f.read(24)
        self.assertEqual(browser_check.VIEWPORT, struct.unpack(">II", head[16:24]), "screenshot size")
        print(f"\nreport_browser: {page} and {shot} ({figures} charts)")


class Judge(unittest.TestCase):
    """A page made by cbench html from a small report, then broken pages the check must refuse."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-browser-")
        os.makedirs(os.path.join(self.tmp, "report", "charts"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, rel: str, content) -> str:
        path = os.path.join(self.tmp, rel)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        return path

    def small_report(self, chart: str = "report/charts/decision.png") -> None:
        self.write("report/charts/decision.png", tiny_png())
        self.write("report/charts/latency-load.svg", SVG)
        self.write("REPORT.md", f"# Findings\n\nSee [the details](report/detail.md#why).\n\n"
                                f"![the decision table]({chart})\n\n![latency](report/charts/latency-load.png)\n")
        self.write("report/detail.md", "# Detail\n\n## Why\n\n| a | b |\n|---|--:|\n| `x|y` | 2 |\n")

    def judge(self, page: str, min_charts: int = 0) -> list[str]:
        return browser_check.check_page(page, min_charts=min_charts).failures

    def test_a_good_page_passes(self):
        self.small_report()
        page = os.path.join(self.tmp, "report", "index.html")
        r = cbench_html(self.tmp, page)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.judge(page, min_charts=2), [])

    def test_a_missing_chart_fails(self):
        self.small_report(chart="report/charts/no-such-chart.png")
        page = os.path.join(self.tmp, "report", "index.html")
        r = cbench_html(self.tmp, page)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("no-such-chart.png", r.stderr)
        failures = self.judge(page)
        self.assertTrue(any("did not load" in f for f in failures), failures)
        self.assertTrue(any("error" in f for f in failures), failures)  # the refused or failed load

    def test_fewer_charts_than_expected_fails(self):
        self.small_report()
        page = os.path.join(self.tmp, "report", "index.html")
        cbench_html(self.tmp, page)
        self.assertTrue(any("expected at least 3" in f for f in self.judge(page, min_charts=3)))

    def test_an_uncaught_exception_fails(self):
        page = self.write("bad.html", "<!DOCTYPE html><p>x</p><script>throw new Error('boom')</script>")
        self.assertTrue(any("boom" in f for f in self.judge(page)))

    def test_a_console_error_fails(self):
        page = self.write("bad.html", "<!DOCTYPE html><p>x</p><script>console.error('bad thing')</script>")
        self.assertTrue(any("bad thing" in f for f in self.judge(page)))

    def test_a_hidden_or_empty_chart_fails(self):
        self.write("c.png", tiny_png())
        page = self.write("bad.html", '<!DOCTYPE html><figure class="chart" data-chart="hidden">'
                                      '<img src="c.png" alt="h" style="display:none"></figure>'
                                      '<figure class="chart" data-chart="empty"></figure>')
        failures = self.judge(page)
        self.assertTrue(any("hidden" in f and "not visible" in f for f in failures), failures)
        self.assertTrue(any("empty" in f and "no image" in f for f in failures), failures)


if __name__ == "__main__":
    unittest.main()
