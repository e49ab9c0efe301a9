"""Fallbacks declared "when": "undecided" (findingdecl.WHEN_UNDECIDED): consulted also where the
metrics before them could decide and stayed undecided, every metric so consulted judged at its share
of the error (findings.consulted, verdict.decide's looks: Bonferroni). A default fallback is still
consulted only where every metric before it cannot decide: a proxy (system calls per request) never
overrides a req/s that could decide. Constructed runs on finding 4 of the `ever` table (pull loop
over selector: req/s, then server CPU per request at a fixed rate declared "when undecided", then
system calls and context switches per request), and a simulation of the error rate on simulated
intervals with no effect anywhere."""
import math
import random
import unittest

from test_fixed_rate_findings import FIXED_KEY, PRIMARY_KEY, build, judge

from cbenchlib.analysis import findings, stats
from cbenchlib.analysis.findingdecl import MetricSpec
from cbenchlib.analysis.findings import MetricResult, PointEffect, consulted
from cbenchlib.analysis.verdict import CONTRADICTED, SUPPORTED, UNDECIDED, Decision

RPS, FIXED, SYSCALLS = "req_per_s", "server_cpu_us_per_req@fixed-rate", "syscalls_per_req"


def with_syscalls(pts, per_row):
    """The saturated points' system calls per request: PER_ROW {row key: count}, exact."""
    for p in pts:
        if p["load"]["key"] == PRIMARY_KEY:
            p["derived"]["syscalls_per_req"] = per_row[p["row"]["key"]]
    return pts


# label, rows (test_fixed_rate_findings.build), saturated req/s spread, expected
# (verdict, deciding metric, consulted metrics, level of the deciding interval)
CASES = [
    ("req/s server-bound and undecided, 20% cheaper at the fixed rate: the fallback decides at 97.5%",
     {"pull-loop t1": (80000, "server-bound", 10.0, 16.0), "selector t1": (80000, "server-bound", 10.0, 20.0)},
     0.15, (SUPPORTED, FIXED, [RPS, FIXED], 0.975)),
    ("req/s server-bound and clearly ahead: req/s decides, at 97.5% since two are consulted",
     {"pull-loop t1": (90000, "server-bound", 10.0, 20.0), "selector t1": (60000, "server-bound", 10.0, 20.0)},
     0.02, (SUPPORTED, RPS, [RPS, FIXED], 0.975)),
    ("req/s generator-bound: the fixed rate alone is consulted, at 95%",
     {"pull-loop t1": (80000, "client-bound", 10.0, 16.0), "selector t1": (80000, "client-bound", 10.0, 20.0)},
     0.15, (SUPPORTED, FIXED, [FIXED], 0.95)),
    ("req/s and the fixed rate both undecided: system calls (2 against 3, exact) are never consulted",
     {"pull-loop t1": (80000, "server-bound", 10.0, 20.0), "selector t1": (80000, "server-bound", 10.0, 20.0)},
     0.15, (None, RPS, [RPS, FIXED], 0.975)),
]


class WhenUndecided(unittest.TestCase):
    def test_cases(self):
        for label, rows, sat_cv, (word, metric, names, level) in CASES:
            with self.subTest(label):
                pts = with_syscalls(build(rows, sat_cv=sat_cv, fixed_cv=0.02 if word else 0.3),
                                    {"pull-loop t1": 2.0, "selector t1": 3.0})
                f, comps = judge(pts, "4")
                ln = f.lines[0]
                self.assertEqual([r.spec.metric for r in ln.consulted], names, ln.decision.text())
                self.assertEqual(ln.looks, len(names))
                self.assertEqual(ln.decided_by, metric, ln.decision.text())
                self.assertNotEqual(ln.decided_by, SYSCALLS)
                if word is not None:
                    self.assertEqual(ln.decision.word, word, ln.decision.text())
                else:
                    self.assertNotIn(ln.decision.word, (SUPPORTED, CONTRADICTED), ln.decision.text())
                self.assertAlmostEqual(ln.decision.ci.confidence, level)
                if len(names) > 1:
                    self.assertIn("97.5% interval: 2 declared metrics", ln.decision.reason)
                # the sequential design sizes every consulted metric, at its own point, as one group
                mine = [c for c in comps if c.name.startswith("finding 4 ") and "Ruby" not in c.name]
                self.assertEqual(sorted(c.a.load.lid.key for c in mine),
                                 sorted(FIXED_KEY if n == FIXED else PRIMARY_KEY for n in names))
                self.assertEqual(len({c.group for c in mine}), 1)

    def test_the_deciding_fallback_is_named_in_the_finding(self):
        f, _ = judge(with_syscalls(build(CASES[0][1], sat_cv=0.15, fixed_cv=0.02),
                                   {"pull-loop t1": 2.0, "selector t1": 3.0}), "4")
        self.assertIn("server CPU us/request at a fixed rate, a fallback", f.overall.reason)


def _result(spec, ci):
    return MetricResult(spec, PointEffect(None, ci), Decision(UNDECIDED, "", ci))


class ErrorRate(unittest.TestCase):
    """With no effect on either metric and both consulted, the chance that the comparison reads
    supported or contradicted stays at 5% (each look at 2.5%); judging each at 5% would make it
    about 9.75%. Simulated lognormal repetitions, 6 per row, Welch intervals."""
    TRIALS = 4000

    def test_two_looks_keep_the_error_at_alpha(self):
        rng = random.Random(2026)
        specs = [MetricSpec(RPS, "greater", 1.0, None),
                 MetricSpec(FIXED, "less", 1.0, None, fallback=True, reason="r", when_undecided=True)]
        wrong = naive = 0
        for _ in range(self.TRIALS):
            res = []
            for s in specs:
                a = [math.exp(rng.gauss(0, 0.1)) for _ in range(6)]
                b = [math.exp(rng.gauss(0, 0.1)) for _ in range(6)]
                res.append(_result(s, stats.welch_log_ratio(a, b)))
            naive += any(findings.decide(r.primary.ci, r.spec.direction, 1.0, None).word != UNDECIDED for r in res)
            able = consulted(res)
            deciding = next((r for r in able if r.decision.word != UNDECIDED), None)
            wrong += deciding is not None
        bound = 0.05 + 2.58 * math.sqrt(0.05 * 0.95 / self.TRIALS)
        self.assertLess(wrong / self.TRIALS, bound)
        # the test can fail: without the split the same draws exceed the bound
        self.assertGreater(naive / self.TRIALS, bound)


if __name__ == "__main__":
    unittest.main()
