"""The reproduction scorecard: does each published effect reproduce on the Ruby rows (the original
stack) and on the C++ models (the stand-ins)?

Effects: every declared finding (findings.py judges it per stack) and every effect declared under
"scorecard" in the published table's data (e.g. nio4r's worker collapse across the columns). Each
effect gets, per stack, three cells, each yes / no / undecided (with why) / not measured, or n/a
where the published table gives nothing to check:
- DIRECTION. A finding: its verdict on that stack (supported, or equivalent for an equivalence
  claim: yes; contradicted, or equivalent for a directional claim: no; undecided: undecided; no
  rows: not measured). A scorecard effect: at every published column, the 95% interval of a/b
  excludes 1 on the claimed side (yes), one excludes it on the other side (no), else undecided.
- MAGNITUDE: the published ratio lies inside the measured 95% interval (yes) wherever a published
  value exists; outside at any (no). A finding is checked at its primary point on that stack (as
  findings.magnitude_check); a scorecard effect at every published column.
- TREND across the published columns (GET / at each column, as published). The rule: take the
  published ratio a/b at successive columns with both cells published; a step whose published
  change exceeds the declared tolerance (scorecard.trend_tolerance, a factor, e.g. 1.1) up or down
  is a claimed rise or fall, any smaller step a claimed flat step. The measured step is the ratio
  of the two columns' ratios with its 95% interval (ratio_of_ratios). A rise or fall is reproduced
  when the interval excludes 1 on the same side, contradicted when it excludes 1 on the other or
  lies inside the tolerance band (measured flat); a flat step is reproduced when the interval lies
  inside the tolerance band, contradicted when it lies wholly outside. TREND is yes when every step is reproduced, no when any is contradicted,
  undecided otherwise (each step is a 95% interval, uncorrected for the number of steps: a "yes"
  over three steps is the weaker claim, a "no" is named by its step).
MECHANISM LINE (counters_line): a scorecard effect may declare "counters" {row, base, driver,
driver_text, mechanism, figures}: the counter (per answered request, derived.counters_per_req,
median over a cell's ok repetitions) that the published mechanism predicts grows where the
published ratio falls. The line gives the Ruby row's figures at each published column beside the
base row's driver, and says whether the mechanism occurs (the driver above the base's by more than
the trend tolerance at some column) and, at each published step that falls beyond the tolerance,
whether the driver rises beyond it; it names the steps where it does not. With "pipe" {written,
read, capacity_bytes, if_full} it also says whether the wake-up pipe filled within the measured
windows (bytes written minus read per request, times the window's requests, against the capacity).
Generated from the run's counters only; empty when the run's Ruby rows recorded none.
Intervals and the rule for whether req/s may decide at a point are findings.py's (req/s only at
server-bound points). Several comparisons of one effect combine as findings do: yes when all are
yes, no when any is no, not measured when none was measured, else undecided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import findings, stats
from .findings import CONTRADICTED, EQUIVALENT, NO_DATA, SUPPORTED, UNDECIDED, rows_for, side_rows, stack_of
from .labelindex import LabelIndex
from .runload import Load, Row, Run, column_label
from ..format.loadpoint import dig
from ..format import defects
from ..format.metrics import COUNTERS_PREFIX
from ..format.published import STACK_CPP, STACK_RUBY, Published

YES, NO, UNSURE, UNMEASURED, NOT_APPLICABLE = "yes", "no", "undecided", "not measured", "n/a"
ASPECTS = ("direction", "magnitude", "trend")
STACK_ORDER = (STACK_RUBY, STACK_CPP)
DEFAULT_TREND_TOLERANCE = 1.1


@dataclass
class Score:
    """One cell of the scorecard: a word and why (empty for a plain yes)."""
    word: str
    why: str = ""

    def text(self) -> str:
        return f"{self.word} ({self.why})" if self.why else self.word


@dataclass
class ColumnEffect:
    """a/b at one published column on the published path: published ratio, measured interval,
    and whether req/s may decide there."""
    column: str
    published: float | None
    ci: stats.RatioCI | None
    can: bool = False
    why: str = "not measured"


@dataclass
class EffectScore:
    eid: str
    title: str
    not_modelled: str
    scores: dict = field(default_factory=dict)  # stack -> {aspect: Score}
    verdicts: dict = field(default_factory=dict)  # stack -> verdict text (findings) or ""
    counters_line: str = ""  # the mechanism line from the Ruby rows' counters (module docstring)
    counters_short: str = ""  # what that line says, without its figures (mechanism_lines)
    defects: dict = field(default_factory=dict)  # stack -> [Defect] carried by rows its comparisons hold


REPRODUCED, NOT_REPRODUCED, NOT_SHOWN = "reproduced", "not reproduced", "undecided whether reproduced"


def reproduced(scores: dict) -> str:
    """An effect reproduces when its DIRECTION and its TREND across the published columns are both
    yes; it does not when either is no; else the run could not tell (MAGNITUDE is shown beside it,
    not required: the stacks differ in scale, not only in shape)."""
    words = (scores["direction"].word, scores["trend"].word)
    if NO in words:
        return NOT_REPRODUCED
    if all(w in (YES, NOT_APPLICABLE) for w in words) and YES in words:
        return REPRODUCED
    return NOT_SHOWN


def ratio_of_ratios(num: stats.RatioCI | None, den: stats.RatioCI | None) -> stats.RatioCI | None:
    """num/den of two independently estimated ratios, on the log scale: the standard errors add in
    quadrature and the degrees of freedom are Welch-Satterthwaite's; None without both intervals."""
    if num is None or den is None or num.log_se is None or den.log_se is None or not num.df or not den.df:
        return None
    se = math.sqrt(num.log_se ** 2 + den.log_se ** 2)
    quart = num.log_se ** 4 / num.df + den.log_se ** 4 / den.df
    df = (se ** 4) / quart if quart > 0 else num.df + den.df
    ratio = num.ratio / den.ratio
    half = stats.t975(df) * se
    sd = math.sqrt((num.log_sd or 0.0) ** 2 + (den.log_sd or 0.0) ** 2)
    return stats.RatioCI(ratio, ratio * math.exp(-half), ratio * math.exp(half), min(num.n_num, den.n_num),
                         min(num.n_den, den.n_den), "ratio-of-ratios", se, df, sd)


