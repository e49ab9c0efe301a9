"""Repetitions until decided, on constructed runs: the sequential rule's extra blocks for every
declared comparison until each is decided (at the look-corrected level) or the budget
(max_repetitions) is spent; a repetition judged on its own (a disturbed one left out and re-run,
never averaged in); equivalence sub-claims of a finding (a tie expected) decided and combined
with its directional claims."""
import copy
import json
import math
import os
import random
import tempfile
import unittest

import helpers  # noqa: F401
from cbenchlib.analysis import design, findings, runload, sequential
from cbenchlib.format import published, verdict
from simulation_judging import LOAD, PUB, pt

A, B = f"a / {LOAD}", f"b / {LOAD}"

# PUB with a third row and an equivalence sub-claim: c has b's design, so a tie is expected.
PUB_TIE = copy.deepcopy(PUB)
PUB_TIE["name"] = "simtie"
PUB_TIE["rows"].append({"label": "sim c", "family": "sim", "cells": ["40000"]})
PUB_TIE["findings"][0]["comparisons"].append(
    {"a": "sim c", "b": "sim b", "direction": "equivalent", "reason": "c is b's design under another name"})


class RunMaker:
    """Writes constructed runs: per block, per row, a req/s drawn around mean x ratio[row]."""

    def __init__(self, case):
        self.tmp = tempfile.TemporaryDirectory()
        case.addCleanup(self.tmp.cleanup)
        self.n = 0

    def pub(self, doc) -> str:
        path = os.path.join(self.tmp.name, f"{doc['name']}.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def run(self, blocks, ratios, cv, seed=3, edit=None) -> str:
        """ratios: row -> mean ratio to 40000; edit(point) may change a point (e.g. disturb it)."""
        self.n += 1
        d = os.path.join(self.tmp.name, f"run{self.n}")
        os.makedirs(d)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"schema": 1, "run_id": f"seq{self.n}", "scenario_name": "sim", "env": {}}, f)
        rng = random.Random(seed)
        with open(os.path.join(d, "points.jsonl"), "w") as f:
            for b in range(blocks):
                for row, ratio in ratios.items():
                    p = pt(row, f"sim {row}", b, 40000 * ratio * math.exp(rng.gauss(0, cv)))
                    if edit:
                        p = edit(p) or p
                    f.write(json.dumps(p) + "\n")
        return d


class ExtraBlocksUntilDecided(unittest.TestCase):
    def test_cases(self):
        m = RunMaker(self)
        pub = m.pub(PUB)
        # (label, blocks, ratio a/b, cv, target %, cap, stop?, words in the reason)
        cases = [
            ("pilot unfinished: both rows", 2, 0.9, 0.05, 2.0, 8, False, "need another block"),
            ("a large effect decided after the pilot, though wider than the target", 4, 0.5, 0.01, 0.1, 20,
             True, "1 decided"),
            ("a tie decided within req/s's registered 5% margin", 4, 1.0, 0.002, 0.1, 20, True, "1 decided"),
            ("undecided and wide: another block", 5, 0.97, 0.05, 1.0, 8, False, "need another block"),
            ("undecided and wide at the cap: stops at the budget", 8, 0.97, 0.05, 1.0, 8, True,
             "--max-repetitions 8"),
        ]
        for label, blocks, ratio, cv, target, cap, stop, words in cases:
            with self.subTest(label):
                d = sequential.decide(m.run(blocks, {"a": ratio, "b": 1.0}, cv), pub, target, cap)
                self.assertEqual(d.stop, stop, d.reason)
                self.assertIn(words, d.reason)
                self.assertEqual(sorted(d.rows), [] if stop else [A, B])

    def test_decided_uses_a_level_corrected_for_the_looks(self):
        # An interval that just excludes the null at 95% is not decided when the design may look
        # five times: the corrected level (99%) still includes it.
        # se 0.016 on the log scale, 5 df: 95% half-width 0.041 < |log 0.95| = 0.051 < 99%'s 0.065.
        ci = findings.stats.RatioCI(0.95, 0.0, 0.0, 6, 6, "paired-t", 0.016, 5.0, 0.04).at_confidence(0.95)
        self.assertLess(ci.hi, 1.0)
        claim = sequential.Claim("less", 1.0, None)
        self.assertTrue(sequential.decided(ci, claim, 1))
        self.assertFalse(sequential.decided(ci, claim, sequential.looks(8)))


