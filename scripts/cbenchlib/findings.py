"""The published findings, each stated and judged from a run's numbers.

Every judgement is computed from ratios of medians with 95% intervals (stats.ratio_ci):
"supported", "not supported" or "inconclusive (why)". Nothing here knows what the answer
should be; a finding with no matching rows, too few repetitions, or differences within noise
is inconclusive and says which.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import stats
from .published import Published
from .runload import Cell, Load, Row, Run, canonical_label, column_label
from .tables import verdict_mark

# "Does not fare much better": per-worker queues count as helping much only when they are
# faster than the shared queue by more than this factor (10%, well above the ~1-3% run-to-run
# noise of a pinned wrk run, well below the 25% the author quotes for single vs worker threads).
MUCH_BETTER = 1.10

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"

_WORKER = re.compile(r"^(?P<fam>\S+) (?P<n>\d+) worker thread(?P<sep>, separate queues?)?$")
_SINGLE = re.compile(r"^(?P<fam>\S+) single thread$")


@dataclass
class Comp:
    """One load point: claimed winner a against claimed loser b; ratio = a/b."""
    load: Load
    a: Cell
    b: Cell
    ci: stats.RatioCI | None
    mark: int = 0  # +1 holds, -1 reversed, 0 not significant / too few reps

    def marks(self) -> str:
        out = ""
        for c in (self.a, self.b):
            for v in c.not_server_bound():
                m = verdict_mark(v)
                if m not in out:
                    out += m
        return out


@dataclass
class Judgement:
    status: str
    reason: str
    kind: str = ""  # for inconclusive: "no-data", "too-few-reps", "noise", "mixed"
    n_for: int = 0
    n_against: int = 0
    n_ns: int = 0

    def text(self) -> str:
        return f"{self.status} ({self.reason})"


@dataclass
class Line:
    """A row of a finding's evidence table: one pair of run rows over the load points."""
    name: str
    comps: list
    judgement: Judgement


@dataclass
class Finding:
    fid: str
    title: str
    claim: str
    published_evidence: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    overall: dict = field(default_factory=dict)  # scope ("no global lock", "--gvl") -> Judgement
    notes: list = field(default_factory=list)
    threshold: float | None = None


def classify_direction(ci: stats.RatioCI | None, threshold: float | None = None) -> int:
    """+1 when the claim holds at this point, -1 when reversed, 0 when noise or too few reps.

    Without a threshold the claim is "a beats b" (interval above 1). With one, the claim is
    "a is not much better than b": holds when the interval is wholly below the threshold,
    reversed when wholly above it.
    """
    if ci is None or not ci.enough_reps:
        return 0
    if threshold is None:
        return ci.direction()
    if ci.below(threshold):
        return 1
    if ci.above(threshold):
        return -1
    return 0


def judge(comps: list[Comp]) -> Judgement:
    """Aggregate point marks: supported when points hold and none reverse (and holds are at least
    as many as not-significant points), not supported symmetrically, else inconclusive."""
    usable = [c for c in comps if c.ci is not None]
    if not usable:
        return Judgement(INCONCLUSIVE, "no load point where both rows were measured", "no-data")
    with_reps = [c for c in usable if c.ci.enough_reps]
    if not with_reps:
        n = min(min(c.ci.n_num, c.ci.n_den) for c in usable)
        return Judgement(INCONCLUSIVE, f"too few repetitions to separate from noise (as few as {n};"
                         f" need {stats.MIN_REPS_FOR_CI})", "too-few-reps", 0, 0, len(usable))
    n_for = sum(1 for c in usable if c.mark > 0)
    n_against = sum(1 for c in usable if c.mark < 0)
    n_ns = len(usable) - n_for - n_against
    total = len(usable)
    counts = (n_for, n_against, n_ns)
    if n_for and not n_against and n_for >= n_ns:
        return Judgement(SUPPORTED, f"holds at {n_for} of {total} load points, reversed at none", "", *counts)
    if n_against and not n_for and n_against >= n_ns:
        return Judgement(NOT_SUPPORTED, f"reversed at {n_against} of {total} load points, holds at none", "", *counts)
    if n_for and n_against:
        return Judgement(INCONCLUSIVE, f"mixed: holds at {n_for}, reversed at {n_against}, within noise at"
                         f" {n_ns} of {total} load points", "mixed", *counts)
    few = total - len(with_reps)
    extra = f"; {few} with too few repetitions" if few else ""
    return Judgement(INCONCLUSIVE, f"within noise at {n_ns} of {total} load points (holds at {n_for},"
                     f" reversed at {n_against}){extra}", "noise", *counts)


