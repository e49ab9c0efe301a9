"""Fixed-rate loads (rate_common_fraction, format/loadgen.py): the scenario keys, the common rate
resolved from the pilots (the lowest peak among the compared rows times the declared fraction,
failed pilots left out), the plan's pilots and their time, the runner offering every row that
rate and recording it, and the executor recording the resolution in meta.json and keeping it on
--resume. Constructed data only: nothing here runs a server."""
import contextlib
import io
import types
import unittest

from common import REPO  # noqa: F401 - puts scripts/ on sys.path
from cbenchlib.format import loadgen, scenario
from cbenchlib.plan import estimate, pilots as planpilots
from cbenchlib.run import failure, generators, sweepexec

TEXT = """
duration_s = 2
warmup_s = 0.5
repetitions = 2
[[loads]]
name = "closed"
path = "/"
wrk_threads = 2
connections = 64
[[loads]]
name = "fixed"
generator = "cbench-load"
rate_common_fraction = [0.5, 0.25]
path = "/"
wrk_threads = 2
connections = 64
[[rows]]
model = "epoll-reactor"
[[rows]]
model = "worker-pool"
threads = 4
queues = "shared"
[[rows]]
model = "pull-loop"
loads = ["closed"]
"""


class Keys(unittest.TestCase):
    def test_keys(self):
        cases = [  # label, load set lines, error words (None: parses) or the load keys
            ("a fraction", 'generator = "cbench-load"\nrate_common_fraction = 0.5',
             ["-t2 -c64 [cbench-load] @0.5xmin-peak"]),
            ("at the lowest peak a row is saturated again", 'generator = "cbench-load"\nrate_common_fraction = 0.95',
             "expected a number in [0.001, 0.9]"),
            ("with a rate", 'generator = "cbench-load"\nrate_common_fraction = 0.5\nrate = 100', "not several"),
            ("with a row's own fraction", 'generator = "cbench-load"\nrate_common_fraction = 0.5\nrate_fraction = 0.5',
             "not several"),
            ("wrk cannot run open loop", 'generator = "wrk"\nrate_common_fraction = 0.5', "needs generator = \"cbench-load\""),
            ("not a number", 'generator = "cbench-load"\nrate_common_fraction = "half"', "expected a number"),
        ]
        for label, lines, want in cases:
            with self.subTest(label):
                text = f"[[loads]]\n{lines}\nwrk_threads = 2\nconnections = 64\n[[rows]]\nmodel = \"epoll-reactor\"\n"
                if isinstance(want, str):
                    with self.assertRaises(scenario.ScenarioError) as cm:
                        scenario.parse(text, "x.toml")
                    self.assertIn(want, str(cm.exception))
                else:
                    sc = scenario.parse(text, "x.toml")
                    self.assertEqual([p.load.key for p in sc.points()], want)
                    self.assertEqual(sc.points()[0].load.to_json(sc.settings)["rate_common_fraction"], 0.5)


