"""The sweep under the faults that test_sweep.py does not cover: a port already taken,
wrk failing (an error exit, a crash, a hang), and a full results disk simulated by a read-only
directory, before the run and in the middle of it. Each test checks the message, the points
recorded, whether the sweep went on where that makes sense, and the process table afterwards
(nothing this test started may be left running).

test_sweep.py covers the rest: a server that crashes mid-point, never becomes ready or exits at
start, a 500, wrk missing, Ctrl-C and SIGTERM (then --resume), the lock held elsewhere.

Every sweep here uses a private lock file: none of them generates load (the fake wrk does not
connect, and the other points hold idle connections), so none can disturb a benchmark.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from common import CBENCH, FAKE_SERVER, PYTHON, REPO, processes_matching
from cbenchlib.format import resultio

# Root ignores file permissions, so a read-only directory only binds an unprivileged process:
# when the tests run as root, the sweeps of the read-only tests run as this user.
UNPRIVILEGED_UID = 65534  # nobody

SCENARIO_HEAD = """
duration_s = 1
warmup_s = 0.3
repetitions = 1
timeout_s = 2
ready_timeout_s = 2.0
order = "interleaved"

[[loads]]
generator = "wrk"
name = "hello"
wrk_threads = 1
connections = 2

[[loads]]
name = "idle"
idle_connections = 5
"""

# Stand-ins for wrk. Each answers `wrk -v` (the sweep records wrk's version) like wrk does.
WRK_VERSION = 'if [ "$1" = "-v" ]; then echo "wrk 4.1.0 [epoll] (fake)"; exit 1; fi\n'
FAKE_WRKS = {
    "exit": "echo 'wrk: scripted failure: unable to connect to the server' >&2\nexit 1\n",
    "crash": "echo 'wrk: about to crash' >&2\nkill -SEGV $$\n",
    # Ignores SIGINT (the warm-up is cut with one) and never exits: the sweep must kill the
    # group, including the sleep it forked.
    "hang": "trap '' INT\nsleep 300\n",
}


def load_single_run(out: str):
    runs = [os.path.join(out, d) for d in os.listdir(out)]
    assert len(runs) == 1, runs
    with open(os.path.join(runs[0], "meta.json")) as f:
        meta = json.load(f)
    points, bad, _ = resultio.read_points(os.path.join(runs[0], "points.jsonl"))
    return runs[0], meta, points, bad


class SweepFaults(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-faults-")
        os.chmod(self.tmp, 0o755)  # the unprivileged sweeps below must reach their files
        # A private copy of the fake server: its path marks this test's processes for the
        # orphan check.
        self.server = os.path.join(self.tmp, "fake_server.py")
        shutil.copy(FAKE_SERVER, self.server)
        os.chmod(self.server, 0o755)
        self.out = os.path.join(self.tmp, "runs")
        self.lock = os.path.join(self.tmp, "bench.lock")

    def tearDown(self):
        left = processes_matching(self.tmp)
        for line in left:  # do not leave them to the next test either
            try:
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    # -- helpers -----------------------------------------------------------------------
    def scenario(self, rows: str) -> str:
        path = os.path.join(self.tmp, "scenario.toml")
        with open(path, "w") as f:
            f.write(SCENARIO_HEAD + rows)
        return path

    def fake_wrk(self, behaviour: str) -> str:
        path = os.path.join(self.tmp, f"wrk-{behaviour}")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + WRK_VERSION + FAKE_WRKS[behaviour])
        os.chmod(path, 0o755)
        return path

    def sweep_argv(self, scenario: str, wrk: str | None = None) -> list[str]:
        return [PYTHON, CBENCH, "sweep", scenario, "--server-bin", self.server, "--out", self.out,
                "--lock-file", self.lock, "--lock-timeout", "30"] + (["--wrk-bin", wrk] if wrk else [])

    def unprivileged(self) -> dict:
        """Popen arguments that make a read-only directory binding: as root, run as nobody."""
        if os.geteuid() != 0:
            return {}
        for root, dirs, files in os.walk(self.tmp):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        os.chown(self.tmp, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        # HOME: git (the sweep records the commit) reads its config from there.
        env = dict(os.environ, HOME=self.tmp)
        # The repository belongs to root; git refuses to read another user's repository unless
        # it is named safe (this affects only the commit recorded in meta.json).
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0=REPO)
        return {"user": UNPRIVILEGED_UID, "group": UNPRIVILEGED_UID, "extra_groups": [], "env": env}

    def run_sweep(self, argv: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)

    # -- a port already taken ----------------------------------------------------------
    def test_port_taken_fails_that_point_and_the_sweep_goes_on(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            scen = self.scenario(f"""
[[rows]]
model = "fake-ok"
key = "port-taken"
extra_args = ["--port", "{port}"]
loads = ["idle"]

