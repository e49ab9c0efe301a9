"""Fallback metrics of the declared findings: where the first metric (req/s, or CPU per
request) cannot decide at the primary point, a later one decides against its OWN declared direction
and no-effect value, never the claim's.

The defect this pins: in run 20261201T123359Z-tipi-table no point was server-bound, so T1 ("a fiber
server serves several times what prefork workers serve", req/s a/b > 2) fell back to system calls
per request and applied req/s's no-effect ratio 2 to it: fiber / keep-alive Unicorn at 1.26 system
calls per request read "supported". Every case below is simulated data with a known answer; the
verdict words are findings.VERDICT_WORDS.
"""
import json
import math
import os
import random
import tempfile
import unittest

from helpers import cbench, point, write_run
from cbenchlib.analysis import findings, runload
from cbenchlib.format import published
from cbenchlib.render import findingstext

TIPI = published.load_published("tipi")
EVER = published.load_published("ever")
TIPI_POINT = ("-t4 -c64", "/")
EVER_POINT = ("-t4 -c64 /spin?us=10", "/spin?us=10")
# wrk's CPU share a point records: at or above verdict.SATURATED a "server-bound" record reads as
# both-saturated (verdict.point_verdict), so server-bound rows get a client well below it.
CLIENT_CPU = {"server-bound": 0.5, "client-bound": 0.99, "both-saturated": 0.99, "unclear": 0.5}


def cost_run(dir_path, rows, where, reps=6, rps_cv=0.05, cost_cv=0.03, seed=11):
    """A run of one load point. rows: dicts with key, label, model, threads, rps, verdict and the
    per-request costs syscalls, cpu_us, ctx (None: not recorded); each repetition is one block."""
    load_key, path = where
    rng = random.Random(seed)
    pts = []
    for r in rows:
        for rep in range(reps):
            p = point(r["key"], r["rps"] * math.exp(rng.gauss(0, rps_cv)), load_key=load_key, connections=64,
                      label=r.get("label"), model=r["model"], threads=r.get("threads", 1), rep=rep, path=path,
                      verdict=r["verdict"])
            p["block"] = rep
            p["derived"] = {"client_cpu_util": CLIENT_CPU[r["verdict"]]}
            for field, name in (("syscalls", "syscalls_per_req"), ("cpu_us", "server_cpu_us_per_req"),
                                ("ctx", "ctx_switches_per_req")):
                v = r.get(field)
                p["derived"][name] = v * math.exp(rng.gauss(0, cost_cv)) if v is not None else None
            pts.append(p)
    return runload.load_run(write_run(dir_path, pts))


def tipi(syscalls_tipi, syscalls_unicorn, tipi_verdict="both-saturated", unicorn_verdict="client-bound",
         cpu=(None, None)):
    return [dict(key="fiber t1 p4", label="Tipi", model="fiber", rps=70000, verdict=tipi_verdict,
                 syscalls=syscalls_tipi, cpu_us=cpu[0]),
            dict(key="blocking-pool t1 p4", label="Unicorn", model="blocking-pool", rps=20000,
                 verdict=unicorn_verdict, syscalls=syscalls_unicorn, cpu_us=cpu[1])]


def nio4r(syscalls_workers, syscalls_single):
    return [dict(key="selector-pool t1", label="nio4r 1 worker thread", model="selector-pool", rps=20000,
                 verdict="unclear", syscalls=syscalls_workers),
            dict(key="selector t1", label="nio4r single thread", model="selector", rps=60000,
                 verdict="server-bound", syscalls=syscalls_single)]


def ever1(syscalls_single, syscalls_worker):
    return [dict(key="pull-loop t1", label="ever single thread", model="pull-loop", rps=90000,
                 verdict="client-bound", syscalls=syscalls_single),
            dict(key="worker-pool t1 shared", label="ever 1 worker thread", model="worker-pool", rps=60000,
                 verdict="server-bound", syscalls=syscalls_worker)]


def fiber_vs_pull_loop(rps_fiber, rps_pull):
    # server-bound: CPU per request (finding 7's first metric) decides only at client-bound points
    return [dict(key="fiber t1", model="fiber", rps=rps_fiber, verdict="server-bound", cpu_us=13.0),
            dict(key="pull-loop t1", label="ever single thread", model="pull-loop", rps=rps_pull,
                 verdict="server-bound", cpu_us=13.0)]


