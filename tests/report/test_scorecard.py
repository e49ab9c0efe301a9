"""The reproduction scorecard (analysis/scorecard.py), the replicas beside the published rows and
the fidelity claim (analysis/replicas.py), on simulated intervals and simulated runs with a known
answer."""
import math
import random
import tempfile
import unittest

from stacksim import tmp_run
from cbenchlib.analysis import findings, replicas, scorecard, stats
from cbenchlib.analysis.scorecard import NO, NOT_APPLICABLE, UNMEASURED, UNSURE, YES, ColumnEffect
from cbenchlib.format import published
from cbenchlib.render import pubcompare, summary

EVER = published.load_published("ever")
PUB = {r.label: [c.req_per_s if c else None for c in r.cells] for r in EVER.rows}


def ci(ratio, se=0.02, df=5.0):
    """A RatioCI with a 95% interval of half-width t * se on the log scale."""
    half = stats.t975(df) * se
    return stats.RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), int(df) + 1, int(df) + 1,
                         "paired-t", se, df, se * math.sqrt(df + 1))


def col(name, published, measured, can=True):
    return ColumnEffect(name, published, measured, can, "" if can else f"{name}: client-bound")


class RatioOfRatiosTest(unittest.TestCase):
    def test_known_values(self):
        r = scorecard.ratio_of_ratios(ci(0.5, 0.03, 8), ci(0.25, 0.04, 8))
        self.assertAlmostEqual(r.ratio, 2.0)
        self.assertAlmostEqual(r.log_se, 0.05)
        self.assertIsNone(scorecard.ratio_of_ratios(ci(1.0), None))

    def test_coverage_on_simulated_repetitions(self):
        """The 95% interval of (a1/b1)/(a2/b2) covers the true value in about 95% of simulated runs."""
        rng = random.Random(7)
        truth, hits, n_sims = (0.8 / 1.0) / (0.5 / 1.0), 0, 600
        for _ in range(n_sims):
            def side(ratio):
                a = [ratio * math.exp(rng.gauss(0, 0.05)) for _ in range(5)]
                b = [math.exp(rng.gauss(0, 0.05)) for _ in range(5)]
                return stats.ratio_ci(a, b, blocks_num=list(range(5)), blocks_den=list(range(5)))
            r = scorecard.ratio_of_ratios(side(0.8), side(0.5))
            hits += r.lo <= truth <= r.hi
        self.assertGreater(hits / n_sims, 0.92)
        self.assertLess(hits / n_sims, 0.98)


