"""Design findings (results/findings/design.json, scripts/cbenchlib/design.py) on synthetic runs:
the declarations parse, handler-blocking's points are sized from the expected service time, and
each verdict word (supported, contradicted, equivalent, undecided with repetitions) comes out of
data built to give it. Simulated data only; no timing."""
import json
import os
import tempfile
import unittest

from helpers import REPO, point, write_run

from cbenchlib.analysis import design, findings, sequential
from cbenchlib.render import designtext
from cbenchlib.format import scenario
from cbenchlib.analysis.runload import load_run


def pt(key, model, rps, path, rep, threads=1, processes=None, requests=None, conns=64, rss_kb=8000,
       verdict="unclear", timeouts=0):
    p = point(key, rps, load_key=f"-t2 -c{conns}", connections=conns, model=model, threads=threads,
              rep=rep, verdict=verdict, path=path)
    p["row"]["processes"] = processes
    p["block"] = rep
    p["wrk"]["requests"] = requests if requests is not None else int(rps * 5)
    p["wrk"]["errors"] = {"timeout": timeouts}
    p["server"] = {"rss_peak_kb": rss_kb, "threads": threads}
    p["derived"] = {"ctx_switches_per_req": 1.0}
    return p


def run_of(tmp, name, points, scenario_name):
    return load_run(write_run(os.path.join(tmp, name), points, {"scenario_name": scenario_name}))


def decl(fid):
    return next(d for d in design.load_declarations() if d["id"] == fid)


class TestDeclarations(unittest.TestCase):
    def test_every_finding_names_a_scenario_that_exists(self):
        for d in design.load_declarations():
            with self.subTest(d["id"]):
                self.assertTrue(os.path.exists(os.path.join(REPO, "scenarios", d["scenario"] + ".toml")))

    def test_concurrency_limit(self):
        cases = [  # model, threads, processes, connections, limit
            ("pull-loop", 1, None, 64, 1), ("worker-pool", 8, None, 64, 8), ("blocking-pool", 64, None, 64, 64),
            ("thread-per-connection", 1, None, 64, 64), ("blocking-pool", 1, 8, 64, 8),
            ("blocking-pool", 128, None, 64, 64), ("thread-per-connection", 1, None, 16, 16)]
        for model, t, p, c, want in cases:
            with self.subTest(model=model, t=t, p=p, c=c):
                self.assertEqual(design.concurrency_limit(model, t, p, c), want)

    def test_handler_blocking_points_are_sized_from_the_service_time(self):
        sc = scenario.load_file(os.path.join(REPO, "scenarios", "handler-blocking.toml"))
        need = decl("B1")["min_requests_per_connection"]
        for p in sc.points():
            ms = design.sleep_ms(p.load.path)
            conns = p.load.connections
            limit = design.concurrency_limit(p.row.model, p.row.threads, p.row.processes, conns)
            per_conn, wait_s = design.expected_sizing(limit, ms, conns, sc.settings.duration_s)
            with self.subTest(point=p.id):
                self.assertGreaterEqual(per_conn, need)
                self.assertGreaterEqual(sc.settings.timeout_s, 2 * wait_s)

    def test_handler_blocking_fits_its_time_budget(self):
        # Seven minutes for the blocking points, plus the fixed-rate load's pilots and points on
        # the four limit-64 rows (about 1.3 minutes): eight and a half in all.
        from cbenchlib.cmd import sweep as cli_sweep
        from cbenchlib.plan import pilots
        sc = scenario.load_file(os.path.join(REPO, "scenarios", "handler-blocking.toml"))
        total = sum(cli_sweep.estimate_s(p, sc.settings, None) for p in sc.points()) * sc.settings.repetitions
        total += pilots.plan_pilots(sc.points()).estimate_s(sc.settings, None)
        self.assertLessEqual(total, 8.5 * 60)

    def test_sizing_rejects_a_single_loop_at_100_ms(self):
        per_conn, _ = design.expected_sizing(1, 100, 64, 5)
        self.assertLess(per_conn, 1)


