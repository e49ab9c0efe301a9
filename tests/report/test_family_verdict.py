"""A finding's verdict over its comparisons (analysis/verdict.py): one claim made at each
comparison, so it is supported only where every comparison supports it, and contradicted where one
comparison contradicts it at the family's level (one-sided p under 0.025 / k, Bonferroni). Checked
on constructed intervals (the table) and on simulated comparisons with no effect (the error rate
the correction keeps, and what it would be without it)."""
import math
import random
import unittest
from dataclasses import dataclass
from types import SimpleNamespace

import helpers  # noqa: F401 (sets sys.path)
from cbenchlib.analysis import findings, stats, verdict

GREATER = ("greater", 1.0, None)
TIE = ("equivalent", 1.0, 1.10)


def ci_at(ratio: float, log_se: float, df: float = 10.0) -> stats.RatioCI:
    """A 95% interval with this estimate and standard error on the log scale."""
    half = stats.t975(df) * log_se
    return stats.RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), 11, 11, "paired-t",
                         log_se, df, log_se * math.sqrt(11))


@dataclass
class Comp:
    name: str
    decision: findings.Decision
    claim: tuple
    tie: bool = False


def comp(ratio: float, log_se: float, claim: tuple = GREATER, tie: bool = False, name: str = "") -> Comp:
    ci = ci_at(ratio, log_se)
    direction, null, margin = claim
    return Comp(name or f"r{ratio}", findings.decide(ci, direction, null, margin or 1.05), claim, tie)


def p_one_sided_below_1(ratio: float, log_se: float) -> float:
    return ci_at(ratio, log_se).p_value(1.0, "less")


class FamilyVerdictTable(unittest.TestCase):
    # (label, comparisons, finding's word, words in its reason)
    CASES = [
        ("one strong contradiction among undecided ones: contradicted",
         [comp(0.70, 0.03), comp(1.02, 0.05), comp(1.05, 0.06), comp(0.98, 0.05)],
         findings.CONTRADICTED, "Bonferroni"),
        # p about 0.013: contradicted alone (< 0.025), not at the level of four (< 0.00625).
        ("a contradiction too weak for four comparisons: undecided",
         [comp(0.95, 0.0195), comp(1.02, 0.05), comp(1.05, 0.06), comp(0.98, 0.05)],
         findings.UNDECIDED, "contradicted in 1, undecided in 3 of 4"),
        ("the same contradiction alone decides", [comp(0.95, 0.0195)], findings.CONTRADICTED, "contradicted in"),
        ("supported in three, strongly contradicted in one: the claim falls",
         [comp(1.30, 0.02), comp(1.25, 0.02), comp(1.40, 0.03), comp(0.80, 0.02)],
         findings.CONTRADICTED, "supported in 3, contradicted in 1 of 4"),
        ("supported everywhere: supported", [comp(1.30, 0.02), comp(1.25, 0.02)], findings.SUPPORTED,
         "supported in"),
        ("supported beside undecided: undecided, never supported",
         [comp(1.30, 0.02), comp(1.02, 0.05)], findings.UNDECIDED, "supported in 1, undecided in 1"),
        ("a tie expected that is far outside its margin contradicts the finding",
         [comp(1.30, 0.02), comp(0.60, 0.02, TIE, tie=True)], findings.CONTRADICTED, "contradicted in 1"),
        ("a tie that holds keeps the directional word",
         [comp(1.30, 0.02), comp(1.00, 0.01, TIE, tie=True)], findings.SUPPORTED, "sub-claim"),
    ]

    def test_table(self):
        p = p_one_sided_below_1(0.95, 0.0195)
        self.assertTrue(0.025 / 4 < p < 0.025, p)
        for label, comps, word, words in self.CASES:
            with self.subTest(label):
                for combine in (verdict.combine_claims, verdict.combine_comparisons):
                    dec = combine(comps)
                    self.assertEqual(dec.word, word, f"{combine.__name__}: {dec.reason}")
                    self.assertIn(words, dec.reason)

    def test_contradicting_p_per_claim(self):
        ci = ci_at(0.80, 0.02)
        cases = [
            ("greater: the other side is below the null", ("greater", 1.0, None), ci.p_value(1.0, "less")),
            ("less: the other side is above the null", ("less", 0.5, None), ci.p_value(0.5, "greater")),
            ("equivalent: outside the margin, the nearer side", TIE, ci.p_value(1.0 / 1.10, "less")),
        ]
        for label, claim, want in cases:
            with self.subTest(label):
                self.assertAlmostEqual(verdict.contradicting_p(ci, claim), want)
        self.assertIsNone(verdict.contradicting_p(None, GREATER))


