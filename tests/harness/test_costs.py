"""Deterministic costs and the cost account, on constructed data (no timing, no server):
the per-request differencing, the parsers of callgrind's and strace's output, the costs.jsonl
round trip, the account's arithmetic, and its fits recovering known prices."""
import json
import os
import tempfile
import unittest

import numpy as np

from common import REPO  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.analysis import costaccount
from cbenchlib.format import costs, metrics
from cbenchlib.render import costaccount as account_text


class PerRequest(unittest.TestCase):
    CASES = [
        # label, counts, values, per request
        ("start-up cancels", (2000, 4000), (35_000_000 + 2000 * 1282, 35_000_000 + 4000 * 1282), 1282.0),
        ("fractional", (100, 200), (10, 15), 0.05),
        ("no change", (10, 30), (7, 7), 0.0),
        ("a count that falls", (10, 20), (50, 40), -1.0),
    ]

    def test_table(self):
        for label, counts, values, want in self.CASES:
            with self.subTest(label):
                self.assertAlmostEqual(costs.per_request(counts, values), want)

    def test_counts_must_increase(self):
        for counts in ((100, 100), (200, 100)):
            with self.subTest(counts=counts), self.assertRaisesRegex(ValueError, "must increase"):
                costs.per_request(counts, (0, 1))


class Parsers(unittest.TestCase):
    STRACE = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 45.10    0.012000           2      4003           epoll_wait
 30.00    0.008000           2      4013         1 read
  0.00    0.000000           0         2           futex