def published_loads(run: Run, pub: Published, path: str) -> list[Load | None]:
    """The run's pipeline-1 load for each published column on `path`, or None."""
    by_col = {}
    for ld in run.loads.values():
        if not ld.lid.idle and ld.lid.pipeline == 1 and ld.lid.path == path:
            by_col.setdefault(column_label(ld), ld)
    return [by_col.get(c) for c in pub.columns]


def published_path(pub: Published) -> str:
    cols = pub.doc.get("columns") or []
    return (cols[0].get("path") if cols and isinstance(cols[0], dict) else None) or "/"


def column_effects(run: Run, pub: Published, a: Row, b: Row, comp: dict | None) -> list[ColumnEffect]:
    """a/b of req/s at every published column, with the published ratio of the comparison's
    labels there: None where a published cell is empty, the sides are not published labels, or
    the sides differ only in a lock the table never published (gvl_a / gvl_b)."""
    out = []
    published = bool(comp) and "gvl_a" not in comp and "gvl_b" not in comp and comp.get("a") != comp.get("b")
    for col, ld in zip(pub.columns, published_loads(run, pub, published_path(pub))):
        pr = findings.published_ratio(pub, {k: v for k, v in comp.items() if k != "published_ratio"},
                                      col) if published else None
        ca = run.cell(a.key, ld.lid) if ld is not None else None
        cb = run.cell(b.key, ld.lid) if ld is not None else None
        if ca is None or cb is None:
            out.append(ColumnEffect(col, pr, None, False, f"{col} not measured for both rows"))
            continue
        ok, why = findings.can_decide(ca, cb, "req_per_s")
        out.append(ColumnEffect(col, pr, findings.effect(ca, cb, "req_per_s", decide_only=ok), ok, f"{col}: {why}" if why else ""))
    return out


def combine(scores: list[Score]) -> Score:
    """Several comparisons' (or steps', or columns') cells as one: n/a and not-measured cells are
    left out while any other remains; then any no is no, all yes is yes, else undecided."""
    if not scores:
        return Score(UNMEASURED, "no comparison")
    judged = [s for s in scores if s.word not in (UNMEASURED, NOT_APPLICABLE)]
    if not judged:
        return next((s for s in scores if s.word == UNMEASURED), scores[0])
    for s in judged:
        if s.word == NO:
            return s
    if all(s.word == YES for s in judged):
        return Score(YES, "" if len(judged) == len(scores) else f"in the {len(judged)} of {len(scores)} measured")
    return next(s for s in judged if s.word == UNSURE)