class FallbackJudgedOnItsOwnClaimTest(unittest.TestCase):
    CASES = [
        # label, table, point, rows, run kwargs, finding, expected word, deciding metric, no-effect text
        ("T1 fallback, direction less: fiber pays a third of prefork's system calls", TIPI, TIPI_POINT,
         tipi(2.5, 7.0), {}, "T1", findings.SUPPORTED, "syscalls_per_req", "no-effect value 0.5"),
        ("T1, the reference run's defect: fiber at 1.26x keep-alive Unicorn's system calls", TIPI, TIPI_POINT,
         tipi(2.52, 2.0), {}, "T1", findings.CONTRADICTED, "syscalls_per_req", "no-effect value 0.5"),
        ("T1 fallback interval around its no-effect value 0.5 (req/s's 2 would say supported)", TIPI,
         TIPI_POINT, tipi(3.5, 7.0), {"cost_cv": 0.08}, "T1", findings.UNDECIDED, "syscalls_per_req",
         "no-effect value 0.5"),
        ("T1, equal system calls per request: not less than half", TIPI, TIPI_POINT, tipi(2.0, 2.0), {}, "T1",
         findings.CONTRADICTED, "syscalls_per_req", "no-effect value 0.5"),
        ("T1, no system calls recorded, client-bound: CPU per request decides", TIPI, TIPI_POINT,
         tipi(None, None, "client-bound", "client-bound", cpu=(10.0, 36.0)), {}, "T1", findings.SUPPORTED,
         "server_cpu_us_per_req", "no-effect value 0.5"),
        ("T1, CPU per request 0.7 of prefork's: not less than half", TIPI, TIPI_POINT,
         tipi(None, None, "client-bound", "client-bound", cpu=(25.0, 36.0)), {}, "T1", findings.CONTRADICTED,
         "server_cpu_us_per_req", "no-effect value 0.5"),
        ("finding 6 fallback, direction greater: workers pay twice the system calls", EVER, EVER_POINT,
         nio4r(6.0, 3.0), {}, "6", findings.SUPPORTED, "syscalls_per_req", "no-effect value 1"),
        ("finding 6 fallback, direction greater: workers pay fewer system calls", EVER, EVER_POINT,
         nio4r(2.0, 3.0), {}, "6", findings.CONTRADICTED, "syscalls_per_req", "no-effect value 1"),
        ("finding 1 fallback interval around its no-effect value 1", EVER, EVER_POINT, ever1(3.0, 3.0), {}, "1",
         findings.UNDECIDED, "syscalls_per_req", "no-effect value 1"),
        ("finding 7, equivalence fallback req/s inside its ±10% band", EVER, EVER_POINT,
         fiber_vs_pull_loop(50000, 50000), {"reps": 30, "rps_cv": 0.03}, "7", findings.EQUIVALENT, "req_per_s",
         "no-effect band ±10%"),
        ("finding 7, equivalence fallback req/s well outside its band", EVER, EVER_POINT,
         fiber_vs_pull_loop(80000, 50000), {}, "7", findings.CONTRADICTED, "req_per_s", "no-effect band ±10%"),
    ]

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def judged(self, i, pub, where, rows, kw, fid):
        run = cost_run(os.path.join(self.tmp.name, f"r{i}"), rows, where, **kw)
        an = findings.Analysis(run, pub)
        f = next(f for f in an.findings if f.fid == fid)
        self.assertEqual(len(f.lines), 1, [ln.name for ln in f.lines])
        return an, f, f.lines[0]

    def test_cases(self):
        for i, (label, pub, where, rows, kw, fid, want, metric, no_effect) in enumerate(self.CASES):
            with self.subTest(label):
                _an, f, ln = self.judged(i, pub, where, rows, kw, fid)
                self.assertEqual(ln.decided_by, metric, f"{label}: {ln.decision.text()}")
                self.assertTrue(ln.decided_spec.fallback, label)
                self.assertEqual(ln.decision.word, want, f"{label}: {ln.decision.text()}")
                self.assertIn(no_effect, ln.decided_text(), label)
                self.assertIn("a fallback", ln.decided_text(), label)
                self.assertIn(no_effect, f.overall.reason, label)  # the finding's verdict says it too

    def test_no_effect_never_reads_supported(self):
        for i, (label, pub, where, rows, kw, fid, want, _m, _ne) in enumerate(self.CASES):
            if want in (findings.UNDECIDED, findings.EQUIVALENT):
                with self.subTest(label):
                    _an, _f, ln = self.judged(100 + i, pub, where, rows, kw, fid)
                    self.assertNotEqual(ln.decision.word, findings.SUPPORTED, ln.decision.text())

    def test_first_metric_still_decides_where_it_can(self):
        rows = tipi(2.52, 2.0, "server-bound", "server-bound")
        _an, f, ln = self.judged(200, TIPI, TIPI_POINT, rows, {}, "T1")
        self.assertEqual(ln.decided_by, "req_per_s")
        self.assertFalse(ln.decided_spec.fallback)
        self.assertEqual(ln.decision.word, findings.SUPPORTED)  # 3.5x > 2
        self.assertEqual(ln.decided_text(), "decided on req/s: claim a/b > 2, no-effect value 2")

    def test_the_verdict_prints_the_deciding_metric_and_its_no_effect_value(self):
        an, _f, _ln = self.judged(300, TIPI, TIPI_POINT, tipi(2.52, 2.0), {}, "T1")
        text = findingstext.render_findings(an)
        self.assertIn("**contradicted** (decided on system calls/request, a fallback: claim a/b < 0.5,"
                      " no-effect value 0.5):", text)
        self.assertIn("excludes 0.5 in the other direction", text)
        self.assertIn("judged on system calls/request, a fallback (no-effect value 0.5), in 1 of 1", text)
        self.assertIn("claim a/b > 2 on req/s (no-effect value 2); where it cannot decide, in order:", text)
        self.assertIn("- fallback system calls/request: claim a/b < 0.5 (lower is better; no-effect value 0.5):",
                      text)
        self.assertIn("| system calls/request (a/b < 0.5) |", text)


