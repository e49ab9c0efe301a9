"""Verdicts on the declared published findings are computed from the numbers, never fixed in advance.

Fixtures use realistic noise: 5% CV per repetition (seeded), as the committed runs show, not the
0.5-1.5% of earlier fixtures; a within-noise difference must stay undecided.
"""
import json
import math
import os
import random
import tempfile
import unittest

from helpers import RUN_A, point, write_run
from cbenchlib.analysis import findings, runload, stats
from cbenchlib.format import published
from cbenchlib.render import findingstext

PRIMARY = ("-t4 -c64 /spin?us=10", 64, "/spin?us=10")
OTHER = ("-t2 -c10 /spin?us=10", 10, "/spin?us=10")
EVER = published.load_published("ever")


def family_run(dir_path, rps_by_label, reps=6, cv=0.05, seed=1, gvl_rps=None, verdicts=None, blocks=True,
               syscalls=None):
    """A run with ever rows labelled as published, at the primary point and one other."""
    rng = random.Random(seed)
    pts = []
    for label, rps in rps_by_label.items():
        threads = 1 if "single" in label else int(label.split()[1])
        model = "pull-loop" if "single" in label else "worker-pool"
        queues = None if "single" in label else ("per-worker" if "separate" in label else "shared")
        variants = [(False, rps)] + ([(True, gvl_rps[label])] if gvl_rps and label in gvl_rps else [])
        for gvl, value in variants:
            key = f"{model} t{threads}" + (f" {queues}" if queues else "") + (" gvl" if gvl else "")
            for lk, conns, path in (PRIMARY, OTHER):
                for rep in range(reps):
                    v = (verdicts or {}).get(label, "server-bound")
                    p = point(key, value * math.exp(rng.gauss(0, cv)), load_key=lk, connections=conns,
                              label=label, gvl=gvl, threads=threads, model=model, queues=queues, rep=rep,
                              path=path, verdict=v)
                    if blocks:
                        p["block"] = rep
                    sc = (syscalls or {}).get(label)
                    p["derived"] = {"client_cpu_util": 0.5,
                                    "syscalls_per_req": sc * math.exp(rng.gauss(0, 0.01)) if sc else None}
                    pts.append(p)
    return runload.load_run(write_run(dir_path, pts))


class JudgeFromNumbersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.n = 0

    def analysis(self, *args, **kw):
        self.n += 1
        run = family_run(os.path.join(self.tmp.name, f"r{self.n}"), *args, **kw)
        return findings.Analysis(run, EVER)

    def line(self, an, fid, gvl=False):
        f = next(f for f in an.findings if f.fid == fid)
        return next(ln for ln in f.lines if ln.a.gvl == gvl)

    CASES = [
        # label, rows (req/s), kwargs, finding, expected word
        ("clear win, 6 blocks", {"ever single thread": 100000, "ever 1 worker thread": 60000}, {}, "1",
         findings.SUPPORTED),
        ("clear loss", {"ever single thread": 60000, "ever 1 worker thread": 100000}, {}, "1",
         findings.CONTRADICTED),
        ("within noise: 2% apart at 5% CV", {"ever single thread": 102000, "ever 1 worker thread": 100000}, {},
         "1", findings.UNDECIDED),
        ("same speed, 2 repetitions", {"ever single thread": 100000, "ever 1 worker thread": 100000},
         {"reps": 2}, "1", findings.UNDECIDED),
        ("one repetition", {"ever single thread": 100000, "ever 1 worker thread": 50000}, {"reps": 1}, "1",
         findings.UNDECIDED),
        ("client-bound req/s never decides", {"ever single thread": 100000, "ever 1 worker thread": 50000},
         {"verdicts": {"ever single thread": "client-bound"}}, "1", findings.UNDECIDED),
        ("both-saturated req/s never decides", {"ever single thread": 100000, "ever 1 worker thread": 50000},
         {"verdicts": {"ever single thread": "both-saturated"}}, "1", findings.UNDECIDED),
        ("per-worker queues equal, many blocks",
         {"ever 4 worker threads, separate queues": 50000, "ever 4 worker threads": 50000},
         {"reps": 30, "cv": 0.03}, "3", findings.EQUIVALENT),
        ("per-worker queues much faster",
         {"ever 4 worker threads, separate queues": 90000, "ever 4 worker threads": 50000}, {}, "3",
         findings.CONTRADICTED),
        ("per-worker queues, too few blocks for the margin",
         {"ever 4 worker threads, separate queues": 50000, "ever 4 worker threads": 50000}, {"reps": 3}, "3",
         findings.UNDECIDED),
    ]

    def test_cases(self):
        for label, rows, kw, fid, want in self.CASES:
            with self.subTest(label):
                ln = self.line(self.analysis(rows, **kw), fid)
                self.assertEqual(ln.decision.word, want, f"{label}: {ln.decision.text()}")

    def test_undecided_says_how_wide_and_how_many_repetitions(self):
        ln = self.line(self.analysis({"ever single thread": 102000, "ever 1 worker thread": 100000}), "1")
        self.assertRegex(ln.decision.reason, r"±\d+\.\d%")
        self.assertRegex(ln.decision.reason, r"about \d+ repetitions per row would decide it")

    def test_without_blocks_the_interval_is_welch(self):
        ln = self.line(self.analysis({"ever single thread": 100000, "ever 1 worker thread": 60000},
                                     blocks=False), "1")
        self.assertEqual(ln.results[0].primary.ci.method, "welch-t")
        ln = self.line(self.analysis({"ever single thread": 100000, "ever 1 worker thread": 60000}), "1")
        self.assertEqual(ln.results[0].primary.ci.method, "paired-t")

    def test_magnitude_check(self):
        """A published magnitude (GET /) is compared only at a matching point: finding 1's primary
        point is GET /spin?us=10, so its line says why it compares none; magnitude_check words
        the comparison where the points match."""
        ln = self.line(self.analysis({"ever single thread": 100000, "ever 1 worker thread": 60000}), "1")
        self.assertAlmostEqual(ln.published, 75271 / 69883)
        self.assertIn("compared only at matching points", ln.magnitude)
        self.assertNotIn("measured interval", ln.magnitude)
        outside = stats.RatioCI(1.67, 1.5, 1.8, 3, 3)
        self.assertIn("lies outside the measured interval", findings.magnitude_check(outside, 75271 / 69883))
        inside = stats.RatioCI(1.077, 1.0, 1.2, 20, 20)
        self.assertIn("lies inside the measured interval", findings.magnitude_check(inside, 75271 / 69883))

    def test_mechanism_metric_decides_where_req_per_s_cannot(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 50000},
                           verdicts={"ever single thread": "client-bound"},
                           syscalls={"ever single thread": 3.0, "ever 1 worker thread": 6.0})
        ln = self.line(an, "1")
        self.assertEqual(ln.decided_by, "syscalls_per_req")
        self.assertEqual(ln.decision.word, findings.SUPPORTED)
        self.assertIn("cannot decide", ln.results[0].decision.reason)

    def test_secondary_points_are_holm_corrected(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 60000})
        sec = self.line(an, "1").results[0].secondary
        self.assertEqual([pe.load.lid.key for pe in sec], [OTHER[0]])
        self.assertEqual(sec[0].mark(), "✓")
        text = findingstext.render_findings(an)
        self.assertIn("Holm", text)

    def test_missing_rows_say_no_data(self):
        an = self.analysis({"ever single thread": 100000})
        f1 = next(f for f in an.findings if f.fid == "1")
        self.assertEqual(f1.overall.word, findings.NO_DATA)
        text = findingstext.render_findings(an)
        for fid in ("6", "7"):
            self.assertIn(f"Finding {fid}", text)
        self.assertIn("**no data**", text)

    def test_never_prints_not_supported(self):
        for label, rows, kw, _fid, _want in self.CASES:
            text = findingstext.render_findings(self.analysis(rows, **kw))
            for banned in ("not supported", "does not hold", "inconclusive"):
                self.assertNotIn(banned, text, label)


class DeclarationsTest(unittest.TestCase):
    def test_every_published_finding_is_declared_in_full(self):
        for name in ("ever", "tipi"):
            pub = published.load_published(name)
            decls = findings.declared_findings(pub)
            self.assertTrue(decls, name)
            for d in decls:
                with self.subTest(f"{name} {d.fid}"):
                    self.assertTrue(d.primary_path and d.primary_load)
                    self.assertTrue(d.metrics)
                    for m in d.metrics:
                        if m.direction == "equivalent":
                            self.assertGreater(m.margin, 1.0)

    def test_malformed_declaration_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            doc = {"name": "bad", "columns": ["-t1 -c1"], "rows": [],
                   "findings": [{"id": "x", "title": "t", "claim": "c", "primary": {"path": "/", "load": "-t1 -c1"},
                                 "direction": "equivalent", "metrics": ["req_per_s"], "comparisons": []}]}
            p = os.path.join(tmp, "bad.json")
            with open(p, "w") as f:
                json.dump(doc, f)
            with self.assertRaises(findings.DeclarationError):
                findings.declared_findings(published.load_published(p))


class FixtureFindingsTest(unittest.TestCase):
    """The committed synthetic fixture (no /spin path): every finding says it has no primary point."""

    def test_fixture_without_primary_point_is_undecided(self):
        an = findings.Analysis(runload.load_run(RUN_A), EVER)
        f1 = next(f for f in an.findings if f.fid == "1")
        self.assertTrue(f1.lines)
        self.assertIn("primary load point was not measured", f1.lines[0].decision.reason)


if __name__ == "__main__":
    unittest.main()


