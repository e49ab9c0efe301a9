"""The findings judged on each stack's rows: the Ruby replicas (the original stack) and the C++
models, never mixed; every verdict word on either stack from simulated points (stacksim.py)."""
import tempfile
import unittest

from stacksim import tmp_run
from cbenchlib.analysis import findings
from cbenchlib.format import published
from cbenchlib.render import findingstext

EVER = published.load_published("ever")
CPP_SPIN = "/spin?us=10"  # the C++ rows' primary path in ever.json


class RowStackTest(unittest.TestCase):
    CASES = [
        # kind, model, stack
        ("peer", "ruby-nio4r", "ruby"),
        ("peer", "ruby-ever-workers", "ruby"),
        ("peer", "ruby-ever-queues", "ruby"),
        ("peer", "puma", "ruby"),
        ("peer", "unicorn", "ruby"),
        ("peer", "async-http", "ruby"),
        ("peer", "thin", "ruby"),
        ("peer", "nginx", "peer"),
        ("peer", "h2o", "peer"),
        ("peer", "rubyish", "peer"),  # only the "ruby-" prefix counts
        ("model", "selector-pool", "cpp"),
        ("model", "ruby-lookalike", "cpp"),  # a cbench-server model is C++ whatever its name
        ("instrument", "floor", "cpp"),
        (None, "pull-loop", "cpp"),
    ]

    def test_cases(self):
        for kind, model, want in self.CASES:
            with self.subTest(kind=kind, model=model):
                self.assertEqual(published.row_stack(kind, model), want)


class StackVerdictTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.n = 0

    def finding(self, rows, fid, stack, **kw):
        """Finding `fid` judged on `stack`; rows on GET / (Ruby's primary path) and, for the C++
        rows, the same numbers on /spin?us=10 (their primary path)."""
        self.n += 1
        cpp = {k: v for k, v in rows.items() if k[1] == "cpp"}
        run = tmp_run(self, f"r{self.n}", rows, extra_paths=[(CPP_SPIN, cpp)] if cpp else (), **kw)
        an = findings.Analysis(run, EVER, stack=stack)
        return next(f for f in an.findings if f.fid == fid)

    # label, rows {(label, stack): req/s}, finding, stack, kwargs, expected word
    CASES = [
        ("ruby supported", {("ever single thread", "ruby"): 30000, ("ever 1 worker thread", "ruby"): 20000},
         "1", "ruby", {}, findings.SUPPORTED),
        ("ruby contradicted", {("ever single thread", "ruby"): 20000, ("ever 1 worker thread", "ruby"): 30000},
         "1", "ruby", {}, findings.CONTRADICTED),
        ("ruby undecided: within noise", {("ever single thread", "ruby"): 20300, ("ever 1 worker thread", "ruby"): 20000},
         "1", "ruby", {"reps": 3, "cv": 0.05}, findings.UNDECIDED),
        ("ruby undecided: client-bound", {("ever single thread", "ruby"): 30000, ("ever 1 worker thread", "ruby"): 20000},
         "1", "ruby", {"verdicts": {("ever single thread", "ruby"): "client-bound"}}, findings.UNDECIDED),
        ("ruby equivalent", {("ever 4 worker threads, separate queues", "ruby"): 20000,
                             ("ever 4 worker threads", "ruby"): 20000}, "3", "ruby", {"reps": 20, "cv": 0.02},
         findings.EQUIVALENT),
        ("ruby not measured: no Ruby rows", {("ever single thread", "cpp"): 30000,
                                             ("ever 1 worker thread", "cpp"): 20000}, "1", "ruby", {},
         findings.NOT_MEASURED),
        ("ruby not measured: declared (the GVL)", {("ever 1 worker thread", "ruby"): 20000}, "5", "ruby", {},
         findings.NOT_MEASURED),
        ("ruby not measured: no rows for the comparison", {("ever single thread", "ruby"): 20000}, "4", "ruby", {},
         findings.NOT_MEASURED),
        ("cpp supported", {("ever single thread", "cpp"): 30000, ("ever 1 worker thread", "cpp"): 20000},
         "1", "cpp", {}, findings.SUPPORTED),
        ("cpp contradicted", {("ever single thread", "cpp"): 20000, ("ever 1 worker thread", "cpp"): 30000},
         "1", "cpp", {}, findings.CONTRADICTED),
        ("cpp undecided", {("ever single thread", "cpp"): 20300, ("ever 1 worker thread", "cpp"): 20000},
         "1", "cpp", {"reps": 3, "cv": 0.05}, findings.UNDECIDED),
        ("cpp equivalent", {("ever 4 worker threads, separate queues", "cpp"): 20000,
                            ("ever 4 worker threads", "cpp"): 20000}, "3", "cpp", {"reps": 20, "cv": 0.02},
         findings.EQUIVALENT),
        ("cpp no data: only Ruby rows", {("ever single thread", "ruby"): 30000,
                                         ("ever 1 worker thread", "ruby"): 20000}, "1", "cpp", {}, findings.NO_DATA),
    ]

    def test_cases(self):
        for label, rows, fid, stack, kw, want in self.CASES:
            with self.subTest(label):
                f = self.finding(rows, fid, stack, **kw)
                self.assertEqual(f.overall.word, want, f"{label}: {f.overall.text()}")

    def test_stacks_are_never_mixed(self):
        """Ruby rows faster single, C++ rows faster worker: each stack's verdict is its own."""
        rows = {("ever single thread", "ruby"): 30000, ("ever 1 worker thread", "ruby"): 20000,
                ("ever single thread", "cpp"): 20000, ("ever 1 worker thread", "cpp"): 30000}
        self.assertEqual(self.finding(rows, "1", "ruby").overall.word, findings.SUPPORTED)
        f = self.finding(rows, "1", "cpp")
        self.assertEqual(f.overall.word, findings.CONTRADICTED)
        for ln in f.lines:
            self.assertEqual((ln.a.kind, ln.b.kind), ("model", "model"))

    def test_not_measured_says_why(self):
        f = self.finding({("ever single thread", "cpp"): 30000}, "1", "ruby")
        self.assertEqual(f.overall.reason, "no Ruby rows in this run")
        f = self.finding({("ever single thread", "ruby"): 20000}, "4", "ruby")
        self.assertIn("no Ruby rows for ever single thread / nio4r single thread", f.overall.reason)

    def test_rendered_side_by_side(self):
        self.n += 1
        run = tmp_run(self, "side", {("ever single thread", "ruby"): 30000, ("ever 1 worker thread", "ruby"): 20000})
        text = findingstext.render_findings(findings.Analysis(run, EVER), 2,
                                            findings.Analysis(run, EVER, stack="ruby"))
        self.assertIn("**Verdict on the Ruby rows: supported**", text)
        self.assertIn("On the Ruby rows (the original stack), primary load point GET / `-t4 -c64`", text)
        self.assertIn("**Verdict on the Ruby rows: not measured** (Ruby always runs under its GVL", text)


class RubyDeclarationTest(unittest.TestCase):
    def test_every_finding_declares_its_ruby_point_and_what_is_not_modelled(self):
        for name in ("ever", "tipi"):
            for d in findings.declared_findings(published.load_published(name)):
                with self.subTest(table=name, finding=d.fid):
                    sd = d.on_stack("ruby")
                    self.assertTrue(sd.why_not or (sd.primary_path == "/" and sd.comparisons), sd)
                    if name == "ever":
                        self.assertTrue(d.not_modelled)

    def test_malformed_ruby_block_is_refused(self):
        import copy
        doc = copy.deepcopy(EVER.doc)
        doc["findings"][0]["ruby"] = {"primary": {"path": "/"}}
        pub = published.Published("x", "x.json", doc, EVER.columns, EVER.rows)
        with self.assertRaisesRegex(findings.DeclarationError, "ruby"):
            findings.declared_findings(pub)


if __name__ == "__main__":
    unittest.main()