class DisturbedRepetitions(unittest.TestCase):
    @staticmethod
    def disturb(block, row="a", share=0.61, factor=0.5):
        def edit(p):
            if p["block"] == block and p["row"]["key"] == row:
                p["machine"] = {"other_cpu_util": share}
                p["wrk"]["req_per_s"] *= factor
        return edit

    def test_repetition_problem_table(self):
        ok = pt("a", "sim a", 0, 40000.0)
        cases = [
            ("ok", ok, None, None),
            ("failed", {**ok, "status": "failed"}, None, "failed"),
            ("disturbed by its own figure", {**ok, "machine": {"other_cpu_util": 0.61}}, None,
             "disturbed (other processes used 61% of a CPU)"),
            ("a little other CPU is no disturbance", {**ok, "machine": {"other_cpu_util": 0.05}}, None, None),
            ("disturbed by its evidence alone", {**ok, "verdict_evidence": "x; DISTURBED: other processes used 40%"},
             None, "disturbed (other processes used 100% of a CPU)"),
            ("a verdict the metric may not decide at", {**ok, "verdict": "client-bound"}, ("server-bound",),
             "client-bound"),
            ("the same verdict where any is allowed", {**ok, "verdict": "client-bound"}, None, None),
        ]
        for label, p, allowed, want in cases:
            with self.subTest(label):
                self.assertEqual(verdict.repetition_problem(p, allowed), want)

    def test_excluded_not_averaged_and_rerun(self):
        m = RunMaker(self)
        pub = m.pub(PUB)
        clean = m.run(4, {"a": 0.8, "b": 1.0}, 0.0)
        dirty = m.run(4, {"a": 0.8, "b": 1.0}, 0.0, edit=self.disturb(2))
        # The judging leaves the disturbed repetition out: the ratio is the clean one, with its reason.
        an = findings.Analysis(runload.load_run(dirty), published.load_published(pub))
        res = an.findings[0].lines[0].results[0]
        self.assertAlmostEqual(res.primary.ci.ratio, 0.8, places=6)
        self.assertEqual(res.primary.ci.n_num, 3)
        self.assertEqual(res.primary.excluded, ["a repetition 2: disturbed (other processes used 61% of a CPU)"])
        # The rule counts 3 valid blocks: the pilot (4) is unfinished, so both points get another block,
        # where the clean run with the same 4 blocks has its pilot.
        d = sequential.decide(dirty, pub, 50.0, 8)
        self.assertFalse(d.stop, d.reason)
        self.assertEqual(sorted(d.rows), [A, B])
        self.assertTrue(sequential.decide(clean, pub, 50.0, 8).stop)

    def test_one_bad_repetition_never_blocks_the_metric(self):
        m = RunMaker(self)
        pub = m.pub(PUB)

        def unclear(p):
            if p["block"] == 1 and p["row"]["key"] == "b":
                p["verdict"] = "unclear"
        run = runload.load_run(m.run(5, {"a": 0.8, "b": 1.0}, 0.01, edit=unclear))
        line = findings.Analysis(run, published.load_published(pub)).findings[0].lines[0]
        self.assertEqual(line.decided_by, "req_per_s")
        self.assertEqual(line.decision.word, findings.SUPPORTED)
        self.assertEqual(line.results[0].primary.excluded, ["b repetition 1: unclear"])


