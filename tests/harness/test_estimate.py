"""The sweep's time estimate (plan/estimate.py) on constructed runs: each row's overhead learned
from the newest recorded run of the same scenario, the constant where none is recorded, and the
sequential extra blocks' bound. Table driven."""
import json
import os
import tempfile
import unittest
from types import SimpleNamespace

import common  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.format import resultio
from cbenchlib.plan import estimate


def record(row_key, wall_s, duration_s=2.0, warmup_s=0.5, idle=False):
    """A points.jsonl line whose repetition took wall_s from start to end."""
    start = "2026-12-04T18:00:00.000000Z"
    end_s = 0 + wall_s
    end = f"2026-12-04T18:00:{int(end_s):02d}.{int(round((end_s % 1) * 1e6)):06d}Z"
    load = {"key": "-t1 -c1", "duration_s": duration_s, "warmup_s": warmup_s}
    if idle:
        load["idle_connections"] = 100
    return {"point_id": f"{row_key} / -t1 -c1", "rep": 0, "row": {"key": row_key}, "load": load,
            "started_utc": start, "ended_utc": end}


def write(parent, run_id, scenario_name, records):
    d = os.path.join(parent, run_id)
    os.makedirs(d)
    with open(os.path.join(d, resultio.META_FILE), "w", encoding="utf-8") as f:
        json.dump({"scenario_name": scenario_name}, f)
    with open(os.path.join(d, resultio.POINTS_FILE), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return d


# (label, runs [(run id, scenario, records)], exclude run id, expected source run id, {row: overhead})
CASES = [
    ("no run: the constant", [], None, None, {}),
    ("the row's median beyond duration + warm-up",
     [("20261201T000000Z-s", "s", [record("a", 2.9), record("a", 3.1), record("a", 12.9), record("b", 12.5)])],
     None, "20261201T000000Z-s", {"a": 0.6, "b": 10.0}),
    ("the newest run of the scenario, others ignored",
     [("20261201T000000Z-s", "s", [record("a", 4.5)]), ("20261202T000000Z-s", "s", [record("a", 3.5)]),
      ("20261203T000000Z-t", "t", [record("a", 20.5)])],
     None, "20261202T000000Z-s", {"a": 1.0}),
    ("a resumed run is not its own history",
     [("20261201T000000Z-s", "s", [record("a", 4.5)]), ("20261202T000000Z-s", "s", [record("a", 3.5)])],
     "20261202T000000Z-s", "20261201T000000Z-s", {"a": 2.0}),
    ("idle points and records without times are left out",
     [("20261201T000000Z-s", "s", [record("a", 9.0, idle=True), {"row": {"key": "b"}, "load": {}}])],
     None, None, {}),
    ("the planned duration of the recorded run, not today's",
     [("20261201T000000Z-s", "s", [record("a", 11.4, duration_s=10.0, warmup_s=1.0)])],
     None, "20261201T000000Z-s", {"a": 0.4}),
]


class Learned(unittest.TestCase):
    def test_cases(self):
        for label, runs, exclude, source, by_row in CASES:
            with self.subTest(label), tempfile.TemporaryDirectory() as tmp:
                for run_id, name, records in runs:
                    write(tmp, run_id, name, records)
                got = estimate.learned_overheads(tmp, "s", exclude=os.path.join(tmp, exclude) if exclude else None)
                self.assertEqual(os.path.basename(got.source) if got.source else None, source, label)
                self.assertEqual(set(got.by_row), set(by_row), label)
                for row, want in by_row.items():
                    self.assertAlmostEqual(got.by_row[row], want, places=3, msg=label)

    def test_a_missing_directory_is_no_history(self):
        self.assertEqual(estimate.learned_overheads("/nonexistent/runs", "s"), estimate.Overheads())


def point(row_key, idle=False):
    """The fields of a scenario.Point that the estimate reads."""
    row = SimpleNamespace(kind="model", key=row_key, model="m")
    load = SimpleNamespace(is_idle=idle, idle_connections=100 if idle else None)
    return SimpleNamespace(row=row, load=load)


class Settings:
    duration_s, warmup_s = 2.0, 0.5
    target_ci_pct, repetitions, repetitions_cap, sequential_points = 10, 2, 4, 2


class Estimates(unittest.TestCase):
    OVERHEADS = estimate.Overheads({"slow": 10.0, "fast": 0.1}, "run")

    def test_a_row_takes_its_learned_overhead_never_below_the_constant(self):
        s = Settings()
        for row, want in (("slow", 12.5), ("fast", 2.5 + estimate.OVERHEAD_S), ("unknown", 2.5 + estimate.OVERHEAD_S)):
            with self.subTest(row):
                self.assertAlmostEqual(estimate.estimate_s(point(row), s, None, self.OVERHEADS), want)
        self.assertAlmostEqual(estimate.estimate_s(point("slow"), s, None), 2.5 + estimate.OVERHEAD_S)

    def test_extra_blocks_are_bounded_by_the_longest_points(self):
        s = Settings()
        points = [point("slow"), point("fast"), point("other")]
        # 2 extra blocks, each of at most 2 points: the slow one and one of the others.
        want = 2 * (12.5 + 2.5 + estimate.OVERHEAD_S)
        self.assertAlmostEqual(estimate.extra_blocks_estimate_s(points, s, self.OVERHEADS), want)

    def test_the_dry_run_names_the_source_and_the_slow_rows(self):
        self.assertIn("slow 10.0 s", self.OVERHEADS.note())
        self.assertIn("no recorded run", estimate.Overheads().note())


if __name__ == "__main__":
    unittest.main()