class Resolution(unittest.TestCase):
    def test_common_rate_is_the_fraction_of_the_lowest_peak(self):
        ok = lambda r: {"req_per_s": r, "log": "logs/x-peak.txt"}  # noqa: E731
        cases = [  # label, fraction, pilots, rate, lowest row, rows measured, rows failed
            ("lowest of three", 0.5, {"a": ok(30000.0), "b": ok(12000.0), "c": ok(80000.0)}, 6000.0, "b", 3, []),
            ("another fraction", 0.25, {"a": ok(30000.0), "b": ok(12000.0)}, 3000.0, "b", 2, []),
            ("a failed pilot is left out", 0.5, {"a": ok(30000.0), "b": {"failed": "not built"}}, 15000.0, "a", 1, ["b"]),
            ("a pilot that answered nothing is left out", 0.5, {"a": ok(0.0), "b": ok(900.0)}, 450.0, "b", 1, ["a"]),
            ("ties name the first key", 0.5, {"b": ok(100.0), "a": ok(100.0)}, 50.0, "a", 2, []),
        ]
        for label, fraction, pilots, rate, lowest, measured, failed in cases:
            with self.subTest(label):
                r = loadgen.resolve_common_rate(fraction, pilots, "2026-01-01T00:00:00Z")
                self.assertEqual((r["rate_per_s"], r["lowest_row"], r["rows_measured"], r["rows_failed"]),
                                 (rate, lowest, measured, failed))
                self.assertEqual(r["fraction"], fraction)
                self.assertEqual(r["pilots"], pilots)  # recorded: which pilots it came from
                self.assertEqual(r["resolved_utc"], "2026-01-01T00:00:00Z")

    def test_no_peak_at_all_is_refused(self):
        with self.assertRaises(ValueError):
            loadgen.resolve_common_rate(0.5, {"a": {"failed": "crashed"}}, "t")

    def test_refusal(self):
        base = {"status": "ok", "verdict": "unclear",
                "wrk": {"mode": "open", "overloaded": False, "req_per_s": 5000.0, "rate_offered": 5000.0}}
        cases = [  # label, changes, refusal words (None: may decide)
            ("at the rate", {}, None),
            ("overloaded", {"wrk": {**base["wrk"], "overloaded": True, "req_per_s": 3000.0}}, "overloaded: 3000 of 5000"),
            ("closed loop", {"wrk": {**base["wrk"], "mode": "closed"}}, "not an open-loop run"),
            ("error-bound", {"verdict": "error-bound"}, "error-bound"),
            ("failed", {"status": "failed"}, "failed"),
        ]
        for label, changes, want in cases:
            with self.subTest(label):
                got = loadgen.fixed_rate_refusal({**base, **changes})
                if want is None:
                    self.assertIsNone(got)
                else:
                    self.assertIn(want, got)


class Plan(unittest.TestCase):
    def test_pilots_one_per_row_and_shape(self):
        sc = scenario.parse(TEXT, "x.toml")
        plan = planpilots.plan_pilots(sc.points())
        # Two fixed-rate loads (two fractions) share one pilot per row; pull-loop does not run them.
        self.assertEqual([(ld.fraction, [r for r, _k in ld.rows]) for ld in plan.loads],
                         [(0.5, ["epoll-reactor t1", "worker-pool t4 shared"]),
                          (0.25, ["epoll-reactor t1", "worker-pool t4 shared"])])
        self.assertEqual(len(plan.pilots), 2)
        for p in plan.pilots.values():
            self.assertIsNone(p.load.rate_common_fraction)
            self.assertEqual((p.load.generator, p.load.connections), ("cbench-load", 64))
        one = sc.settings.duration_s + sc.settings.warmup_s + estimate.OVERHEAD_S
        self.assertAlmostEqual(plan.estimate_s(sc.settings, None), 2 * one)
        self.assertEqual(plan.estimate_s(sc.settings, {"worker-pool"}), one)  # a model not built costs nothing
        self.assertIn("2 pilot runs", plan.summary(sc.settings, None, estimate.fmt_duration))

    def test_no_fixed_rate_load_no_pilots(self):
        sc = scenario.parse(TEXT.split('[[loads]]\nname = "fixed"')[0] + '[[rows]]\nmodel = "epoll-reactor"\n', "x.toml")
        plan = planpilots.plan_pilots(sc.points())
        self.assertFalse(plan)
        self.assertEqual(plan.summary(sc.settings, None, estimate.fmt_duration), "")


def fixed_points():
    sc = scenario.parse(TEXT, "x.toml")
    return sc, [p for p in sc.points() if p.load.rate_common_fraction is not None]


