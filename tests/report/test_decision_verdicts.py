"""The decision table's verdicts on constructed (simulated) runs: the declared equivalence margins
(format/metrics.py), a tie within the margin read as "equivalent", a row that misses the shape's
throughput never winning memory, paired intervals deciding where Welch's cannot, the families
ranked by their best member (analysis/families.py), and capacity ending only at a breach the next
rates confirm (analysis/latencycurve.py)."""
import os
import tempfile
import unittest

from helpers import point, write_run

from cbenchlib.analysis import decision, families, latencycurve, stats
from cbenchlib.format import metrics

BLOCKING = "/sleep?ms=10"  # the blocking-handler shape: every verdict may decide, -c64
JITTER = (0.995, 1.0, 1.005)


def pt(key, model, rps, rep, rss_kb=8000.0, block=None, processes=None, verdict="unclear"):
    p = point(key, rps, load_key="-t2 -c64", connections=64, model=model, rep=rep, verdict=verdict, path=BLOCKING)
    p["server"] = {"rss_peak_kb": rss_kb}
    p["row"]["processes"] = processes
    if block is not None:
        p["block"] = block
    return p


def blocking_cells(rows):
    """The blocking handler's (throughput, memory) cells of a run of ROWS: (key, model, req/s,
    peak RSS KiB), three repetitions each with a small spread."""
    pts = [pt(key, model, rps * j, rep, rss * j) for key, model, rps, rss in rows for rep, j in enumerate(JITTER)]
    return _cells(pts)


def _cells(pts, section="handler_blocking", shape="blocking handler"):
    with tempfile.TemporaryDirectory() as tmp:
        d = write_run(os.path.join(tmp, f"20260101T000000Z-{section.replace('_', '-')}"), pts,
                      {"scenario_name": "unit"})
        cfg = {s.section: {"run": ""} for s in decision.SHAPES}
        cfg[section.replace("_", "-")] = {"run": d}
        row = next(r for r in decision.rows(cfg, tmp, allow_synthetic=True) if r["shape"] == shape)
    return row["throughput"], row["memory"]


def _idle_memory_cell(rows):
    """The idle shape's memory cell for (key, model, bytes per idle connection) rows, each with
    JITTER's repetitions at 10,000 idle connections."""
    pts = []
    for key, model, bpc in rows:
        for rep, j in enumerate(JITTER):
            p = point(key, 0, model=model, rep=rep, verdict="unclear")
            p["load"] = {"key": "idle 10000", "idle_connections": 10000, "pipeline": 1, "path": "/"}
            p["idle"] = {"connections": 10000, "connections_held": 10000, "bytes_per_conn": bpc * (1 + (j - 1) / 100)}
            pts.append(p)
    _thr, mem = _cells(pts, "idle_connections", "many idle connections")
    return mem


class TestMargins(unittest.TestCase):
    def test_declared_margins(self):
        page = 1 + 4096 / 272
        cases = [  # label, metric, value, connections, margin ratio, words in its text
            ("req/s", "wrk.req_per_s", 6000.0, None, 1.05, "5%"),
            ("CPU per request", "derived.server_cpu_us_per_req", 11.0, None, 1.05, "5%"),
            ("idle bytes, count unknown: a page each", "idle.bytes_per_conn", 272.0, None, page,
             "one 4 KiB page per connection"),
            ("idle bytes over 100 connections: a page over them", "idle.bytes_per_conn", 272.0, 100,
             1 + 40.96 / 272, "one 4 KiB page over 100 connections"),
            ("idle bytes over 10000 connections: 5%", "idle.bytes_per_conn", 272.0, 10000, 1.05, "5%"),
            ("idle bytes: 5% is larger", "idle.bytes_per_conn", 200000.0, None, 1.05, "5%"),
            ("peak RSS at 64 connections: 5%", "server.rss_peak_kb", 8000.0, 64, 1.05, "5%"),
            ("peak RSS at 1024 connections: a page each", "server.rss_peak_kb", 8000.0, 1024, 1 + 4096 / 8000,
             "4096 KiB at 1024 connections"),
        ]
        for label, path, value, conns, want, words in cases:
            with self.subTest(label):
                ratio, text = metrics.equivalence_margin(path, value, conns)
                self.assertAlmostEqual(ratio, want)
                self.assertIn(words, text)
                self.assertTrue(metrics.get(path).margin_why)

    def test_a_metric_without_a_margin_is_never_compared_for_equivalence(self):
        with self.assertRaises(ValueError):
            metrics.equivalence_margin("server.threads", 4.0)


