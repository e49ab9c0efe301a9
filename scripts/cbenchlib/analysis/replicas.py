"""The Ruby replicas and the C++ models beside the published table, and how well the models predict
the replicas.

normalised(): for every published row and column, each row divided by its family's single
thread at the same column on the published path (nio4r rows by "nio4r single thread", ever rows
by "ever single thread"): the published ratio, the Ruby replica's and the C++ model's (without
and with the emulated GVL; the --gvl row over the single-thread --gvl row when the run has one),
each with its 95% interval (findings.effect: paired by block when recorded, else Welch) and
whether req/s may decide there (server-bound in every repetition of both rows).

fidelity(): the published table's "fidelity" declarations. Each claims that a C++ model (chosen
by the same label on the C++ stack, with or without the GVL as declared) predicts a Ruby row's
ratio to its single thread within ±margin, given a handler cost equal to the Ruby row's measured
user CPU per request. The handler cost is a scenario knob (the C++ rows' /spin?us=N path): the
analysis takes the Ruby worker row's median server user CPU µs/request at the column, picks the
nearest declared N (ties: the smaller; 0 is GET /), and takes the C++ worker row and its single
thread at that path and the same column. The judgement is on the ratio of ratios (C++ predicted
ratio / Ruby ratio, scorecard.ratio_of_ratios): "equivalent" when both one-sided tests pass
against the margin, "not equivalent" when its interval lies wholly outside, "undecided"
otherwise, "not measured" (with the points that would measure it) when the run lacks a point.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import findings, stats
from .findings import EQUIVALENT, NOT_MEASURED, UNDECIDED, rows_for
from .labelindex import LabelIndex
from .runload import Row, Run, column_label
from .scorecard import ColumnEffect, published_loads, published_path, ratio_of_ratios
from ..format.loadpoint import canonical_label
from ..format.published import STACK_CPP, STACK_RUBY, Published

NOT_EQUIVALENT = "not equivalent"
FIDELITY_WORDS = (EQUIVALENT, NOT_EQUIVALENT, UNDECIDED, NOT_MEASURED)
USER_US_PATH = "derived.server_user_us_per_req"


@dataclass
class NormRow:
    """One published row: its label and, per column, the published ratio to its single thread and
    the measured ones (ColumnEffect, None where the stack has no such row)."""
    label: str
    base: str
    published: list
    ruby: list
    cpp: list
    cpp_gvl: list


def _first(rows: list[Row]) -> Row | None:
    return rows[0] if rows else None


def _effects(run: Run, pub: Published, a: Row | None, b: Row | None) -> list | None:
    """a/b per published column on the published path, or None without both rows."""
    if a is None or b is None or a.key == b.key:
        return None
    out = []
    for col, ld in zip(pub.columns, published_loads(run, pub, published_path(pub))):
        ca = run.cell(a.key, ld.lid) if ld is not None else None
        cb = run.cell(b.key, ld.lid) if ld is not None else None
        if ca is None or cb is None:
            out.append(ColumnEffect(col, None, None, False, "not measured"))
            continue
        ok, why = findings.can_decide(ca, cb, "req_per_s")
        out.append(ColumnEffect(col, None, findings.effect(ca, cb, "req_per_s", decide_only=ok), ok, why))
    return out


def normalised(run: Run, pub: Published) -> list[NormRow]:
    """Every published row that is not its family's single thread, normalised per stack."""
    idx = LabelIndex(run)
    fams = pub.families()
    out = []
    for prow in pub.rows:
        base_label = fams.get(prow.family) or f"{prow.family} single thread"
        if prow.canonical == canonical_label(base_label):
            continue
        pbase = pub.row(base_label)
        pubs = [pc.req_per_s / pb.req_per_s if pc and pb else None
                for pc, pb in zip(prow.cells, pbase.cells if pbase else [None] * len(prow.cells))]
        ruby = _effects(run, pub, _first(rows_for(idx, prow.label, False, STACK_RUBY)),
                        _first(rows_for(idx, base_label, False, STACK_RUBY)))
        cpp = _effects(run, pub, _first(rows_for(idx, prow.label, False, STACK_CPP)),
                       _first(rows_for(idx, base_label, False, STACK_CPP)))
        gbase = _first(rows_for(idx, base_label, True, STACK_CPP) or rows_for(idx, base_label, False, STACK_CPP))
        cpp_gvl = _effects(run, pub, _first(rows_for(idx, prow.label, True, STACK_CPP)), gbase)
        out.append(NormRow(prow.label, base_label, pubs, ruby, cpp, cpp_gvl))
    return out


@dataclass
class FidelityLine:
    """One Ruby row at one column against the C++ model at the matched handler cost."""
    row: str
    column: str
    decision: findings.Decision
    ruby_user_us: float | None = None
    spin_us: int | None = None
    cpp_point: str = ""  # which C++ rows and point the prediction used
    ruby_ci: stats.RatioCI | None = None
    cpp_ci: stats.RatioCI | None = None


@dataclass
class Fidelity:
    decl: dict
    lines: list = field(default_factory=list)
    overall: findings.Decision | None = None


