"""The readers beside the findings keep the two stacks apart: for each one, a simulated run with a
Ruby row and a C++ row of one published label (stacksim.py) gives separate cells, series or
tables, never a merged one; a run of one stack reads as it did before Ruby rows existed."""
import copy
import math
import os
import tempfile
import unittest

from stacksim import stack_run
from cbenchlib.analysis import decision, design, families, mechanism, sequential
from cbenchlib.analysis.labelindex import LabelIndex, stack_display
from cbenchlib.format import published
from cbenchlib.render import chart_repro, replication, tables
from cbenchlib.render.chartset import ChartSet

EVER = published.load_published("ever")
CPP_SPIN = "/spin?us=10"  # the C++ rows' primary path in ever.json
RUBY_KEYS = ("ruby-ever t1", "ruby-ever-workers t1 shared")
CPP_KEYS = ("pull-loop t1", "worker-pool t1 shared")
# One label pair on both stacks: the Ruby rows favour the single thread, the C++ rows the worker.
BOTH = {("ever single thread", "ruby"): 30000, ("ever 1 worker thread", "ruby"): 20000,
        ("ever single thread", "cpp"): 20000, ("ever 1 worker thread", "cpp"): 30000}
CPP_ONLY = {k: v for k, v in BOTH.items() if k[1] == "cpp"}
RUBY_ONLY = {k: v for k, v in BOTH.items() if k[1] == "ruby"}


class StackRunCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.n = 0

    def run_of(self, rows, spin=True, **kw):
        """A simulated run; with spin, the C++ rows also on their primary path (/spin?us=10)."""
        self.n += 1
        cpp = {k: v for k, v in rows.items() if k[1] == "cpp"}
        extra = [(CPP_SPIN, cpp)] if spin and cpp else []
        return stack_run(os.path.join(self.tmp.name, f"r{self.n}"), rows, extra_paths=extra, **kw)


# A finding with mechanism figures, on GET / for both stacks so that one run serves both tables.
MECH_DOC = {"id": "M1", "primary": {"path": "/", "load": "-t4 -c64"},
            "comparisons": [{"a": "ever single thread", "b": "ever 1 worker thread"}],
            "ruby": {"primary": {"path": "/", "load": "-t4 -c64"},
                     "comparisons": [{"a": "ever single thread", "b": "ever 1 worker thread"}]},
            "mechanism": {"figures": ["latency_p99", "syscalls_per_req"], "note": "Why: the C++ mechanism."}}


class MechanismStackTest(StackRunCase):
    # rows, stack, keys in the table, keys never in it ("" table: no block at all)
    CASES = [
        ("both stacks, C++ table", BOTH, "cpp", CPP_KEYS, RUBY_KEYS),
        ("both stacks, Ruby table", BOTH, "ruby", RUBY_KEYS, CPP_KEYS),
        ("C++ only, C++ table", CPP_ONLY, "cpp", CPP_KEYS, RUBY_KEYS),
        ("C++ only, no Ruby table", CPP_ONLY, "ruby", "", ()),
        ("Ruby only, Ruby table", RUBY_ONLY, "ruby", RUBY_KEYS, CPP_KEYS),
    ]

    def test_each_stack_has_its_own_table(self):
        for name, rows, stack, present, absent in self.CASES:
            with self.subTest(name):
                block = "\n".join(mechanism.render(self.run_of(rows, spin=False), MECH_DOC, 3, stack))
                if present == "":
                    self.assertEqual(block, "")
                    continue
                header = next(ln for ln in block.split("\n") if ln.startswith("| Figure |"))
                for k in present:
                    self.assertIn(f"[{k}]", header)
                for k in absent:
                    self.assertNotIn(k, header)
                self.assertEqual("on the Ruby rows" in block, stack == "ruby", block)
                self.assertEqual("the C++ mechanism" in block, stack == "cpp", block)

    def test_not_measurable_on_ruby_has_no_ruby_table(self):
        doc = copy.deepcopy(MECH_DOC)
        doc["ruby"] = {"not_measurable": "Ruby always runs under its GVL"}
        self.assertEqual(mechanism.render(self.run_of(BOTH, spin=False), doc, 3, "ruby"), [])

    def test_each_block_follows_its_own_verdict(self):
        text = "\n".join(["### Finding M1: t", "", "**Verdict: supported** (x).", "", "On the Ruby rows:", "",
                          "**Verdict on the Ruby rows: contradicted** (y).", "", "### Finding M2: u", ""])
        out = mechanism.insert_after_verdicts(text, self.run_of(BOTH, spin=False), {"findings": [MECH_DOC]}, 2)
        lines = out.split("\n")
        cpp_head = lines.index("#### Mechanism of finding M1, from the counters")
        ruby_head = lines.index("#### Mechanism of finding M1 on the Ruby rows (the original stack), from the counters")
        self.assertLess(lines.index("**Verdict: supported** (x)."), cpp_head)
        self.assertLess(cpp_head, lines.index("**Verdict on the Ruby rows: contradicted** (y)."))
        self.assertLess(lines.index("**Verdict on the Ruby rows: contradicted** (y)."), ruby_head)
        self.assertLess(ruby_head, lines.index("### Finding M2: u"))


