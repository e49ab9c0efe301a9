"""The soak's judgement (analysis/soak.py) on simulated samples, table-driven; the model
selection of `cbench soak`; and the churn client against the real server when it is built."""
import os
import random
import unittest

import common
from cbenchlib.analysis import soak
from cbenchlib.cmd import soak as soakcmd
from cbenchlib.format import serverlist
from cbenchlib.run import soak as soakrun
from cbenchlib.run import soakclient

DURATION_S = 30
WARMUP_S = 5
BASE_RSS_KB = 8000
BASE_FDS = 6
BASE_THREADS = 3


def flat(t):
    return 0.0


def samples(rss=flat, fds=flat, threads=flat, after_fds=BASE_FDS, noise_kb=0.0, seed=1):
    """A simulated soak: a baseline sample, one load sample a second (the given growth functions of
    t, with Gaussian RSS noise), one settled sample with after_fds descriptors."""
    rng = random.Random(seed)
    out = [{"phase": "baseline", "t_s": -1.0, "rss_kb": BASE_RSS_KB, "threads": BASE_THREADS, "fds": BASE_FDS}]
    for t in range(1, DURATION_S + 1):
        out.append({"phase": "load", "t_s": float(t),
                    "rss_kb": round(BASE_RSS_KB + rss(t) + rng.gauss(0, noise_kb)),
                    "threads": round(BASE_THREADS + 10 + threads(t)), "fds": round(BASE_FDS + 12 + fds(t))})
    out.append({"phase": "after", "t_s": DURATION_S + 1.2, "rss_kb": BASE_RSS_KB, "threads": BASE_THREADS,
                "fds": after_fds})
    return out


def warmup_then_flat(t):
    return 400.0 * min(t, WARMUP_S - 1)


def step_noise(t):
    """Connection churn at a sample: descriptors and threads move by one or two, no trend."""
    return (0, 1, -1, 2, 0, -2, 1)[t % 7]


CASES = [
    # label, samples, judge keywords, expected ok, {metric: expected growth}, reason fragment
    ("flat passes", samples(), {}, True, {"rss_bytes": soak.Growth.FLAT, "fds": soak.Growth.FLAT}, None),
    ("growth is detected", samples(rss=lambda t: 200.0 * t), {}, False,
     {"rss_bytes": soak.Growth.GROWS}, "rss_bytes grows"),
    ("noisy flat passes", samples(noise_kb=300.0), {}, True, {"rss_bytes": soak.Growth.FLAT}, None),
    ("a tiny but significant slope is within the bound",
     samples(rss=lambda t: 4.0 * t, noise_kb=0.5), {}, True, {"rss_bytes": soak.Growth.WITHIN_BOUND}, None),
    ("growth during the warm-up only is not judged", samples(rss=warmup_then_flat), {}, True,
     {"rss_bytes": soak.Growth.FLAT}, None),
    ("churn noise in descriptors and threads passes", samples(fds=step_noise, threads=step_noise), {}, True,
     {"fds": soak.Growth.FLAT, "threads": soak.Growth.FLAT}, None),
    ("descriptor leak is detected", samples(fds=lambda t: 1.0 * t, after_fds=BASE_FDS + DURATION_S), {}, False,
     {"fds": soak.Growth.GROWS}, "fds grows"),
    ("descriptors not back to the baseline", samples(after_fds=BASE_FDS + soak.FD_TOLERANCE + 1), {}, False,
     {"fds": soak.Growth.FLAT}, "descriptors not back to the baseline"),
    ("descriptors within the tolerance pass", samples(after_fds=BASE_FDS + soak.FD_TOLERANCE), {}, True, {}, None),
    ("falling descriptors are no growth", samples(fds=lambda t: -0.6 * t + step_noise(t)), {}, True,
     {"fds": soak.Growth.FALLS}, None),
    # The CI soak's asio-coro descriptors (12 s, 6 s warm-up): a real slope of 0.43 fd/s whose
    # interval [0.01, 0.85] straddles the bound of 0.67: neither a pass nor a leak.
    ("a slope straddling the bound is undecided, not failed",
     samples(fds=lambda t: 0.2 * t + 2 * step_noise(t)), {}, True, {"fds": soak.Growth.UNDECIDED}, None),
    ("thread leak is detected", samples(threads=lambda t: 0.5 * t), {}, False,
     {"threads": soak.Growth.GROWS}, "threads grows"),
    ("a model that died fails", samples(), {"died": "exited with status -11"}, False, {}, "died: exited"),
    ("a model that stopped answering fails", samples(), {"answered_after": False}, False, {}, "stopped answering"),
    ("a churn client with no answers fails", samples(), {"churn_requests": 0}, False, {}, "no answer at all"),
    ("a few churn surprises pass", samples(), {"churn_errors": 3, "churn_requests": 100}, True, {}, None),
    ("a share of churn errors fails", samples(), {"churn_errors": 50, "churn_requests": 1000}, False, {},
     "50 unexpected answers"),
    ("too few samples after the warm-up fail", samples()[:4], {}, False,
     {"rss_bytes": soak.Growth.TOO_FEW}, "too few samples"),
]


