"""Verdicts: the four words, one comparison's verdict against its claim (decide), and a finding's
verdict over its comparisons (combine_claims, combine_comparisons).

A finding makes one claim at each of its comparisons (the same design difference at several rows,
stacks or points): it holds where every comparison supports it, an intersection, so "supported"
needs each comparison's own 95% interval and no correction (an intersection-union test keeps its
level). It falls where one comparison contradicts it, a union, so one comparison out of k decides
"contradicted" only at the family's level: its one-sided p against the claim under 0.025 / k
(Bonferroni; Holm's first step, which is all that "at least one" needs). Without the correction a
finding of four comparisons with no effect anywhere would read "contradicted" about four times as
often as one of a single comparison. Anything else (undecided comparisons beside supported ones,
or a contradiction too weak for the family) is undecided, with the counts and the closest
repetitions that would decide.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import stats

SUPPORTED, CONTRADICTED, EQUIVALENT, UNDECIDED = "supported", "contradicted", "equivalent", "undecided"
VERDICT_WORDS = (SUPPORTED, CONTRADICTED, EQUIVALENT, UNDECIDED)
NO_DATA = "no data"

@dataclass
class Decision:
    word: str
    reason: str
    ci: stats.RatioCI | None = None
    reps_needed: int | None = None

    def text(self) -> str:
        return f"{self.word} ({self.reason})" if self.reason else self.word


def decide(ci: stats.RatioCI | None, direction: str, null_ratio: float = 1.0,
           margin: float | None = None, looks: int = 1) -> Decision:
    """One of the four verdict words for an effect against a declared claim. LOOKS: how many
    declared metrics of the same comparison could decide it (findings.py: the first that decides
    gives the verdict); each is judged at its share of the error, ALPHA / LOOKS (Bonferroni: the
    (1 - ALPHA / LOOKS) interval, the two one-sided tests at ALPHA / LOOKS), so that the chance
    that any of them decides wrongly stays at ALPHA. The decision's interval is that one."""
    if ci is None:
        return Decision(UNDECIDED, "no measurement", None)
    if not ci.enough_reps:
        return Decision(UNDECIDED, f"too few repetitions for an interval ({ci.n_num} and {ci.n_den};"
                        f" need {stats.MIN_REPS_FOR_CI} each)", ci)
    looks = max(1, looks)
    alpha = stats.ALPHA / looks
    if looks > 1:
        ci = ci.at_confidence(1.0 - alpha)
    dec = _decide_at(ci, direction, null_ratio, margin, alpha)
    if looks > 1:
        dec.reason += (f"; a {ci.confidence * 100:g}% interval: {looks} declared metrics could decide this"
                       f" comparison, each at {alpha * 100:g}% of the {stats.ALPHA * 100:g}% error (Bonferroni)")
    return dec


def _decide_at(ci: stats.RatioCI, direction: str, null_ratio: float, margin: float | None,
               alpha: float) -> Decision:
    """decide()'s rule with the interval CI already at 1 - ALPHA and the equivalence tests at ALPHA."""
    iv = f"{fmt_ci(ci)}, ±{ci.half_width_pct:.1f}%"
    confidence = 1.0 - alpha
    if direction == "equivalent":
        ok, _p = stats.tost_equivalent(ci, margin or 1.0, alpha)
        if ok:
            return Decision(EQUIVALENT, f"{iv}; both one-sided tests pass against ±{(margin - 1) * 100:.0f}%", ci)
        if ci.lo > margin or ci.hi < 1.0 / margin:
            return Decision(CONTRADICTED, f"{iv} lies wholly outside the ±{(margin - 1) * 100:.0f}% margin", ci)
        n = stats.reps_to_decide(ci, margin, confidence)
        return Decision(UNDECIDED, f"{iv} too wide for the ±{(margin - 1) * 100:.0f}% margin; "
                        + reps_text(n), ci, n)
    sign = 1 if direction == "greater" else -1
    above, below = ci.lo > null_ratio, ci.hi < null_ratio
    null_txt = f"{null_ratio:g}"
    if (above and sign > 0) or (below and sign < 0):
        return Decision(SUPPORTED, f"{iv} excludes {null_txt} in the claimed direction", ci)
    if above or below:
        return Decision(CONTRADICTED, f"{iv} excludes {null_txt} in the other direction", ci)
    if margin is not None and stats.tost_equivalent(ci, margin, alpha)[0]:
        return Decision(EQUIVALENT, f"{iv}; both one-sided tests pass against ±{(margin - 1) * 100:.0f}%", ci)
    d_ci = ci if null_ratio == 1.0 else stats.RatioCI(ci.ratio / null_ratio, ci.lo / null_ratio, ci.hi / null_ratio,
                                                      ci.n_num, ci.n_den, ci.method, ci.log_se, ci.df, ci.log_sd)
    n = stats.reps_to_decide(d_ci, margin, confidence)
    return Decision(UNDECIDED, f"{iv} includes {null_txt}; " + reps_text(n), ci, n)