def combine(lines: list[Line]) -> Judgement:
    return judge([c for ln in lines for c in ln.comps])


class LabelIndex:
    """Run rows by (canonical published label, gvl), per path, for pipeline-1 loads.

    A --gvl row without a label inherits the label of the non-gvl row that is identical in
    every other field, so a scenario may label only the non-gvl rows.
    """

    def __init__(self, run: Run):
        self.run = run
        self.paths: dict[str, list[Load]] = {}
        for (path, pipeline, idle), loads in run.load_groups():
            if not idle and pipeline == 1:
                self.paths[path] = loads
        labelled = {(r.kind, r.model, r.threads, r.queues, r.backend, r.extra_args): r
                    for r in run.rows.values() if r.label and not r.gvl}
        self.by_label: dict[tuple[str, bool], list[Row]] = {}
        for r in run.rows.values():
            label = r.label
            if not label and r.gvl:
                twin = labelled.get((r.kind, r.model, r.threads, r.queues, r.backend, r.extra_args))
                label = twin.label if twin else None
            c = canonical_label(label)
            if c:
                self.by_label.setdefault((c, r.gvl), []).append(r)

    def shown(self, canonical: str) -> str:
        """The label as the run wrote it (first row with it), for display."""
        for g in (False, True):
            for r in self.by_label.get((canonical, g)) or []:
                if r.label:
                    return r.label
        return canonical

    def row(self, canonical: str, gvl: bool = False) -> Row | None:
        rows = self.by_label.get((canonical, gvl)) or []
        return rows[0] if rows else None

    def families(self) -> list[str]:
        fams = []
        for (c, _gvl) in self.by_label:
            m = _SINGLE.match(c) or _WORKER.match(c)
            if m and m.group("fam") not in fams:
                fams.append(m.group("fam"))
        return fams

    def worker_counts(self, fam: str, separate: bool = False) -> list[int]:
        ns = set()
        for (c, _gvl) in self.by_label:
            m = _WORKER.match(c)
            if m and m.group("fam") == fam and bool(m.group("sep")) == separate:
                ns.add(int(m.group("n")))
        return sorted(ns)


def worker_label(fam: str, n: int, separate: bool = False) -> str:
    return f"{fam} {n} worker thread" + (", separate queues" if separate else "")


def single_label(fam: str) -> str:
    return f"{fam} single thread"


def compare_rows(run: Run, a: Row, b: Row, loads: list[Load], threshold: float | None = None) -> list[Comp]:
    """Per load point where both rows have ok repetitions: a/b req/s with interval and mark."""
    comps = []
    for ld in loads:
        ca, cb = run.cell(a.key, ld.lid), run.cell(b.key, ld.lid)
        if ca is None or cb is None:
            continue
        va, vb = ca.rps(), cb.rps()
        ci = stats.ratio_ci(va, vb, seed_name=f"{a.key}|{b.key}|{ld.lid.path}|{ld.lid.key}") if va and vb else None
        comp = Comp(ld, ca, cb, ci)
        comp.mark = classify_direction(ci, threshold)
        comps.append(comp)
    return comps


def fmt_ci(ci: stats.RatioCI | None) -> str:
    if ci is None:
        return ""
    if not ci.enough_reps:
        return f"{ci.ratio:.2f} (n<{stats.MIN_REPS_FOR_CI})"
    return f"{ci.ratio:.2f} ({stats.fmt_bound(ci.lo)}–{stats.fmt_bound(ci.hi)})"


MARK_SYMBOL = {1: "✓", -1: "✗", 0: "~"}