class Judging(unittest.TestCase):
    def test_cases(self):
        for label, simulated, keywords, ok, growths, fragment in CASES:
            with self.subTest(label):
                kw = {"churn_requests": 1000, **keywords}
                v = soak.judge("m", simulated, WARMUP_S, **kw)
                self.assertEqual(v.ok, ok, f"{label}: {v.reasons}")
                for metric, growth in growths.items():
                    self.assertIs(v.slopes[metric].growth, growth, f"{label}: {v.slopes[metric]}")
                if fragment:
                    self.assertTrue(any(fragment in r for r in v.reasons), f"{label}: {v.reasons}")
                undecided = [m for m, s in v.slopes.items() if s.growth is soak.Growth.UNDECIDED]
                self.assertEqual([n.split(" ")[0] for n in v.undecided], undecided, label)

    def test_interval_contains_the_slope(self):
        s = soak.slope("rss_bytes", [1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 22.0, 29.0, 41.0, 50.0])
        self.assertLess(s.low, s.per_s)
        self.assertLess(s.per_s, s.high)
        self.assertAlmostEqual(s.per_s, 9.9)

    def test_the_bound_is_the_step_over_a_short_window_and_the_rate_over_a_long_one(self):
        b = soak.BOUNDS["rss_bytes"]
        self.assertAlmostEqual(b.allowed_per_s(6.0), b.step / 6.0)
        self.assertEqual(b.allowed_per_s(540.0), b.per_s)
        settling = 3 * 1024 * 1024 / 60.0  # 3 MiB/min: a bounded model's arenas settling
        times = [float(t) for t in range(6, 13)]
        short = soak.slope("rss_bytes", times, [settling * t + (t % 2) * 2048 for t in times])
        self.assertIs(short.growth, soak.Growth.WITHIN_BOUND, short)
        times = [float(t) for t in range(60, 601, 10)]
        long = soak.slope("rss_bytes", times, [settling * t + (t % 20) * 100 for t in times])
        self.assertIs(long.growth, soak.Growth.GROWS, long)

    def test_dependent_samples_are_judged_by_batch_means(self):
        # A reference soak's window: 540 one-second samples of RSS that wanders (an AR(1) series,
        # each sample 0.9 of the last plus noise: memory of about 10 s, as the connections open at
        # one sample are mostly open at the next) with no trend. A line through the samples calls
        # many such windows a slope; the batch means (54 s each) hold the false alarms near the
        # nominal 5%, and a real slope of that size is still found. (Memory as long as a batch
        # would defeat batch means too: the soak's bound, not the interval, decides there.)
        times = [float(t) for t in range(60, 600)]

        def wander(rng, trend_per_s=0.0):
            x, out = 0.0, []
            for t in times:
                x = 0.9 * x + rng.gauss(0.0, 4096.0)
                out.append(8e6 + trend_per_s * t + x)
            return out

        def excludes_zero(s):
            return s.low > 0.0 or s.high < 0.0
        rng = random.Random(20261205)
        trials = 200
        batched = per_sample = found = 0
        for _ in range(trials):
            vals = wander(rng)
            batched += excludes_zero(soak.slope("rss_bytes", times, vals))
            fit = soak.sps.linregress(times, vals)
            half = soak.t975(len(times) - 2) * fit.stderr
            per_sample += abs(fit.slope) > half
            found += soak.slope("rss_bytes", times, wander(rng, trend_per_s=100.0)).low > 0.0
        self.assertGreater(per_sample / trials, 0.3, "the premise: a per-sample line over-calls slopes here")
        self.assertLessEqual(batched / trials, 0.10, "batch means: false alarms near the nominal 5%")
        self.assertGreaterEqual(found / trials, 0.8, "a slope of 100 B/s (6 KiB/min) is still found")

    def test_batch_means_keep_every_sample_in_time_order(self):
        # 23 samples, out of order: the first three batches hold 3, the other seven 2.
        t, v = soak.batch_means([3.0, 1.0, 2.0] + [float(i) for i in range(4, 24)], [30.0, 10.0, 20.0]
                                + [10.0 * i for i in range(4, 24)])
        self.assertEqual(len(t), soak.BATCHES)
        self.assertEqual(t[:4], [2.0, 5.0, 8.0, 10.5])
        self.assertEqual(v[-1], 225.0)
        self.assertEqual(v, [10.0 * x for x in t])

    def test_every_bound_states_its_reason(self):
        for metric, bound in soak.BOUNDS.items():
            with self.subTest(metric):
                self.assertGreater(bound.per_s, 0)
                self.assertGreater(len(bound.reason), 40)


