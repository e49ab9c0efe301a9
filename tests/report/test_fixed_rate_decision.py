"""The decision table with a fixed-rate load (rate_common_fraction: every row offered one
open-loop rate below all their capacities; format/loadgen.py), on constructed runs of the tiny
handler shape: where saturated req/s cannot decide (generator-bound or undecided), the fixed-rate
server CPU per request decides the cell and its spread is shown beside the saturated figure's; an
overloaded fixed-rate point does not decide; where req/s decides, it still does."""
import os
import tempfile
import unittest

from helpers import point, write_run

from cbenchlib.analysis import decision, latencycurve
from cbenchlib.analysis.runload import load_run
from cbenchlib.format import metrics

SAT_KEY, FIXED_KEY = "-t4 -c64", "-t4 -c64 [cbench-load] @0.5xmin-peak"
RATE = 20000.0
ROWS = (("epoll-reactor t1", "epoll-reactor"), ("worker-pool t4 shared", "worker-pool"))


def sat(key, model, rep, rps, cpu, verdict):
    p = point(key, rps, load_key=SAT_KEY, connections=64, model=model, rep=rep, verdict=verdict, path="/")
    p["load"]["wrk_threads"] = 4
    p["block"] = rep
    p["derived"] = {"server_cpu_us_per_req": cpu}
    return p


def fixed(key, model, rep, cpu, overloaded=False):
    p = point(key, RATE * (0.6 if overloaded else 1.0), load_key=FIXED_KEY, connections=64, model=model, rep=rep,
              verdict="unclear", path="/")
    p["load"].update(wrk_threads=4, generator="cbench-load", rate=RATE, rate_common_fraction=0.5)
    p["wrk"].update(mode="open", overloaded=overloaded, rate_offered=RATE)
    p["block"] = rep
    p["derived"] = {"server_cpu_us_per_req": cpu}
    p["common_rate"] = {"fraction": 0.5, "rate_per_s": RATE, "lowest_row": "worker-pool t4 shared",
                        "lowest_req_per_s": 2 * RATE}
    return p


# Saturated: the generator is the bound for both rows and its cost moves their CPU figure by
# +-30% from block to block; at the fixed rate the same rows differ by 25% with 1% noise.
SAT_NOISE = (0.7, 1.3, 0.9, 1.2)
FIX_NOISE = (0.99, 1.01, 1.0, 0.995)


def run_points(sat_verdict="client-bound", sat_rps=(60000, 60000), with_fixed=True, overloaded_rep=None,
               noisy_rps=False):
    """Both rows' saturated points (NOISY_RPS: req/s as noisy as the CPU figure) and, WITH_FIXED,
    their fixed-rate points (the first row's repetition OVERLOADED_REP overloaded)."""
    pts = []
    for i, (key, model) in enumerate(ROWS):
        for rep, (a, b) in enumerate(zip(SAT_NOISE, FIX_NOISE)):
            drift = a if i else 2 - a
            rps = sat_rps[i] * (drift if noisy_rps else 1 + 0.01 * rep)
            pts.append(sat(key, model, rep, rps, (10.0, 12.5)[i] * drift, sat_verdict))
            if with_fixed:
                pts.append(fixed(key, model, rep, (20.0, 25.0)[i] * b, overloaded=(i == 0 and rep == overloaded_rep)))
    return pts


def tiny_cell(pts):
    with tempfile.TemporaryDirectory() as tmp:
        d = write_run(os.path.join(tmp, "20260101T000000Z-ever-table"), pts, {"scenario_name": "unit"})
        cfg = {s.section: {"run": ""} for s in decision.SHAPES}
        cfg["ever-table"] = {"run": d}
        row = next(r for r in decision.rows(cfg, tmp, allow_synthetic=True) if r["shape"] == "tiny handler")
        ranking = decision.shape_ranking(load_run(d), decision.SHAPES[0])
    return row, ranking


class FixedRateDecides(unittest.TestCase):
    def test_cells(self):
        cases = [  # label, points, the cell's start, words in it, words not in it, ranking's metric and load key
            ("generator-bound req/s: the fixed rate decides",
             run_points(), "undecided by req/s: no row may decide",
             ["By server CPU per request at a fixed rate (20000 req/s offered to every row, 0.5 x the lowest pilot"
              " peak (`worker-pool t4 shared`)", "**event loop wins**: `epoll-reactor t1` (19.95",
              "spread (median CV of a row's repetitions): 0.9% at the fixed rate against"],
             ["not judged"], (metrics.FIXED_RATE_CPU, FIXED_KEY)),
            ("undecided req/s (server-bound, a tie): the fixed rate decides",
             run_points("server-bound", noisy_rps=True), "undecided by req/s (undecided",
             ["**event loop wins**: `epoll-reactor t1` (19.95"], [], (metrics.FIXED_RATE_CPU, FIXED_KEY)),
            ("an overloaded fixed-rate point does not decide",
             run_points(overloaded_rep=2), "undecided by req/s: no row may decide",
             ["worker pool only: `worker-pool t4 shared` (24.94", "not judged: `epoll-reactor t1` (overloaded: 12000"
              " of 20000 req/s offered completed)"], ["**"], (metrics.FIXED_RATE_CPU, FIXED_KEY)),
            ("req/s decides: the fixed rate is not needed",
             run_points("server-bound", (60000, 40000)), "**event loop wins**: `epoll-reactor t1` (60",
             [], ["fixed rate"], ("wrk.req_per_s", SAT_KEY)),
            ("no fixed-rate load: the saturated CPU per request, as before",
             run_points(with_fixed=False), "undecided by req/s: no row may decide",
             ["By server CPU per request: "], ["fixed rate"], ("derived.server_cpu_us_per_req", SAT_KEY)),
        ]
        for label, pts, start, words, absent, (metric, load_key) in cases:
            with self.subTest(label):
                row, ranking = tiny_cell(pts)
                thr = row["throughput"]
                self.assertTrue(thr.startswith(start), thr)
                for w in words:
                    self.assertIn(w, thr)
                for w in absent:
                    self.assertNotIn(w, thr)
                self.assertEqual((ranking.metric, ranking.load.lid.key), (metric, load_key))
                # The shape's own point is the saturated one, never the fixed-rate load.
                self.assertEqual(row["point"], f"`{SAT_KEY}` GET `/`")

    def test_the_saturated_spread_is_wider(self):
        row, _ranking = tiny_cell(run_points())
        thr = row["throughput"]
        fix, sat = (float(x.split("%")[0]) for x in thr.split("spread (median CV of a row's repetitions): ")[1]
                    .split(" at the fixed rate against "))
        self.assertLess(fix * 10, sat)

    def test_a_fixed_rate_load_is_no_latency_curve(self):
        # One rate below every row's capacity bounds no capacity: the run's curve table skips it.
        pts = run_points()
        for p in pts:
            p["wrk"]["latency_us"]["p99"] = 900.0
        self.assertEqual(latencycurve.curve_points(pts), {})


if __name__ == "__main__":
    unittest.main()