class RunnerHook(unittest.TestCase):
    def test_every_row_gets_the_common_rate_and_records_it(self):
        sc, pts = fixed_points()
        key = loadgen.common_rate_key(pts[0])
        res = loadgen.resolve_common_rate(0.5, {"epoll-reactor t1": {"req_per_s": 30000.0},
                                                "worker-pool t4 shared": {"req_per_s": 12000.0}}, "t")
        peaks = generators.Peaks()
        peaks.set_common(key, res)
        for p in (x for x in pts if loadgen.common_rate_key(x) == key):
            with self.subTest(p.row.key):
                record = {"load": p.load.to_json(sc.settings)}
                got = peaks.resolve(None, p, None, "tag", record)
                self.assertEqual(got.load.rate, 6000.0)
                self.assertEqual(record["load"]["rate"], 6000.0)
                self.assertEqual(record["common_rate"]["lowest_row"], "worker-pool t4 shared")
                self.assertEqual(record["common_rate"]["own_pilot"], res["pilots"][p.row.key])
                self.assertNotIn("pilots", record["common_rate"])

    def test_a_load_without_a_rate_fails_its_point(self):
        sc, pts = fixed_points()
        with self.assertRaises(failure.PointFailed):
            generators.Peaks().resolve(None, pts[0], None, "tag", {"load": {}})


class FakeWriter:
    def __init__(self, meta):
        self.meta = meta
        self.updates = 0

    def update_meta(self, **fields):
        self.meta.update(fields)
        self.updates += 1


class FakeRunner:
    def __init__(self, peaks_by_row):
        self.peaks_by_row, self.asked = peaks_by_row, []
        self.peaks = generators.Peaks()

    def pilot(self, point, tag):
        self.asked.append(point.row.key)
        v = self.peaks_by_row[point.row.key]
        return {"failed": v} if isinstance(v, str) else {"req_per_s": v, "log": f"logs/{tag}-peak.txt"}


def resolve(sweep, runner):
    with contextlib.redirect_stdout(io.StringIO()):
        sweep.resolve_common_rates(runner)


class Executor(unittest.TestCase):
    def sweep(self, meta):
        sc = scenario.parse(TEXT, "x.toml")
        points = sc.points()
        plan = types.SimpleNamespace(pilots=planpilots.plan_pilots(points))
        s = sweepexec.Sweep.__new__(sweepexec.Sweep)
        s.plan, s.writer, s.spent_s = plan, FakeWriter(meta), 0.0
        return s, points

    def test_pilots_run_once_and_the_resolution_is_recorded(self):
        s, points = self.sweep({})
        r = FakeRunner({"epoll-reactor t1": 30000.0, "worker-pool t4 shared": 12000.0})
        resolve(s, r)
        self.assertEqual(sorted(r.asked), ["epoll-reactor t1", "worker-pool t4 shared"])  # shared by both fractions
        rates = s.writer.meta[loadgen.COMMON_RATES_META_KEY]
        self.assertEqual(sorted(v["rate_per_s"] for v in rates.values()), [3000.0, 6000.0])
        for p in points:
            if p.load.rate_common_fraction is not None:
                got = r.peaks.resolve(None, p, None, "t", {"load": {}})
                self.assertEqual(got.load.rate, p.load.rate_common_fraction * 12000.0)

    def test_resume_keeps_the_recorded_rates(self):
        s, _points = self.sweep({})
        resolve(s, FakeRunner({"epoll-reactor t1": 30000.0, "worker-pool t4 shared": 12000.0}))
        recorded = s.writer.meta
        s2, points = self.sweep(recorded)
        r2 = FakeRunner({"epoll-reactor t1": 1.0, "worker-pool t4 shared": 1.0})
        resolve(s2, r2)
        self.assertEqual(r2.asked, [])  # no pilot again
        p = next(x for x in points if x.load.rate_common_fraction == 0.5)
        self.assertEqual(r2.peaks.resolve(None, p, None, "t", {"load": {}}).load.rate, 6000.0)

    def test_every_pilot_failed(self):
        s, points = self.sweep({})
        r = FakeRunner({"epoll-reactor t1": "server exited", "worker-pool t4 shared": "not built"})
        resolve(s, r)
        rec = next(iter(s.writer.meta[loadgen.COMMON_RATES_META_KEY].values()))
        self.assertIn("no compared row's pilot", rec["failed"])
        with self.assertRaises(failure.PointFailed):
            r.peaks.resolve(None, next(x for x in points if x.load.rate_common_fraction), None, "t", {"load": {}})


if __name__ == "__main__":
    unittest.main()