class TestBlocking(unittest.TestCase):
    def judge(self, tpc, loop, reqs=None):
        with tempfile.TemporaryDirectory() as tmp:
            pts = []
            for rep, (a, b) in enumerate(zip(tpc, loop)):
                pts.append(pt("thread-per-connection", "thread-per-connection", a, "/sleep?ms=10", rep, rss_kb=40000))
                pts.append(pt("pull-loop", "pull-loop", b, "/sleep?ms=10", rep, requests=reqs))
            run = run_of(tmp, "20260101T000000Z-handler-blocking", pts, "handler-blocking")
            res = design.judge(run, decl("B1"))
            text = designtext.render(run, [decl("B1")])
        return res, text

    def test_verdicts(self):
        cases = [  # name, tpc req/s, loop req/s, expected word
            ("bound reached", [6100, 6200, 6150], [99, 98, 99.5], findings.SUPPORTED),
            ("reversed", [90, 91, 90.5], [99, 98, 99.5], findings.CONTRADICTED),
            ("one repetition", [6100], [99], findings.UNDECIDED),
            ("overlapping", [100, 140, 70], [99, 120, 80], findings.UNDECIDED),
        ]
        for name, a, b, want in cases:
            with self.subTest(name):
                res, text = self.judge(a, b)
                self.assertEqual(res.comparisons[0].decision.word, want)
                self.assertEqual(res.comparisons[0].bound, 64)
                self.assertIn("| 64 (6400 against 100 req/s) |", text)

    def test_failed_requests_enter_only_on_the_side_the_claim_says_is_higher(self):
        # B1 declares "conservative_errors": a starving pool's timed-out requests are not counted,
        # so its req/s understates it; it enters as side a (claim a/b > 1) and never as side b.
        cases = [  # name, a's (model, threads, req/s, verdict, timeouts), b's, expected word, entered
            ("starving pool as side a: judged on what it served",
             ("blocking-pool", 8, [790, 800, 795], "error-bound", 56), ("pull-loop", 1, [99, 98, 99.5], "unclear", 0),
             findings.SUPPORTED, True),
            ("the single loop erroring as side b: left out, never entered",
             ("thread-per-connection", 1, [6100, 6200, 6150], "unclear", 0),
             ("pull-loop", 1, [99, 98, 99.5], "error-bound", 3), findings.UNDECIDED, False),
            ("the tie sub-claim: errors never enter", ("worker-pool", 1, [99, 98, 99.5], "error-bound", 2),
             ("pull-loop", 1, [99, 98, 99.5], "unclear", 0), findings.UNDECIDED, False),
        ]
        for name, (ma, ta, ra, va, toa), (mb, tb, rb, vb, tob), want, entered in cases:
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                pts = []
                for rep in range(3):
                    pts.append(pt(ma, ma, ra[rep], "/sleep?ms=10", rep, threads=ta, verdict=va, timeouts=toa))
                    pts.append(pt(mb, mb, rb[rep], "/sleep?ms=10", rep, threads=tb, verdict=vb, timeouts=tob))
                run = run_of(tmp, "20260101T000000Z-handler-blocking", pts, "handler-blocking")
                res = design.judge(run, decl("B1"))
                text = designtext.render(run, [decl("B1")])
                c = next(c for c in res.comparisons if c.a.model == ma)
                self.assertEqual(c.decision.word, want, c.decision.text())
                self.assertEqual(bool(c.entered), entered)
                self.assertEqual("entered on the side the claim says is higher" in text, entered)
                # the sequential design reads the same repetitions as the verdict
                seq = next(s for s in sequential.design_comparisons(run, "handler-blocking")[0]
                           if s.name.endswith(c.name))
                self.assertEqual(seq.have(), 3 if entered else 0)

    def test_conservative_errors_is_refused_where_it_could_bias(self):
        base = {"id": "X", "title": "t", "claim": "c", "scenario": "handler-blocking", "path": "/",
                "comparisons": [{"a": {"model": "m"}, "b": {"model": "n"}}], "conservative_errors": "why"}
        cases = [("not req/s", dict(base, kind="ratio", metric="rss_mib")),
                 ("empty reason", dict(base, kind="ratio", metric="req_per_s", conservative_errors=" ")),
                 ("a convergence finding", dict(base, kind="convergence", metric="req_per_s", margin=1.1))]
        for name, d in cases:
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "design.json")
                with open(path, "w") as f:
                    json.dump({"findings": [d]}, f)
                with self.assertRaisesRegex(design.DeclarationError, "conservative_errors"):
                    design.load_declarations(path)

    def test_undecided_names_the_repetitions_needed(self):
        res, _ = self.judge([104, 97, 112, 100], [99, 106, 97, 103])
        self.assertEqual(res.overall.word, findings.UNDECIDED)
        self.assertIn("repetitions", res.comparisons[0].decision.reason)

    def test_the_section_of_its_scenario_renders_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            pts = [pt(k, k, v, "/sleep?ms=10", rep) for rep in range(2)
                   for k, v in (("thread-per-connection", 6000 + rep), ("pull-loop", 99 + rep))]
            run = run_of(tmp, "20260101T000000Z-handler-blocking", pts, "handler-blocking")
            other = run_of(tmp, "20260101T000000Z-unit", pts, "unit")
            self.assertIn("Design finding B1", designtext.render_for_run(run))
            self.assertNotIn("Design finding C1", designtext.render_for_run(run))
            self.assertEqual(designtext.render_for_run(other), "")

    def test_too_few_requests_per_connection_decide_nothing(self):
        res, text = self.judge([6100, 6200], [99, 98], reqs=64 * 2)
        self.assertEqual(res.overall.word, findings.UNDECIDED)
        self.assertIn("requests per connection", text)


