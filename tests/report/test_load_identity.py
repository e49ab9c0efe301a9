"""loadpoint.load_id: the one identity of a point record's load that runload, latencycurve and
crosscheck group by, and loadpoint.measured, the one rule for which points hold a measurement."""
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)

from cbenchlib.format.loadpoint import RATE_DECIMALS, load_id, measured


def rec(load=None, **extra):
    return {"load": load, **extra} if load is not None else dict(extra)


class LoadIdTest(unittest.TestCase):
    # (label, record, expected fields of its LoadId)
    CASES = [
        ("closed loop wrk", rec({"key": "-t2 -c10", "wrk_threads": 2, "connections": 10}),
         dict(key="-t2 -c10", path="/", pipeline=1, idle=False, generator="wrk", open_loop=False,
              rate_per_s=None, connections=10, wrk_threads=2)),
        ("path and pipeline split tables",
         rec({"key": "-t1 -c4 -p16 /spin", "wrk_threads": 1, "connections": 4, "pipeline": 16.0, "path": "/spin"}),
         dict(path="/spin", pipeline=16, connections=4)),
        ("another generator", rec({"key": "-t1 -c4 [h2load]", "wrk_threads": 1, "connections": 4,
                                   "generator": "h2load"}),
         dict(generator="h2load", open_loop=False)),
        ("open loop: offered rate rounded",
         rec({"key": "-t1 -c4 [cbench-load] @0.5xpeak", "generator": "cbench-load", "rate": 1234.56789,
              "rate_fraction": 0.5, "connections": 4, "wrk_threads": 1}),
         dict(open_loop=True, rate_per_s=round(1234.56789, RATE_DECIMALS))),
        ("fraction not yet resolved (a failed point)",
         rec({"key": "-t1 -c4 [cbench-load] @0.5xpeak", "generator": "cbench-load", "rate": None,
              "rate_fraction": 0.5}),
         dict(open_loop=True, rate_per_s=None)),
        ("slow readers", rec({"key": "-t1 -c4 [cbench-load] read 100B/s", "generator": "cbench-load",
                              "read_rate": 100.0}),
         dict(read_rate_bps=100.0, open_loop=False)),
        ("idle load", rec({"key": "idle 100", "idle_connections": 100}),
         dict(key="idle 100", idle=True, path="", pipeline=1, idle_connections=100, connections=None)),
        ("idle from the idle block", rec(idle={"connections": 50}),
         dict(key="idle 50", idle=True, idle_connections=50)),
        ("no key: named as the sweep names it", rec({"wrk_threads": 2, "connections": 10}),
         dict(key="-t2 -c10", generator="wrk")),
        ("no key, open loop: named by its offered rate", rec({"rate": 100, "rate_fraction": 0.5}),
         dict(key="-tNone -cNone @100/s", rate_per_s=100.0, open_loop=True)),
        ("not integers are no counts", rec({"key": "k", "connections": True, "pipeline": 2.5}),
         dict(connections=None, pipeline=1)),
    ]

    def test_fields(self):
        for label, record, want in self.CASES:
            with self.subTest(label):
                lid = load_id(record)
                self.assertEqual({k: getattr(lid, k) for k in want}, want)

    # (label, record a, record b, one load?)
    SAME = [
        ("one key, one load", rec({"key": "-t2 -c10", "connections": 10}), rec({"key": "-t2 -c10", "connections": 10}),
         True),
        ("a fraction of each row's own peak is one load",
         rec({"key": "-t1 -c4 @0.5xpeak", "rate": 900.0, "rate_fraction": 0.5}),
         rec({"key": "-t1 -c4 @0.5xpeak", "rate": 1800.0, "rate_fraction": 0.5}), True),
        ("another path is another load", rec({"key": "-t2 -c10", "path": "/a"}), rec({"key": "-t2 -c10", "path": "/b"}),
         False),
        ("another generator is another load", rec({"key": "-t1 -c4"}), rec({"key": "-t1 -c4 [h2load]",
                                                                             "generator": "h2load"}), False),
        ("records without keys at two rates", rec({"rate": 100}), rec({"rate": 200}), False),
    ]

    def test_equality(self):
        for label, a, b, same in self.SAME:
            with self.subTest(label):
                self.assertEqual(load_id(a) == load_id(b), same)
                if same:
                    self.assertEqual(hash(load_id(a)), hash(load_id(b)))

    def test_generator_twins_share_the_point(self):
        fields = {"wrk_threads": 1, "connections": 64, "pipeline": 1, "path": "/"}
        wrk = load_id(rec({"key": "-t1 -c64", **fields}))
        h2 = load_id(rec({"key": "-t1 -c64 [h2load]", "generator": "h2load", **fields}))
        self.assertNotEqual(wrk, h2)
        self.assertEqual(wrk.apart_from_generator(), h2.apart_from_generator())


class MeasuredTest(unittest.TestCase):
    CASES = [("ok", {"status": "ok"}, True), ("no status (older records)", {}, True),
             ("failed", {"status": "failed"}, False), ("skipped", {"status": "skipped"}, False)]

    def test_table(self):
        for label, record, want in self.CASES:
            with self.subTest(label):
                self.assertEqual(measured(record), want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