class CellRulesTest(unittest.TestCase):
    TREND = [
        # label, column effects (published, measured), expected word
        ("a fall reproduced", [(0.4, ci(0.4)), (0.2, ci(0.2))], YES),
        ("a fall measured as a rise", [(0.4, ci(0.4)), (0.2, ci(0.6))], NO),
        ("a fall too noisy to tell", [(0.4, ci(0.4, 0.2)), (0.2, ci(0.38, 0.2))], UNSURE),
        ("a fall measured flat", [(0.4, ci(0.4, 0.01)), (0.2, ci(0.4, 0.01))], NO),
        ("a flat step held", [(1.0, ci(1.0)), (1.02, ci(1.01))], YES),
        ("a flat step measured as a fall", [(1.0, ci(1.0)), (1.02, ci(0.5))], NO),
        ("a step at a client-bound point", [(0.4, ci(0.4)), (0.2, None)], UNMEASURED),
        ("one published column only", [(0.4, ci(0.4)), (None, ci(0.2))], NOT_APPLICABLE),
        ("two falls, one contradicted", [(0.4, ci(0.4)), (0.2, ci(0.2)), (0.1, ci(0.3))], NO),
    ]

    def test_trend(self):
        for label, pairs, want in self.TREND:
            with self.subTest(label):
                effs = [col(f"c{i}", p, m) for i, (p, m) in enumerate(pairs)]
                got = scorecard.trend(effs, 1.1)
                self.assertEqual(got.word, want, f"{label}: {got.text()}")

    def test_an_open_trend_counts_its_reproduced_steps(self):
        effs = [col(f"c{i}", p, m) for i, (p, m) in enumerate(
            [(0.4, ci(0.4, 0.2)), (0.2, ci(0.38, 0.2)), (0.1, ci(0.19)), (0.05, ci(0.095))])]
        got = scorecard.trend(effs, 1.1)
        self.assertEqual(got.word, UNSURE)
        self.assertTrue(got.why.startswith("2 of 3 steps reproduced; c0 → c1"), got.why)

    MAGNITUDE = [
        ("inside", [(0.22, ci(0.23))], True, YES),
        ("outside", [(0.22, ci(0.6))], True, NO),
        ("not server-bound", [(0.22, ci(0.23))], False, UNSURE),
        ("not measured", [(0.22, None)], True, UNMEASURED),
        ("nothing published", [(None, ci(0.6))], True, NOT_APPLICABLE),
        ("inside at one column, outside at another", [(0.22, ci(0.23)), (0.13, ci(0.5))], True, NO),
    ]

    def test_magnitude(self):
        for label, pairs, can, want in self.MAGNITUDE:
            with self.subTest(label):
                got = scorecard.magnitude([col(f"c{i}", p, m, can) for i, (p, m) in enumerate(pairs)])
                self.assertEqual(got.word, want, f"{label}: {got.text()}")

    DIRECTION = [
        # label, verdict word, claim direction, expected cell
        ("supported", findings.SUPPORTED, "greater", YES),
        ("contradicted", findings.CONTRADICTED, "greater", NO),
        ("equivalent on an equivalence claim", findings.EQUIVALENT, "equivalent", YES),
        ("equivalent on a directional claim", findings.EQUIVALENT, "greater", NO),
        ("undecided", findings.UNDECIDED, "greater", UNSURE),
        ("not measured", findings.NOT_MEASURED, "greater", UNMEASURED),
        ("no data", findings.NO_DATA, "greater", UNMEASURED),
    ]

    def test_direction_from_verdict(self):
        for label, word, claim, want in self.DIRECTION:
            with self.subTest(label):
                self.assertEqual(scorecard.direction_from_verdict(word, "why", claim).word, want)

    def test_direction_by_column(self):
        for label, measured, want in [("all below 1", [ci(0.4), ci(0.2)], YES),
                                      ("one above 1", [ci(0.4), ci(1.5)], NO),
                                      ("one includes 1", [ci(0.4), ci(1.0)], UNSURE)]:
            with self.subTest(label):
                effs = [col(f"c{i}", None, m) for i, m in enumerate(measured)]
                self.assertEqual(scorecard.direction_by_column(effs, "less").word, want)


def scaled(labels, factor=1 / 3):
    """Rows at the published numbers times a factor (empty published cells: not measured)."""
    return [v * factor if v else None for v in PUB[labels]]


class ScorecardOnRunsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def scores(self, rows, **kw):
        run = tmp_run(self, f"r{len(rows)}-{kw.get('seed', 1)}", rows, **kw)
        return {es.eid: es for es in scorecard.scorecard(run, EVER)}, run

    def test_ruby_replicates_the_collapse_and_cpp_does_not(self):
        rows = {}
        for lab in ("nio4r single thread", "nio4r 1 worker threads", "nio4r 4 worker threads",
                    "nio4r 8 worker threads"):
            rows[(lab, "ruby")] = scaled(lab)
            rows[(lab, "cpp")] = [30000.0] * 4  # no collapse at all
        sc, _run = self.scores(rows, reps=8, cv=0.02)
        c = sc["C"].scores
        self.assertEqual({a: c["ruby"][a].word for a in scorecard.ASPECTS},
                         {"direction": YES, "magnitude": YES, "trend": YES})
        self.assertEqual(c["cpp"]["direction"].word, UNSURE)  # a/b = 1 everywhere
        self.assertEqual(c["cpp"]["magnitude"].word, NO)
        self.assertEqual(c["cpp"]["trend"].word, NO)  # published falls, measured flat
        f6 = sc["6"].scores["ruby"]
        self.assertEqual(f6["direction"].word, YES)
        self.assertEqual(sc["6"].verdicts["ruby"], findings.SUPPORTED)

    def test_without_ruby_rows_every_ruby_cell_is_not_measured(self):
        sc, _run = self.scores({("nio4r single thread", "cpp"): 30000, ("nio4r 4 worker threads", "cpp"): 10000})
        self.assertTrue(scorecard.not_measured_everywhere(list(sc.values()), "ruby"))
        self.assertIn("no Ruby rows in this run", sc["C"].scores["ruby"]["trend"].why)

    def test_gvl_only_comparisons_have_no_published_magnitude(self):
        rows = {("ever 1 worker thread", "cpp"): 30000, ("ever 1 worker thread", "cpp", True): 20000}
        sc, _run = self.scores(rows, extra_paths=[("/spin?us=10", rows)])
        self.assertEqual(sc["5"].scores["cpp"]["magnitude"].word, NOT_APPLICABLE)
        self.assertEqual(sc["5"].scores["cpp"]["trend"].word, NOT_APPLICABLE)

    # The mechanism line (scorecard.counters_line) on constructed counters: label, jobs pushed per
    # request by column for the 4-worker row, for the single thread, and the words the line must hold.
    COUNTERS = [
        ("grows at every falling step", [5, 20, 60, 200], [1, 1, 1, 1],
         ["jobs pushed 5.0, 20, 60, 200 (nio4r single thread: 1.0, 1.0, 1.0, 1.0)",
          "occurs at every column and grows at every step"],
         "the level-triggered re-dispatch occurs at every column and grows where the published ratio falls"),
        ("stops growing after the third column", [13.2, 53.9, 79.7, 57.1], [1, 1, 1, 1.01],
         ["occurs at every column but does not grow at 1 of the 3 steps",
          "-t8 -c256 → -t8 -c1024 (×0.72 where the published ratio falls ×0.45)"],
         "the level-triggered re-dispatch occurs at every column but does not grow at 1 of the 3 steps where the"
         " published ratio falls"),
        ("does not occur", [1.0, 1.02, 1.0, 1.01], [1, 1, 1, 1], ["does not occur on this stack"],
         "the level-triggered re-dispatch does not occur on this stack"),
    ]

    def test_counters_line(self):
        for label, workers, single, want, short in self.COUNTERS:
            with self.subTest(label):
                rows = {("nio4r single thread", "ruby"): 20000, ("nio4r 4 worker threads", "ruby"): 8000}
                counters = {("nio4r 4 worker threads", "ruby"): [{"dispatches": v, "jobs": 2.0} for v in workers],
                            ("nio4r single thread", "ruby"): [{"dispatches": v} for v in single]}
                sc, _run = self.scores(rows, reps=3, counters=counters, seed=len(label))
                line = sc["C"].counters_line
                for w in want:
                    self.assertIn(w, line, f"{label}: {line}")
                self.assertIn("jobs popped 2.0, 2.0, 2.0, 2.0", line)
                self.assertNotIn("\n", line)
                # the short form says the same without the figures (no pipe counters here)
                self.assertEqual(sc["C"].counters_short, short)

    def test_counters_line_says_whether_the_pipe_filled(self):
        """4 workers at 8000 req/s for 2 s: 16000 requests; 1 byte left unread per request fills no
        64 KiB pipe, 5 bytes (80000) fill it at every column."""
        for unread, want, short in [
                (1.0, "did not fill within any measured window (at most 16,",
                 "; the wake-up pipe (64 KiB) never filled (24% full at most), so the full-pipe wait that 20 s"
                 " windows allow did not occur in 2 s windows"),
                (5.0, "filled within the window at -t2 -c10, -t4 -c64, -t8 -c256, -t8 -c1024",
                 "; the wake-up pipe (64 KiB) filled within the window at -t2 -c10, -t4 -c64, -t8 -c256, -t8 -c1024")]:
            with self.subTest(unread=unread):
                rows = {("nio4r single thread", "ruby"): 20000, ("nio4r 4 worker threads", "ruby"): 8000}
                counters = {("nio4r 4 worker threads", "ruby"): [
                    {"dispatches": v, "pipe_writes": 1.0 + unread, "wakeups": 1.0} for v in (5, 20, 60, 200)]}
                sc, _run = self.scores(rows, reps=3, cv=0.0, counters=counters)
                line = sc["C"].counters_line
                self.assertIn(want, line, line)
                self.assertIn(f"wake-up bytes left unread {unread:.1f}, {unread:.1f}", line)
                self.assertIn(short, sc["C"].counters_short)

    def test_summary_says_it_in_one_line(self):
        """REPORT.md's summary: one line for the effect with counters, under the Ruby rows' table,
        with the reproduction word and the counters' short form."""
        rows = {("nio4r single thread", "ruby"): 20000, ("nio4r 4 worker threads", "ruby"): 8000}
        counters = {("nio4r 4 worker threads", "ruby"): [{"dispatches": v} for v in (5, 20, 60, 200)]}
        sc, run = self.scores(rows, reps=3, counters=counters)
        lines = [ln for ln in summary._scorecard(run, EVER) if ln.startswith("C on the Ruby rows: ")]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"**{scorecard.reproduced(sc['C'].scores['ruby'])}**", lines[0])
        self.assertTrue(lines[0].endswith(sc["C"].counters_short + "."), lines[0])

    def test_no_counters_no_line(self):
        sc, run = self.scores({("nio4r single thread", "ruby"): 20000, ("nio4r 4 worker threads", "ruby"): 8000})
        self.assertEqual(sc["C"].counters_line, "")
        self.assertEqual(sc["C"].counters_short, "")
        self.assertNotIn("mechanism counters say", pubcompare.render_published_comparison(run, EVER))

    # scorecard.reproduced: (direction, trend) words -> the one-line word; magnitude is not asked.
    REPRODUCED = [
        ((YES, YES), scorecard.REPRODUCED),
        ((YES, NOT_APPLICABLE), scorecard.REPRODUCED),
        ((YES, NO), scorecard.NOT_REPRODUCED),
        ((NO, UNSURE), scorecard.NOT_REPRODUCED),
        ((UNSURE, UNSURE), scorecard.NOT_SHOWN),
        ((YES, UNSURE), scorecard.NOT_SHOWN),
        ((UNMEASURED, UNMEASURED), scorecard.NOT_SHOWN),
        ((NOT_APPLICABLE, NOT_APPLICABLE), scorecard.NOT_SHOWN),
    ]

    def test_reproduced(self):
        for (direction, trend), want in self.REPRODUCED:
            with self.subTest(direction=direction, trend=trend):
                cells = {"direction": scorecard.Score(direction), "magnitude": scorecard.Score(NO),
                         "trend": scorecard.Score(trend)}
                self.assertEqual(scorecard.reproduced(cells), want)

    def test_normalised_rows_divide_by_their_own_stack(self):
        rows = {("nio4r single thread", "ruby"): 20000, ("nio4r 4 worker threads", "ruby"): 5000,
                ("nio4r single thread", "cpp"): 80000, ("nio4r 4 worker threads", "cpp"): 40000}
        _sc, run = self.scores(rows, reps=4, cv=0.01)
        nr = next(n for n in replicas.normalised(run, EVER) if n.label == "nio4r 4 worker threads")
        self.assertAlmostEqual(nr.published[0], 23785 / 63775)
        self.assertAlmostEqual(nr.ruby[1].ci.ratio, 0.25, delta=0.02)
        self.assertAlmostEqual(nr.cpp[1].ci.ratio, 0.5, delta=0.03)
        self.assertIsNone(nr.cpp_gvl)
        text = pubcompare.render_published_comparison(run, EVER, findings_first=True)
        self.assertLess(text.index("Reproduction scorecard"), text.index("Published findings, judged"))
        self.assertIn("| nio4r 4 worker threads ÷ nio4r single thread | -t4 -c64 | 0.22 | 0.25 (", text)