def direction_from_verdict(word: str, reason: str, claim: str) -> Score:
    """A finding's verdict on one stack as the DIRECTION cell (module docstring)."""
    if word == SUPPORTED or (word == EQUIVALENT and claim == "equivalent"):
        return Score(YES)
    if word in (CONTRADICTED, EQUIVALENT):
        return Score(NO, f"{word}: {reason}")
    if word == UNDECIDED:
        return Score(UNSURE, reason)
    return Score(UNMEASURED, reason)


def _unjudged(e: ColumnEffect) -> Score | None:
    """Why a column's effect cannot be judged (not measured, or no usable interval), else None."""
    if e.ci is None:
        return Score(UNMEASURED, e.why)
    if not e.can or not e.ci.enough_reps:
        return Score(UNSURE, e.why or f"{e.column}: too few repetitions for an interval")
    return None


def direction_by_column(effects: list[ColumnEffect], direction: str) -> Score:
    """DIRECTION of a scorecard effect: a/b on the claimed side of 1 at every published column."""
    scores = []
    for e in effects:
        if _unjudged(e) is not None:
            scores.append(_unjudged(e))
        elif (e.ci.lo > 1.0 and direction == "greater") or (e.ci.hi < 1.0 and direction == "less"):
            scores.append(Score(YES))
        elif e.ci.lo > 1.0 or e.ci.hi < 1.0:
            scores.append(Score(NO, f"{e.column}: {findings.fmt_ci(e.ci)} on the other side of 1"))
        else:
            scores.append(Score(UNSURE, f"{e.column}: {findings.fmt_ci(e.ci)} includes 1"))
    return combine(scores)


def magnitude(effects: list[ColumnEffect]) -> Score:
    """MAGNITUDE: the published ratio inside the measured interval at every column that has one."""
    pairs = [e for e in effects if e.published is not None]
    if not pairs:
        return Score(NOT_APPLICABLE, "no published magnitude")
    scores = []
    for e in pairs:
        if _unjudged(e) is not None:
            scores.append(_unjudged(e))
        elif e.ci.lo <= e.published <= e.ci.hi:
            scores.append(Score(YES))
        else:
            scores.append(Score(NO, f"{e.column}: published {e.published:.2f} outside {findings.fmt_ci(e.ci)}"))
    return combine(scores)


def _step_score(e1: ColumnEffect, e2: ColumnEffect, tol: float) -> Score:
    step_pub = e2.published / e1.published
    claim = 1 if step_pub > tol else (-1 if step_pub < 1.0 / tol else 0)
    name = f"{e1.column} → {e2.column} (published ×{step_pub:.2f})"
    if e1.ci is None or e2.ci is None:
        return Score(UNMEASURED, f"{name}: {e1.why if e1.ci is None else e2.why}")
    if not (e1.can and e2.can):
        return Score(UNSURE, f"{name}: {e1.why if not e1.can else e2.why}")
    ci = ratio_of_ratios(e2.ci, e1.ci)
    if ci is None:
        return Score(UNSURE, f"{name}: too few repetitions for an interval")
    got = f"{name}, measured ×{findings.fmt_ci(ci)}"
    if claim == 0:
        if 1.0 / tol < ci.lo and ci.hi < tol:
            return Score(YES)
        if ci.lo > tol or ci.hi < 1.0 / tol:
            return Score(NO, f"{got}: not flat")
        return Score(UNSURE, f"{got}: too wide for the ±{(tol - 1) * 100:.0f}% band")
    if (claim > 0 and ci.lo > 1.0) or (claim < 0 and ci.hi < 1.0):
        return Score(YES)
    if ci.lo > 1.0 or ci.hi < 1.0:
        return Score(NO, f"{got}: the other way")
    if 1.0 / tol < ci.lo and ci.hi < tol:
        return Score(NO, f"{got}: flat within ±{(tol - 1) * 100:.0f}%")
    return Score(UNSURE, f"{got}: includes 1")