class TestMemoryCells(unittest.TestCase):
    def test_memory_cells(self):
        cases = [  # label, rows (key, model, req/s, peak RSS KiB), memory cell's start, words in it
            ("a 0.1% difference is equivalent",
             [("pull-loop t1", "pull-loop", 6000, 8000), ("thread-per-connection t1", "thread-per-connection", 6000, 8008)],
             "event loop and thread per connection equivalent within 5%: `pull-loop t1`", []),
            ("a row that misses the throughput cannot win memory",
             [("thread-per-connection t1", "thread-per-connection", 6000, 40000),
              ("worker-pool t64", "worker-pool", 5900, 30000), ("pull-loop t1", "pull-loop", 89, 8000)],
             "**worker pool wins**: `worker-pool t64`", ["1 slower row not judged", "6000 of `thread-per-connection t1`"]),
            ("a 30% difference wins", [("pull-loop t1", "pull-loop", 6000, 8000),
                                       ("worker-pool t64", "worker-pool", 6000, 10400)],
             "**event loop wins**: `pull-loop t1`", ["1.30 ("]),
        ]
        for label, rows, start, words in cases:
            with self.subTest(label):
                _thr, mem = blocking_cells(rows)
                self.assertTrue(mem.startswith(start), mem)
                for w in words:
                    self.assertIn(w, mem)
                if "cannot win" in label:
                    self.assertNotIn("`pull-loop t1`", mem)

    def test_an_error_bound_row_is_not_judged_on_memory(self):
        # The runner-up on memory failed its requests in every repetition (blocking-pool's four
        # threads under 64 connections): it neither blocks the cell nor wins it.
        rows = [("pull-loop t1", "pull-loop", 6000, 8000, "unclear"),
                ("worker-pool t64", "worker-pool", 6000, 10400, "unclear"),
                ("blocking-pool t4", "blocking-pool", 6000, 8100, "error-bound")]
        pts = [pt(key, model, rps * j, rep, rss * j, verdict=v)
               for key, model, rps, rss, v in rows for rep, j in enumerate(JITTER)]
        _thr, mem = _cells(pts)
        self.assertTrue(mem.startswith("**event loop wins**: `pull-loop t1`"), mem)
        self.assertIn("not judged, every repetition error-bound: `blocking-pool t4`", mem)
        self.assertNotIn("`blocking-pool t4` (", mem)

    def test_idle_memory_a_tenth_of_a_percent_apart_is_equivalent(self):
        mem = _idle_memory_cell((("epoll-reactor t1", "epoll-reactor", 271.6), ("io-uring t1", "io-uring", 272.0),
                                 ("thread-per-connection t1", "thread-per-connection", 13400.0)))
        self.assertTrue(mem.startswith("event loop and completion equivalent within 5%"), mem)
        self.assertNotIn("**", mem)

    def test_idle_memory_a_tenfold_difference_is_no_tie(self):
        # A page per connection (4096 B) around 320 B would call 4,000 B "equivalent": the margin
        # of a figure measured over 10,000 connections is a page over them, so 5% decides here.
        mem = _idle_memory_cell((("epoll-reactor t1", "epoll-reactor", 320.0), ("fiber t1", "fiber", 4000.0)))
        self.assertTrue(mem.startswith("**event loop wins**"), mem)


class TestPairedIntervals(unittest.TestCase):
    # Each block drifts the whole machine by its factor; the first row is 6% faster within a block.
    DRIFT = (0.7, 1.0, 1.4, 0.85, 1.2)

    def run_pts(self, with_blocks):
        pts = []
        for b, f in enumerate(self.DRIFT):
            for key, model, rps, noise in (("blocking-pool t64", "blocking-pool", 6360, 1.002),
                                           ("worker-pool t64", "worker-pool", 6000, 0.998 if b % 2 else 1.001)):
                pts.append(pt(key, model, rps * f * noise, b, block=b if with_blocks else None))
        return pts

    def test_paired_decides_where_welch_cannot(self):
        cases = [  # label, blocks recorded, the throughput cell's start
            ("paired by block", True, "**thread per connection wins**: `blocking-pool t64`"),
            ("no blocks: Welch", False, "undecided (the interval includes 1"),
        ]
        for label, with_blocks, start in cases:
            with self.subTest(label):
                thr, _mem = _cells(self.run_pts(with_blocks))
                self.assertTrue(thr.startswith(start), thr)

    def test_the_two_intervals(self):
        a = [6360 * f for f in self.DRIFT]
        b = [6000 * f * (1.001 if i % 2 else 0.999) for i, f in enumerate(self.DRIFT)]
        welch = stats.ratio_ci(a, b)
        paired = stats.ratio_ci(a, b, blocks_num=list(range(5)), blocks_den=list(range(5)))
        self.assertEqual((welch.method, paired.method), ("welch-t", "paired-t"))
        self.assertLess(welch.lo, 1.0)
        self.assertGreater(paired.lo, 1.05)


def entry(key, family, median, spread=0.002, n=4):
    vals = tuple(median * (1 + spread * (i - (n - 1) / 2)) for i in range(n))
    return families.Entry(key, family, vals, (None,) * n)


