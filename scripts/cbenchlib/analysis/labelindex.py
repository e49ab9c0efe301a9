"""Run rows by canonical published label, for the findings and the published comparison."""
from __future__ import annotations

import re

from .runload import Load, Row, Run
from ..format.loadpoint import canonical_label

_WORKER = re.compile(r"^(?P<fam>\S+) (?P<n>\d+) worker thread(?P<sep>, separate queues?)?$")
_SINGLE = re.compile(r"^(?P<fam>\S+) single thread$")


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