def reps_text(n: int | None) -> str:
    if n is None:
        return "the spread is unknown"
    if n > stats.MAX_REPS_SEARCH:
        return (f"more than {stats.MAX_REPS_SEARCH} repetitions per row would be needed at the observed"
                " effect and spread (the effect is too close to the null)")
    return f"about {n} repetitions per row would decide it at the observed effect and spread"



def fmt_ci(ci: stats.RatioCI | None) -> str:
    if ci is None:
        return ""
    if not ci.enough_reps:
        return f"{ci.ratio:.2f} (n<{stats.MIN_REPS_FOR_CI})"
    return f"{ci.ratio:.2f} ({stats.fmt_bound(ci.lo)}–{stats.fmt_bound(ci.hi)})"



def _counts(words: list[str]) -> str:
    """"supported in 2, undecided in 1": each verdict word with how many comparisons read it."""
    return ", ".join(f"{w} in {words.count(w)}" for w in VERDICT_WORDS if w in words)


def contradicting_p(ci: stats.RatioCI | None, claim: tuple | None) -> float | None:
    """One-sided p of the test that the effect lies on the other side of CLAIM (direction, null
    ratio, margin): below the null for "greater", above it for "less", outside the margin (the
    nearer side) for "equivalent"; None without an interval."""
    if ci is None or claim is None or not ci.enough_reps or ci.log_se is None:
        return None
    direction, null_ratio, margin = claim
    if direction == "equivalent":
        if not margin or margin <= 1.0:
            return None
        return min(ci.p_value(margin, "greater"), ci.p_value(1.0 / margin, "less"))
    return ci.p_value(null_ratio, "less" if direction == "greater" else "greater")


def family_contradiction(comps: list) -> Decision | None:
    """CONTRADICTED when one of a finding's k comparisons (each with .decision, .claim and .name,
    and .looks where several declared metrics could decide it) contradicts its claim at the
    family's level (one-sided p < ALPHA / 2 / k, Bonferroni, divided again by the comparison's
    looks: its metric had that share of the error, verdict.decide), else None: the other rules
    decide. One comparison alone is its own family (its word stands)."""
    k = len(comps)
    if k < 2:
        return None
    hits = []
    for c in comps:
        if c.decision.word != CONTRADICTED:
            continue
        looks = max(1, getattr(c, "looks", 1))
        p = contradicting_p(c.decision.ci, c.claim)
        if p is not None and p < stats.ALPHA / 2.0 / k / looks:
            hits.append((p, looks, c))
    if not hits:
        return None
    p, looks, first = min(hits, key=lambda h: h[0])
    words = [c.decision.word for c in comps]
    counts = _counts(words)
    share = f" / {looks} metrics" if looks > 1 else ""
    return Decision(CONTRADICTED, f"{counts} of {k} comparisons; {len(hits)} contradict{'s' if len(hits) == 1 else ''} the claim at the"
                    f" finding's level ({first.name}: one-sided p {p:.2g} < {stats.ALPHA / 2:g} / {k}{share},"
                    " Bonferroni), and a claim made at every comparison falls with one", first.decision.ci)


