#!/usr/bin/python3
"""End to end for the generators' harness hooks: a --quick sweep of a tiny scenario against the
real cbench-server (epoll-reactor): cbench-load closed loop, open loop at a fraction of the
measured peak, and h2load (if installed); then `cbench curve` on the run. Checks that points are
recorded with their generator, the peak and the resolved rate, and that the chart is written;
not speed. Takes the machine-wide benchmark lock like every sweep.

Usage: test_loadgen_sweep.py PATH/TO/cbench-server   (cbench-load must be beside it)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = None

SCENARIO = """
name = "loadgen-e2e"
duration_s = 1
warmup_s = 0.3
repetitions = 1
timeout_s = 5

[[loads]]
name = "closed"
generator = "cbench-load"
wrk_threads = 1
connections = 4

[[loads]]
name = "open"
generator = "cbench-load"
wrk_threads = 1
connections = 4
rate_fraction = [0.5]

[[loads]]
name = "h2"
generator = "h2load"
wrk_threads = 1
connections = 4

[[rows]]
model = "epoll-reactor"
"""


class SweepTest(unittest.TestCase):
    def test_quick_sweep_with_generators(self):
        tmp = tempfile.mkdtemp(prefix="cbench-loadgen-e2e-")
        try:
            toml = os.path.join(tmp, "loadgen-e2e.toml")
            with open(toml, "w") as f:
                f.write(SCENARIO if shutil.which("h2load") else SCENARIO.split("[[loads]]\nname = \"h2\"")[0] +
                        "[[rows]]\nmodel = \"epoll-reactor\"\n")
            out = os.path.join(tmp, "runs")
            cbench = [sys.executable, os.path.join(REPO, "scripts", "cbench")]
            r = subprocess.run(cbench + ["sweep", toml, "--quick", "--out", out, "--server-bin", SERVER,
                                         "--lock-timeout", "600"], capture_output=True, text=True, timeout=700)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            run = os.path.join(out, os.listdir(out)[0])
            with open(os.path.join(run, "points.jsonl")) as f:
                points = [json.loads(line) for line in f if line.strip()]
            by_set = {p["load"]["set"]: p for p in points}
            for p in points:
                self.assertEqual(p["status"], "ok", p.get("failure"))
                self.assertEqual(p["wrk"]["generator"], p["load"]["generator"])
                self.assertGreater(p["wrk"]["requests"], 0)
            self.assertEqual(by_set["closed"]["wrk"]["mode"], "closed")
            op = by_set["open"]
            self.assertEqual(op["wrk"]["mode"], "open")
            self.assertGreater(op["peak"]["req_per_s"], 0)
            self.assertAlmostEqual(op["load"]["rate"], 0.5 * op["peak"]["req_per_s"], places=3)
            self.assertIn("send_lag_us", op["wrk"])
            r = subprocess.run(cbench + ["curve", run], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertTrue(os.path.exists(os.path.join(run, "latency-curve.png")))
            self.assertIn("Capacity at p99", r.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_alternating_rows_share_one_window(self):
        """Two rows of an alternating load (run/alternating.py): each block's records name both
        rows in phase order, each row served its rate over its on-time (half the shared window),
        its system calls are its own process's, and the other row's CPU is not disturbance."""
        tmp = tempfile.mkdtemp(prefix="cbench-alternating-e2e-")
        rate = 2000.0
        try:
            toml = os.path.join(tmp, "alternating-e2e.toml")
            with open(toml, "w") as f:
                f.write(ALTERNATING)
            out = os.path.join(tmp, "runs")
            cbench = [sys.executable, os.path.join(REPO, "scripts", "cbench")]
            r = subprocess.run(cbench + ["sweep", toml, "--out", out, "--server-bin", SERVER,
                                         "--lock-timeout", "600"], capture_output=True, text=True, timeout=700)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            run = os.path.join(out, os.listdir(out)[0])
            with open(os.path.join(run, "points.jsonl")) as f:
                points = [json.loads(line) for line in f if line.strip()]
            self.assertEqual(len(points), 4)
            for block in (0, 1):
                recs = sorted((p for p in points if p["block"] == block), key=lambda p: p["alternation"]["phase"])
                self.assertEqual([p["alternation"]["phase"] for p in recs], [0, 1])
                self.assertEqual(recs[0]["alternation"]["rows"], recs[1]["alternation"]["rows"])
                self.assertEqual(sorted(recs[0]["alternation"]["rows"]), ["A", "B"])
                for p in recs:
                    with self.subTest(block=block, row=p["row"]["key"]):
                        self.assertEqual(p["status"], "ok", p.get("failure"))
                        a = p["alternation"]
                        self.assertEqual((a["slices"], a["slice_ms"], a["window_s"], a["on_s"]), (2, 100, 2.0, 1.0))
                        self.assertEqual(p["wrk"]["duty"]["phase"], a["phase"])
                        self.assertGreater(p["wrk"]["requests"], 0.9 * rate * a["on_s"])
                        self.assertLessEqual(p["wrk"]["requests"], rate * a["on_s"] + 1)
                        self.assertEqual(p["server"]["syscalls_source"], "proc-io")
                        self.assertGreater(a["others_cpu_s"], 0)
                        m = p["machine"]
                        self.assertAlmostEqual(m["busy_cpu_s"], m["busy_cpu_s_all"] - a["others_cpu_s"], places=2)
                        self.assertIn("--duty", p["commands"]["client"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_a_row_that_cannot_start_leaves_the_other_alone(self):
        """An alternating group whose other row's server does not start: that row fails with its
        reason, and the one left is measured alone (one slice, no --duty), over the whole window."""
        tmp = tempfile.mkdtemp(prefix="cbench-alternating-e2e-")
        rate = 2000.0
        try:
            toml = os.path.join(tmp, "alternating-e2e.toml")
            with open(toml, "w") as f:
                f.write(ALTERNATING.replace('model = "pull-loop"', 'model = "pull-loop"\nextra_args = ["--no-such-flag"]'))
            out = os.path.join(tmp, "runs")
            cbench = [sys.executable, os.path.join(REPO, "scripts", "cbench")]
            r = subprocess.run(cbench + ["sweep", toml, "--out", out, "--server-bin", SERVER,
                                         "--lock-timeout", "600"], capture_output=True, text=True, timeout=700)
            run = os.path.join(out, os.listdir(out)[0])
            with open(os.path.join(run, "points.jsonl")) as f:
                points = [json.loads(line) for line in f if line.strip()]
            by_row = {}
            for p in points:
                by_row.setdefault(p["row"]["key"], []).append(p)
            self.assertEqual(sorted(by_row), ["A", "B"], r.stdout + r.stderr)
            for p in by_row["B"]:
                self.assertEqual(p["status"], "failed")
                self.assertIn("before it was ready", p["failure"]["reason"])
            self.assertEqual(len(by_row["A"]), 2)
            for p in by_row["A"]:
                with self.subTest(block=p["block"]):
                    self.assertEqual(p["status"], "ok", p.get("failure"))
                    a = p["alternation"]
                    self.assertEqual((a["slices"], a["rows"], a["on_s"], a["others_cpu_s"]), (1, ["A"], 1.0, 0))
                    self.assertNotIn("--duty", p["commands"]["client"])
                    self.assertGreater(p["wrk"]["requests"], 0.9 * rate * a["on_s"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


ALTERNATING = """
name = "alternating-e2e"
duration_s = 1
warmup_s = 0.3
repetitions = 2
timeout_s = 5
order = "blocked"

[[loads]]
name = "alt"
generator = "cbench-load"
wrk_threads = 1
connections = 4
rate = [2000]
alternate_ms = 100

[[rows]]
key = "A"
model = "epoll-reactor"

[[rows]]
key = "B"
model = "pull-loop"
"""


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