class FamilyErrorRate(unittest.TestCase):
    """Four comparisons with no effect at all (the claim's boundary, its worst case): the finding
    must read "contradicted" at most 2.5% of the time, as one comparison would. Without the
    correction (any one contradicting comparison) it reads so about four times as often: the rule
    this replaces would have been the wrong one to add."""
    TRIALS = 2000
    K = 4
    REPS = 8

    def simulated(self, rng) -> list[Comp]:
        out = []
        for i in range(self.K):
            a = [math.exp(rng.gauss(0.0, 0.05)) for _ in range(self.REPS)]
            b = [math.exp(rng.gauss(0.0, 0.05)) for _ in range(self.REPS)]
            ci = stats.ratio_ci(a, b)
            out.append(Comp(f"c{i}", findings.decide(ci, "greater", 1.0, None), GREATER))
        return out

    def test_no_effect_contradicts_at_the_single_comparisons_rate(self):
        rng = random.Random(20261205)
        family = naive = 0
        for _ in range(self.TRIALS):
            comps = self.simulated(rng)
            family += verdict.combine_claims(comps).word == findings.CONTRADICTED
            naive += any(c.decision.word == findings.CONTRADICTED for c in comps)
        lo_family, _ = stats.clopper_pearson(family, self.TRIALS)
        self.assertLessEqual(lo_family, 0.025, f"{family} of {self.TRIALS} contradicted")
        self.assertGreater(naive, 2 * family, f"naive {naive}, family {family}")
        self.assertGreater(stats.clopper_pearson(naive, self.TRIALS)[0], 0.05)


class BudgetNote(unittest.TestCase):
    """Each undecided finding names why more repetitions within the run's budget could not decide it."""

    @staticmethod
    def finding(word, lines):
        return SimpleNamespace(overall=findings.Decision(word, ""), lines=lines)

    @staticmethod
    def line(word, need, n):
        ci = ci_at(1.02, 0.05)
        ci = stats.RatioCI(ci.ratio, ci.lo, ci.hi, n, n, ci.method, ci.log_se, ci.df, ci.log_sd)
        return SimpleNamespace(decision=findings.Decision(word, "", ci, need))

    def test_table(self):
        capped = SimpleNamespace(meta={"sequential": {"max_repetitions": 10, "stopped": "max-repetitions"}})
        fixed = SimpleNamespace(meta={})
        U, S = findings.UNDECIDED, findings.SUPPORTED
        # (label, run, finding's word, lines (word, repetitions needed, valid), words in the note, or "")
        cases = [
            ("beyond the cap", capped, U, [(U, 30, 8), (U, 45, 8)], "needs about 30 repetitions per row at its"
             " observed effect and spread, more than the run's cap of 10 (they had 8 valid"),
            ("within the cap: the run stopped first", capped, U, [(U, 8, 7), (S, None, 10)],
             "within the run's cap of 10 (they had 7 valid repetitions per row); the run stopped (max-repetitions)"),
            ("no interval to size from", capped, U, [(U, None, 3)], "no undecided comparison has an interval"),
            ("beyond the search", capped, U, [(U, 10**6, 8)], "needs more than"),
            ("a decided finding has no note", capped, S, [(S, None, 10)], ""),
            ("a fixed design has no budget to name", fixed, U, [(U, 30, 8)], ""),
        ]
        for label, run, word, lines, words in cases:
            with self.subTest(label):
                note = findings.budget_note(run, self.finding(word, [self.line(*ln) for ln in lines]))
                if words:
                    self.assertIn(words, note)
                else:
                    self.assertEqual(note, "")


if __name__ == "__main__":
    unittest.main()