class CompareCommandTest(unittest.TestCase):
    """`cbench compare RUN --published ever` on a run with both stacks: the scorecard first, the
    verdicts of both stacks per finding, the fidelity claim, and the same in --format json."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        fam = ("nio4r single thread", "nio4r 4 worker threads")
        rows = {(lab, "ruby"): scaled(lab) for lab in fam}
        cpp = {(lab, "cpp", True): [80000.0, 20000.0][i] for i, lab in enumerate(fam)}
        self.run_dir = tmp_run(self, "both", rows, user_us={(lab, "ruby"): 9.0 for lab in fam},
                               extra_paths=[("/spin?us=10", cpp)]).dir

    def test_markdown(self):
        from helpers import cbench
        rc, out, err = cbench("compare", self.run_dir, "--published", "ever")
        self.assertEqual(rc, 0, err)
        self.assertLess(out.index("### Reproduction scorecard"), out.index("## Published findings"))
        self.assertIn("| 6. nio4r's worker threads collapse as connections grow | Ruby rows (original stack) |"
                      " **supported** |", out)
        self.assertIn("**Verdict on the Ruby rows: supported**", out)
        self.assertIn("C++ 'nio4r 4 worker threads' --gvl / 'nio4r single thread' --gvl at -t4 -c64 GET /spin?us=10"
                      " (handler 10 µs", out)
        self.assertIn("nio4r 4 worker threads: this run, Ruby [ruby-nio4r-workers t4 shared]", out)

    def test_json(self):
        import json
        from helpers import cbench
        rc, out, err = cbench("compare", self.run_dir, "--published", "ever", "--format", "json")
        self.assertEqual(rc, 0, err)
        recs = json.loads(out)["records"]
        card = [r for r in recs if r.get("scorecard_effect") == "C" and r["stack"] == "ruby"]
        self.assertEqual([(r["direction"], r["trend"]) for r in card], [(YES, YES)])
        fid = [r for r in recs if r.get("fidelity") == "F1" and r["row"] == "nio4r 4 worker threads"]
        self.assertEqual(fid[0]["spin_us"], 10)
        self.assertTrue({"ruby", "cpp"} <= {r["stack"] for r in recs if r.get("finding")})


class FidelityTest(unittest.TestCase):
    FAMILY = ("nio4r single thread", "nio4r 4 worker threads")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.decl = dict(EVER.doc["fidelity"][0], rows=["nio4r 4 worker threads"])
        self.n = 0

    def judge(self, ruby, cpp, spin_path="/spin?us=20", user_us=18.0, **kw):
        """ruby, cpp: (single, worker) req/s at -t4 -c64; the C++ rows (with the GVL) at spin_path."""
        self.n += 1
        rows = {(lab, "ruby"): v for lab, v in zip(self.FAMILY, ruby or ())}
        cpp_rows = {(lab, "cpp", True): v for lab, v in zip(self.FAMILY, cpp or ())}
        user = {(lab, "ruby"): user_us for lab in self.FAMILY}
        run = tmp_run(self, f"f{self.n}", rows or cpp_rows, user_us=user,
                      extra_paths=[(spin_path, cpp_rows)] if rows and cpp_rows else (), **kw)
        pub = published.Published("ever", EVER.path, dict(EVER.doc, fidelity=[self.decl]), EVER.columns, EVER.rows)
        return replicas.fidelity(run, pub)[0]

    CASES = [
        ("equivalent", (20000, 5000), (80000, 20000), {"reps": 12, "cv": 0.02}, findings.EQUIVALENT),
        ("not equivalent", (20000, 5000), (80000, 72000), {"reps": 6, "cv": 0.02}, replicas.NOT_EQUIVALENT),
        ("undecided: too noisy", (20000, 5000), (80000, 24000), {"reps": 3, "cv": 0.2}, findings.UNDECIDED),
        ("not measured: no Ruby rows", None, (80000, 20000), {}, findings.NOT_MEASURED),
        ("not measured: the C++ point is at another handler cost", (20000, 5000), (80000, 20000),
         {"spin_path": "/spin?us=10"}, findings.NOT_MEASURED),
    ]

    def test_cases(self):
        for label, ruby, cpp, kw, want in self.CASES:
            with self.subTest(label):
                fi = self.judge(ruby, cpp, **kw)
                self.assertEqual(fi.overall.word, want, f"{label}: {fi.lines[0].decision.text()}")

    def test_says_which_cpp_point_it_used(self):
        fi = self.judge((20000, 5000), (80000, 20000), spin_path="/spin?us=10")
        ln = fi.lines[0]
        self.assertEqual(ln.spin_us, 20)
        self.assertIn("GET /spin?us=20", ln.decision.reason)
        self.assertIn("nearest declared to the Ruby row's 18.", ln.decision.reason)

    def test_nearest_declared_handler_cost(self):
        for user, want in [(0.4, 0), (7.4, 5), (7.5, 5), (7.6, 10), (17.0, 20), (400.0, 100)]:
            with self.subTest(user=user):
                self.assertEqual(replicas.nearest_spin(user, [0, 5, 10, 20, 50, 100]), want)
        self.assertEqual(replicas.spin_path(0), "/")
        self.assertEqual(replicas.spin_path(20), "/spin?us=20")


if __name__ == "__main__":
    unittest.main()
