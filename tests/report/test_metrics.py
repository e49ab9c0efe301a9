"""The metric registry (scripts/cbenchlib/format/metrics.py) against its producers and its readers.

Every registered metric names a producer that writes it (the producer's module defines the named
function and spells the field it writes) and is present in a recorded reference run; every
measured field a reader in analysis/ or render/ spells out is registered; the readers' name
tables are views of the registry; a name the registry lists as not measured is written by nobody.
"""
import glob
import json
import os
import re
import tomllib
import unittest

from helpers import REPO, SCRIPTS
from cbenchlib.analysis import design, findingdecl, findings, mechanism
from cbenchlib.format import calibration, metrics
from cbenchlib.render import reporttpl, tables

PKG = os.path.join(SCRIPTS, "cbenchlib")
# A dotted literal starting with one of these is a field of a point's measurements.
MEASURED = ("wrk", "derived", "server", "machine", "kernel", "idle")
# Leaves that name a side or an instant of their parent ("machine.softirq_frac.server",
# "kernel.levels.port_tw.after"): the producer spells the parent.
SIDES = ("server", "client", "after", "before")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _recorded_paths() -> set[str]:
    """Every dotted path (objects, not list items) in the points.jsonl of the reference runs and
    of the runs kept for sections not remade in the last sitting (kept =): a metric that only a
    section not yet remade records is still recorded by a committed run."""
    with open(os.path.join(REPO, "results", "reference-runs.toml"), "rb") as f:
        sections = tomllib.load(f).get("sections", {})
    paths: set[str] = set()

    def walk(obj, prefix):
        if prefix:
            paths.add(prefix)
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}.{k}" if prefix else k)

    for sec in sections.values():
        for d in (sec.get("run"), sec.get("kept")):
            f = os.path.join(REPO, d or "", "points.jsonl")
            if d and os.path.exists(f):
                for line in _read(f).splitlines():
                    if line.strip():
                        walk(json.loads(line), "")
    return paths


def _producer_source(producer: str) -> tuple[str, str, str]:
    """(module source, the function named, the source that spells the field names) of a producer
    "pkg.module: [Class.]function ... (... backends/x.cpp)"."""
    module, rest = producer.split(":", 1)
    src = _read(os.path.join(PKG, *module.strip().split(".")) + ".py")
    func = rest.split()[0].rsplit(".", 1)[-1]
    named = re.search(r"\b(backends/[\w/]+\.(?:h|cpp))", rest)
    return src, func, _read(os.path.join(REPO, named.group(1))) if named else src


class RegistryTest(unittest.TestCase):
    def test_every_metric_has_a_producer_that_writes_it(self):
        for m in metrics.METRICS:
            with self.subTest(metric=m.path, producer=m.producer):
                src, func, names = _producer_source(m.producer)
                self.assertRegex(src, rf"\bdef {re.escape(func)}\(")
                parts = m.path.split(".")
                field = parts[-2] if parts[-1] in SIDES else parts[-1]
                self.assertIn(f'"{field}"', names)

    def test_every_metric_is_recorded_by_a_reference_run(self):
        recorded = _recorded_paths()
        missing = [m.path for m in metrics.METRICS if m.path not in recorded]
        self.assertEqual(missing, [], "registered metrics no reference run records")

    def test_not_measured_is_written_by_nobody(self):
        recorded = _recorded_paths()
        for name in metrics.NOT_MEASURED:
            stem = name.removesuffix("_per_req")
            with self.subTest(name=name):
                self.assertFalse([p for p in recorded if stem in p])
                self.assertNotIn(name, metrics.BY_PATH)
                for f in glob.glob(os.path.join(PKG, "run", "*.py")) + [os.path.join(REPO, "backends", "stats",
                                                                                       "counters.cpp")]:
                    self.assertNotIn(f'"{stem}"', _read(f), f)

    def test_every_measured_field_a_reader_spells_is_registered(self):
        literal = re.compile(r'"((?:%s)\.[A-Za-z0-9_.]+)"' % "|".join(MEASURED))
        found = {}
        for pkg in ("analysis", "render"):
            for f in sorted(glob.glob(os.path.join(PKG, pkg, "*.py"))):
                for path in literal.findall(_read(f)):
                    found.setdefault(path, os.path.relpath(f, PKG))
        self.assertTrue(found)
        unregistered = {p: f for p, f in found.items() if p not in metrics.BY_PATH}
        self.assertEqual(unregistered, {}, "fields read but not registered in format/metrics.py")

    def test_reader_tables_are_views_of_the_registry(self):
        views = {"findings.METRICS": [v[0] for v in findings.METRICS.values()],
                 "reporttpl.METRICS": [v[0] for v in reporttpl.METRICS.values()],
                 "tables.LATENCY_STATS": [v[0] for v in tables.LATENCY_STATS.values()]}
        for view, paths in views.items():
            for path in paths:
                with self.subTest(view=view, path=path):
                    self.assertIn(path, metrics.BY_PATH)
        for name, (_path, label, decide_at, better) in findings.METRICS.items():
            m = metrics.BY_PATH[_path]
            if findingdecl.at_fixed_rate(name):
                # the fixed-rate reading of a registered metric: its own label and rule, the same sense
                self.assertEqual((m.path, calibration.entry_key(m.name, calibration.FIXED_RATE), decide_at, better),
                                 (metrics.FIXED_RATE_CPU, name, findingdecl.FIXED_RATE_DECIDE_AT, m.better))
                continue
            self.assertEqual((m.name, m.label, m.decide_at, m.better), (name, label, decide_at, better))
        self.assertEqual(set(design.METRICS) & set(metrics.NOT_MEASURED), set(metrics.NOT_MEASURED))
        self.assertTrue(set(mechanism.FIGURES))

    def test_unregistered_path_is_refused(self):
        with self.assertRaisesRegex(KeyError, "not registered"):
            metrics.get("derived.counters_per_req.partial_writes")
        with self.assertRaises(KeyError):
            metrics.dig({"wrk": {"no_such": 1}}, "wrk.no_such")


if __name__ == "__main__":
    unittest.main()