def published_ratios(pub: Published | None, a_label: str, b_label: str) -> str | None:
    """"1.21, 1.08, —, —" for published a/b per column, or None when either row is absent."""
    if pub is None:
        return None
    ra, rb = pub.row(a_label), pub.row(b_label)
    if ra is None or rb is None:
        return None
    vals = []
    for ca, cb in zip(ra.cells, rb.cells):
        vals.append(f"{ca.req_per_s / cb.req_per_s:.2f}" if ca and cb else "—")
    if all(v == "—" for v in vals):
        return "no published numbers (empty cells)"
    return ", ".join(vals) + f" (at {', '.join(pub.columns)})"


class Analysis:
    """All findings for one run (and optionally the published table for context)."""

    def __init__(self, run: Run, pub: Published | None = None):
        self.run = run
        self.pub = pub
        self.idx = LabelIndex(run)
        self.main_path = "/" if "/" in self.idx.paths else (next(iter(self.idx.paths), None))
        self.findings: list[Finding] = []
        self.gvl_paths: list[tuple[str, list[Line], dict]] = []
        self.gvl_context: dict[str, list[Line]] = {}
        self.explanation: list[str] = []
        self.explanation_verdicts: dict[str, Judgement] = {}
        if self.main_path is not None and self.idx.families():
            self._analyse()

    @property
    def has_data(self) -> bool:
        return bool(self.findings)

    def _loads(self, path: str | None = None) -> list[Load]:
        return self.idx.paths.get(path or self.main_path, [])

    def _pair(self, a_label: str, b_label: str, a_gvl: bool, b_gvl: bool, name: str,
              path: str | None = None, threshold: float | None = None) -> Line | None:
        a, b = self.idx.row(a_label, a_gvl), self.idx.row(b_label, b_gvl)
        if a is None or b is None:
            return None
        comps = compare_rows(self.run, a, b, self._loads(path), threshold)
        if not comps:
            return None
        return Line(name, comps, judge(comps))

    def _scoped(self, finding: Finding, lines_by_scope: dict[str, list[Line]]) -> None:
        for scope, lines in lines_by_scope.items():
            lines = [ln for ln in lines if ln]
            finding.lines += [(scope, ln) for ln in lines]
            finding.overall[scope] = combine(lines) if lines else Judgement(
                INCONCLUSIVE, "the run has no rows for this comparison", "no-data")

    def _analyse(self) -> None:
        fams = self.idx.families()
        # 1. single thread beats one worker thread
        f1 = Finding("1", "A single thread beats one worker thread",
                     "The single-thread design serves more requests per second than the same loop handing"
                     " every ready connection to one worker thread.")
        scopes = {"no global lock": [], "--gvl": []}
        for fam in fams:
            for gvl, scope in ((False, "no global lock"), (True, "--gvl")):
                ln = self._pair(single_label(fam), worker_label(fam, 1), self._single_gvl(fam, gvl), gvl,
                                f"{fam}: single thread / 1 worker" + (" --gvl" if gvl else ""))
                scopes[scope].append(ln)
            pe = published_ratios(self.pub, single_label(fam), worker_label(fam, 1))
            if pe:
                f1.published_evidence.append(f"{fam} single thread / 1 worker thread: {pe}")
        self._scoped(f1, scopes)
        self.findings.append(f1)

        # 2. more worker threads make it slower
        f2 = Finding("2", "More worker threads make it slower",
                     "With the same design, fewer worker threads serve more requests per second than more.")
        scopes = {"no global lock": [], "--gvl": []}
        for fam in fams:
            ns = self.idx.worker_counts(fam)
            pairs = [(x, y) for i, x in enumerate(ns) for y in ns[i + 1:]]
            for x, y in pairs:
                for gvl, scope in ((False, "no global lock"), (True, "--gvl")):
                    scopes[scope].append(self._pair(worker_label(fam, x), worker_label(fam, y), gvl, gvl,
                                                    f"{fam}: {x} / {y} workers" + (" --gvl" if gvl else "")))
                pe = published_ratios(self.pub, worker_label(fam, x), worker_label(fam, y))
                if pe:
                    f2.published_evidence.append(f"{fam} {x} / {y} worker threads: {pe}")
        self._scoped(f2, scopes)
        self.findings.append(f2)

        # 3. per-worker queues do not help much
        f3 = Finding("3", "Per-worker queues do not help much",
                     f"Separate per-worker queues are not more than {MUCH_BETTER - 1:.0%} faster than the"
                     " one shared queue with the same number of workers.", threshold=MUCH_BETTER)
        scopes = {"no global lock": [], "--gvl": []}
        for fam in fams:
            for n in self.idx.worker_counts(fam, separate=True):
                for gvl, scope in ((False, "no global lock"), (True, "--gvl")):
                    scopes[scope].append(self._pair(worker_label(fam, n, True), worker_label(fam, n), gvl, gvl,
                                                    f"{fam}: {n} workers, separate / shared queue"
                                                    + (" --gvl" if gvl else ""), threshold=MUCH_BETTER))
                pe = published_ratios(self.pub, worker_label(fam, n, True), worker_label(fam, n))
                if pe:
                    f3.published_evidence.append(f"{fam} {n} worker threads, separate / shared queues: {pe}")
        f3.notes.append(f"✓ here means the interval of separate/shared lies wholly below {MUCH_BETTER:.2f};"
                        f" ✗ wholly above {MUCH_BETTER:.2f} (they help by more than {MUCH_BETTER - 1:.0%}).")
        self._scoped(f3, scopes)
        self.findings.append(f3)

        # 4. the libev pull loop beats the selector-style loop
        f4 = Finding("4", "The libev pull loop beats the selector-style loop",
                     "Ever's rows serve more requests per second than nio4r's equivalent rows.")
        lines = []
        if "ever" in fams and "nio4r" in fams:
            suffixes = ["single thread"] + [f"{n} worker thread" for n in self.idx.worker_counts("ever")
                                             if n in self.idx.worker_counts("nio4r")]
            for suf in suffixes:
                lines.append(self._pair(f"ever {suf}", f"nio4r {suf}", False, False, f"ever / nio4r: {suf}"))
                pe = published_ratios(self.pub, f"ever {suf}", f"nio4r {suf}")
                if pe:
                    f4.published_evidence.append(f"ever / nio4r {suf}: {pe}")
            nio_models = sorted({r.model for r in self.idx.by_label.get((single_label("nio4r"), False)) or []
                                 if r.model})
            ever_models = sorted({r.model for r in self.idx.by_label.get((single_label("ever"), False)) or []
                                  if r.model})
            if nio_models and ever_models:
                f4.notes.append(
                    "This run's nio4r rows are the selector-style analogue of nio4r (single-thread model "
                    + ", ".join(f"`{m}`" for m in nio_models) + ": the "
                    + ", ".join(f"`{m}`" for m in nio_models) + " row is the selector-style/nio4r analogue);"
                    " its ever rows are the libev pull loop (single-thread model "
                    + ", ".join(f"`{m}`" for m in ever_models) + ").")
        self._scoped(f4, {"no global lock": lines})
        self.findings.append(f4)

        self._analyse_gvl()
        self._explain()

    def _analyse_gvl(self) -> None:
        for path in self.idx.paths:
            lines, slowdown = [], {}
            for fam in self.idx.families():
                lab = single_label(fam)
                ln = self._pair(lab, lab, False, True, f"{self.idx.shown(lab)}: no lock / --gvl (uncontended;"
                                " not counted in the judgement)", path=path)
                if ln:
                    self.gvl_context.setdefault(path, []).append(ln)
                for sep in (False, True):
                    for n in self.idx.worker_counts(fam, sep):
                        lab = worker_label(fam, n, sep)
                        ln = self._pair(lab, lab, False, True, f"{self.idx.shown(lab)}: no lock / --gvl",
                                        path=path)
                        if ln:
                            lines.append(ln)
                        for gvl in (False, True):
                            g = self._fraction_of_single(fam, lab, gvl, path)
                            if g is not None:
                                slowdown.setdefault(self.idx.shown(lab), {})[gvl] = g
            if lines:
                self.gvl_paths.append((path, lines, slowdown))

    def _finding(self, fid: str) -> Finding:
        return next(f for f in self.findings if f.fid == fid)

    def _explain(self) -> None:
        """Plain statements on the published explanation (GVL + queue contention), from judgements."""
        f1, f2 = self._finding("1"), self._finding("2")
        main = self.main_path
        j1, j2 = f1.overall["no global lock"], f2.overall["no global lock"]
        out, verdicts = [], self.explanation_verdicts

        # GVL part, without any lock: is there a worker-thread slowdown at all?
        slow = SUPPORTED in (j1.status, j2.status)
        no_slow = j1.status == NOT_SUPPORTED and j2.status != SUPPORTED
        if slow:
            out.append(f"Without a global lock, on GET {main}, the worker-thread slowdown is there"
                       f" (finding 1: {j1.text()}; finding 2: {j2.text()}). C++ has no GVL, so a GVL is not"
                       " needed to produce it.")
            verdicts["GVL part, without a global lock"] = Judgement(
                NOT_SUPPORTED, "the slowdown appears without any GVL")
        elif no_slow:
            out.append(f"Without a global lock, on GET {main}, worker threads are not slower than a single"
                       f" thread (finding 1: {j1.text()}; finding 2: {j2.text()}), which is what the GVL"
                       " explanation predicts for a runtime without a GVL.")
            verdicts["GVL part, without a global lock"] = Judgement(SUPPORTED, "no slowdown without the lock")
        else:
            out.append(f"Without a global lock, on GET {main}, this run cannot say whether worker threads are"
                       f" slower (finding 1: {j1.text()}; finding 2: {j2.text()}).")
            verdicts["GVL part, without a global lock"] = Judgement(
                INCONCLUSIVE, "the slowdown itself is not established", "noise")

        # Queue-contention part: do per-worker queues (no shared queue to contend for) recover the gap?
        q_lines, recovered = [], []
        for fam in self.idx.families():
            for n in self.idx.worker_counts(fam, separate=True):
                sep, shared = worker_label(fam, n, True), worker_label(fam, n)
                q_lines.append(self._pair(sep, shared, False, False, f"{fam} {n}: separate / shared"))
                fr_sep = self._fraction_of_single(fam, sep, False)
                fr_shared = self._fraction_of_single(fam, shared, False)
                if fr_sep is not None and fr_shared is not None and fr_shared < 1.0:
                    recovered.append((fr_sep - fr_shared) / (1.0 - fr_shared))
        q_lines = [q for q in q_lines if q]
        jq = combine(q_lines) if q_lines else Judgement(INCONCLUSIVE, "the run has no per-worker-queue rows", "no-data")
        rec = sum(recovered) / len(recovered) if recovered else None
        rec_text = (f"per-worker queues recover {rec:.0%} of the gap between shared-queue workers and a single"
                    " thread (mean over worker counts)") if rec is not None else "gap recovered: not computable"
        if jq.status == SUPPORTED and rec is not None and rec >= 0.5:
            out.append(f"Per-worker queues are faster than the shared queue ({jq.reason}); {rec_text}: contention"
                       " for the shared job queue explains most of the slowdown.")
            verdicts["queue-contention part"] = Judgement(SUPPORTED, rec_text)
        elif jq.status == SUPPORTED and rec is not None:
            out.append(f"Per-worker queues are faster than the shared queue ({jq.reason}), but {rec_text}:"
                       " contention for the shared queue is a small part; most of the cost is the hand-off of"
                       " every ready connection to another thread and back (see system calls and context"
                       " switches per request).")
            verdicts["queue-contention part"] = Judgement(NOT_SUPPORTED, f"only a small part: {rec_text}")
        elif jq.status == NOT_SUPPORTED or (jq.kind == "noise" and jq.n_ns):
            out.append(f"Per-worker queues do not make the workers faster ({jq.text()}), so contention for"
                       " the one shared queue does not explain the slowdown; what remains is the hand-off"
                       " itself (see system calls and context switches per request).")
            verdicts["queue-contention part"] = Judgement(NOT_SUPPORTED, "per-worker queues make no"
                                                          " significant difference")
        else:
            out.append(f"Whether queue contention contributes cannot be told from this run ({jq.text()}).")
            verdicts["queue-contention part"] = Judgement(INCONCLUSIVE, jq.reason, jq.kind)

        gvl_v, q_v = verdicts["GVL part, without a global lock"].status, verdicts["queue-contention part"].status
        if gvl_v == NOT_SUPPORTED and q_v == NOT_SUPPORTED:
            plain = "does not hold: the slowdown is there without a GVL and without a shared queue to contend for"
        elif gvl_v == NOT_SUPPORTED and q_v == SUPPORTED:
            plain = "holds only in part: queue contention explains most of it, the GVL is not needed"
        elif gvl_v == SUPPORTED:
            plain = "is consistent with this run: without a lock there is no slowdown to explain"
        else:
            plain = "cannot be judged from this run"
        out.append(f"**In plain words, without a global lock the published explanation {plain}.**")

        # With the emulated lock: does it cost, per path, and does the slowdown grow?
        for path, lines, slowdown in self.gvl_paths:
            jg = combine(lines)
            grow = []
            for lab, by in slowdown.items():
                if False in by and True in by:
                    grow.append(f"{lab}: {by[False]:.2f} without, {by[True]:.2f} with")
            detail = ("; ".join(grow)) if grow else "no single-thread row to compare with"
            detail = f"worker req/s as a fraction of single thread: {detail}"
            if jg.status == SUPPORTED:
                out.append(f"With the emulated global lock on GET {path}, the worker rows are slower than"
                           f" without it ({jg.reason}; {detail}). **With a global lock, the GVL part of the"
                           f" explanation holds on {path}.**")
                verdicts[f"GVL part, with --gvl, on {path}"] = Judgement(SUPPORTED, jg.reason)
            elif jg.status == NOT_SUPPORTED or (jg.kind == "noise" and jg.n_ns):
                out.append(f"With the emulated global lock on GET {path}, the worker rows are not slower than"
                           f" without it ({jg.text()}; {detail}). **With a global lock, the GVL part of the"
                           f" explanation does not hold on {path}**: the work under the lock is too small"
                           " to matter there.")
                verdicts[f"GVL part, with --gvl, on {path}"] = Judgement(NOT_SUPPORTED, jg.reason)
            else:
                out.append(f"With the emulated global lock on GET {path}, this run cannot tell whether the lock"
                           f" costs anything ({jg.text()}).")
                verdicts[f"GVL part, with --gvl, on {path}"] = Judgement(INCONCLUSIVE, jg.reason, jg.kind)
        self.explanation = out

    def _single_gvl(self, fam: str, gvl: bool) -> bool:
        """The single-thread row to set a (--gvl) row against: its --gvl twin when the run has one
        (Ruby's single thread runs under its GVL too, uncontended), else the row without a lock."""
        return gvl and self.idx.row(single_label(fam), True) is not None

    def _fraction_of_single(self, fam: str, label: str, gvl: bool, path: str | None = None) -> float | None:
        """Geometric mean over load points of row req/s ÷ the family's single-thread req/s."""
        ln = self._pair(label, single_label(fam), gvl, self._single_gvl(fam, gvl), "", path=path)
        if ln is None:
            return None
        return stats.geometric_mean([c.ci.ratio for c in ln.comps if c.ci])