def trend(effects: list[ColumnEffect], tol: float = DEFAULT_TREND_TOLERANCE) -> Score:
    """TREND across successive published columns (the rule in the module docstring)."""
    pub = [e for e in effects if e.published is not None]
    if len(pub) < 2:
        return Score(NOT_APPLICABLE, "fewer than two published columns")
    steps = [_step_score(e1, e2, tol) for e1, e2 in zip(pub, pub[1:])]
    out = combine(steps)
    if out.word in (NO, UNSURE) and len(steps) > 1:  # the first open step, and how the others went
        out = Score(out.word, f"{sum(s.word == YES for s in steps)} of {len(steps)} steps reproduced; {out.why}")
    return out


def _finding_scores(run: Run, pub: Published, f: findings.Finding, tol: float) -> dict:
    if not f.lines:
        why = f.overall.reason if f.overall else "no rows"
        return {a: Score(UNMEASURED, why) for a in ASPECTS}
    mags, trends = [], []
    for ln in f.lines:
        rps = next((r for r in ln.results if r.spec.metric == "req_per_s"), None)
        prim = rps.primary if rps is not None else None
        mags.append(magnitude([ColumnEffect(f.decl.published_column or "primary point", ln.published,
                                            prim.ci if prim else None, bool(prim and prim.can),
                                            (prim.why_not if prim else "") or "the primary point was not measured")]))
        trends.append(trend(column_effects(run, pub, ln.a, ln.b, ln.comp), tol))
    word = f.overall.word if f.overall else NO_DATA
    reason = f.overall.reason
    if word == UNDECIDED and len(f.lines) == 1:
        reason = f.lines[0].decision.reason  # one comparison: its own reason says more than the count
    return {"direction": direction_from_verdict(word, reason, f.decl.metrics[0].direction),
            "magnitude": combine(mags), "trend": combine(trends)}


def effect_lines(run: Run, idx: LabelIndex, eff: dict, stack: str) -> list[tuple[Row, Row, dict]]:
    out = []
    for comp in eff.get("comparisons") or []:
        gvl = bool(comp.get("gvl"))
        for a in side_rows(idx, comp, "a", gvl, stack):
            for b in side_rows(idx, comp, "b", gvl, stack):
                if a.key != b.key and (a.key, b.key) not in {(x.key, y.key) for x, y, _c in out}:
                    out.append((a, b, comp))
    return out


def _declared_effect_scores(run: Run, pub: Published, eff: dict, stack: str, tol: float, lines: list) -> dict:
    """The effect's three cells on STACK from its comparisons there (effect_lines)."""
    if not lines:
        why = findings.NO_RUBY_ROWS if stack == STACK_RUBY and not any(
            stack_of(r) == STACK_RUBY for r in run.rows.values()) else "the run has no rows for this effect"
        return {a: Score(UNMEASURED, why) for a in ASPECTS}
    per = [column_effects(run, pub, a, b, comp) for a, b, comp in lines]
    return {"direction": combine([direction_by_column(e, eff.get("direction", "less")) for e in per]),
            "magnitude": combine([magnitude(e) for e in per]), "trend": combine([trend(e, tol) for e in per])}


def defects_of(run: Run) -> list:
    """The declared defects (format/defects.py) the run may carry; none for a synthetic run (test
    data: it measured nothing, so nothing in it can carry a defect)."""
    return [] if run.synthetic else defects.for_commit(run.commit)


def carried(run_defects: list, rows) -> list:
    """The defects (format/defects.py) of the run that any of ROWS carries, by the row's model."""
    models = {r.model for r in rows}
    return [d for d in run_defects if models & set(d.models)]


def compared_rows(f) -> list[Row]:
    """Both rows of every comparison a judged finding (findings.Finding) holds."""
    return [r for ln in f.lines for r in (ln.a, ln.b)]


