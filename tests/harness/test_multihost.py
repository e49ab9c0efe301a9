"""Issue 18 on one machine: the server in one network namespace, wrk in another, joined by a
veth pair; a real sweep across them (against the fake server), and the harness killed with
SIGKILL mid-point leaving nothing behind.

Needs the right to create network namespaces, which it checks by trying (`ip netns add`), not
by asking for root; where it cannot, every test is skipped with the reason printed.
Everything it creates (namespaces, and with them the veth pair) is removed in cleanups that
run even when a test fails, and the test checks that they are gone. Traffic stays on the
namespaces' own addresses (10.231.N.0/24), on this machine."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from common import CBENCH, FAKE_SERVER, PYTHON, REPO, processes_matching

IP = shutil.which("ip") or "/usr/sbin/ip"


def ip(*args, check=True):
    return subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=30, check=check)


class Topology:
    """Two namespaces, `<tag>s` (server, .1) and `<tag>c` (client, .2), one veth pair."""

    def __init__(self):
        tag = f"cbmh{os.getpid() % 100000}"
        self.server_ns, self.client_ns = tag + "s", tag + "c"
        net = 10 + os.getpid() % 240
        self.server_addr, self.client_addr = f"10.231.{net}.1", f"10.231.{net}.2"
        self.created: list[str] = []

    def create(self) -> str | None:
        """None when made, else why it cannot be (then nothing is left behind)."""
        try:
            r = ip("netns", "add", self.server_ns, check=False)
        except OSError as exc:
            return f"cannot run ip: {exc}"
        if r.returncode != 0:
            return f"cannot create a network namespace here: {r.stderr.strip() or r.returncode}"
        self.created.append(self.server_ns)
        ip("netns", "add", self.client_ns)
        self.created.append(self.client_ns)
        ip("link", "add", "veth-s", "netns", self.server_ns, "type", "veth",
           "peer", "name", "veth-c", "netns", self.client_ns)
        for ns, dev, addr in ((self.server_ns, "veth-s", self.server_addr),
                              (self.client_ns, "veth-c", self.client_addr)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        return None

    def remove(self):
        for ns in self.created:
            ip("netns", "del", ns, check=False)  # deleting a namespace deletes its veth end

    def left(self) -> list[str]:
        names = ip("netns", "list", check=False).stdout.split()
        return [ns for ns in (self.server_ns, self.client_ns) if ns in names]


class AcrossNamespaces(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.topo = Topology()
        why = cls.topo.create()
        if why:
            cls.topo.remove()
            print(f"test_multihost: skipped: {why}", file=sys.stderr, flush=True)
            raise unittest.SkipTest(why)

    @classmethod
    def tearDownClass(cls):
        cls.topo.remove()
        left = cls.topo.left()
        assert not left, f"namespaces left behind: {left}"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cbench-test-")
        self.server = os.path.join(self.tmp, "fake_server.py")
        shutil.copy(FAKE_SERVER, self.server)
        self.wrk = os.path.join(self.tmp, "wrk")
        os.symlink(shutil.which("wrk") or "/usr/bin/wrk", self.wrk)
        self.out = os.path.join(self.tmp, "runs")
        self.scen = os.path.join(self.tmp, "mh.toml")
        with open(self.scen, "w") as f:
            f.write("duration_s = 1\nwarmup_s = 0.3\nrepetitions = 1\ntimeout_s = 2\n"
                    "[[loads]]\nname = \"hello\"\nwrk_threads = 1\nconnections = 4\n"
                    "[[loads]]\nname = \"idle\"\nidle_connections = 20\n"
                    "[[rows]]\nmodel = \"fake-ok\"\n")

    def tearDown(self):
        left = processes_matching(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def argv(self, *extra):
        return [PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin", self.wrk,
                "--out", self.out, "--lock-timeout", "600",
                "--server-host", f"netns:{self.topo.server_ns}",
                "--client-host", f"netns:{self.topo.client_ns}"] + list(extra)

    def test_a_sweep_with_the_server_and_wrk_in_different_namespaces(self):
        r = subprocess.run(self.argv(), capture_output=True, text=True, timeout=700, cwd=REPO)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        (run_id,) = os.listdir(self.out)
        run = os.path.join(self.out, run_id)
        with open(os.path.join(run, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(run, "points.jsonl")) as f:
            points = {p["load"]["key"]: p for p in map(json.loads, f)}
        topo = meta["topology"]
        self.assertEqual(topo["kind"], "across-namespaces")
        self.assertEqual(meta["env"]["topology"], "across-namespaces")
        self.assertEqual((topo["server"]["address"], topo["clients"][0]["address"]),
                         (self.topo.server_addr, self.topo.client_addr))
        self.assertEqual(topo["server"]["links_mtu"].get("veth-s"), 1500)
        p = points["-t1 -c4"]
        self.assertEqual(p["status"], "ok", p["failure"])
        self.assertGreater(p["wrk"]["requests"], 0)
        self.assertEqual(p["commands"]["server"][:4], [IP, "netns", "exec", self.topo.server_ns])
        self.assertEqual(p["commands"]["client"][:4], [IP, "netns", "exec", self.topo.client_ns])
        self.assertIn(f"http://{self.topo.server_addr}:", " ".join(p["commands"]["client"]))
        self.assertEqual(p["server_ready"]["host"], self.topo.server_addr)
        self.assertGreater(p["server"]["cpu_user_s"] + p["server"]["cpu_sys_s"], 0)
        self.assertIsNotNone(p["client"]["cpu_user_s"])  # wrk's rusage, across ip netns exec
        idle = points["idle 20"]
        self.assertEqual(idle["status"], "ok", idle["failure"])
        self.assertEqual(idle["idle"]["connections_held"], 20)  # opened from the client namespace

    def test_the_harness_probes_travel_from_the_client_namespace(self):
        # A listener in the server namespace sees a probe socket of the client host arrive from
        # the client namespace's own address: across the veth pair, not from this namespace.
        from cbenchlib.host import NamespaceHost
        server, client = NamespaceHost(self.topo.server_ns), NamespaceHost(self.topo.client_ns)
        self.assertEqual((server.client_address, client.client_address),
                         (self.topo.server_addr, self.topo.client_addr))
        with server.socket() as lsock:
            lsock.bind((self.topo.server_addr, 0))
            lsock.listen(1)
            lsock.settimeout(10)
            port = lsock.getsockname()[1]
            with client.connect(self.topo.server_addr, port, 10):
                conn, peer = lsock.accept()
                conn.close()
        self.assertEqual(peer[0], self.topo.client_addr)

    def test_sigkill_of_the_harness_leaves_no_process_in_any_namespace(self):
        proc = subprocess.Popen(self.argv(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 700  # may first wait for the machine-wide lock
            while time.monotonic() < deadline and proc.poll() is None:
                if any("--model fake-ok" in p for p in processes_matching(self.tmp)):  # the server
                    break
                time.sleep(0.05)
            self.assertIsNone(proc.poll(), "the sweep ended before its server started")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        # PR_SET_PDEATHSIG kills every child within moments; the criterion allows 5 s.
        deadline = time.monotonic() + 5
        while processes_matching(self.tmp) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(processes_matching(self.tmp), [])
        # --resume then continues the run.
        (run_id,) = os.listdir(self.out)
        r = subprocess.run([PYTHON, CBENCH, "sweep", "--resume", os.path.join(self.out, run_id),
                            "--server-bin", self.server, "--wrk-bin", self.wrk, "--lock-timeout", "600"],
                           capture_output=True, text=True, timeout=700, cwd=REPO)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.out, run_id, "points.jsonl")) as f:
            points = [json.loads(line) for line in f]
        self.assertEqual(sorted(p["load"]["key"] for p in points), ["-t1 -c4", "idle 20"])
        self.assertTrue(all(p["status"] == "ok" for p in points), [p["failure"] for p in points])
        self.assertTrue(all(p["commands"]["server"][:3] == [IP, "netns", "exec"] for p in points))


if __name__ == "__main__":
    unittest.main()