class TestConvergence(unittest.TestCase):
    def test_threshold_is_the_cost_from_which_all_are_equivalent(self):
        table = {1: (100000, 60000), 10: (60000, 45000), 100: (9500, 9400), 1000: (990, 985)}
        with tempfile.TemporaryDirectory() as tmp:
            pts = []
            for us, (best, worst) in table.items():
                for rep, j in enumerate((0.995, 1.0, 1.005)):
                    pts.append(pt("pull-loop", "pull-loop", best * j, f"/spin?us={us}", rep, verdict="server-bound"))
                    pts.append(pt("blocking-pool t4", "blocking-pool", worst * j, f"/spin?us={us}", rep, threads=4,
                                  verdict="server-bound"))
            run = run_of(tmp, "20260101T000000Z-handler-cpu", pts, "handler-cpu")
            res = design.judge(run, decl("C1"))
        self.assertEqual(res.threshold, 100)
        self.assertEqual(res.overall.word, findings.SUPPORTED)
        self.assertEqual([p.decision.word for p in res.points][:2], [findings.CONTRADICTED, findings.CONTRADICTED])

    def test_client_bound_points_decide_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            pts = [pt(k, k, 1000, "/spin?us=1000", rep, verdict="client-bound")
                   for k in ("pull-loop", "asio") for rep in range(3)]
            run = run_of(tmp, "20260101T000000Z-handler-cpu", pts, "handler-cpu")
            res = design.judge(run, decl("C1"))
        self.assertEqual(res.overall.word, findings.UNDECIDED)
        self.assertIn("client-bound", res.overall.reason)


if __name__ == "__main__":
    unittest.main()