class ChartStackTest(StackRunCase):
    def test_each_stack_is_its_own_series(self):
        # rows, expected normalised ratio per stack (None: no series), at every column
        cases = [
            ("both", {("ever single thread", "ruby"): 30000, ("ever 4 worker threads", "ruby"): 15000,
                      ("ever single thread", "cpp"): 20000, ("ever 4 worker threads", "cpp"): 40000},
             {"ruby": 0.5, "cpp": 2.0}),
            ("C++ only", {("ever single thread", "cpp"): 20000, ("ever 4 worker threads", "cpp"): 40000},
             {"ruby": None, "cpp": 2.0}),
            ("Ruby only", {("ever single thread", "ruby"): 30000, ("ever 4 worker threads", "ruby"): 15000},
             {"ruby": 0.5, "cpp": None}),
        ]
        for name, rows, want in cases:
            with self.subTest(name):
                pans = chart_repro.panels(self.run_of(rows, spin=False, cv=0.01), EVER)
                fam, base, series = next(p for p in pans if p[0] == "ever")
                self.assertEqual(base, "ever single thread")
                s = next(x for x in series if x.label == "ever 4 worker threads")
                for stack, ratio in want.items():
                    effects = s.measured[stack]
                    if ratio is None:
                        self.assertIsNone(effects)
                        continue
                    for ce in effects:
                        self.assertTrue(math.isclose(ce.ci.ratio, ratio, rel_tol=0.05), (stack, ce.ci.ratio))
                self.assertTrue(all(p is not None for p in s.published))

    def test_chart_is_drawn(self):
        run = self.run_of(BOTH, spin=False)
        cs = ChartSet(run, os.path.join(self.tmp.name, "charts"))
        chart_repro.reproduction(cs)
        self.assertTrue(os.path.exists(os.path.join(self.tmp.name, "charts", "reproduction-ever.png")))


class DecisionStackTest(StackRunCase):
    # kind, model, processes, family (None: never ranked)
    FAMILY_CASES = [
        ("model", "pull-loop", None, families.EVENT_LOOP),
        ("model", "worker-pool", 4, families.PROCESSES),
        ("model", "ruby-lookalike", None, families.UNCLASSIFIED),  # a cbench-server model whatever its name
        ("peer", "ruby-ever", None, None),
        ("peer", "ruby-nio4r-workers", None, None),
        ("peer", "puma", 4, None),
        ("peer", "unicorn", None, None),
        ("peer", "nginx", None, None),
        ("instrument", "floor", None, None),
    ]

    def test_row_family(self):
        for kind, model, procs, want in self.FAMILY_CASES:
            with self.subTest(kind=kind, model=model):
                self.assertEqual(families.row_family(kind, model, procs), want)

    def test_ruby_rows_are_not_ranked_and_noted(self):
        run = self.run_of(BOTH, spin=False)
        ld = next(ld for ld in run.loads.values() if ld.lid.key == "-t4 -c64")
        ranked = {c.row.key for _fam, c in decision._model_rows(run, ld)}
        self.assertEqual(ranked, set(CPP_KEYS))
        self.assertEqual(sorted(decision.ruby_rows(run)), sorted(RUBY_KEYS))
        notes = decision.not_ranked_lines([{"shape": "tiny", "run": "results/runs/x", "not_ranked": list(RUBY_KEYS)},
                                           {"shape": "other", "run": "results/runs/y", "not_ranked": []}])
        self.assertEqual(len(notes), 1)
        self.assertIn("`ruby-ever t1`", notes[0])
        self.assertIn("never ranked against the C++ models", notes[0])
        self.assertEqual(decision.ruby_rows(self.run_of(CPP_ONLY, spin=False)), [])