def combine_claims(lines: list) -> Decision:
    """A verdict over comparisons of two kinds (each with .decision and .tie): the directional ones
    (the finding's claim) and the equivalence sub-claims (a tie expected, e.g. two designs with the
    same concurrency bound). A contradiction at the family's level decides first
    (family_contradiction). The directional ones combine as before (_combine_words: the common
    word when they agree, undecided naming the disagreement). A sub-claim holds when it reads
    "equivalent"; the finding keeps the directional word only when every sub-claim holds, else it
    is undecided with the sub-claims' counts (a finding of sub-claims alone combines them as one)."""
    fam = family_contradiction(lines)
    if fam is not None:
        return fam
    dirs = [ln for ln in lines if not ln.tie]
    ties = [ln for ln in lines if ln.tie]
    if not ties or not dirs:
        return _combine_words(lines)
    main = _combine_words(dirs)
    words = [ln.decision.word for ln in ties]
    counts = _counts(words)
    if all(w == EQUIVALENT for w in words):
        return Decision(main.word, f"{main.reason}; the {len(ties)} equivalence sub-claim{'s' if len(ties) > 1 else ''}"
                        " (a tie expected) hold", reps_needed=main.reps_needed)
    needs = [x for x in [main.reps_needed] + [ln.decision.reps_needed for ln in ties]
             if x and x <= stats.MAX_REPS_SEARCH]
    return Decision(UNDECIDED, f"{main.reason}; the equivalence sub-claims (a tie expected) read {counts}"
                    f" of {len(ties)}", reps_needed=min(needs) if needs else None)


def _combine_words(lines: list) -> Decision:
    if not lines:
        return Decision(NO_DATA, "the run has no rows for this finding")
    words = [ln.decision.word for ln in lines]
    if len(set(words)) == 1:
        w = words[0]
        if w == UNDECIDED:
            needs = [ln.decision.reps_needed for ln in lines if ln.decision.reps_needed]
            extra = (f"; the closest would need about {min(needs)} repetitions per row"
                     if needs and min(needs) <= stats.MAX_REPS_SEARCH else "")
            return Decision(UNDECIDED, f"undecided in all {len(lines)} comparisons{extra}")
        return Decision(w, f"{w} in all {len(lines)} comparison{'s' if len(lines) > 1 else ''}")
    counts = _counts(words)
    if CONTRADICTED not in words and UNDECIDED in words and len(set(words) - {UNDECIDED}) == 1:
        w = (set(words) - {UNDECIDED}).pop()
        return Decision(UNDECIDED, f"{counts} of {len(lines)} comparisons ({w} where decided)")
    return Decision(UNDECIDED, f"the comparisons disagree: {counts} of {len(lines)}")


def combine_comparisons(comps: list) -> Decision:
    """A design finding's verdict over its comparisons (design.py; each with .decision, .tie and
    .claim): a contradiction at the family's level (family_contradiction), combine_claims when it has both directional ones and equivalence sub-claims, else the common
    word, or undecided with the counts and the closest repetitions that would decide."""
    if not comps:
        return Decision(NO_DATA, "the run has no rows for this finding")
    if any(c.tie for c in comps) and not all(c.tie for c in comps):
        return combine_claims(comps)  # which checks the family's contradiction first
    fam = family_contradiction(comps)
    if fam is not None:
        return fam
    decs = [c.decision for c in comps]
    words = [d.word for d in decs]
    if len(set(words)) == 1 and words[0] != UNDECIDED:
        return Decision(words[0], f"{words[0]} in {len(decs)} of {len(decs)} comparisons")
    counts = _counts(words)
    needs = [d.reps_needed for d in decs if d.reps_needed and d.reps_needed <= stats.MAX_REPS_SEARCH]
    extra = f"; the closest would need about {min(needs)} repetitions per row" if needs else ""
    return Decision(UNDECIDED, f"{counts} of {len(decs)} comparisons{extra}",
                    reps_needed=min(needs) if needs else None)


