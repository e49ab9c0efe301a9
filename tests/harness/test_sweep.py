"""The sweep end to end against a scripted fake server: faults, Ctrl-C, resume, the lock,
missing tools. Every test checks that no process it caused is left behind."""
import fcntl
import re
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from common import private_fakes, CBENCH, FIXTURES, PYTHON, REPO, processes_matching, run_cbench
from cbenchlib.format import resultio
from cbenchlib.format import runlogs

SCEN = os.path.join(FIXTURES, "scenarios")


def load_run(out):
    runs = [os.path.join(out, d) for d in os.listdir(out)]
    assert len(runs) == 1, runs
    run = runs[0]
    with open(os.path.join(run, "meta.json")) as f:
        meta = json.load(f)
    points, bad, _ = resultio.read_points(os.path.join(run, "points.jsonl"))
    return run, meta, points, bad


class SweepAgainstFakeServer(unittest.TestCase):
    def setUp(self):
        private_fakes(self)  # private fake server and wrk link: the orphan check knows them
        self.lock = os.path.join(self.tmp, "bench.lock")

    def tearDown(self):
        left = processes_matching(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def args(self, *extra, lock=None):
        # The machine-wide lock by default: these sweeps run wrk, and must not disturb (or be
        # disturbed by) a benchmark running on this machine.
        return ["sweep", "--server-bin", self.server, "--wrk-bin", self.wrk, "--out", self.out,
                "--lock-file", lock or "/tmp/cbench-bench.lock", "--lock-timeout", "600"] + list(extra)

    def test_faults_become_failed_points_and_the_sweep_goes_on(self):
        r = run_cbench(self.args(os.path.join(SCEN, "faults.toml")), timeout=700)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        run, meta, points, bad = load_run(self.out)
        self.assertEqual(bad, 0)
        by = {(p["row"]["model"], p["load"]["key"]): p for p in points}
        self.assertEqual(len(points), 9, sorted(by))
        ok = by[("fake-ok", "-t1 -c2")]
        self.assertEqual(ok["status"], "ok", ok["failure"])
        self.assertGreater(ok["wrk"]["req_per_s"], 0)
        self.assertIn(ok["verdict"], ("server-bound", "client-bound", "both-saturated", "unclear"))
        self.assertGreater(ok["server"]["cpu_user_s"] + ok["server"]["cpu_sys_s"], 0)
        self.assertEqual(ok["commands"]["client"][:3], ["taskset", "-c", "1"])
        self.assertEqual(ok["commands"]["server"][:3], ["taskset", "-c", "0"])
        self.assertTrue(runlogs.exists(run, ok["logs"]["wrk"]))  # in the run's logs.tar.xz
        idle = by[("fake-forks", "idle 20")]
        self.assertEqual(idle["status"], "ok", idle["failure"])
        self.assertEqual(idle["idle"]["connections_held"], 20)
        cases = [
            (("fake-crash", "-t1 -c2"), "server exited with status 3", "cbench-server ready"),
            (("fake-never-ready", "-t1 -c2"), "no readiness line within 1 s", "starting, slowly"),
            (("fake-exit", "-t1 -c2"), "exited with status 1 before it was ready", "scripted failure"),
            (("fake-500", "-t1 -c2"), "answered 500", "cbench-server ready"),
        ]
        for key, reason, tail in cases:
            with self.subTest(key):
                p = by[key]
                self.assertEqual(p["status"], "failed")
                self.assertIn(reason, p["failure"]["reason"])
                self.assertIn(tail, p["failure"]["server_output_tail"])
                self.assertEqual(p["verdict"], "unclear")
        for load in ("-t1 -c2", "idle 20"):
            p = by[("not-built-yet", load)]
            self.assertTrue(p["failure"]["skipped"])
            self.assertIn("not in `cbench-server --list`", p["failure"]["reason"])
        self.assertIsNotNone(meta["ended_utc"])
        with open(os.path.join(SCEN, "faults.toml")) as f:
            self.assertEqual(meta["scenario_text"], f.read())
        self.assertEqual(meta["harness"]["skipped_models"], ["not-built-yet"])
        self.assertIn("FAILED", r.stdout)
        self.assertIn("ETA", r.stdout)

    def test_interrupt_then_resume(self):
        proc = subprocess.Popen([PYTHON, CBENCH] + self.args(os.path.join(SCEN, "interrupt.toml")),
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        try:
            deadline = time.monotonic() + 700  # may first wait for the machine-wide lock
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                lines.append(line)
                if re.match(r"^\[\s*2/", line) or not line:
                    break
            time.sleep(0.4)  # into the next point
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 130, "".join(lines) + out + err)
        self.assertIn("interrupted by SIGINT", err)
        self.assertIn("--resume", err)
        self.assertEqual(processes_matching(self.tmp), [])
        run, meta, points, bad = load_run(self.out)
        self.assertEqual(bad, 0)
        self.assertEqual(meta["interrupted"]["signal"], "SIGINT")
        self.assertIsNone(meta["ended_utc"])
        recorded = len(points)
        self.assertGreaterEqual(recorded, 2)
        self.assertLess(recorded, 9)
        # an interrupted run keeps its logs loose; only a finished one is archived (runlogs)
        self.assertTrue(os.path.isdir(os.path.join(run, "logs")))
        self.assertFalse(os.path.exists(os.path.join(run, runlogs.ARCHIVE)))

        # A crash can leave half a line; resume cuts it off and runs only what is missing.
        with open(os.path.join(run, "points.jsonl"), "a") as f:
            f.write('{"point_id": "torn')
        r = run_cbench(self.args("--resume", run), timeout=700)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("cut a torn last line", r.stdout)
        run2, meta, points, bad = load_run(self.out)
        self.assertEqual(bad, 0)
        pairs = [(p["point_id"], p["rep"]) for p in points]
        self.assertEqual(len(pairs), 9)  # 3 points x 3 repetitions, each exactly once
        self.assertEqual(len(set(pairs)), 9)
        self.assertEqual(len(meta["resumed_utc"]), 1)
        self.assertIsNotNone(meta["ended_utc"])
        # finished: every point's logs, from before and after the interruption, in one archive
        self.assertFalse(os.path.exists(os.path.join(run, "logs")))
        logs = [rel for p in points for rel in p["logs"].values() if isinstance(rel, str)]
        self.assertGreaterEqual(len(logs), 9)
        for rel in logs:
            self.assertTrue(runlogs.exists(run, rel), rel)
        with open(os.path.join(run, runlogs.ARCHIVE), "rb") as f:
            archived = f.read()
        # resuming a finished run unpacks its archive and packs it again: the same bytes
        r = run_cbench(self.args("--resume", run), timeout=700)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(run, runlogs.ARCHIVE), "rb") as f:
            self.assertEqual(f.read(), archived)
        self.assertEqual(len(load_run(self.out)[2]), 9)
        # Repetitions are spread: no point's repetitions all in one stretch of the order.
        seqs = sorted((p["seq"], p["point_id"]) for p in points)
        first_round = {pid for s, pid in seqs[:3]}
        self.assertEqual(len(first_round), 3)

    def test_sigterm_stops_everything(self):
        proc = subprocess.Popen([PYTHON, CBENCH] + self.args(os.path.join(SCEN, "interrupt.toml")),
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 700
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if line.startswith("run directory:") or not line:
                    break
            time.sleep(0.3)  # inside the first point: its server (and maybe wrk) are running
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM, out + err)
        self.assertIn("interrupted by SIGTERM", err)
        self.assertEqual(processes_matching(self.tmp), [])
        run, meta, points, bad = load_run(self.out)
        self.assertEqual(bad, 0)
        self.assertEqual(meta["interrupted"]["signal"], "SIGTERM")

    def test_lock_held_elsewhere(self):
        with open(self.lock, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write("the test\n")
            f.flush()
            r = run_cbench(self.args(os.path.join(SCEN, "faults.toml"), "--lock-timeout", "0.5",
                                     lock=self.lock), timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("waiting for the benchmark lock", r.stdout)
        self.assertIn("still held", r.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_missing_wrk_and_missing_server(self):
        r = run_cbench(["sweep", os.path.join(SCEN, "faults.toml"), "--server-bin", self.server,
                        "--wrk-bin", os.path.join(self.tmp, "no-wrk"), "--out", self.out,
                        "--lock-file", self.lock], timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("wrk not found", r.stderr)
        r = run_cbench(["sweep", os.path.join(SCEN, "faults.toml"), "--server-bin",
                        os.path.join(self.tmp, "nothing"), "--out", self.out, "--lock-file", self.lock],
                       timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("server binary not found", r.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_dry_run_lists_points_and_estimate(self):
        r = run_cbench(self.args(os.path.join(SCEN, "faults.toml"), "--dry-run"), timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("9 points x 1 repetition = 9 runs", r.stdout)
        self.assertIn("estimated", r.stdout)
        self.assertIn("not-built-yet", r.stdout)
        self.assertFalse(os.path.exists(self.out))


class ResultFiles(unittest.TestCase):
    """The torn-line rule of resultio (results/SCHEMA.md): one rule for --resume and every reader."""

    A = '{"point_id": "a", "rep": 0}\n'
    B = '{"point_id": "b", "rep": 0}\n'
    # label, file content, records read, torn, error (None: readable)
    CASES = [
        ("empty", "", 0, False, None),
        ("whole lines", A + B, 2, False, None),
        ("blank lines skipped", A + "\n  \n" + B, 2, False, None),
        ("torn mid-object", A + B[:10], 1, True, None),
        ("torn after a complete object: no newline yet", A + B[:-1], 1, True, None),
        ("torn first and only line", B[:5], 0, True, None),
        ("torn garbage from a crash", A + "\0\0\0", 1, True, None),
        ("malformed complete line in the middle", A + "{oops\n" + B, 0, False, r":2: malformed line"),
        ("malformed complete last line", A + "{oops\n", 0, False, r":2: malformed line"),
        ("a complete line that is not an object", A + "[1, 2]\n", 0, False, r":2: not a JSON object"),
    ]

    def test_the_rule_table(self):
        from cbenchlib.analysis import runload
        for label, text, n, torn, error in self.CASES:
            with self.subTest(label), tempfile.TemporaryDirectory() as d:
                w = resultio.RunWriter(d)
                w.write_meta({"schema": 1})
                with open(w.points_path, "w") as f:
                    f.write(text)
                if error:
                    with self.assertRaisesRegex(resultio.ResultsFormatError, error):
                        resultio.read_points(w.points_path)
                    # Every reader has the same rule: the run cannot be loaded, and resume refuses.
                    with self.assertRaisesRegex(runload.RunError, error):
                        runload.load_run(d)
                    with self.assertRaisesRegex(resultio.ResultsFormatError, error):
                        w.repair_tail()
                    continue
                got = resultio.read_points(w.points_path)
                self.assertEqual((len(got.points), got.torn), (n, torn))
                run = runload.load_run(d)
                self.assertEqual((len(run.points), run.torn_line), (n, torn))
                # --resume cuts exactly the torn part; what it keeps reads back unchanged.
                self.assertEqual(w.repair_tail(), torn)
                self.assertFalse(w.repair_tail())
                after = resultio.read_points(w.points_path)
                self.assertEqual((after.points, after.torn), (got.points, False))
                w.append_point({"point_id": "c", "rep": 0})
                self.assertEqual(len(resultio.read_points(w.points_path).points), n + 1)

    def test_torn_tail_is_skipped_by_readers_and_cut_by_resume(self):
        with tempfile.TemporaryDirectory() as d:
            w = resultio.RunWriter(d)
            w.append_point({"point_id": "a", "rep": 0})
            w.append_point({"point_id": "a", "rep": 1})
            with open(w.points_path, "a") as f:
                f.write('{"point_id": "b", "re')
            points, torn, _ = resultio.read_points(w.points_path)
            self.assertEqual((len(points), torn), (2, True))
            self.assertEqual(resultio.completed(points), {("a", 0), ("a", 1)})
            self.assertTrue(w.repair_tail())
            self.assertFalse(w.repair_tail())
            w.append_point({"point_id": "b", "rep": 0})
            points, torn, _ = resultio.read_points(w.points_path)
            self.assertEqual((len(points), torn), (3, False))

    def test_only_resultio_reads_points_jsonl(self):
        # One owner of the format: no other module opens points.jsonl itself.
        lib = os.path.join(REPO, "scripts", "cbenchlib")
        for name in sorted(os.listdir(lib)):
            if not name.endswith(".py") or name == "resultio.py":
                continue
            with open(os.path.join(lib, name)) as f:
                text = f.read()
            with self.subTest(name):
                self.assertNotIn('"points.jsonl"', text)
                self.assertNotIn("def read_points", text)

    def test_meta_is_replaced_atomically(self):
        with tempfile.TemporaryDirectory() as d:
            w = resultio.RunWriter(d)
            w.write_meta({"schema": 1, "ended_utc": None})
            w.update_meta(ended_utc="x")
            self.assertEqual(resultio.read_json(w.meta_path), {"schema": 1, "ended_utc": "x"})
            self.assertEqual(sorted(os.listdir(d)), ["logs", "meta.json"])


if __name__ == "__main__":
    unittest.main()


class PeerHook(unittest.TestCase):
    def test_peer_command_and_config_are_rendered(self):
        from cbenchlib.run import runner
        from cbenchlib.format import scenario
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "logs"))
            tpl = os.path.join(d, "peer.conf.in")
            with open(tpl, "w") as f:
                f.write("worker_processes $threads;\nlisten $host:$port;\nlocation / { return 200; }\n")
            text = f"""
[[rows]]
kind = "peer"
model = "nginx"
threads = 2
command = ["nginx", "-c", "$config", "-g", "daemon off;"]
config_template = "{tpl}"
[[loads]]
generator = "wrk"
wrk_threads = 1
connections = 1
"""
            sc = scenario.parse(text, "peer.toml")
            point = sc.points()[0]
            argv, config = runner.render_peer(point, "127.0.0.1", 8123, d, REPO, "0001")
            self.assertEqual(argv, ["nginx", "-c", config, "-g", "daemon off;"])
            with open(config) as f:
                self.assertEqual(f.read(), "worker_processes 2;\nlisten 127.0.0.1:8123;\n"
                                           "location / { return 200; }\n")
