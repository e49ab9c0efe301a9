"""End to end: scenarios/smoke.toml with --quick against the real cbench-server
(thread-per-connection and epoll-reactor), into a temporary directory.

Skips when the binary is missing, unless CBENCH_REQUIRE_BINARY=1 (ctest's harness_e2e
sets it), in which case a missing binary is a failure. CBENCH_SKIP_E2E=1 skips it
(harness_unit sets it, so the test runs once, as harness_e2e).
"""
import os
import shutil
import tempfile
import unittest

from common import REPO, processes_matching, run_cbench
from cbenchlib.format import resultio
from cbenchlib.format import runlogs

SERVER_BIN = os.environ.get("CBENCH_SERVER_BIN") or os.path.join(REPO, "build", "cbench-server")
REQUIRE = os.environ.get("CBENCH_REQUIRE_BINARY") == "1"


class EndToEnd(unittest.TestCase):
    def setUp(self):
        if os.environ.get("CBENCH_SKIP_E2E") == "1":
            self.skipTest("CBENCH_SKIP_E2E=1: the end-to-end test runs as its own ctest test (harness_e2e)")
        if not os.path.exists(SERVER_BIN):
            if REQUIRE:
                self.fail(f"CBENCH_REQUIRE_BINARY=1 but {SERVER_BIN} does not exist: build it first")
            self.skipTest(f"{SERVER_BIN} does not exist (build it; CBENCH_REQUIRE_BINARY=1 makes this a failure)")
        self.tmp = tempfile.mkdtemp(prefix="cbench-e2e-")
        # Started through a link in the temporary directory, so the orphan check below
        # finds exactly this test's servers.
        self.server = os.path.join(self.tmp, "cbench-server")
        os.symlink(os.path.realpath(SERVER_BIN), self.server)

    def tearDown(self):
        if hasattr(self, "tmp"):
            left = processes_matching(self.tmp)
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.assertEqual(left, [], "processes left behind")

    def test_quick_smoke_sweep(self):
        out = os.path.join(self.tmp, "runs")
        r = run_cbench(["sweep", "smoke", "--quick", "--out", out, "--server-bin", self.server,
                        "--lock-timeout", "600"], timeout=700)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        runs = os.listdir(out)
        self.assertEqual(len(runs), 1)
        run = os.path.join(out, runs[0])
        self.assertTrue(runs[0].endswith("-smoke"), runs[0])

        meta = resultio.read_json(os.path.join(run, "meta.json"))
        self.assertEqual(meta["schema"], 1)
        self.assertEqual(meta["run_id"], runs[0])
        self.assertEqual(meta["scenario_name"], "smoke")
        self.assertTrue(meta["quick"])
        self.assertIn("[[rows]]", meta["scenario_text"])
        self.assertIsNotNone(meta["started_utc"])
        self.assertIsNotNone(meta["ended_utc"])
        env = meta["env"]
        self.assertGreaterEqual(env["cpu_count"], 1)
        self.assertTrue(env["kernel"])
        self.assertEqual((env["server_cpus"], env["client_cpus"]), ("0", "1"))
        self.assertIn("wrk", env["versions"])
        self.assertIn("python", env["versions"])

        points, bad, _ = resultio.read_points(os.path.join(run, "points.jsonl"))
        self.assertEqual(bad, 0)
        self.assertEqual(len(points), 6)  # 2 models x (2 loads + 1 idle point)
        models = {p["row"]["model"] for p in points}
        self.assertEqual(models, {"thread-per-connection", "epoll-reactor"})
        for p in points:
            with self.subTest(point=p["point_id"]):
                self.assertEqual(p["status"], "ok", p.get("failure"))
                self.assertIn(p["verdict"], ("server-bound", "client-bound", "both-saturated", "kernel-bound",
                                              "error-bound", "unclear"))
                self.assertTrue(p["verdict_evidence"])
                self.assertEqual(p["server_exit_status"], 0, "a model must exit 0 on SIGTERM")
                if p["idle"] is None:
                    # smoke names no generator: the default, cbench-load, built beside the server
                    self.assertEqual((p["load"]["generator"], p["wrk"]["generator"]), ("cbench-load", "cbench-load"))
                    self.assertGreater(p["wrk"]["req_per_s"], 0)
                    self.assertEqual(p["wrk"]["errors"]["connect"], 0)
                    self.assertGreater(p["server"]["cpu_user_s"] + p["server"]["cpu_sys_s"], 0)
                    self.assertGreater(p["derived"]["server_cpu_us_per_req"], 0)
                    self.assertGreater(p["client"]["cpu_user_s"] + p["client"]["cpu_sys_s"], 0)
                    self.assertTrue(runlogs.exists(run, p["logs"]["wrk"]))  # in the run's logs.tar.xz
                    self.assertIn("0", p["machine"]["cpu_busy"])
                    self.assertEqual(p["commands"]["server"][:3], ["taskset", "-c", "0"])
                    self.assertIn("--model", p["commands"]["server"])
        idle = {p["row"]["model"]: p["idle"] for p in points if p["idle"]}
        self.assertEqual(idle["thread-per-connection"]["connections_held"], 100)
        self.assertGreaterEqual(idle["thread-per-connection"]["threads_per_conn"], 0.9)
        self.assertLess(idle["epoll-reactor"]["threads_per_conn"], 0.1)

        # The readers on this real run (CI checks their outputs): table, compare --published ever,
        # plot and report, each output checked for form (PNG signature, non-empty tables).
        import subprocess
        check = os.path.join(REPO, "tests", "report", "check_run_outputs.sh")
        r = subprocess.run(["bash", check, run], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, f"check_run_outputs.sh failed:\n{r.stdout}\n{r.stderr}")

    def test_quick_peers_and_floor(self):
        """nginx and h2o as configured by the harness, and the floor instrument,
        answer wrk under the sweep, are summed over their processes and stop cleanly."""
        from cbenchlib.run.host import LocalHost
        missing = [n for n in ("nginx", "h2o") if LocalHost().which(n) is None]
        if missing:
            self.skipTest(f"{', '.join(missing)} not installed (scripts/deps.sh installs them)")
        workers_before = set(self._nginx_workers())
        path = os.path.join(self.tmp, "peers.toml")
        with open(path, "w") as f:
            f.write("""
duration_s = 1
warmup_s = 0.3
repetitions = 1
timeout_s = 5
[[loads]]
generator = "wrk"
name = "hello"
explicit = [{ wrk_threads = 1, connections = 4 }, { wrk_threads = 1, connections = 4, pipeline = 16 }]
[[rows]]
kind = "peer"
model = "nginx"
[[rows]]
kind = "peer"
model = "h2o"
[[rows]]
kind = "instrument"
model = "floor"
""")
        out = os.path.join(self.tmp, "runs")
        r = run_cbench(["sweep", path, "--out", out, "--server-bin", self.server, "--lock-timeout", "600"],
                       timeout=700)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        run = os.path.join(out, os.listdir(out)[0])
        meta = resultio.read_json(os.path.join(run, "meta.json"))
        self.assertIn("nginx", meta["env"]["versions"])
        self.assertIn("h2o", meta["env"]["versions"])
        points, bad, _ = resultio.read_points(os.path.join(run, "points.jsonl"))
        self.assertEqual((len(points), bad), (6, 0))
        for p in points:
            with self.subTest(point=p["point_id"]):
                self.assertEqual(p["status"], "ok", p.get("failure"))
                self.assertEqual(p["wrk"]["non_2xx"], 0)
                self.assertEqual(sum(p["wrk"]["errors"].values()), 0, p["wrk"]["errors"])
                self.assertGreater(p["derived"]["server_cpu_us_per_req"], 0)
                self.assertEqual(p["server_exit_status"], 0)
                self.assertEqual(p["commands"]["server"][:3], ["taskset", "-c", "0"])
                # nginx: the master and one worker; h2o: one process (its exited crash
                # handler is a zombie, not counted); floor: cbench-server.
                want = {"nginx": 2, "h2o": 1, "floor": 1}[p["row"]["model"]]
                self.assertEqual(p["server"]["processes"], want)
        self.assertEqual(set(self._nginx_workers()) - workers_before, set(), "nginx workers left behind")

    @staticmethod
    def _nginx_workers():
        out = []
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().startswith(b"nginx: worker process"):
                        out.append(pid)
            except OSError:
                continue
        return out


if __name__ == "__main__":
    unittest.main()
