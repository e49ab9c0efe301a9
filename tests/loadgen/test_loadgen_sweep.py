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


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