def render_findings(an: Analysis, heading_level: int = 2) -> str:
    h = "#" * heading_level
    out: list[str] = []
    if not an.has_data:
        out += [f"{h} Published findings", "",
                "No rows of this run carry labels of the published table (ever/nio4r single thread,"
                " N worker threads), so the published findings cannot be judged from it.", ""]
        return "\n".join(out)
    run = an.run
    loads = an._loads()
    out += [f"{h} Published findings, judged from run `{run.run_id}`", "",
            f"On GET {an.main_path} (the published table's path). Each cell: ratio of medians (claimed winner /"
            f" claimed loser, req/s) with its {stats.interval_method_text()}; ✓ the claim holds"
            f" at that load point (interval excludes 1 in the claimed direction), ✗ reversed, ~ not significant"
            f" or fewer than {stats.MIN_REPS_FOR_CI} repetitions. † ‡ § mark points that were not server-bound"
            " (client-bound, error-bound, unclear). A judgement is *supported* when the claim holds at some"
            " load points, is reversed at none and holds at least as often as it is within noise; *not"
            " supported* symmetrically; otherwise *inconclusive*.", ""]
    for f in an.findings:
        out += [f"{h}# Finding {f.fid}: {f.title}", "", f"Claim: {f.claim}", ""]
        if f.published_evidence:
            out += ["Published ratios: " + "; ".join(f.published_evidence) + ".", ""]
        if f.lines:
            out.append("| Comparison | " + " | ".join(column_label(ld) for ld in loads) + " |")
            out.append("|---" * (len(loads) + 1) + "|")
            for scope, ln in f.lines:
                cells = []
                for ld in loads:
                    c = next((c for c in ln.comps if c.load.lid == ld.lid), None)
                    if c is None or c.ci is None:
                        cells.append("")
                    else:
                        cells.append(f"{fmt_ci(c.ci)} {MARK_SYMBOL[c.mark]}{c.marks()}")
                out.append(f"| {ln.name} | " + " | ".join(cells) + " |")
            out.append("")
            for scope, ln in f.lines:
                out.append(f"- {ln.name}: {ln.judgement.text()}")
            out.append("")
        for n in f.notes:
            out += [n, ""]
        for scope, j in f.overall.items():
            out.append(f"**Judgement ({scope}): {j.status}** ({j.reason}).")
            out.append("")
    if an.gvl_paths:
        out += [f"{h}# What --gvl changes", "",
                "Ratio no lock / --gvl of the same worker row (✓: the lock makes it slower), per path;"
                " then worker req/s as a fraction of the single-thread row (geometric mean over load"
                " points) without and with the lock (with the lock: against the single-thread row with"
                " the lock when the run has one, as Ruby's single thread also holds its GVL).", ""]
        for path, lines, slowdown in an.gvl_paths:
            ploads = an._loads(path)
            out += [f"On GET {path}:", ""]
            out.append("| Row | " + " | ".join(column_label(ld) for ld in ploads) + " |")
            out.append("|---" * (len(ploads) + 1) + "|")
            for ln in an.gvl_context.get(path, []) + lines:
                cells = []
                for ld in ploads:
                    c = next((c for c in ln.comps if c.load.lid == ld.lid), None)
                    cells.append(f"{fmt_ci(c.ci)} {MARK_SYMBOL[c.mark]}{c.marks()}" if c and c.ci else "")
                out.append(f"| {ln.name} | " + " | ".join(cells) + " |")
            out.append("")
            if slowdown:
                out.append("| Worker row | fraction of single thread, no lock | with --gvl |")
                out.append("|---|---|---|")
                for lab, by in slowdown.items():
                    a = f"{by[False]:.2f}" if False in by else ""
                    b = f"{by[True]:.2f}" if True in by else ""
                    out.append(f"| {lab} | {a} | {b} |")
                out.append("")
    out += [f"{h}# Does the published explanation (GVL + queue contention) hold for C++?", ""]
    for s in an.explanation:
        out += [f"- {s}"]
    out.append("")
    for scope, j in an.explanation_verdicts.items():
        out.append(f"**{scope}: {j.status}** ({j.reason}).")
        out.append("")
    return "\n".join(out)


def summary_rows(an: Analysis) -> list[tuple[str, str, str]]:
    """(finding, scope, judgement text) for report summaries and tests."""
    rows = []
    for f in an.findings:
        for scope, j in f.overall.items():
            rows.append((f"{f.fid}. {f.title}", scope, j.text()))
    for scope, j in an.explanation_verdicts.items():
        rows.append(("GVL + queue contention explanation", scope, j.text()))
    return rows