def scorecard(run: Run, pub: Published, analyses: dict | None = None,
              run_defects: list | None = None) -> list[EffectScore]:
    """Every effect of a published table scored on the Ruby rows and on the C++ rows.
    analyses: {stack: findings.Analysis} when the caller has judged them already; run_defects:
    the defects the run may carry (default: defects_of(run))."""
    analyses = analyses or {s: findings.Analysis(run, pub, stack=s) for s in STACK_ORDER}
    run_defects = defects_of(run) if run_defects is None else run_defects
    decl = pub.doc.get("scorecard") or {}
    tol = float(decl.get("trend_tolerance") or DEFAULT_TREND_TOLERANCE)
    out = []
    for k, f0 in enumerate(analyses[STACK_CPP].findings):
        es = EffectScore(f"{f0.fid}", f0.title, f0.decl.not_modelled)
        for s in STACK_ORDER:
            f = analyses[s].findings[k]
            es.scores[s] = _finding_scores(run, pub, f, tol)
            es.defects[s] = carried(run_defects, compared_rows(f))
            es.verdicts[s] = f.overall.word if f.overall else NO_DATA
        out.append(es)
    idx = LabelIndex(run)
    for eff in decl.get("effects") or []:
        full, short = mechanism_lines(run, pub, eff, tol)
        es = EffectScore(str(eff["id"]), eff["title"], str(eff.get("not_modelled") or ""),
                         counters_line=full, counters_short=short)
        for s in STACK_ORDER:
            lines = effect_lines(run, idx, eff, s)
            es.scores[s] = _declared_effect_scores(run, pub, eff, s, tol, lines)
            es.verdicts[s] = ""
            es.defects[s] = carried(run_defects, [r for a, b, _comp in lines for r in (a, b)])
        out.append(es)
    return out


def not_measured_everywhere(scores: list[EffectScore], stack: str) -> bool:
    return all(es.scores[stack][a].word == UNMEASURED for es in scores for a in ASPECTS)



COUNTERS_PATH = COUNTERS_PREFIX
CTX_PATH = "derived.ctx_switches_per_req"


def _figure(run: Run, row: Row | None, ld: Load | None, path: str) -> float | None:
    """The median of `path` over the ok repetitions of a row at a load, or None. A counter path
    "derived.counters_per_req.A-B" is counter A minus counter B, per repetition."""
    if row is None or ld is None:
        return None
    cell = run.cell(row.key, ld.lid)
    if cell is None:
        return None
    if path.startswith(COUNTERS_PATH + ".") and "-" in path:
        a, b = path[len(COUNTERS_PATH) + 1:].split("-", 1)
        diffs = [x - y for x, y in ((dig(p, f"{COUNTERS_PATH}.{a}"), dig(p, f"{COUNTERS_PATH}.{b}"))
                                    for p in cell.ok_points) if isinstance(x, (int, float)) and isinstance(y, (int, float))]
        return stats.median(diffs) if diffs else None
    return cell.median(path)


def _pipe_sentences(run: Run, row: Row | None, loads: list, columns: list[str], pipe: dict) -> tuple[str, str]:
    """Whether the wake-up pipe filled within the measured windows: bytes written minus bytes read
    per request times the window's requests (a fresh server per repetition starts with it empty).
    The full sentence and the short clause (mechanism_lines); both "" without the counters."""
    cap = int(pipe.get("capacity_bytes") or 65536)
    left, windows = [], []
    for ld in loads:
        per_req = _figure(run, row, ld, f"{COUNTERS_PATH}.{pipe['written']}-{pipe['read']}")
        reqs = _figure(run, row, ld, "wrk.requests")
        left.append(per_req * reqs if per_req is not None and reqs is not None else None)
        windows.append(_figure(run, row, ld, "load.duration_s"))
    if all(v is None for v in left):
        return "", ""
    full = [c for c, v in zip(columns, left) if v is not None and v >= cap]
    most = max(v for v in left if v is not None)
    if full:
        return (f" The wake-up pipe ({cap // 1024} KiB) filled within the window at {', '.join(full)}.",
                f"the wake-up pipe ({cap // 1024} KiB) filled within the window at {', '.join(full)}")
    secs = sorted({w for w in windows if w is not None})
    span = f"{secs[0]:g} s windows" if len(secs) == 1 else "this run's windows"
    short_if_full = pipe.get("if_full_short") or "what follows a full pipe"
    return ((f" The wake-up pipe ({cap // 1024} KiB) did not fill within any measured window (at most"
             f" {most:,.0f} bytes, {100 * most / cap:.0f}% of it, left unread):"
             f" {pipe.get('if_full') or 'what follows a full pipe'} is not in this run's windows."),
            (f"the wake-up pipe ({cap // 1024} KiB) never filled ({100 * most / cap:.0f}% full at most),"
             f" so {short_if_full} did not occur in {span}"))


def _fmt_values(vals: list[float | None]) -> str:
    def one(v):
        if v is None:
            return "—"
        return f"{v:.0f}" if abs(v) >= 10 else (f"{v:.2f}" if abs(v) < 1 else f"{v:.1f}")
    return ", ".join(one(v) for v in vals)


