"""`cbench plot` and `cbench report` write well-formed files; `report --root` keeps hand-written text."""
import json
import os
import shutil
import tempfile
import unittest

from helpers import RUN_A, cbench, point, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PlotAndReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cbench-report-test-")
        cls.run_dir = os.path.join(cls.tmp, os.path.basename(RUN_A))
        shutil.copytree(RUN_A, cls.run_dir)
        cls.plot = cbench("plot", cls.run_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_plot_writes_png_and_svg_for_every_chart(self):
        rc, out, err = self.plot
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.run_dir, "charts", "charts.json")) as f:
            index = json.load(f)
        names = [w["name"] for w in index["written"]]
        for want in ("rps-vs-connections-root", "latency-vs-connections-root", "rps-vs-threads-root",
                     "cpu-per-request-root", "syscalls-ctx-per-request-root", "throughput-vs-latency-root",
                     "idle-memory"):
            self.assertIn(want, names)
        for w in index["written"]:
            png = os.path.join(self.run_dir, "charts", w["name"] + ".png")
            svg = os.path.join(self.run_dir, "charts", w["name"] + ".svg")
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), PNG_SIGNATURE, png)
            with open(svg, encoding="utf-8") as f:
                text = f.read()
            self.assertIn("<svg", text, svg)
            self.assertIn("20260101T000000Z-ever-table-synthetic", text, "footer names the run")

    def test_no_two_rows_look_alike_and_families_share_a_colour(self):
        from cbenchlib.render import chartset as charts
        from cbenchlib.analysis import runload
        run = runload.load_run(self.run_dir)
        cs = charts.ChartSet(run, out_dir=os.path.join(self.tmp, "unused"))
        looks = [(cs.colors[k], str(cs.styles[k]), cs.markers[k]) for k in run.rows]
        self.assertEqual(len(set(looks)), len(looks), "two rows are drawn alike")
        by_family = {}
        for k, r in run.rows.items():
            by_family.setdefault(charts.family(r), set()).add(cs.colors[k])
        self.assertTrue(all(len(c) == 1 for c in by_family.values()), by_family)
        self.assertGreater(len({next(iter(c)) for c in by_family.values()}), 1)
        rc, out, err = self.plot
        self.assertIn("rps-by-family-root", out)
        self.assertIn("reproduction-ever", out)

    def test_interval_of_repetitions(self):
        from cbenchlib.render import chartset as charts
        lo, hi = charts.interval_of([100.0, 110.0, 105.0])
        self.assertLess(lo, 105.0)
        self.assertGreater(hi, 105.0)
        self.assertIsNone(charts.interval_of([100.0]))

    def test_report_md(self):
        rc, out, err = cbench("report", self.run_dir)
        self.assertEqual(rc, 0, err)
        path = os.path.join(self.run_dir, "report.md")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for heading in ("# Report of run 20260101T000000Z-ever-table-synthetic", "## Tables",
                        "## Published table `ever`", "### Finding 1:", "### Finding 5: The GVL makes worker threads slower", "## Charts"):
            self.assertIn(heading, text)
        self.assertIn("](charts/rps-vs-connections-root.png)", text)

    def test_interval_bars_when_the_median_lies_outside_the_interval(self):
        # Six repetitions at 1,000 req/s and five at 3,000: the median (1,000) lies below the
        # interval of the log mean (about 1,120-2,420); the bar must still be drawn, from the
        # interval itself, not fail as a negative error.
        rps = [1000.0] * 6 + [3000.0] * 5
        pts = [point("a t1", v, load_key=f"-t2 -c{c}", connections=c, rep=i)
               for c in (10, 100) for i, v in enumerate(rps)]
        d = write_run(os.path.join(self.tmp, "skewed"), pts)
        rc, out, err = cbench("plot", d)
        self.assertEqual(rc, 0, err)
        self.assertIn("rps-by-family-root", out)

    def test_plot_skips_charts_without_data_and_says_why(self):
        d = write_run(os.path.join(self.tmp, "one-point"), [point("a t1", 100.0, rep=i) for i in range(3)])
        rc, out, err = cbench("plot", d)
        self.assertEqual(rc, 0, err)
        self.assertIn("skipped rps-vs-connections-root: GET /: only 1 connection count(s)", out)
        self.assertIn("skipped idle-memory: the run has no idle-connection points", out)
        self.assertIn("skipped cpu-per-request-root", out)
        self.assertTrue(os.path.exists(os.path.join(d, "charts", "throughput-vs-latency-root.png")))