class SpreadTest(unittest.TestCase):
    def test_spread_between_repetitions(self):
        with tempfile.TemporaryDirectory() as tmp:
            pts = []
            for i, (a, b) in enumerate([(100.0, 110.0), (100.0, 100.0), (200.0, 100.0)]):
                for rep, v in enumerate((a, b)):
                    p = point(f"r{i}", v, rep=rep)
                    p["derived"] = {"syscalls_per_req": 2.0 + rep * 0.02}
                    pts.append(p)
            sp = {s.metric: s for s in findings.run_spread(runload.load_run(write_run(os.path.join(tmp, "s"), pts)))}
        rps = sp["req_per_s"]
        self.assertEqual((rps.n_points, rps.n_pairs), (3, 3))
        self.assertAlmostEqual(rps.median, 10 / 105)
        self.assertAlmostEqual(rps.p90, 10 / 105 + 0.8 * (100 / 150 - 10 / 105))
        self.assertAlmostEqual(sp["syscalls_per_req"].median, 0.02 / 2.01)
        self.assertEqual(sp["ctx_switches_per_req"].n_pairs, 0)
        self.assertIsNone(sp["ctx_switches_per_req"].median)


class LikeWithLikeTest(unittest.TestCase):
    """A published comparison is judged on one stack at a time: the C++ stand-ins with each other,
    the real Ruby servers with each other, side by side in one report; a side with no row of a
    stack leaves that stack's verdict "not measured", never paired across stacks."""

    TIPI = published.load_published("tipi")
    ROWS = {  # name: (key, label, kind, model, req/s)
        "tipi-cpp": ("fiber t1 p4", "Tipi", "model", "fiber", 90000),
        "unicorn-cpp": ("blocking-pool t1 p4 ka=off", "Unicorn", "model", "blocking-pool", 20000),
        "falcon-cpp": ("fiber t1 p4 as=Falcon", "Falcon", "model", "fiber", 90000),
        "puma-cpp": ("worker-pool t5 p4 shared", "Puma", "model", "worker-pool", 50000),
        "tipi-ruby": ("async-http t1 as Tipi", "Tipi", "peer", "async-http", 9000),
        "unicorn-ruby": ("unicorn t1", "Unicorn", "peer", "unicorn", 3000),
        "falcon-ruby": ("async-http t1 as Falcon", "Falcon", "peer", "async-http", 9000),
        "puma-ruby": ("puma t5", "Puma", "peer", "puma", 7000),
    }
    CPP_T1 = ("fiber t1 p4", "blocking-pool t1 p4 ka=off")
    CPP_T2 = ("fiber t1 p4 as=Falcon", "worker-pool t5 p4 shared")
    CASES = (  # (label, rows in the run, finding, {stack: (lines as (a key, b key), overall verdict)})
        ("both stacks, each judged with its own", ("tipi-cpp", "unicorn-cpp", "tipi-ruby", "unicorn-ruby"), "T1",
         {"cpp": ({CPP_T1}, "supported"), "ruby": ({("async-http t1 as Tipi", "unicorn t1")}, "supported")}),
        ("T2 the same way", ("falcon-cpp", "puma-cpp", "falcon-ruby", "puma-ruby"), "T2",
         {"cpp": ({CPP_T2}, "supported"), "ruby": ({("async-http t1 as Falcon", "puma t5")}, "supported")}),
        ("a real Unicorn without a real Tipi is not measured, not paired with the C++ Tipi",
         ("tipi-cpp", "unicorn-cpp", "unicorn-ruby"), "T1",
         {"cpp": ({CPP_T1}, "supported"), "ruby": (set(), "not measured")}),
        ("real servers only", ("falcon-ruby", "puma-ruby"), "T2",
         {"cpp": (set(), "no data"), "ruby": ({("async-http t1 as Falcon", "puma t5")}, "supported")}),
    )

    def run_of(self, tmp, names):
        pts = []
        for name in names:
            key, label, kind, model, rps = self.ROWS[name]
            for rep in range(3):
                p = point(key, rps * (1 + 0.01 * rep), load_key="-t4 -c64", connections=64, label=label,
                          model=model, kind=kind, rep=rep, threads=1)
                p["block"] = rep
                pts.append(p)
        return runload.load_run(write_run(os.path.join(tmp, "run"), pts))

    def test_pairs(self):
        for label, names, fid, expected in self.CASES:
            with self.subTest(label), tempfile.TemporaryDirectory() as tmp:
                run = self.run_of(tmp, names)
                for stack, (lines, verdict) in expected.items():
                    f = next(f for f in findings.Analysis(run, self.TIPI, stack=stack).findings if f.fid == fid)
                    self.assertEqual({(ln.a.key, ln.b.key) for ln in f.lines}, lines, stack)
                    self.assertEqual(f.overall.word, verdict, (stack, f.overall))
