"""Run rows by canonical published label, for the findings and the published comparison.

Rows of different stacks (format/published.row_stack: the Ruby rows, the C++ rows, other peers)
may carry one label: the index keeps each row apart (a label's list holds every row, never a
merged one), `row` picks within one stack when told, and stack_display names each row with its
stack wherever a label is shared across stacks, so no table shows two stacks' rows under one name.
"""
from __future__ import annotations

import re

from .runload import Load, Row, Run
from ..format.loadpoint import canonical_label
from ..format.published import STACK_CPP, STACK_PEER, STACK_RUBY, row_stack

_WORKER = re.compile(r"^(?P<fam>\S+) (?P<n>\d+) worker thread(?P<sep>, separate queues?)?$")
_SINGLE = re.compile(r"^(?P<fam>\S+) single thread$")
# The marker a row's name ends with where its label is carried by rows of more than one stack.
STACK_MARKS = {STACK_RUBY: "Ruby stack", STACK_CPP: "C++ stack", STACK_PEER: "other peer"}


def stack_display(rows: list[Row]) -> dict[str, str]:
    """row key -> the row's table name (Row.display), ending " · Ruby stack" (or " · C++ stack",
    " · other peer") where its canonical label is carried by rows of two or more stacks; rows
    without a label, and labels of one stack only, keep their plain name."""
    stacks: dict[str, set] = {}
    for r in rows:
        c = canonical_label(r.label)
        if c:
            stacks.setdefault(c, set()).add(row_stack(r.kind, r.model))
    out = {}
    for r in rows:
        c = canonical_label(r.label)
        mixed = bool(c) and len(stacks[c]) > 1
        out[r.key] = r.display() + (f" · {STACK_MARKS[row_stack(r.kind, r.model)]}" if mixed else "")
    return out


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

    def row(self, canonical: str, gvl: bool = False, stack: str | None = None) -> Row | None:
        """The first row with the label and gvl flag, on `stack` only when given."""
        rows = [r for r in self.by_label.get((canonical, gvl)) or []
                if stack is None or row_stack(r.kind, r.model) == stack]
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