def spin_path(spin_us: int) -> str:
    return "/" if spin_us == 0 else f"/spin?us={spin_us}"


def nearest_spin(user_us: float, declared: list[int]) -> int:
    """The declared handler cost nearest the measured one (ties: the smaller)."""
    return min(sorted(declared), key=lambda n: abs(n - user_us))


def _load_at(run: Run, path: str, column: str):
    return next((ld for ld in run.loads.values() if not ld.lid.idle and ld.lid.pipeline == 1
                 and ld.lid.path == path and column_label(ld) == column), None)


def _ratio_at(run: Run, a: Row, b: Row, path: str, column: str) -> tuple[stats.RatioCI | None, str]:
    """(a/b of req/s at the point, why it cannot decide or "")."""
    ld = _load_at(run, path, column)
    ca = run.cell(a.key, ld.lid) if ld is not None else None
    cb = run.cell(b.key, ld.lid) if ld is not None else None
    if ca is None or cb is None:
        return None, "not measured"
    ok, why = findings.can_decide(ca, cb, "req_per_s")
    return findings.effect(ca, cb, "req_per_s", decide_only=ok), why


def _fidelity_line(run: Run, idx: LabelIndex, decl: dict, label: str, column: str) -> FidelityLine:
    base, path, gvl = decl["base"], decl.get("path", "/"), bool(decl.get("cpp_gvl", True))
    lock = " --gvl" if gvl else ""
    ra, rb = _first(rows_for(idx, label, False, STACK_RUBY)), _first(rows_for(idx, base, False, STACK_RUBY))
    if ra is None or rb is None:
        return FidelityLine(label, column, findings.Decision(NOT_MEASURED, f"no Ruby rows '{label}' and '{base}'"
                            f" in this run: a sweep of them at {column} GET {path} would measure it"))
    ruby_ci, why = _ratio_at(run, ra, rb, path, column)
    if ruby_ci is None:
        return FidelityLine(label, column, findings.Decision(
            NOT_MEASURED, f"the Ruby rows were not measured at {column} GET {path}"))
    ld = _load_at(run, path, column)
    user = run.cell(ra.key, ld.lid).median(USER_US_PATH)
    if user is None:
        return FidelityLine(label, column, findings.Decision(
            NOT_MEASURED, f"the Ruby row's user CPU per request ({USER_US_PATH}) was not recorded at {column}"),
            ruby_ci=ruby_ci)
    spin = nearest_spin(user, [int(n) for n in decl["handler_spin_us"]])
    cpath = spin_path(spin)
    ca = _first(rows_for(idx, label, gvl, STACK_CPP))
    cb = _first(rows_for(idx, base, True, STACK_CPP) if gvl else []) or _first(rows_for(idx, base, False, STACK_CPP))
    used = (f"C++ '{label}'{lock} / '{base}'{' --gvl' if cb is not None and cb.gvl else ''} at {column} GET {cpath}"
            f" (handler {spin} µs, nearest declared to the Ruby row's {user:.1f} µs/request)")
    cpp_ci, cwhy = _ratio_at(run, ca, cb, cpath, column) if ca is not None and cb is not None else (None, "")
    line = FidelityLine(label, column, findings.Decision(UNDECIDED, ""), user, spin, used, ruby_ci, cpp_ci)
    if cpp_ci is None:
        line.decision = findings.Decision(NOT_MEASURED, f"the run lacks the C++ point: {used} would measure it")
    elif why or cwhy:
        line.decision = findings.Decision(UNDECIDED, why or cwhy)
    else:
        margin = float(decl["margin"])
        d = findings.decide(ratio_of_ratios(cpp_ci, ruby_ci), "equivalent", margin=margin)
        line.decision = findings.Decision(NOT_EQUIVALENT if d.word == findings.CONTRADICTED else d.word,
                                          d.reason, d.ci, d.reps_needed)
    return line


def _overall(lines: list[FidelityLine]) -> findings.Decision:
    words = [ln.decision.word for ln in lines]
    if not words or all(w == NOT_MEASURED for w in words):
        return findings.Decision(NOT_MEASURED, lines[0].decision.reason if lines else "nothing declared")
    if NOT_EQUIVALENT in words:
        return findings.Decision(NOT_EQUIVALENT, f"not equivalent in {words.count(NOT_EQUIVALENT)} of {len(words)}")
    if all(w == EQUIVALENT for w in words):
        return findings.Decision(EQUIVALENT, f"equivalent in all {len(words)}")
    counts = ", ".join(f"{w} in {words.count(w)}" for w in FIDELITY_WORDS if w in words)
    return findings.Decision(UNDECIDED, f"{counts} of {len(words)}")


def fidelity(run: Run, pub: Published) -> list[Fidelity]:
    """Every declared fidelity claim judged from the run (the module docstring's rule)."""
    idx = LabelIndex(run)
    out = []
    for decl in pub.doc.get("fidelity") or []:
        fi = Fidelity(decl)
        for label in decl["rows"]:
            for column in decl.get("columns") or pub.columns:
                fi.lines.append(_fidelity_line(run, idx, decl, label, column))
        fi.overall = _overall(fi.lines)
        out.append(fi)
    return out