def one_finding_table(tmp, metrics, direction="greater", **extra):
    f = {"id": "X9", "title": "t", "claim": "c", "primary": {"path": "/", "load": "-t1 -c1"},
         "direction": direction, "metrics": metrics, "comparisons": [{"a": "A", "b": "B"}]}
    f.update(extra)
    p = os.path.join(tmp, "one.json")
    with open(p, "w") as fh:
        json.dump({"name": "one", "columns": ["-t1 -c1"], "rows": [], "findings": [f]}, fh)
    return published.load_published(p)


REASON = "a reason"


class FallbackDeclarationTest(unittest.TestCase):
    REFUSED = [
        # label, metrics, finding kwargs, words the message must contain
        ("a bare fallback name", ["req_per_s", "syscalls_per_req"], {}, ["direction", "null_ratio", "reason"]),
        ("no no-effect value", ["req_per_s", {"metric": "syscalls_per_req", "direction": "less",
                                              "reason": REASON}], {}, ["null_ratio"]),
        ("no reason", ["req_per_s", {"metric": "syscalls_per_req", "direction": "less", "null_ratio": 1}], {},
         ["reason"]),
        ("a fallback leaning on the finding's null ratio", ["req_per_s", {"metric": "syscalls_per_req",
                                                                           "direction": "less", "reason": REASON}],
         {"null_ratio": 2.0}, ["null_ratio", "a/b > 2"]),
        ("req/s's direction on a cost", ["req_per_s", {"metric": "syscalls_per_req", "direction": "greater",
                                                       "null_ratio": 1, "reason": REASON}], {},
         ["contradicts", "'less'"]),
        ("an equivalence fallback without its margin",
         ["server_cpu_us_per_req", {"metric": "req_per_s", "direction": "equivalent", "reason": REASON}],
         {"direction": "equivalent", "margin": 1.1}, ["margin"]),
        ("a directional fallback for an equivalence claim",
         ["server_cpu_us_per_req", {"metric": "req_per_s", "direction": "greater", "null_ratio": 1,
                                    "reason": REASON}],
         {"direction": "equivalent", "margin": 1.1}, ["contradicts", "'equivalent'"]),
        ("an unknown direction", ["req_per_s", {"metric": "syscalls_per_req", "direction": "lower",
                                                "null_ratio": 1, "reason": REASON}], {}, ["'lower'"]),
        ("a zero no-effect value", ["req_per_s", {"metric": "syscalls_per_req", "direction": "less",
                                                  "null_ratio": 0, "reason": REASON}], {}, ["null_ratio"]),
        ("an unknown \"when\"", ["req_per_s", {"metric": "syscalls_per_req", "direction": "less",
                                               "null_ratio": 1, "reason": REASON, "when": "always"}], {},
         ["'always'", "'undecided'"]),
        ("a proxy consulted where req/s stays undecided",
         ["req_per_s", {"metric": "syscalls_per_req", "direction": "less", "null_ratio": 1, "reason": REASON,
                        "when": "undecided"}], {}, ["claim's own quantity", "proxy"]),
    ]

    def test_incomplete_fallbacks_are_refused_naming_the_finding(self):
        for label, metrics, extra, words in self.REFUSED:
            with self.subTest(label), tempfile.TemporaryDirectory() as tmp:
                pub = one_finding_table(tmp, metrics, **extra)
                with self.assertRaises(findings.DeclarationError) as cm:
                    findings.declared_findings(pub)
                msg = str(cm.exception)
                self.assertIn("finding 0 ('X9')", msg, label)
                self.assertIn(f"fallback metric {(metrics[1] if isinstance(metrics[1], str) else metrics[1]['metric'])!r}",
                              msg, label)
                for w in words:
                    self.assertIn(w, msg, f"{label}: {msg}")

    def test_compare_refuses_the_table_and_names_the_finding(self):
        with tempfile.TemporaryDirectory() as tmp:
            pub = one_finding_table(tmp, ["req_per_s", "syscalls_per_req"])
            run = cost_run(os.path.join(tmp, "run"), tipi(2.5, 7.0), TIPI_POINT)
            rc, out, err = cbench("compare", run.dir, "--published", pub.path)
        self.assertEqual(rc, 1, out)
        self.assertIn("finding 0 ('X9'): fallback metric 'syscalls_per_req'", err)
        self.assertNotIn("Traceback", err)

    def test_a_complete_fallback_keeps_its_own_values(self):
        with tempfile.TemporaryDirectory() as tmp:
            pub = one_finding_table(tmp, ["req_per_s", {"metric": "syscalls_per_req", "direction": "less",
                                                        "null_ratio": 0.5, "reason": REASON}], null_ratio=2.0)
            m0, m1 = findings.declared_findings(pub)[0].metrics
        self.assertEqual((m0.metric, m0.direction, m0.null_ratio, m0.fallback), ("req_per_s", "greater", 2.0, False))
        self.assertEqual((m1.metric, m1.direction, m1.null_ratio, m1.margin, m1.fallback, m1.reason),
                         ("syscalls_per_req", "less", 0.5, None, True, REASON))

    def test_every_committed_fallback_is_declared(self):
        """Every finding of ever.json and tipi.json with a fallback declares it (the loader refuses
        anything else); the values T1 needs are pinned here. design.json's findings each judge one
        metric and have no fallback."""
        seen = 0
        for pub in (EVER, TIPI):
            for d in findings.declared_findings(pub):
                for m in d.metrics[1:]:
                    with self.subTest(f"{pub.name} {d.fid} {m.metric}"):
                        self.assertTrue(m.fallback and m.reason)
                        seen += 1
        self.assertEqual(seen, 2 + 1 + 3 + 1 + 2 + 2 + 2 + 1)  # findings 1, 3, 4, 5, 6, 7, T1 and T2
        t1 = next(d for d in findings.declared_findings(TIPI) if d.fid == "T1")
        self.assertEqual([(m.metric, m.direction, m.null_ratio) for m in t1.metrics],
                         [("req_per_s", "greater", 2.0), ("syscalls_per_req", "less", 0.5),
                          ("server_cpu_us_per_req", "less", 0.5)])
        from cbenchlib.analysis import design
        self.assertTrue(design.load_declarations())  # and refuses a fallback list, below

    def test_a_design_finding_takes_no_fallback(self):
        from cbenchlib.analysis import design
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "design.json")
            with open(p, "w") as fh:
                json.dump({"findings": [{"id": "Z1", "title": "t", "claim": "c", "scenario": "s", "kind": "ratio",
                                         "metric": "req_per_s", "path": "/", "comparisons": [{"a": {}, "b": {}}],
                                         "metrics": ["req_per_s", "syscalls_per_req"]}]}, fh)
            with self.assertRaisesRegex(design.DeclarationError, r"'Z1'.*no fallback"):
                design.load_declarations(p)


if __name__ == "__main__":
    unittest.main()
