"""Judgements of the published findings are computed from the numbers, never fixed in advance."""
import os
import tempfile
import unittest

from helpers import RUN_A, point, write_run
from cbenchlib import findings, published, runload

LOADS = [("-t2 -c10", 10), ("-t4 -c64", 64)]


def family_run(dir_path, rps_by_label, reps=3, noise=(0.99, 1.0, 1.01), gvl_rps=None):
    """A run with ever rows labelled as published; rps_by_label: label -> req/s at every load."""
    pts = []
    for label, rps in rps_by_label.items():
        threads = 1 if "single" in label else int(label.split()[1])
        model = "pull-loop" if "single" in label else "worker-pool"
        queues = None if "single" in label else ("per-worker" if "separate" in label else "shared")
        variants = [(False, rps)] + ([(True, gvl_rps[label])] if gvl_rps and label in gvl_rps else [])
        for gvl, value in variants:
            key = f"{model} t{threads}" + (f" {queues}" if queues else "") + (" gvl" if gvl else "")
            for lk, conns in LOADS:
                for rep in range(reps):
                    pts.append(point(key, value * noise[rep % len(noise)], load_key=lk, connections=conns,
                                     label=label, gvl=gvl, threads=threads, model=model, queues=queues,
                                     rep=rep))
    return runload.load_run(write_run(dir_path, pts))


class JudgeFromNumbersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.n = 0

    def analysis(self, *args, **kw):
        self.n += 1
        run = family_run(os.path.join(self.tmp.name, f"r{self.n}"), *args, **kw)
        return findings.Analysis(run)

    def status(self, an, fid, scope="no global lock"):
        return next(f for f in an.findings if f.fid == fid).overall[scope].status

    def test_single_thread_faster_is_supported(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 80000})
        self.assertEqual(self.status(an, "1"), findings.SUPPORTED)

    def test_two_repetitions_can_support_a_clear_difference(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 80000}, reps=2,
                           noise=(0.995, 1.005))
        self.assertEqual(self.status(an, "1"), findings.SUPPORTED)

    def test_single_thread_slower_is_not_supported(self):
        an = self.analysis({"ever single thread": 80000, "ever 1 worker thread": 100000})
        self.assertEqual(self.status(an, "1"), findings.NOT_SUPPORTED)

    def test_equal_within_noise_is_inconclusive(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 100000},
                           noise=(0.95, 1.0, 1.05))
        j = next(f for f in an.findings if f.fid == "1").overall["no global lock"]
        self.assertEqual(j.status, findings.INCONCLUSIVE)
        self.assertEqual(j.kind, "noise")

    def test_too_few_repetitions_is_inconclusive(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 50000}, reps=1)
        j = next(f for f in an.findings if f.fid == "1").overall["no global lock"]
        self.assertEqual(j.status, findings.INCONCLUSIVE)
        self.assertEqual(j.kind, "too-few-reps")
        self.assertIn("too few repetitions", j.reason)

    def test_per_worker_queues_that_help_a_lot_reverse_finding_3(self):
        an = self.analysis({"ever single thread": 100000, "ever 4 worker threads": 60000,
                            "ever 4 worker threads, separate queues": 90000})
        self.assertEqual(self.status(an, "3"), findings.NOT_SUPPORTED)
        self.assertEqual(an.explanation_verdicts["queue-contention part"].status, findings.SUPPORTED)

    def test_no_slowdown_without_lock_but_with_it(self):
        an = self.analysis({"ever single thread": 100000, "ever 1 worker thread": 100000,
                            "ever 4 worker threads": 180000},
                           gvl_rps={"ever 1 worker thread": 70000, "ever 4 worker threads": 50000})
        self.assertEqual(self.status(an, "2"), findings.NOT_SUPPORTED)
        self.assertEqual(self.status(an, "2", "--gvl"), findings.SUPPORTED)
        self.assertEqual(an.explanation_verdicts["GVL part, with --gvl, on /"].status, findings.SUPPORTED)

    def test_missing_rows_are_inconclusive_not_guessed(self):
        an = self.analysis({"ever single thread": 100000})
        j = next(f for f in an.findings if f.fid == "1").overall["no global lock"]
        self.assertEqual(j.status, findings.INCONCLUSIVE)
        self.assertEqual(next(f for f in an.findings if f.fid == "4").overall["no global lock"].kind, "no-data")

    def test_unlabelled_run_has_no_findings(self):
        pts = [point("x t1", 100.0, rep=i) for i in range(3)]
        run = runload.load_run(write_run(os.path.join(self.tmp.name, "plain"), pts))
        an = findings.Analysis(run)
        self.assertFalse(an.has_data)
        self.assertIn("cannot be judged", findings.render_findings(an))


class FixtureFindingsTest(unittest.TestCase):
    """The synthetic fixture was built with known effects; the judgements must find them."""

    @classmethod
    def setUpClass(cls):
        cls.an = findings.Analysis(runload.load_run(RUN_A), published.load_published("ever"))

    def test_summary(self):
        got = {(f, s): j.split(" (")[0] for f, s, j in findings.summary_rows(self.an)}
        self.assertEqual(got[("1. A single thread beats one worker thread", "no global lock")], "supported")
        self.assertEqual(got[("2. More worker threads make it slower", "--gvl")], "supported")
        self.assertEqual(got[("3. Per-worker queues do not help much", "no global lock")], "supported")
        self.assertEqual(got[("4. The libev pull loop beats the selector-style loop", "no global lock")],
                         "supported")
        self.assertEqual(got[("GVL + queue contention explanation", "GVL part, without a global lock")],
                         "not supported")

    def test_noisy_point_is_not_significant(self):
        f3 = next(f for f in self.an.findings if f.fid == "3")
        line = next(ln for scope, ln in f3.lines if ln.name == "ever: 4 workers, separate / shared queue")
        noisy = next(c for c in line.comps if c.load.lid.key == "-t4 -c64")
        self.assertEqual(noisy.mark, 0)

    def test_not_server_bound_points_are_marked_in_evidence(self):
        f2 = next(f for f in self.an.findings if f.fid == "2")
        marks = "".join(c.marks() for _, ln in f2.lines for c in ln.comps)
        self.assertIn("‡", marks)  # reactor-workers t8 at -t8 -c1024 had an error-bound repetition


if __name__ == "__main__":
    unittest.main()