REPORT_SKELETON = """# Findings

Hand-written intro that must survive; it may quote `<!-- BEGIN GENERATED: name -->` inline.

## The published table
<!-- BEGIN GENERATED: ever-table -->
old text
<!-- END GENERATED: ever-table -->

Hand-written analysis between sections.

<!-- BEGIN GENERATED: connections -->
<!-- END GENERATED: connections -->
Trailing hand-written text.
"""


class RootReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-root-report-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.run_dir = os.path.join(self.tmp, "results", "runs", os.path.basename(RUN_A))
        shutil.copytree(RUN_A, self.run_dir)
        os.makedirs(os.path.join(self.run_dir, "charts"))
        with open(os.path.join(self.run_dir, "charts", "charts.json"), "w") as f:
            json.dump({"written": [{"name": "x", "title": "X chart", "files": ["charts/x.png"]}],
                       "skipped": []}, f)  # skip drawing: the plot test covers it
        self.report = os.path.join(self.tmp, "REPORT.md")
        with open(self.report, "w") as f:
            f.write(REPORT_SKELETON)
        self.config = os.path.join(self.tmp, "reference-runs.toml")

    def write_config(self, run):
        with open(self.config, "w") as f:
            f.write(f'[sections.ever-table]\nrun = "{run}"\n\n[sections.connections]\nrun = ""\n')

    def root(self, *extra):
        return cbench("report", "--root", "--report", self.report, "--config", self.config, *extra)

    def test_regenerates_inside_markers_only(self):
        self.write_config(f"results/runs/{os.path.basename(RUN_A)}")
        rc, out, err = self.root("--allow-synthetic")
        self.assertEqual(rc, 0, err)
        with open(self.report) as f:
            text = f.read()
        for kept in ("Hand-written intro that must survive; it may quote `<!-- BEGIN GENERATED: name -->` inline.", "Hand-written analysis between sections.",
                     "Trailing hand-written text.", "## The published table\n<!-- BEGIN GENERATED: ever-table -->\n"):
            self.assertIn(kept, text)
        self.assertNotIn("old text", text)
        self.assertIn(f"run directory `results/runs/{os.path.basename(RUN_A)}/`", text)
        self.assertIn("_Not yet run._", text)
        self.assertIn(f"](results/runs/{os.path.basename(RUN_A)}/charts/x.png)", text)
        rc, out, err = self.root("--allow-synthetic", "--check")
        self.assertEqual(rc, 0, err)

    def test_out_renders_elsewhere_and_leaves_the_report(self):
        self.write_config(f"results/runs/{os.path.basename(RUN_A)}")
        out_path = os.path.join(self.tmp, "rendered.md")
        rc, out, err = self.root("--allow-synthetic", "--out", out_path)
        self.assertEqual(rc, 0, err)
        with open(out_path) as f:
            self.assertIn(f"run directory `results/runs/{os.path.basename(RUN_A)}/`", f.read())
        with open(self.report) as f:
            self.assertEqual(f.read(), REPORT_SKELETON)

    def test_refuses_synthetic_runs_without_the_test_flag(self):
        self.write_config(f"results/runs/{os.path.basename(RUN_A)}")
        rc, out, err = self.root()
        self.assertEqual(rc, 1)
        self.assertIn("synthetic", err)
        with open(self.report) as f:
            self.assertEqual(f.read(), REPORT_SKELETON)

    def test_placeholders_and_check(self):
        self.write_config("")
        rc, out, err = self.root("--check")
        self.assertEqual(rc, 1)  # "old text" is out of date
        rc, out, err = self.root()
        self.assertEqual(rc, 0, err)
        with open(self.report) as f:
            self.assertEqual(f.read().count("_Not yet run._"), 2)

    def test_missing_run_dir_is_an_error(self):
        self.write_config("results/runs/nope")
        rc, out, err = self.root()
        self.assertEqual(rc, 1)
        self.assertIn("section ever-table", err)
        self.assertIn("nope", err)

    def test_broken_marker_is_an_error(self):
        with open(self.report, "w") as f:
            f.write("<!-- BEGIN GENERATED: a -->\n")
        self.write_config("")
        rc, out, err = self.root()
        self.assertEqual(rc, 1)
        self.assertIn("'a'", err)

    def test_template_is_rendered_when_present(self):
        """REPORT.md.in beside the report: placeholders are filled, and one naming a row the run
        lacks fails with the template line and leaves the report untouched."""
        self.write_config(f"results/runs/{os.path.basename(RUN_A)}")
        with open(self.report + ".in", "w") as f:
            f.write("# T\n\nSingle thread: {{v ever-table | pull-loop t1 | -t2 -c10 | rps}} req/s.\n\n"
                    "<!-- BEGIN GENERATED: connections -->\n<!-- END GENERATED: connections -->\n")
        rc, out, err = self.root("--allow-synthetic")
        self.assertEqual(rc, 0, err)
        text = self.report_pages()  # the summary and its pages under report/
        self.assertRegex(text, r"Single thread: \d+ req/s\.")
        self.assertIn("_Not yet run._", text)
        with open(self.report + ".in", "a") as f:
            f.write("{{v ever-table | no-such t1 | -t2 -c10 | rps}}\n")
        rc, out, err = self.root("--allow-synthetic")
        self.assertEqual(rc, 1)
        self.assertIn("template line 7", err)
        self.assertIn("no row 'no-such t1'", err)
        self.assertEqual(self.report_pages(), text)

    def report_pages(self) -> str:
        """REPORT.md and every page under report/ beside it, concatenated in name order."""
        import glob
        paths = [self.report] + sorted(glob.glob(os.path.join(os.path.dirname(self.report), "report", "*.md")))
        out = []
        for p in paths:
            with open(p, encoding="utf-8") as f:
                out.append(f.read())
        return "\n".join(out)