def counters_line(run: Run, pub: Published, eff: dict, tol: float = DEFAULT_TREND_TOLERANCE) -> str:
    """One line from the Ruby rows' mechanism counters: does the declared mechanism of a scorecard
    effect occur, and does it grow where the published ratio falls? (The rule in the module
    docstring.) "" without a "counters" declaration or without counters in the run's Ruby rows."""
    return mechanism_lines(run, pub, eff, tol)[0]


def mechanism_lines(run: Run, pub: Published, eff: dict, tol: float = DEFAULT_TREND_TOLERANCE) -> tuple[str, str]:
    """counters_line's full line (the figures, then what they say) and its short form (what they
    say, in one clause per fact, without the figures: the summary's one line); ("", "") without a
    "counters" declaration or without counters in the run's Ruby rows."""
    decl = eff.get("counters")
    if not decl:
        return "", ""
    idx = LabelIndex(run)
    row = next(iter(rows_for(idx, decl["row"], False, STACK_RUBY)), None)
    base = next(iter(rows_for(idx, decl["base"], False, STACK_RUBY)), None)
    loads = published_loads(run, pub, eff.get("path") or published_path(pub))
    driver = decl["driver"]
    vals = [_figure(run, row, ld, f"{COUNTERS_PATH}.{driver}") for ld in loads]
    if all(v is None for v in vals):
        return "", ""
    base_vals = [_figure(run, base, ld, f"{COUNTERS_PATH}.{driver}") for ld in loads]
    parts = [f"{decl.get('driver_text') or driver} {_fmt_values(vals)}"]
    if any(v is not None for v in base_vals):
        parts[0] += f" ({decl['base']}: {_fmt_values(base_vals)})"
    figures = [(text, [_figure(run, row, ld, f"{COUNTERS_PATH}.{name}") for ld in loads])
               for name, text in decl.get("figures") or []]
    figures.append(("context switches", [_figure(run, row, ld, CTX_PATH) for ld in loads]))
    parts += [f"{text} {_fmt_values(v)}" for text, v in figures if any(x is not None for x in v)]
    head = (f"Ruby counters per answered request, {decl['row']} at {', '.join(pub.columns)}: "
            + "; ".join(parts) + ". ")
    mech = decl.get("mechanism") or driver
    mech = mech[:1].upper() + mech[1:]
    short_mech = decl.get("mechanism_short") or mech.split(" (")[0]
    ref = [b if b is not None else 1.0 for b in base_vals]
    occurs = [v is not None and v > r * tol for v, r in zip(vals, ref)]
    if not any(occurs):
        return (head + f"{mech} does not occur on this stack ({driver} within ×{tol:g} of the base at every column).",
                f"{short_mech} does not occur on this stack")
    pub_ratio = [findings.published_ratio(pub, {"a": decl["row"], "b": decl["base"]}, c) for c in pub.columns]
    missing, falls = [], 0
    for j in range(len(pub.columns) - 1):
        p1, p2, v1, v2 = pub_ratio[j], pub_ratio[j + 1], vals[j], vals[j + 1]
        if p1 is None or p2 is None or p2 / p1 >= 1.0 / tol:
            continue
        falls += 1
        if v1 is None or v2 is None:
            missing.append(f"{pub.columns[j]} → {pub.columns[j + 1]} (not measured)")
        elif v2 / v1 <= tol:
            missing.append(f"{pub.columns[j]} → {pub.columns[j + 1]} (×{v2 / v1:.2f} where the published ratio "
                           f"falls ×{p2 / p1:.2f})")
    where = "at every column" if all(occurs) else "at " + ", ".join(c for c, o in zip(pub.columns, occurs) if o)
    pipe, short_pipe = (_pipe_sentences(run, row, loads, pub.columns, decl["pipe"]) if decl.get("pipe")
                        else ("", ""))
    short_pipe = f"; {short_pipe}" if short_pipe else ""
    if not missing:
        return (head + f"{mech} occurs {where} and grows at every step where the published ratio falls." + pipe,
                f"{short_mech} occurs {where} and grows where the published ratio falls{short_pipe}")
    return (head + f"{mech} occurs {where} but does not grow at {len(missing)} of the {falls} steps where the "
            f"published ratio falls: " + "; ".join(missing) + "." + pipe,
            f"{short_mech} occurs {where} but does not grow at {len(missing)} of the {falls} steps where the"
            f" published ratio falls{short_pipe}")
