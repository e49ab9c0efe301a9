"""REPORT.md's generator-crosscheck section (scripts/cbenchlib/crosscheck.py) on synthetic runs:
the three generators side by side with intervals, and the agreement verdict per point. Table
driven: each case gives each generator's req/s per repetition and the verdict the table must
print; the section renders through reportgen.section_text as `make report` does."""
import os
import shutil
import tempfile
import unittest

from helpers import point, write_run  # noqa: E402 (helpers puts scripts/ on sys.path)

from cbenchlib.analysis import crosscheck  # noqa: E402
from cbenchlib.render import crosscheck_table, reportgen
from cbenchlib.analysis.runload import load_run  # noqa: E402

GENS = ("wrk", "cbench-load", "h2load")

# (label, connections, {generator: [req/s per repetition]}, {generator: verdict}, expected agreement)
CASES = [
    ("agree", 16, {"wrk": [10000, 10100, 9950, 10050], "cbench-load": [10080, 10150, 10010, 10120],
                   "h2load": [9900, 10000, 9870, 9960]}, {}, "yes"),
    ("h2load 30% slow", 64, {"wrk": [10000, 10100, 9950, 10050], "cbench-load": [10080, 10150, 10010, 10120],
                             "h2load": [7000, 7050, 6980, 7020]}, {}, "no"),
    ("one repetition", 128, {"wrk": [10000], "cbench-load": [10100], "h2load": [9900]}, {}, "undecided"),
    ("too noisy", 256, {"wrk": [10000, 14000, 8000], "cbench-load": [9000, 13000, 11000],
                        "h2load": [12000, 8500, 10500]}, {}, "undecided"),
    ("client-bound h2load", 512, {"wrk": [10000, 10100, 9950], "cbench-load": [10080, 10150, 10010],
                                  "h2load": [9900, 10000, 9870]}, {"h2load": "client-bound"}, "yes"),
]


def gen_point(row_key, gen, conns, rps, rep, verdict):
    key = f"-t1 -c{conns}" + ("" if gen == "wrk" else f" [{gen}]")
    p = point(row_key, rps, load_key=key, connections=conns, model="epoll-reactor", rep=rep, verdict=verdict)
    p["block"] = rep
    p["load"]["wrk_threads"] = 1
    if gen != "wrk":
        p["load"]["generator"] = gen
    p["wrk"]["generator"] = gen
    return p


def fixture_points():
    points = []
    for _label, conns, rates, verdicts, _want in CASES:
        for gen in GENS:
            for rep, rps in enumerate(rates[gen]):
                points.append(gen_point("epoll-reactor t1", gen, conns, rps, rep, verdicts.get(gen, "server-bound")))
    return points


def table_rows(lines):
    """{connections: [cells]} from the rendered table's body lines."""
    out = {}
    for ln in lines:
        if ln.startswith("| epoll-reactor"):
            cells = [c.strip() for c in ln.strip("|").split("|")]
            out[int(cells[1].split("-c")[1].split()[0])] = cells
    return out


class CrosscheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="crosscheck-")
        cls.run_dir = write_run(os.path.join(cls.tmp, "20260101T000000Z-generator-crosscheck"), fixture_points(),
                                {"scenario_name": "generator-crosscheck"})
        cls.loaded = load_run(cls.run_dir)
        cls.lines = crosscheck_table.render(cls.loaded)
        cls.rows = table_rows(cls.lines)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_agreement_per_point(self):
        for label, conns, _rates, _verdicts, want in CASES:
            with self.subTest(label):
                self.assertIn(conns, self.rows, f"no table line for -c{conns}:\n" + "\n".join(self.lines))
                self.assertEqual(self.rows[conns][-1], want, f"{label}: line {self.rows[conns]}")

    def test_three_generators_side_by_side_with_intervals(self):
        header = next(ln for ln in self.lines if ln.startswith("| server"))
        self.assertEqual([c.strip() for c in header.strip("|").split("|")][2:5],
                         ["wrk req/s", "cbench-load req/s", "h2load req/s"])
        # -c16: means 10025, 10090, 9932.5 with 95% t intervals over 4 repetitions
        wrk, cl, h2 = self.rows[16][2:5]
        mean, lo, hi = crosscheck.mean_interval(CASES[0][2]["wrk"])
        self.assertEqual(wrk, f"{mean:.0f} ({lo:.0f}–{hi:.0f})")
        self.assertTrue(cl.startswith("10090 (") and h2.startswith("9932 ("), (cl, h2))
        self.assertEqual(self.rows[128][2], "10000 (n=1)")
        # the ratio column: h2load / wrk at -c64 about 0.70, its interval excluding 0.909
        ratio = self.rows[64][6]
        self.assertTrue(ratio.startswith("0.70"), ratio)

    def test_client_bound_cell_is_marked_and_not_counted(self):
        self.assertNotEqual(self.rows[512][4].rstrip("0123456789()–n= "), "", "no verdict mark on h2load -c512")
        self.assertTrue(any("client-bound" in ln and "-c512 [h2load]" in ln for ln in self.lines))
        summary = self.lines[-2]
        # server-bound points: -c16, -c64, -c128, -c256 (not -c512); of them only -c16 agrees
        self.assertIn("4 of 5", summary)
        self.assertIn("at 1 of them", summary)

    def test_section_renders_through_reportgen(self):
        sec = {"scenario": "generator-crosscheck", "run": self.run_dir}
        text = reportgen.section_text("generator-crosscheck", sec, allow_synthetic=True, root=self.tmp)
        self.assertIn("Generator cross-check", text)
        self.assertIn("| epoll-reactor t1 | -t1 -c64 |", text)
        with self.assertRaises(reportgen.ReportError):  # fixtures never go into REPORT.md
            reportgen.section_text("generator-crosscheck", sec, root=self.tmp)

    def test_not_yet_run_placeholder_and_committed_config(self):
        cfg = reportgen.read_config(reportgen.DEFAULT_CONFIG)
        self.assertIn("generator-crosscheck", cfg, "results/reference-runs.toml lacks [sections.generator-crosscheck]")
        text = reportgen.section_text("generator-crosscheck", {"scenario": "generator-crosscheck", "run": ""})
        self.assertIn("_Not yet run._", text)
        with open(reportgen.DEFAULT_TEMPLATE, encoding="utf-8") as f:
            self.assertIn("generator-crosscheck", reportgen.section_names(f.read()))

    def test_single_generator_run_has_no_crosscheck_table(self):
        only_wrk = [p for p in fixture_points() if "generator" not in p["load"]]
        d = write_run(os.path.join(self.tmp, "20260101T000001Z-unit"), only_wrk)
        self.assertEqual(crosscheck_table.render(load_run(d)), [])


if __name__ == "__main__":
    unittest.main()