class CheckScriptTest(unittest.TestCase):
    """tests/report/check_run_outputs.sh, which `make test` runs on a --quick sweep."""

    def run_script(self, run_dir):
        import subprocess
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_run_outputs.sh")
        return subprocess.run(["bash", script, run_dir], capture_output=True, text=True, timeout=120)

    def test_passes_on_a_small_labelled_run(self):
        # Small on purpose: the full fixture's charts are covered by PlotAndReportTest, and
        # drawing them twice would double the suite's time.
        with tempfile.TemporaryDirectory() as tmp:
            d = write_run(os.path.join(tmp, "small"),
                          [point(key, rps * (1 + 0.01 * i), rep=i, load_key=k, connections=c, label=label,
                                 threads=1, model=model, queues=queues)
                           for key, label, model, queues, rps in (
                               ("pull-loop t1", "ever single thread", "pull-loop", None, 100.0),
                               ("worker-pool t1 shared", "ever 1 worker thread", "worker-pool", "shared", 80.0))
                           for i in range(2) for k, c in (("-t2 -c10", 10), ("-t8 -c1024", 1024))])
            res = self.run_script(d)
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
            self.assertIn("all checks passed", res.stdout)
            with open(os.path.join(d, "compare-ever.md"), encoding="utf-8") as f:
                self.assertIn("ever 1 worker thread: this run [worker-pool t1 shared]", f.read())

    def test_fails_on_a_run_without_points(self):
        with tempfile.TemporaryDirectory() as tmp:
            empty = write_run(os.path.join(tmp, "empty"), [])
            res = self.run_script(empty)
            self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
            self.assertIn("FAIL: table", res.stderr)


if __name__ == "__main__":
    unittest.main()
