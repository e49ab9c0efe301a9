"""Peers (nginx, h2o) and multi-process sampling: the built-in peer rows, their rendered
configurations (checked by the real binaries when installed), /proc samples that sum a
process tree, and a sweep over a fake multi-process peer (nginx's shape) whose workers
do all the work."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from common import HERE, PYTHON, REPO, processes_matching, run_cbench
from cbenchlib.run import procstat, runner
from cbenchlib.format import scenario
from cbenchlib.run.host import LocalHost
from cbenchlib.run.server import POST_CHECK_MIN_TIMEOUT_S
from cbenchlib.format import runlogs

FAKE_PEER = os.path.join(HERE, "fake_peer.py")


def peer_scenario(rows: str, loads: str = "[[loads]]\ngenerator = \"wrk\"\nwrk_threads = 1\nconnections = 1\n") -> scenario.Scenario:
    return scenario.parse(rows + loads, "peers.toml")


class BuiltInPeers(unittest.TestCase):
    def test_nginx_and_h2o_need_only_their_name(self):
        sc = peer_scenario('[[rows]]\nkind = "peer"\nmodel = "nginx"\nthreads = [1, 2]\n'
                           '[[rows]]\nkind = "peer"\nmodel = "h2o"\n')
        by = {r.key: r for r in sc.rows}
        self.assertEqual(sorted(by), ["h2o t1", "nginx t1", "nginx t2"])
        self.assertEqual(by["nginx t2"].command, scenario.PEERS["nginx"]["command"])
        self.assertEqual(by["nginx t2"].config_template, "scenarios/peers/nginx.conf")
        self.assertEqual(by["h2o t1"].config_template, "scenarios/peers/h2o.conf")
        self.assertEqual(by["h2o t1"].to_json()["kind"], "peer")

    def test_own_command_replaces_the_built_in_one(self):
        sc = peer_scenario('[[rows]]\nkind = "peer"\nmodel = "nginx"\ncommand = ["my-nginx", "-c", "$config"]\n')
        self.assertEqual(sc.rows[0].command, ("my-nginx", "-c", "$config"))
        self.assertIsNone(sc.rows[0].config_template)

    def test_unknown_peer_without_command_is_refused(self):
        with self.assertRaisesRegex(scenario.ScenarioError, r"rows\[0\]\.command: missing .*nginx, h2o"):
            peer_scenario('[[rows]]\nkind = "peer"\nmodel = "caddy"\n')

    def test_model_flags_are_refused_on_peers(self):
        for key, value in (("queues", '"shared"'), ("gvl", "true"), ("backend", '"epoll"')):
            with self.subTest(key), self.assertRaisesRegex(scenario.ScenarioError, rf"rows\[0\]\.{key}: "):
                peer_scenario(f'[[rows]]\nkind = "peer"\nmodel = "nginx"\n{key} = {value}\n')

    def test_the_served_file_is_exactly_the_hello_body(self):
        with open(os.path.join(REPO, "scenarios", "peers", "hello.txt"), "rb") as f:
            self.assertEqual(f.read(), b"Hello, world!")


class RenderedConfigs(unittest.TestCase):
    """The templates render completely, and the installed nginx and h2o accept the result."""

    def render(self, model, threads=2):
        sc = peer_scenario(f'[[rows]]\nkind = "peer"\nmodel = "{model}"\nthreads = {threads}\n')
        self.run_dir = tempfile.mkdtemp(prefix="cbench-peer-")
        self.addCleanup(shutil.rmtree, self.run_dir, True)
        os.mkdir(os.path.join(self.run_dir, "logs"))
        argv, config = runner.render_peer(sc.points()[0], "127.0.0.1", 18123, self.run_dir, REPO, "0007")
        with open(config) as f:
            text = f.read()
        return argv, config, text

    def test_nginx(self):
        argv, config, text = self.render("nginx")
        peer_dir = os.path.join(self.run_dir, "peers", "nginx")
        self.assertEqual(argv, ["nginx", "-e", "stderr", "-p", peer_dir, "-c", config])
        self.assertTrue(config.endswith("/logs/0007-nginx.conf"), config)
        self.assertTrue(os.path.isdir(peer_dir))
        body = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        self.assertNotIn("$", "\n".join(body))
        for needle in ("daemon off;", "master_process on;", "worker_processes 2;",
                       "listen 127.0.0.1:18123 reuseport;", "access_log off;", "error_log stderr",
                       "keepalive_timeout 30s;", "keepalive_requests 2147483647;",
                       "default_type text/plain;", 'return 200 "Hello, world!";',
                       f"pid {peer_dir}/nginx.pid;"):
            self.assertIn(needle, text)
        if os.geteuid() == 0:
            self.assertIn("\nuser root;", text)
        nginx = LocalHost().which("nginx")
        if nginx is None:
            self.skipTest("nginx not installed (scripts/deps.sh installs nginx-light)")
        r = subprocess.run([nginx] + argv[1:] + ["-t"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_h2o(self):
        argv, config, text = self.render("h2o")
        peer_dir = os.path.join(self.run_dir, "peers", "h2o")
        self.assertEqual(argv, ["h2o", "-c", config])
        body = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        self.assertNotIn("$", "\n".join(body))
        for needle in ("num-threads: 2", "  host: 127.0.0.1", "  port: 18123",
                       f"pid-file: {peer_dir}/h2o.pid", "http1-request-timeout: 30",
                       f"file.file: {REPO}/scenarios/peers/hello.txt", "file.etag: OFF"):
            self.assertIn(needle, text)
        self.assertNotIn("access-log", "\n".join(body))
        h2o = LocalHost().which("h2o")
        if h2o is None:
            self.skipTest("h2o not installed (scripts/deps.sh installs it)")
        r = subprocess.run([h2o, "-t", "-c", config], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_a_missing_peer_binary_skips_its_points(self):
        sc = peer_scenario('[[rows]]\nkind = "peer"\nmodel = "nginx"\n'
                           'command = ["cbench-no-such-peer", "-c", "$config"]\n')
        host = LocalHost()
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "logs"))
            r = runner.Runner(host, sc.settings, "/nonexistent", "/usr/bin/wrk", d, REPO, None)
            rec = r.run(sc.points()[0], 0, 0)
        self.assertEqual(rec["status"], "failed")
        self.assertTrue(rec["failure"]["skipped"])
        self.assertIn("cbench-no-such-peer is not installed", rec["failure"]["reason"])


class ProcessTreeSampling(unittest.TestCase):
    """procstat.sample sums the process and its live descendants (nginx: master + workers)."""

    def setUp(self):
        self.host = LocalHost()
        self.tmp = tempfile.mkdtemp(prefix="cbench-tree-")

    def tearDown(self):
        self.host.kill_all()
        left = processes_matching(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def spawn_tree(self, code: str):
        script = os.path.join(self.tmp, "tree.py")
        with open(script, "w") as f:
            f.write(code)
        proc = self.host.spawn([PYTHON, script], stdout=os.path.join(self.tmp, "out"), stderr="stdout")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(os.path.join(self.tmp, "out")) as f:
                if "ready" in f.read():
                    return proc
            time.sleep(0.02)
        self.fail("the process tree did not start")

    def test_cpu_of_a_busy_grandchild_is_counted(self):
        # The parent sleeps; a grandchild burns CPU and a child sleeps: the sample sees all three.
        proc = self.spawn_tree(
            "import os, sys, time\n"
            "if os.fork() == 0:\n"
            "    if os.fork() == 0:\n"
            "        while True: pass\n"
            "    time.sleep(3600)\n"
            "print('ready', flush=True)\n"
            "time.sleep(3600)\n")
        # Wait (bounded) until the tree has used some CPU, however busy the machine is: the
        # check is what is counted, not how fast the grandchild runs.
        a = procstat.sample(self.host, proc.pid)
        deadline = time.monotonic() + 30
        while True:
            time.sleep(0.1)
            b = procstat.sample(self.host, proc.pid)
            w = procstat.window(a, b)
            if w["cpu_user_s"] + w["cpu_sys_s"] >= 0.1 or time.monotonic() > deadline:
                break
        self.assertEqual(w["processes"], 3, b["pids"])
        self.assertEqual(b["threads"], 3)
        self.assertGreaterEqual(w["cpu_user_s"] + w["cpu_sys_s"], 0.1, w)
        alone = procstat.sample(self.host, proc.pid, include_descendants=False)
        self.assertEqual(alone["pids"], [proc.pid])
        # The tree's total holds the grandchild's >= 0.1 s of the window; the leader alone does not
        # (it only sleeps; its own start-up CPU is in both).
        self.assertGreater(b["cpu_user_s"] + b["cpu_sys_s"] - (alone["cpu_user_s"] + alone["cpu_sys_s"]), 0.05)
        proc.stop(2.0)

    def test_zombie_children_are_not_counted(self):
        # h2o's crash handler (/bin/true) exits at once and is never reaped.
        proc = self.spawn_tree(
            "import os, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0)\n"
            "time.sleep(0.2)\n"
            "print('ready', flush=True)\n"
            "time.sleep(3600)\n")
        s = procstat.sample(self.host, proc.pid)
        self.assertEqual(s["pids"], [proc.pid])
        self.assertEqual(s["threads"], 1)
        proc.stop(2.0)


class SweepOverAMultiProcessPeer(unittest.TestCase):
    """A fake peer shaped like nginx (an idle master, N forked workers) through the real sweep:
    its figures are the workers' too, and stopping it leaves nothing behind."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-test-")
        self.peer = os.path.join(self.tmp, "fake_peer.py")
        shutil.copy(FAKE_PEER, self.peer)
        self.wrk = os.path.join(self.tmp, "wrk")
        os.symlink(shutil.which("wrk") or "/usr/bin/wrk", self.wrk)
        self.out = os.path.join(self.tmp, "runs")

    def tearDown(self):
        left = processes_matching(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def test_workers_are_sampled_and_stopped(self):
        tpl = os.path.join(self.tmp, "peer.conf")
        with open(tpl, "w") as f:
            f.write("workers $threads on $host:$port, scratch $peer_dir\n")
        path = os.path.join(self.tmp, "peer.toml")
        with open(path, "w") as f:
            f.write(f"""
duration_s = 1
warmup_s = 0.3
repetitions = 1
timeout_s = 5
[[loads]]
generator = "wrk"
name = "hello"
wrk_threads = 1
connections = 4
[[loads]]
name = "idle"
idle_connections = 20
[[rows]]
kind = "peer"
model = "fake-nginx"
threads = 2
command = ["{PYTHON}", "{self.peer}", "--host", "$host", "--port", "$port", "--workers", "$threads",
           "--config", "$config"]
config_template = "{tpl}"
""")
        r = run_cbench(["sweep", path, "--wrk-bin", self.wrk, "--out", self.out,
                        "--lock-timeout", "600"], timeout=700)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        run = os.path.join(self.out, os.listdir(self.out)[0])
        with open(os.path.join(run, "points.jsonl")) as f:
            points = {p["load"]["key"]: p for p in map(json.loads, f)}
        p = points["-t1 -c4"]
        self.assertEqual(p["status"], "ok", p["failure"])
        self.assertEqual(p["row"]["kind"], "peer")
        self.assertEqual(p["server"]["processes"], 3)  # the master and two workers
        self.assertEqual(p["server"]["threads"], 3)
        # The master only sleeps: the CPU measured is the workers', who served wrk (how much
        # depends on how busy the machine is; that any is counted is the point).
        self.assertGreater(p["wrk"]["requests"], 0)
        self.assertGreater(p["server"]["cpu_user_s"] + p["server"]["cpu_sys_s"], 0, p["server"])
        self.assertEqual(p["commands"]["server"][:3], ["taskset", "-c", "0"])
        self.assertEqual(p["server_exit_status"], 0)
        port = p["server_ready"]["port"]  # the server log is in the run's logs.tar.xz
        self.assertIn(f"workers 2 on 127.0.0.1:{port}, scratch {run}/peers/fake-nginx",
                      runlogs.read_text(run, p["logs"]["server"]))
        idle = points["idle 20"]
        self.assertEqual(idle["status"], "ok", idle["failure"])
        self.assertEqual(idle["idle"]["connections_held"], 20)


    def test_resume_given_a_relative_path_runs_the_peer_rows(self):
        # `sweep --resume results/runs/<id>` (relative) must not make every nginx point fail,
        # though nginx resolves a relative -c against its -p prefix. The fake peer does the same
        # with --prefix. The sweep runs from a working directory of its own, every path given
        # relative to it; the run is cut after its first repetition (with a torn line) and
        # resumed by its relative path.
        work = os.path.join(self.tmp, "work")
        os.makedirs(os.path.join(work, "scen"))
        with open(os.path.join(work, "scen", "peer.conf"), "w") as f:
            f.write("workers $threads on $host:$port\n")
        with open(os.path.join(work, "scen", "relpeer.toml"), "w") as f:
            f.write(f"""
duration_s = 1
warmup_s = 0
repetitions = 2
timeout_s = 5
[[loads]]
generator = "wrk"
wrk_threads = 1
connections = 2
[[rows]]
kind = "peer"
model = "fake-nginx"
threads = 1
command = ["{PYTHON}", "{self.peer}", "--host", "$host", "--port", "$port", "--workers", "$threads",
           "--prefix", "$peer_dir", "--config", "$config"]
config_template = "{os.path.join(work, 'scen', 'peer.conf')}"
""")

        def sweep(*args):
            return subprocess.run([PYTHON, os.path.join(REPO, "scripts", "cbench"), "sweep",
                                   "--wrk-bin", self.wrk, "--out", "runs", "--lock-timeout", "600"]
                                  + list(args), capture_output=True, text=True, timeout=700, cwd=work)

        r = sweep("scen/relpeer.toml")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        (run_id,) = os.listdir(os.path.join(work, "runs"))
        points_path = os.path.join(work, "runs", run_id, "points.jsonl")
        with open(points_path) as f:
            lines = f.readlines()
        self.assertEqual(len(lines), 2)
        with open(points_path, "w") as f:
            f.write(lines[0] + lines[1][: len(lines[1]) // 2])  # the second repetition, torn
        r = sweep("--resume", os.path.join("runs", run_id))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("cut a torn last line", r.stdout)
        with open(points_path) as f:
            points = [json.loads(line) for line in f]
        self.assertEqual(sorted(p["rep"] for p in points), [0, 1])
        for p in points:
            self.assertEqual(p["status"], "ok", p["failure"])
            self.assertEqual(p["block"], p["rep"])
            config = p["server_ready"]["config"]
            self.assertTrue(os.path.isabs(config), config)
            self.assertTrue(config.startswith(os.path.join(work, "runs", run_id, "logs")), config)




class ReplicaRowsAreMeasuredAsPublished(unittest.TestCase):
    """A replica row (a peer whose PEERS entry says "replica: not hardened") runs with no warm-up,
    and a post-check that finds it no longer answering is recorded beside its window; any other
    row keeps its warm-up and fails on the same post-check. The fake peer stands in for the
    server under a built-in replica's name (a row may give its own command)."""

    # (model, its hardening, deaf after N requests, status, warm-up skipped, post-check record:
    # "failed" unanswered and kept, "answered" its time, None absent, failure reason): deaf after
    # 200, the hardened row's warm-up takes the 200 answers, so its window has none.
    CASES = (
        ("ruby-nio4r-workers", "replica: not hardened", 200, "ok", True, "failed", None),
        ("fake-hardened", None, 200, "failed", False, None, "no response in the measured window"),
        ("fake-hardened", None, 10 ** 9, "ok", False, "answered", None),
    )

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-test-")
        self.peer = os.path.join(self.tmp, "fake_peer.py")
        shutil.copy(FAKE_PEER, self.peer)
        self.wrk = os.path.join(self.tmp, "wrk")
        os.symlink(shutil.which("wrk") or "/usr/bin/wrk", self.wrk)

    def tearDown(self):
        left = processes_matching(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def sweep(self, model: str, deaf_after: int) -> dict:
        out = os.path.join(self.tmp, f"runs-{model}-{deaf_after}")  # one run per directory: listdir()[0] is it
        path = os.path.join(self.tmp, f"{model}-{deaf_after}.toml")
        with open(path, "w") as f:  # deaf after 200 requests: the primer's and part of the window's
            f.write(f"""
duration_s = 1
warmup_s = 0.3
repetitions = 1
timeout_s = 2
[[loads]]
generator = "wrk"
name = "hello"
wrk_threads = 1
connections = 2
[[rows]]
kind = "peer"
model = "{model}"
threads = 1
command = ["{PYTHON}", "{self.peer}", "--host", "$host", "--port", "$port", "--workers", "1",
           "--deaf-after-requests", "{deaf_after}"]
""")
        r = run_cbench(["sweep", path, "--wrk-bin", self.wrk, "--out", out, "--lock-timeout", "600"],
                       timeout=300)
        with open(os.path.join(out, os.listdir(out)[0], "points.jsonl")) as f:
            (point,) = [json.loads(line) for line in f]
        return point | {"_sweep_rc": r.returncode}

    def test_warm_up_and_post_check(self):
        for model, hardening, deaf_after, status, warmup_skipped, post_check, failure in self.CASES:
            with self.subTest(model=model, deaf_after=deaf_after):
                p = self.sweep(model, deaf_after)
                self.assertEqual(p["row"].get("hardening"), hardening)
                self.assertEqual(p["status"], status, p.get("failure"))
                self.assertEqual("skipped" in p.get("warmup", {}), warmup_skipped)
                self.assertEqual(p["commands"]["warmup"] is None, warmup_skipped)
                self.assertEqual("post_check" in p, post_check is not None)
                if post_check == "failed":
                    self.assertIn("post-check after the measured run", p["post_check"]["failed"])
                    # the scenario's timeout (2 s) raised to the post-check's floor
                    self.assertEqual(p["post_check"]["waited_s"], POST_CHECK_MIN_TIMEOUT_S)
                    self.assertGreater(p["wrk"]["requests"], 0)
                elif post_check == "answered":
                    self.assertEqual(set(p["post_check"]), {"answered_ms"})
                    self.assertGreater(p["post_check"]["answered_ms"], 0)
                    self.assertLessEqual(p["post_check"]["answered_ms"], POST_CHECK_MIN_TIMEOUT_S * 1000)
                if failure:
                    self.assertIn(failure, p["failure"]["reason"])

if __name__ == "__main__":
    unittest.main()