[[rows]]
model = "fake-ok"
key = "port-free"
loads = ["idle"]
""")
            r = self.run_sweep(self.sweep_argv(scen))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        _, _, points, bad = load_single_run(self.out)
        self.assertEqual(bad, 0)
        by = {p["row"]["key"]: p for p in points}
        taken = by["port-taken"]
        self.assertEqual(taken["status"], "failed")
        self.assertIn("server exited with status 1 before it was ready", taken["failure"]["reason"])
        self.assertIn("Address already in use", taken["failure"]["server_output_tail"])
        self.assertEqual(by["port-free"]["status"], "ok", by["port-free"]["failure"])
        self.assertIn("FAILED: server exited with status 1 before it was ready", r.stdout)
        self.assertNotIn("Traceback", r.stderr)

    # -- wrk failing -------------------------------------------------------------------
    def check_wrk_failure(self, behaviour: str, reason: str, timeout: float = 120):
        scen = self.scenario("""
[[rows]]
model = "fake-ok"
key = "with-wrk"
loads = ["hello"]

[[rows]]
model = "fake-ok"
key = "idle-only"
loads = ["idle"]
""")
        r = self.run_sweep(self.sweep_argv(scen, self.fake_wrk(behaviour)), timeout=timeout)
        # One point failed, one succeeded: the sweep went on and reports success overall.
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        _, _, points, bad = load_single_run(self.out)
        self.assertEqual(bad, 0)
        by = {p["row"]["key"]: p for p in points}
        failed = by["with-wrk"]
        self.assertEqual(failed["status"], "failed")
        self.assertIn(reason, failed["failure"]["reason"])
        self.assertEqual(failed["verdict"], "unclear")
        self.assertEqual(by["idle-only"]["status"], "ok", by["idle-only"]["failure"])
        self.assertIn("FAILED: " + reason, r.stdout)
        self.assertNotIn("Traceback", r.stderr)
        return failed

    def test_wrk_exits_with_an_error(self):
        p = self.check_wrk_failure("exit", "wrk exited with status 1")
        self.assertIn("scripted failure: unable to connect", p["failure"]["reason"])  # its stderr

    def test_wrk_crashes(self):
        p = self.check_wrk_failure("crash", f"wrk exited with status -{int(signal.SIGSEGV)}")
        self.assertIn("about to crash", p["failure"]["reason"])

    def test_wrk_hangs_and_is_killed(self):
        # The warm-up run (-d 1, --timeout 2) hangs: killed after 1 + 2 + WRK_GRACE_S (15) s.
        self.check_wrk_failure("hang", "wrk did not exit within 18 s; killed", timeout=180)

    # -- a full results disk (a read-only directory) -----------------------------------
    def test_read_only_results_directory_at_start(self):
        os.mkdir(self.out)
        scen = self.scenario("""
[[rows]]
model = "fake-ok"
loads = ["idle"]
""")
        kw = self.unprivileged()
        os.chmod(self.out, 0o555)
        r = self.run_sweep(self.sweep_argv(scen), **kw)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"sweep: cannot create a run directory under {self.out}", r.stderr)
        self.assertIn("Permission denied", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual(os.listdir(self.out), [])

    def test_results_directory_turns_read_only_mid_run(self):
        scen = self.scenario("""
[[rows]]
model = "fake-ok"
key = "first"
threads = 1
loads = ["idle"]

[[rows]]
model = "fake-ok"
key = "second"
threads = 2
loads = ["idle"]

[[rows]]
model = "fake-ok"
key = "third"
threads = 3
loads = ["idle"]
""")
        kw = self.unprivileged()
        proc = subprocess.Popen(self.sweep_argv(scen), cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)
        try:
            # Once the first point is recorded, the disk "fills": nothing more can be written.
            deadline = time.monotonic() + 60
            run = None
            while time.monotonic() < deadline and proc.poll() is None:
                runs = os.listdir(self.out) if os.path.isdir(self.out) else []
                run = os.path.join(self.out, runs[0]) if runs else None
                points = os.path.join(run, "points.jsonl") if run else ""
                if run and os.path.exists(points) and os.path.getsize(points) > 0:
                    for path in (points, os.path.join(run, "meta.json")):
                        os.chmod(path, 0o444)
                    for path in (os.path.join(run, "logs"), run):
                        os.chmod(path, 0o555)
                    break
                time.sleep(0.02)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertIsNotNone(run, "the sweep created no run directory: " + out + err)
        self.assertEqual(proc.returncode, 2, out + err)
        self.assertIn(f"sweep: cannot write the results in {run}", err)
        self.assertIn("Permission denied", err)
        self.assertIn(f"--resume {run}", err)
        self.assertNotIn("Traceback", err)
        # What was recorded before the disk filled is intact.
        points, bad, _ = resultio.read_points(os.path.join(run, "points.jsonl"))
        self.assertEqual(bad, 0)
        self.assertEqual([p["row"]["key"] for p in points], ["first"])
        self.assertEqual(points[0]["status"], "ok", points[0]["failure"])


if __name__ == "__main__":
    unittest.main()