class TestFamilies(unittest.TestCase):
    def test_family_of(self):
        cases = [  # model, processes, family
            ("epoll-reactor", None, families.EVENT_LOOP), ("thread-per-connection", 1, families.THREAD_PER_CONNECTION),
            ("blocking-pool", None, families.THREAD_PER_CONNECTION), ("worker-pool", None, families.WORKER_POOL),
            ("selector-pool", None, families.WORKER_POOL), ("fiber", None, families.FIBERS),
            ("io-uring", None, families.COMPLETION), ("multi-reactor", 4, families.PROCESSES),
            ("floor", None, None), ("floor-uring", 4, None), ("a-new-model", None, families.UNCLASSIFIED),
        ]
        for model, procs, want in cases:
            with self.subTest(model=model, processes=procs):
                self.assertEqual(families.family_of(model, procs), want)

    def test_every_family_is_declared(self):
        self.assertEqual(set(families.MODEL_FAMILY.values()) | {families.PROCESSES}, set(families.FAMILIES))

    def test_ranking(self):
        cases = [  # label, entries, higher is better, order of families, next verdict, worst verdict, equivalent
            ("best member ranks its family",
             [entry("a", "event loop", 100), entry("b", "event loop", 50), entry("c", "worker pool", 80),
              entry("d", "fibers", 60)], True,
             ["event loop", "worker pool", "fibers"], families.WINS, families.WINS, ()),
            ("a tie within the margin is an answer",
             [entry("a", "event loop", 100), entry("c", "worker pool", 99.9), entry("d", "fibers", 40)], True,
             ["event loop", "worker pool", "fibers"], families.EQUIVALENT, families.WINS, ("c",)),
            ("lower is better",
             [entry("a", "event loop", 8000), entry("t", "thread per connection", 40000)], False,
             ["event loop", "thread per connection"], families.WINS, None, ()),
            ("too wide to say", [entry("a", "event loop", 100, 0.4), entry("c", "worker pool", 97, 0.4)], True,
             ["event loop", "worker pool"], families.UNDECIDED, None, ()),
        ]
        for label, entries, higher, order, nxt, worst, eq in cases:
            with self.subTest(label):
                r = families.rank(entries, higher, 1.05)
                self.assertEqual([e.family for e in r.families], order)
                self.assertEqual(r.next.word, nxt)
                self.assertEqual(r.worst.word if r.worst else None, worst)
                self.assertEqual(r.equivalent, eq)

    def test_instruments_are_never_ranked_and_processes_are_a_family(self):
        rows = [("floor t1", "floor", 9000, 4000), ("pull-loop t1", "pull-loop", 6000, 8000),
                ("pull-loop t1 p4", "pull-loop", 7000, 30000)]
        pts = [pt(key, model, rps * j, rep, rss * j, processes=4 if key.endswith("p4") else None)
               for key, model, rps, rss in rows for rep, j in enumerate(JITTER)]
        thr, _mem = _cells(pts)
        self.assertTrue(thr.startswith("**processes wins**: `pull-loop t1 p4`"), thr)
        self.assertNotIn("floor", thr)


def curve(*pts):
    return [{"rate": r, "fraction": None, "reps": 1, "overloaded": False, "generator_bound": False,
             "achieved": r, "p50": p99 / 4, "p99": p99, "p99.9": p99 * 2} for r, p99 in pts]


OK, BAD = 1e3, 20e3  # p99 under and over a 10 ms target


class TestCapacity(unittest.TestCase):
    def test_capacity_needs_the_next_rates_to_confirm_a_breach(self):
        cases = [  # label, curve, capacity, bracket high, words in its text
            ("a single breach then two passes is discounted",
             curve((100, OK), (200, BAD), (300, OK), (400, OK), (500, BAD)), 400, 500, "single breach at 200"),
            ("a breach confirmed by the next rate ends it",
             curve((100, OK), (200, BAD), (300, BAD), (400, OK), (500, OK)), 100, 200, "in [100, 200)"),
            ("one pass after a breach does not discount it", curve((100, OK), (200, BAD), (300, OK)), 100, 200, ""),
            ("a breach at the last rate ends it", curve((100, OK), (200, OK), (300, BAD)), 200, 300, ""),
            ("discounted, then every rate passes", curve((100, OK), (200, BAD), (300, OK), (400, OK)), 400, None,
             "no breach confirmed"),
            ("the lowest rate fails for good", curve((100, BAD), (200, BAD)), None, 100, "lowest tested rate failed"),
            ("every rate passes", curve((100, OK), (200, OK)), 200, None, "every tested rate passed"),
        ]
        for label, entries, want, high, words in cases:
            with self.subTest(label):
                c = latencycurve.capacity(entries, 10e3)
                self.assertEqual((c["capacity"], c["high"]), (want, high))
                self.assertIn(words, c["text"])


if __name__ == "__main__":
    unittest.main()