class TableStackTest(StackRunCase):
    def test_names_show_the_stack_where_a_label_is_shared(self):
        # rows, key -> expected suffix of its name ("" : the plain Row.display())
        cases = [
            ("both", BOTH, {k: " · Ruby stack" for k in RUBY_KEYS} | {k: " · C++ stack" for k in CPP_KEYS}),
            ("C++ only", CPP_ONLY, {k: "" for k in CPP_KEYS}),
            ("Ruby only", RUBY_ONLY, {k: "" for k in RUBY_KEYS}),
        ]
        for name, rows, want in cases:
            with self.subTest(name):
                run = self.run_of(rows, spin=False)
                names = stack_display(list(run.rows.values()))
                self.assertEqual(set(names), set(want))
                for r in run.rows.values():
                    self.assertEqual(names[r.key], r.display() + want[r.key])

    def test_tables_keep_one_line_per_row(self):
        run = self.run_of(BOTH, spin=False)
        loads = [ld for ld in run.loads.values() if ld.lid.path == "/"]
        for table in (tables.throughput_table(run, loads), tables.spread_table(run, loads)):
            body = [ln for ln in table if ln.startswith("| ever")]
            self.assertEqual(len(body), 4, body)
            self.assertEqual(sum("· Ruby stack" in ln for ln in body), 2)
            self.assertEqual(sum("· C++ stack" in ln for ln in body), 2)

    def test_label_index_keeps_rows_apart(self):
        idx = LabelIndex(self.run_of(BOTH, spin=False))
        self.assertEqual(len(idx.by_label[("ever single thread", False)]), 2)
        self.assertEqual(idx.row("ever single thread", stack="ruby").key, "ruby-ever t1")
        self.assertEqual(idx.row("ever single thread", stack="cpp").key, "pull-loop t1")
        self.assertIsNone(idx.row("ever single thread", stack="peer"))

    def test_design_compares_cpp_rows_only(self):
        run = self.run_of(BOTH, spin=False)
        self.assertEqual({r.key for r in design._rows(run, {"threads": 1})}, set(CPP_KEYS))


class SequentialStackTest(StackRunCase):
    def ask(self, rows):
        run = self.run_of(rows, reps=2)  # inside the pilot: every comparison asks for a block
        return sequential.decide(run.dir, "ever", 2.0, 20)

    def test_both_stacks_comparisons_are_sized(self):
        ruby_ids = {f"{k} / -t4 -c64" for k in RUBY_KEYS}
        cpp_ids = {f"{k} / -t4 -c64 {CPP_SPIN}" for k in CPP_KEYS}
        # rows, point ids asked for
        cases = [("both", BOTH, ruby_ids | cpp_ids), ("C++ only", CPP_ONLY, cpp_ids), ("Ruby only", RUBY_ONLY, ruby_ids)]
        for name, rows, want in cases:
            with self.subTest(name):
                d = self.ask(rows)
                self.assertFalse(d.stop, d.reason)
                self.assertEqual(set(d.rows), want)


class ReplicationStackTest(StackRunCase):
    def test_ruby_rows_beside_cpp_rows(self):
        text = replication.render_replication([self.run_of(BOTH), self.run_of(BOTH, seed=2)], EVER)
        sec = text.split("## Finding 1:")[1].split("## Finding 2:")[0]
        cpp_part, ruby_part = sec.split("On the Ruby rows (the original stack)")
        self.assertIn("Verdict per run: run 1: contradicted; run 2: contradicted.", cpp_part)
        self.assertIn("Verdict per run on the Ruby rows: run 1: supported; run 2: supported.", ruby_part)
        self.assertIn("GET / `-t4 -c64`", ruby_part)
        sec5 = text.split("## Finding 5:")[1].split("## Finding 6:")[0]
        self.assertIn("On the Ruby rows: **not measured** (Ruby always runs under its GVL", sec5)

    def test_cpp_only_runs_read_as_before(self):
        text = replication.render_replication([self.run_of(CPP_ONLY), self.run_of(CPP_ONLY, seed=2)], EVER)
        self.assertNotIn("Ruby", text)
        self.assertIn("Verdict per run: run 1: contradicted; run 2: contradicted.", text)


if __name__ == "__main__":
    unittest.main()