def info(name, *traits):
    return serverlist.ModelInfo(name, frozenset(traits), "")


class ModelSelection(unittest.TestCase):
    KNOWN = {"a": info("a"), "floor": info("floor", serverlist.INSTRUMENT), "pool": info("pool", serverlist.BOUNDED)}

    def test_all_leaves_out_instruments(self):
        models, problem = soakcmd.select_models(self.KNOWN, "all")
        self.assertIsNone(problem)
        self.assertEqual([m.name for m in models], ["a", "pool"])

    def test_named_models_and_unknown_ones(self):
        self.assertEqual([m.name for m in soakcmd.select_models(self.KNOWN, "pool,floor")[0]], ["pool", "floor"])
        self.assertIn("unknown model(s) b", soakcmd.select_models(self.KNOWN, "a,b")[1])

    def test_bounded_models_get_a_thread_per_connection(self):
        plan = soakrun.SoakPlan("bin", None, "pool", True, 2, 10.0, 1.0)
        self.assertGreaterEqual(plan.server_threads(), soakrun.LOAD_CONNECTIONS + len(soakrun.CHURN_ROLES))
        argv = soakrun.server_argv(plan)
        self.assertEqual(argv[argv.index("--threads") + 1], str(plan.server_threads()))
        self.assertEqual(argv[argv.index("--model") + 1], "pool")


SERVER_BIN = os.environ.get("CBENCH_SERVER_BIN", os.path.join(common.REPO, "build", "cbench-server"))


@unittest.skipUnless(os.access(SERVER_BIN, os.X_OK), f"{SERVER_BIN} is not built")
class ChurnAgainstTheServer(unittest.TestCase):
    def test_one_second_of_churn_is_answered(self):
        import tempfile
        import time
        from cbenchlib.run.localhost import LocalHost
        host, tmp = LocalHost(), tempfile.mkdtemp(prefix="cbench-soak-test-")
        plan = soakrun.SoakPlan(SERVER_BIN, None, "epoll-reactor", False, 1, 1.0, 1.0)
        proc = host.spawn(soakrun.server_argv(plan), stdout=os.path.join(tmp, "server.log"), stderr="stdout")
        try:
            port = soakrun.await_ready(proc, os.path.join(tmp, "server.log"))
            client = soakclient.ChurnClient("127.0.0.1", port, list(soakclient.ROLES))
            client.start()
            time.sleep(1.0)
            counts = client.stop()
        finally:
            proc.stop(2.0)
        self.assertGreater(counts.requests_ok, 0, counts)
        self.assertGreater(counts.aborted, 0, counts)
        self.assertGreater(counts.slow_bytes, 0, counts)
        self.assertEqual(counts.errors, 0, counts.unexpected)


if __name__ == "__main__":
    unittest.main()