class EquivalenceSubClaims(unittest.TestCase):
    def test_finding_combines_directional_and_tie_claims(self):
        m = RunMaker(self)
        pub = m.pub(PUB_TIE)
        # (label, ratio of c to b, finding's word, words in its reason)
        cases = [
            ("the tie holds: the directional verdict stands", 1.0, findings.SUPPORTED,
             "the 1 equivalence sub-claim (a tie expected) hold"),
            # One claim at each comparison: a tie far outside its margin contradicts the finding.
            ("the tie is contradicted: so is the finding", 0.6, findings.CONTRADICTED, "Bonferroni"),
        ]
        for label, c_ratio, word, words in cases:
            with self.subTest(label):
                run = runload.load_run(m.run(6, {"a": 0.7, "b": 1.0, "c": c_ratio}, 0.005))
                f = findings.Analysis(run, published.load_published(pub)).findings[0]
                ties = [ln for ln in f.lines if ln.tie]
                self.assertEqual(len(ties), 1)
                self.assertEqual(ties[0].decided_spec.direction, "equivalent")
                self.assertEqual(ties[0].decision.word, findings.EQUIVALENT if c_ratio == 1.0 else findings.CONTRADICTED)
                self.assertEqual(f.overall.word, word, f.overall.reason)
                self.assertIn(words, f.overall.reason)

    def test_directional_claim_takes_the_registered_margin(self):
        # A directional claim against 1 with no declared margin: a tie inside req/s's 5% is an answer.
        m = RunMaker(self)
        pub = m.pub(PUB)
        run = runload.load_run(m.run(6, {"a": 1.0, "b": 1.0}, 0.002))
        line = findings.Analysis(run, published.load_published(pub)).findings[0].lines[0]
        self.assertEqual(line.decision.word, findings.EQUIVALENT, line.decision.reason)
        self.assertAlmostEqual(line.decided_spec.margin, 1.05)

    def test_declaration_errors(self):
        base = copy.deepcopy(PUB_TIE)
        cases = [
            ("a sub-claim must be a tie", {"direction": "greater"}, "may declare only"),
            ("a sub-claim needs its reason", {"reason": ""}, "needs its \"reason\""),
            ("a sub-claim margin above 1", {"margin": 0.9}, "margin must be a number > 1"),
        ]
        m = RunMaker(self)
        for label, change, words in cases:
            with self.subTest(label):
                doc = copy.deepcopy(base)
                doc["name"] = f"bad{len(words)}"
                doc["findings"][0]["comparisons"][1].update(change)
                with self.assertRaises(findings.DeclarationError) as cm:
                    findings.declared_findings(published.load_published(m.pub(doc)))
                self.assertIn(words, str(cm.exception))

    def test_design_finding_tie_sub_claim(self):
        """A design ratio finding (B1's shape): the directional comparisons and a tie expected."""
        m = RunMaker(self)
        decl = {"id": "X1", "scenario": "sim", "kind": "ratio", "title": "t", "claim": "c", "path": "/spin?us=10",
                "metric": "req_per_s", "direction": "greater",
                "comparisons": [{"a": {"model": "a"}, "b": {"model": "b"}},
                                {"a": {"model": "c"}, "b": {"model": "b"}, "direction": "equivalent",
                                 "reason": "the same bound"}]}
        run = runload.load_run(m.run(5, {"a": 3.0, "b": 1.0, "c": 1.0}, 0.005))
        res = design.judge(run, decl)
        self.assertEqual([c.decision.word for c in res.comparisons], [findings.SUPPORTED, findings.EQUIVALENT])
        self.assertTrue(res.comparisons[1].name.endswith("(tie expected)"))
        self.assertEqual(res.overall.word, findings.SUPPORTED, res.overall.reason)
        # The rule sizes both: each decided, nothing more to run.
        comps, _notes = sequential.design_comparisons(run, None)
        self.assertEqual(comps, [])  # no scenario: no declarations read


if __name__ == "__main__":
    unittest.main()
