"""REPORT.md's generator-crosscheck section (scripts/cbenchlib/crosscheck.py) on synthetic runs:
the three generators side by side with intervals, and the agreement verdict per point. Table
driven: each case gives each generator's req/s per repetition and the verdict the table must
print; the section renders through reportgen.section_text as `make report` does."""
import os
import shutil
import tempfile
import unittest

from helpers import generator_point, write_run  # noqa: E402 (helpers puts scripts/ on sys.path)

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
    p = generator_point(row_key, gen, conns, rps, rep, model="epoll-reactor", verdict=verdict)
    p["block"] = rep
    p["load"]["wrk_threads"] = 1
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
        if ln.startswith("#### Where the ratios come from"):
            break  # the first table only
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


# Where a ratio comes from: (label, connections, {generator: (server CPU util, server CPU us per
# request, window factor, client CPU util, syscalls per request, switches per request)} per
# repetition, the same for every repetition of the case. req/s = util / cost x window, so the
# decomposition must give back each factor's ratio.
SOURCE_CASES = [
    ("wrk client-bound: the server idles and pays more per request", 16,
     {"wrk": (0.85, 16.0, 0.99, 0.98, 3.4, 0.05), "cbench-load": (0.95, 14.5, 1.0, 0.90, 3.1, 0.005)},
     {"busy": 0.95 / 0.85, "cost": 14.5 / 16.0, "window": 1 / 0.99}),
    ("both server-bound: equal", 256,
     {"wrk": (0.97, 25.0, 1.0, 0.70, 6.5, 1.3), "cbench-load": (0.97, 25.0, 1.0, 0.60, 6.5, 1.3)},
     {"busy": 1.0, "cost": 1.0, "window": 1.0}),
]
NOISE = (1.0, 1.02, 0.98, 1.01)  # per repetition, on req/s only: a paired interval needs spread


def source_points():
    points = []
    for _label, conns, gens, _want in SOURCE_CASES:
        for gen, (util, cost, window, client, sysc, ctx) in gens.items():
            for rep, noise in enumerate(NOISE):
                rps = util / (cost * 1e-6) * window * (noise if gen == "wrk" else 1.0)
                verdict = "client-bound" if client >= 0.9 and util < 0.9 else "server-bound"
                p = gen_point("pull-loop t1", gen, conns, rps, rep, verdict)
                p["derived"] = {"server_cpu_util": util, "server_cpu_us_per_req": cost / (noise if gen == "wrk" else 1.0),
                                "client_cpu_util": client, "syscalls_per_req": sysc, "ctx_switches_per_req": ctx}
                points.append(p)
    return points


class RatioSourcesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="crosscheck-sources-")
        cls.loaded = load_run(write_run(os.path.join(cls.tmp, "20260101T000000Z-generator-crosscheck"),
                                        source_points(), {"scenario_name": "generator-crosscheck"}))
        cls.groups = {pk[3]: cells for _r, pk, cells in crosscheck.groups(cls.loaded)}
        cls.lines = crosscheck_table.render(cls.loaded)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_decomposition_gives_back_each_factor(self):
        for label, conns, _gens, want in SOURCE_CASES:
            with self.subTest(label):
                cells = self.groups[conns]
                d = crosscheck.decompose(cells["cbench-load"], cells["wrk"])
                self.assertAlmostEqual(d.busy, want["busy"], places=6)
                self.assertAlmostEqual(d.window, want["window"], places=6)
                self.assertAlmostEqual(d.rps, d.busy / d.cost * d.window, places=9)  # exact by construction
                self.assertEqual(d.reps_num, len(NOISE))

    def test_client_saturation_and_idle_costs_are_shown(self):
        d = crosscheck.decompose(self.groups[16]["cbench-load"], self.groups[16]["wrk"])
        self.assertEqual((d.client_bound_num, d.client_bound_den), (4, 4))
        self.assertEqual(d.syscalls, (3.1, 3.4))
        line = next(ln for ln in self.lines if ln.startswith("| pull-loop t1 | -t1 -c16 | cbench-load / wrk"))
        self.assertIn("3.10 / 3.40", line)
        self.assertIn("0.005 / 0.050", line)

    def test_pooled_ratio_apart_at_server_bound_points_and_the_others(self):
        pooled = next(ln for ln in self.lines if ln.startswith("- cbench-load / wrk, pooled"))
        # -c256: every repetition server-bound, ratio 1 within the noise; -c16: wrk client-bound.
        self.assertIn("where both were server-bound in every repetition (1 point), 0.99", pooled)
        self.assertIn("equivalent within 10%", pooled)
        self.assertIn("where either was not (1 point), 1.2", pooled)
        bound = crosscheck.pooled_ratio([(self.groups[256]["cbench-load"], self.groups[256]["wrk"])])
        self.assertTrue(bound.lo < 1.0 < bound.hi, bound)
        self.assertIsNone(crosscheck.pooled_ratio([]))
        # the table's closing line stays last
        self.assertTrue(self.lines[-2].startswith("Server-bound points"), self.lines[-2])


if __name__ == "__main__":
    unittest.main()