------ ----------- ----------- --------- --------- ----------------
100.00    0.020000           2      8018         1 total
"""

    def test_strace(self):
        self.assertEqual(costs.parse_strace_summary(self.STRACE), {"epoll_wait": 4003, "read": 4013, "futex": 2})
        self.assertEqual(costs.parse_strace_summary(""), {})

    def test_callgrind(self):
        cases = [("summary", "events: Ir\nsummary: 35201294\n", 35201294),
                 ("totals", "events: Ir\nfn=main\n1 2\ntotals: 99\n", 99),
                 ("none", "events: Ir\n", None)]
        for label, text, want in cases:
            with self.subTest(label):
                self.assertEqual(costs.parse_callgrind_totals(text), want)


def _record(key, ir, sys_a, sys_b, sw, counts=(1000, 2000), repeat=None):
    rec = costs.new_record({"model": key.split()[0], "threads": 1, "key": key}, ["cbench-server"], counts, 1)
    rec.update(instructions=list(ir), syscalls=[sys_a, sys_b], ctx_switches=list(sw))
    if repeat:
        rec["instructions_repeat"] = list(repeat)
    return costs.derive(rec)


class Format(unittest.TestCase):
    def test_derive(self):
        r = _record("epoll-reactor t1", (5_000_000, 6_000_000), {"read": 1010, "execve": 1},
                    {"read": 2010, "execve": 1}, (1005, 2004), repeat=(5_000_000, 6_001_000))
        d = r["derived"]
        self.assertEqual(d["instructions_per_req"], 1000.0)
        self.assertEqual(d["instructions_per_req_repeat"], 1001.0)
        self.assertAlmostEqual(d["repeat_diff_pct"], 0.1)
        self.assertEqual(d["syscalls_by_type_per_req"], {"read": 1.0})  # start-up calls cancel
        self.assertEqual(d["syscalls_per_req"], 1.0)
        self.assertAlmostEqual(d["ctx_switches_per_req"], 0.999)

    def test_missing_pair_leaves_none(self):
        rec = costs.derive(costs.new_record({"model": "io-uring", "threads": 1}, [], (1, 2), 1))
        self.assertEqual(rec["row"]["key"], "io-uring t1")
        self.assertIsNone(rec["derived"]["instructions_per_req"])
        self.assertIsNone(rec["derived"]["ctx_switches_per_req"])

    def test_round_trip(self):
        recs = [_record("a t1", (1, 1001), {"read": 0}, {"read": 1000}, (0, 500)),
                _record("b t1 shared", (7, 4007), {"futex": 1}, {"futex": 3001}, (3, 1503))]
        back = costs.load(costs.dump(recs))
        self.assertEqual(back, recs)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "meta.json"), "w") as f:
                json.dump({"kind": costs.KIND}, f)
            with open(os.path.join(d, costs.FILE), "w") as f:
                f.write(costs.dump(recs))
            meta, got = costs.read_run(d)
            self.assertEqual(got, recs)
            with open(os.path.join(d, "meta.json"), "w") as f:
                json.dump({"kind": "micro"}, f)
            with self.assertRaisesRegex(ValueError, "not a costs run"):
                costs.read_run(d)

    def test_stale_derived_is_recomputed(self):
        rec = _record("a t1", (1, 1001), {"read": 0}, {"read": 1000}, (0, 500))
        rec["derived"]["instructions_per_req"] = 12345
        self.assertEqual(costs.load(costs.dump([rec]))[0]["derived"]["instructions_per_req"], 1.0)

    def test_row_keys_and_argv(self):
        cases = [({"model": "worker-pool", "threads": 4, "queues": "shared", "gvl": True}, "worker-pool t4 shared gvl",
                  ["--queues", "shared", "--gvl"]),
                 ({"model": "fiber", "threads": 1, "extra_args": ["--stack-kb", "64"]}, "fiber t1 --stack-kb 64",
                  ["--stack-kb", "64"]),
                 ({"model": "x", "threads": 1, "key": "given"}, "given", [])]
        for row, key, tail in cases:
            with self.subTest(key):
                self.assertEqual(costs.row_key(row), key)
                argv = costs.server_argv("bin", row)
                self.assertEqual(argv[argv.index("--threads") + 2:], tail)

    def test_metrics_registered_and_written_by_derive(self):
        rec = _record("a t1", (1, 1001), {"read": 0}, {"read": 1000}, (0, 500))
        for path in (costaccount.INSTR_PATH, costaccount.SYSCALLS_BY_TYPE_PATH, costaccount.SWITCHES_PATH,
                     "derived.syscalls_per_req"):
            with self.subTest(path):
                self.assertIsNotNone(metrics.dig(rec, path))
        self.assertEqual(metrics.get(costaccount.INSTR_PATH).producer, "format.costs: derive")


# Synthetic models with known prices: instruction 0.4 ns, any system call 1.5 us, epoll_wait
# 1.0 us, switch 2.5 us. Each row's CPU is exactly what those prices make of its counts.
TRUE = costaccount.Prices({costaccount.DEFAULT_PRICE: 1.5, "epoll_wait": 1.0}, 2.5)
TRUE_INSTR_US = 0.0004
MODELS = [  # key, instructions/request, {type: per request}, switches/request
    ("reactor t1", 1300, {"epoll_wait": 1, "read": 1, "sendto": 1}, 1.0),
    ("pool t1", 4100, {"epoll_wait": 3, "futex": 3, "epoll_ctl": 2, "read": 2}, 4.0),
    ("uring t1", 2500, {"io_uring_enter": 1}, 1.0),
    ("fiber t1", 6000, {"epoll_wait": 1, "recvfrom": 2, "sendto": 1}, 0.5),
    ("blocking t1", 1000, {"read": 1, "write": 1}, 2.0),
]


def _models(noise=None):
    counts = (1000, 2000)
    recs, measured = [], {}
    for i, (key, ir, by, sw) in enumerate(MODELS):
        a = {name: 10 for name in by}
        b = {name: 10 + round(n * 1000) for name, n in by.items()}
        recs.append(_record(key, (1_000_000, 1_000_000 + ir * 1000), a, b, (5, 5 + round(sw * 1000)), counts))
        cpu = ir * TRUE_INSTR_US + sum(n * TRUE.syscall(name) for name, n in by.items()) + sw * TRUE.switch_us
        measured[key] = cpu + (noise[i] if noise else 0.0)
    return recs, measured


class Account(unittest.TestCase):
    def test_fit_recovers_the_instruction_price_and_the_base(self):
        for base in (0.0, 12.0):
            with self.subTest(base=base):
                recs, measured = _models()
                measured = {k: v + base for k, v in measured.items()}
                rows, prices = costaccount.account(recs, measured, costaccount.Prices(dict(TRUE.syscall_us),
                                                                                      TRUE.switch_us))
                self.assertAlmostEqual(prices.instr_us / TRUE_INSTR_US, 1.0, places=5)
                self.assertAlmostEqual(prices.base_us, base, places=5)
                for ln in rows:
                    self.assertAlmostEqual(ln.residual_us, 0.0, places=5)
                    self.assertAlmostEqual(ln.instr_part_us + ln.syscall_part_us + ln.switch_part_us + ln.base_part_us,
                                           ln.account_us)

    def test_fit_without_a_base(self):
        recs, measured = _models()
        prices = costaccount.Prices(dict(TRUE.syscall_us), TRUE.switch_us, base_us=0.0)
        rows, prices = costaccount.account(recs, measured, prices)
        self.assertAlmostEqual(prices.instr_us / TRUE_INSTR_US, 1.0, places=6)
        self.assertEqual(prices.base_us, 0.0)
        self.assertTrue(all(ln.base_part_us == 0.0 for ln in rows))

    def test_arithmetic_of_one_line(self):
        recs, measured = _models()
        prices = costaccount.Prices(dict(TRUE.syscall_us), TRUE.switch_us, instr_us=0.001)  # given, not fitted
        rows, _ = costaccount.account(recs, measured, prices)
        pool = next(ln for ln in rows if ln.key == "pool t1")
        self.assertAlmostEqual(pool.instr_part_us, 4.1)
        self.assertAlmostEqual(pool.syscall_part_us, 3 * 1.0 + (3 + 2 + 2) * 1.5)
        self.assertAlmostEqual(pool.switch_part_us, 10.0)
        self.assertAlmostEqual(pool.residual_us, measured["pool t1"] - (4.1 + 13.5 + 10.0))

    def test_noise_lands_in_the_residuals_of_a_least_squares_fit(self):
        noise = [0.3, -0.2, 0.1, -0.4, 0.2]
        recs, measured = _models(noise)
        rows, prices = costaccount.account(recs, measured,
                                           costaccount.Prices(dict(TRUE.syscall_us), TRUE.switch_us, base_us=0.0))
        instr = np.array([m[1] for m in MODELS], dtype=float)
        want = TRUE_INSTR_US + float(instr @ np.array(noise)) / float(instr @ instr)  # normal equation, one price
        self.assertAlmostEqual(prices.instr_us / want, 1.0, places=6)
        self.assertAlmostEqual(sum(ln.residual_us * ln.instructions for ln in rows), 0.0, places=6)

    def test_free_fit_recovers_all_three_prices(self):
        recs, measured = _models()
        one_price = costaccount.Prices({costaccount.DEFAULT_PRICE: 1.5}, 2.5)  # every type at one price
        measured = {k: v + sum(n for name, n in by.items() if name == "epoll_wait") * 0.5
                    for (k, _ir, by, _sw), v in zip(MODELS, measured.values())}
        rows = costaccount.lines(recs, measured)
        instr, sysc, sw = costaccount.free_fit(rows)
        self.assertAlmostEqual(instr, TRUE_INSTR_US, places=9)
        self.assertAlmostEqual(sysc, one_price.syscall("read"), places=6)
        self.assertAlmostEqual(sw, 2.5, places=6)

    def test_rows_without_cpu_or_counts_are_shown_not_fitted(self):
        recs, measured = _models()
        del measured["uring t1"]
        recs[0]["derived"]["instructions_per_req"] = None
        rows, prices = costaccount.account(recs, measured, costaccount.Prices(dict(TRUE.syscall_us), TRUE.switch_us))
        self.assertAlmostEqual(prices.instr_us / TRUE_INSTR_US, 1.0, places=5)
        by = {ln.key: ln for ln in rows}
        self.assertIsNone(by["uring t1"].residual_us)
        self.assertIsNone(by["reactor t1"].account_us)
        text = account_text.account_table(rows)
        self.assertIn("| uring t1 | n/a |", text)
        for with_base, rows_given in ((False, []), (True, rows[1:2])):
            with self.assertRaisesRegex(ValueError, "too few"):
                costaccount.fit_instruction_price(rows_given, TRUE, with_base)

    def test_counts_from_points_scale_the_type_mix(self):
        recs, measured = _models()
        counts = {"pool t1": (5.0, 0.5)}  # half the costs run's 10 calls; 0.5 switches
        rows = {ln.key: ln for ln in costaccount.lines(recs, measured, counts)}
        pool = rows["pool t1"]
        self.assertEqual(pool.syscalls, {"epoll_wait": 1.5, "futex": 1.5, "epoll_ctl": 1.0, "read": 1.0})
        self.assertEqual(pool.switches, 0.5)
        self.assertFalse(rows["reactor t1"].complete)  # no point counts: not fitted, shown n/a
        pts = [{"row": {"key": "a"}, "load": {"key": "L"}, "status": "ok",
                "derived": {"syscalls_per_req": v, "ctx_switches_per_req": v / 10}} for v in (2.0, 4.0, 3.0)]
        self.assertEqual(costaccount.measured_counts(pts, "L"), {"a": (3.0, 0.3)})

    def test_micro_prices(self):
        ns = {costaccount.WRITE_READ: 3000.0, costaccount.EPOLL_ROUND: 4000.0, costaccount.FUTEX_ROUND_TRIP: 5000.0}
        p = costaccount.micro_prices(ns)
        self.assertEqual((p.syscall("read"), p.syscall("epoll_wait"), p.switch_us), (1.5, 1.0, 2.5))
        with self.assertRaisesRegex(KeyError, "Futex"):
            costaccount.micro_prices({costaccount.WRITE_READ: 1.0, costaccount.EPOLL_ROUND: 2.0})

    def test_measured_cpu_is_the_median_of_ok_points_at_the_load(self):
        def pt(key, load, cpu, status="ok"):
            return {"row": {"key": key}, "load": {"key": load}, "status": status,
                    "derived": {"server_cpu_us_per_req": cpu}}
        pts = [pt("a", "-t1 -c1", 10), pt("a", "-t1 -c1", 30), pt("a", "-t1 -c1", 11), pt("a", "-t2 -c64", 99),
               pt("a", "-t1 -c1", 1000, status="failed"), pt("b", "-t1 -c1", None)]
        self.assertEqual(costaccount.measured_cpu(pts, "-t1 -c1"), {"a": 11})


if __name__ == "__main__":
    unittest.main()