class TestFloorCosts(unittest.TestCase):
    """floor-costs's findings: an instrument row as a side, loads chosen by pipeline and generator,
    a threshold against a declared value, and one row compared with itself under two generators."""

    @staticmethod
    def cost_pt(key, model, rep, cpu, kind="model", pipeline=1, generator="wrk", syscalls=2.0, client_s=None):
        wrk_threads = 1 if pipeline > 1 else 2
        lk = f"-t{wrk_threads} -c64" + (f" -p{pipeline}" if pipeline > 1 else "") + \
            (" [cbench-load]" if generator != "wrk" else "")
        p = point(key, 80000, load_key=lk, connections=64, model=model, rep=rep, kind=kind)
        p["load"].update(pipeline=pipeline, wrk_threads=wrk_threads, generator=generator)
        p["block"] = rep
        p["wrk"]["requests"] = 240000
        p["derived"] = {"server_cpu_us_per_req": cpu, "syscalls_per_req": syscalls, "ctx_switches_per_req": 0.01}
        if client_s is not None:
            p["client"] = {"cpu_user_s": client_s * 0.1, "cpu_sys_s": client_s * 0.9}
        return p

    def run_of(self, tmp, pts):
        return run_of(tmp, "20260101T000000Z-floor-costs", pts, "floor-costs")

    def test_model_against_the_floor_instrument_at_each_load(self):
        with tempfile.TemporaryDirectory() as tmp:
            pts = []
            for rep in range(4):
                j = 0.05 * (rep % 2)
                pts += [self.cost_pt("floor t1", "floor", rep, 9.0 + j, kind="instrument"),
                        self.cost_pt("floor t1", "floor", rep, 3.0 + j, kind="instrument", pipeline=16),
                        self.cost_pt("libuv t1", "libuv", rep, 7.0 + j),              # below the floor
                        self.cost_pt("libuv t1", "libuv", rep, 3.9 + j, pipeline=16)]  # 1.3x the floor
            run = self.run_of(tmp, pts)
            fc1, fc2 = design.judge(run, decl("FC1")), design.judge(run, decl("FC2"))
            self.assertEqual([c.name for c in fc1.comparisons], ["libuv t1 / floor t1"])
            self.assertEqual(fc1.comparisons[0].decision.word, findings.CONTRADICTED)
            self.assertAlmostEqual(fc2.comparisons[0].ci.ratio, 1.3, places=1)
            self.assertEqual(fc2.comparisons[0].decision.word, findings.CONTRADICTED)
            self.assertIn("pipeline 16", designtext.render(run, [decl("FC2")]))

    def test_threshold_against_a_declared_value(self):
        cases = [("below", [0.40, 0.42, 0.41, 0.43], findings.SUPPORTED),
                 ("above", [0.64, 0.66, 0.65, 0.63], findings.CONTRADICTED),
                 ("straddles", [0.40, 0.60, 0.45, 0.58], findings.UNDECIDED)]
        for name, vals, want in cases:
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                pts = [self.cost_pt("io-uring t1", "io-uring", rep, 8.0, syscalls=v) for rep, v in enumerate(vals)]
                run = self.run_of(tmp, pts)
                res = design.judge(run, decl("FC3"))
                self.assertEqual(res.overall.word, want)
                self.assertIn("| row / declared value |", designtext.render(run, [decl("FC3")]))

    def test_two_rows_of_one_model_are_told_apart_by_their_flags(self):
        # The default io-uring row and its batched wait (--uring-min-wait-us 20) in one run: FC3
        # judges only the default (its spec says extra_args []), FC6 only the batched row.
        batched = ["--uring-min-wait-us", "20"]
        with tempfile.TemporaryDirectory() as tmp:
            pts = []
            for rep in range(4):
                j = 0.01 * rep
                pts.append(self.cost_pt("io-uring t1", "io-uring", rep, 9.0, syscalls=0.75 + j))
                b = self.cost_pt("io-uring t1 " + " ".join(batched), "io-uring", rep, 8.5, syscalls=0.10 + j)
                b["row"]["extra_args"] = batched
                pts.append(b)
            run = self.run_of(tmp, pts)
            fc3, fc6 = design.judge(run, decl("FC3")), design.judge(run, decl("FC6"))
            self.assertEqual([c.name for c in fc3.comparisons], ["io-uring t1 / 0.5"])
            self.assertEqual(fc3.overall.word, findings.CONTRADICTED)
            self.assertEqual([c.name for c in fc6.comparisons], ["io-uring t1 --uring-min-wait-us 20 / 0.5"])
            self.assertEqual(fc6.overall.word, findings.SUPPORTED)
            fc4 = design.judge(run, decl("FC4"))
            self.assertTrue(all(c.a.extra_args == () for c in fc4.comparisons))

    def test_one_row_under_two_generators(self):
        with tempfile.TemporaryDirectory() as tmp:
            pts = []
            for rep in range(4):
                j = 0.01 * rep
                pts += [self.cost_pt("epoll-reactor t1", "epoll-reactor", rep, 9.0, client_s=2.9 + j),
                        self.cost_pt("epoll-reactor t1", "epoll-reactor", rep, 9.0, generator="cbench-load",
                                     client_s=1.45 + j)]
            run = self.run_of(tmp, pts)
            res = design.judge(run, decl("FC5"))
            self.assertEqual(len(res.comparisons), 1)
            self.assertAlmostEqual(res.comparisons[0].ci.ratio, 0.5, places=2)
            self.assertEqual(res.overall.word, findings.SUPPORTED)
            self.assertIn("generator cbench-load", res.comparisons[0].name)
