"""Separate hosts on one machine: the server in one network namespace, wrk in another, joined by a
veth pair; a real sweep across them (against the fake server), and the harness killed with
SIGKILL mid-point leaving nothing behind. TwoClientHosts: load from two namespaces at once.

Needs the right to create network namespaces, which it checks by trying (`ip netns add`), not
by asking for root; where it cannot, every test is skipped with the reason printed.
Everything it creates (namespaces, and with them the veth pair) is removed in cleanups that
run even when a test fails, and the test checks that they are gone. Traffic stays on the
namespaces' own addresses (10.231.N.0/24), on this machine."""
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from common import private_fakes, CBENCH, PYTHON, REPO, processes_matching

IP = shutil.which("ip") or "/usr/sbin/ip"


def skip_if_elsewhere():
    """harness_unit sets CBENCH_SKIP_MULTIHOST: these tests run once, as harness_multihost."""
    if os.environ.get("CBENCH_SKIP_MULTIHOST"):
        raise unittest.SkipTest("runs as its own ctest test (harness_multihost, make test-multihost)")


def ip(*args, check=True):
    return subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=30, check=check)


class Topology:
    """Two namespaces, `<tag>s` (server, .1) and `<tag>c` (client, .2), one veth pair; with
    second_client, a third, `<tag>d`, on a veth pair of its own to the server namespace
    (10.233.N.0/24) with a route to the server's address across it."""

    def __init__(self, second_client: bool = False):
        tag = f"cbmh{os.getpid() % 100000}"
        self.server_ns, self.client_ns = tag + "s", tag + "c"
        net = 10 + os.getpid() % 240
        self.server_addr, self.client_addr = f"10.231.{net}.1", f"10.231.{net}.2"
        # The harness's own link to the server namespace (for ssh://): 10.232.N.0/24.
        self.root_link = tag + "r"
        self.server_ssh_addr, self.root_addr = f"10.232.{net}.1", f"10.232.{net}.2"
        self.second_client = second_client
        self.client2_ns = tag + "d"
        self.server2_addr, self.client2_addr = f"10.233.{net}.1", f"10.233.{net}.2"
        self.created: list[str] = []

    def create(self) -> str | None:
        """None when made, else why it cannot be (then nothing is left behind)."""
        try:
            return self._create()
        except BaseException:
            self.remove()
            raise

    def _create(self) -> str | None:
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
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", "veth-r", "netns", self.server_ns)
        self.created.append("link:" + self.root_link)
        ip("addr", "add", f"{self.root_addr}/24", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")
        ip("-n", self.server_ns, "addr", "add", f"{self.server_ssh_addr}/24", "dev", "veth-r")
        ip("-n", self.server_ns, "link", "set", "veth-r", "up")
        if self.second_client:
            ip("netns", "add", self.client2_ns)
            self.created.append(self.client2_ns)
            ip("link", "add", "veth-s2", "netns", self.server_ns, "type", "veth",
               "peer", "name", "veth-d", "netns", self.client2_ns)
            for ns, dev, addr in ((self.server_ns, "veth-s2", self.server2_addr),
                                  (self.client2_ns, "veth-d", self.client2_addr)):
                ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
            ip("-n", self.client2_ns, "link", "set", "lo", "up")
            # The server listens on its first address (veth-s's): reach it across veth-d.
            ip("-n", self.client2_ns, "route", "add", f"{self.server_addr}/32", "via", self.server2_addr)
        return None

    def remove(self):
        for name in reversed(self.created):
            if name.startswith("link:"):
                ip("link", "del", name[5:], check=False)
            else:
                # A process still inside would keep the namespace (and its veth ends) alive
                # after `ip netns del`: kill what is left of this test's own namespaces first.
                for pid in ip("netns", "pids", name, check=False).stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                ip("netns", "del", name, check=False)  # deleting a namespace deletes its veth ends

    def left(self) -> list[str]:
        names = ip("netns", "list", check=False).stdout.split()
        left = [ns for ns in (self.server_ns, self.client_ns, self.client2_ns) if ns in names]
        if ip("link", "show", self.root_link, check=False).returncode == 0:
            left.append(self.root_link)
        return left


class AcrossNamespaces(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        skip_if_elsewhere()
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
        private_fakes(self)
        self.scen = os.path.join(self.tmp, "mh.toml")
        with open(self.scen, "w") as f:
            f.write("duration_s = 1\nwarmup_s = 0.3\nrepetitions = 1\ntimeout_s = 2\n"
                    "[[loads]]\ngenerator = \"wrk\"\nname = \"hello\"\nwrk_threads = 1\nconnections = 4\n"
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
        from cbenchlib.run.host import NamespaceHost
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


class OverSsh(unittest.TestCase):
    """The server's host is ssh:// (a real sshd in the server namespace, a throwaway host key and
    an authorized key made here), wrk in the client namespace."""

    @classmethod
    def setUpClass(cls):
        skip_if_elsewhere()
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            print("test_multihost: ssh skipped: no sshd (scripts/deps.sh installs openssh-server)",
                  file=sys.stderr, flush=True)
            raise unittest.SkipTest("no sshd")
        cls.topo = Topology()
        why = cls.topo.create()
        if why:
            cls.topo.remove()
            print(f"test_multihost: skipped: {why}", file=sys.stderr, flush=True)
            raise unittest.SkipTest(why)
        cls.keys = tempfile.mkdtemp(prefix="cbench-sshkeys-")
        try:
            k = cls.keys
            for name in ("host_key", "client_key"):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(k, name)],
                               check=True, timeout=30)
            shutil.copy(os.path.join(k, "client_key.pub"), os.path.join(k, "authorized_keys"))
            cls.made_run_sshd = not os.path.isdir("/run/sshd")
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
            cls.ssh_opts = (f"-i {k}/client_key -o UserKnownHostsFile=/dev/null "
                            "-o StrictHostKeyChecking=no -o LogLevel=ERROR")
            cls.sshds = []
            cls.sshd = cls.start_sshd(22)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_sshd(cls, port: int, hide: str | None = None) -> subprocess.Popen:
        """A real sshd in the server namespace on port; `hide`: a directory it sees empty (an
        empty tmpfs over it in a mount namespace of its own: a host that lacks the binary)."""
        k = cls.keys
        config = os.path.join(k, f"sshd_config-{port}")
        with open(config, "w") as f:
            f.write(f"ListenAddress {cls.topo.server_ssh_addr}:{port}\nHostKey {k}/host_key\n"
                    f"AuthorizedKeysFile {k}/authorized_keys\nPidFile {k}/sshd-{port}.pid\n"
                    "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                    "MaxSessions 100\nMaxStartups 100\n")
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        # sshd runs every command through root's shell, and bash sources ~/.bashrc when started
        # by sshd: this machine's account setup (a pyenv rehash waiting 60 s on a stale lock was
        # seen) is not what the test is about, so the test's host is an account with an empty one.
        # The sshd gets a mount namespace of its own with /dev/null bound over ~/.bashrc.
        bashrc = os.path.join(pwd.getpwuid(0).pw_dir, ".bashrc")
        setup = ['if [ -e "$0" ]; then mount --bind /dev/null "$0" || exit 1; fi']
        if hide:
            setup.append('mount -t tmpfs cbench-hide "$1" || exit 1')
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                "; ".join(setup) + '; shift; exec "$@"', bashrc, hide or "-", sshd, "-D", "-e", "-f", config]
        proc = subprocess.Popen([IP, "netns", "exec", cls.topo.server_ns] + argv,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        cls.sshds.append(proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", str(port)] + cls.ssh_opts.split()
                               + [f"root@{cls.topo.server_ssh_addr}", "true"], capture_output=True, timeout=20)
            if r.returncode == 0:
                return proc
            time.sleep(0.2)
        raise RuntimeError(f"sshd did not answer: {r.stderr.decode(errors='replace')}")

    @classmethod
    def stop_sshd(cls, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(10)

    @classmethod
    def tearDownClass(cls):
        for sshd in getattr(cls, "sshds", []):
            cls.stop_sshd(sshd)
        if getattr(cls, "made_run_sshd", False):
            shutil.rmtree("/run/sshd", ignore_errors=True)
        shutil.rmtree(getattr(cls, "keys", "/nonexistent"), ignore_errors=True)
        cls.topo.remove()
        left = cls.topo.left() + [p for p in processes_matching("sshd_config") if "cbench-sshkeys" in p]
        assert not left, f"left behind: {left}"

    setUp = AcrossNamespaces.setUp
    tearDown = AcrossNamespaces.tearDown

    def env(self):
        return dict(os.environ, CBENCH_SSH_OPTIONS=self.ssh_opts)

    def spec(self):
        return f"ssh://root@{self.topo.server_ssh_addr}?address={self.topo.server_addr}"

    def argv(self):
        return [PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin", self.wrk,
                "--out", self.out, "--lock-timeout", "600", "--server-host", self.spec(),
                "--client-host", f"netns:{self.topo.client_ns}"]

    def test_a_sweep_with_the_server_over_ssh(self):
        r = subprocess.run(self.argv(), capture_output=True, text=True, timeout=700, cwd=REPO, env=self.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        (run_id,) = os.listdir(self.out)
        with open(os.path.join(self.out, run_id, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(self.out, run_id, "points.jsonl")) as f:
            points = {p["load"]["key"]: p for p in map(json.loads, f)}
        self.assertEqual(meta["topology"]["server"]["kind"], "ssh")
        self.assertEqual(meta["topology"]["kind"], "across-hosts")
        # One environment entry per host, fingerprinted on it: distinct addresses, each host's links.
        envs = [meta["topology"]["server"]["env"], meta["topology"]["clients"][0]["env"]]
        self.assertEqual([sorted(k for k in e["addresses"] if k != "lo") for e in envs],
                         [["veth-r", "veth-s"], ["veth-c"]])
        self.assertEqual(envs[0]["addresses"]["veth-s"], [f"{self.topo.server_addr}/24"])
        self.assertEqual(envs[1]["addresses"]["veth-c"], [f"{self.topo.client_addr}/24"])
        net = meta["topology"]["network"]
        self.assertEqual((net["server_address"], net["client_addresses"]),
                         (self.topo.server_addr, [self.topo.client_addr]))
        self.assertEqual(net["mtu"][f"netns:{self.topo.client_ns}"]["veth-c"], 1500)
        self.assertGreater(net["rtt"][0]["echo_us"]["median"], 0, net["rtt"])
        self.assertEqual(meta["topology"]["server"]["env"]["kernel"], os.uname().release)
        self.assertEqual(meta["topology"]["server"]["address"], self.topo.server_addr)
        p = points["-t1 -c4"]
        self.assertEqual(p["status"], "ok", p["failure"])
        self.assertEqual(p["commands"]["server"][:2], ["ssh", f"root@{self.topo.server_ssh_addr}"])
        self.assertEqual(p["server_ready"]["host"], self.topo.server_addr)
        self.assertEqual(p["server_ready"]["pid"], str(p["server_ready"]["pid"]))
        self.assertGreater(p["server"]["cpu_user_s"] + p["server"]["cpu_sys_s"], 0)  # read over ssh
        self.assertEqual(p["server_exit_status"], 0)
        self.assertEqual(p["network"]["rtt_us"], net["rtt"][0]["echo_us"]["median"])
        self.assertEqual([h["host"] for h in [p["hosts"]["server"]] + p["hosts"]["clients"]],
                         [self.spec(), f"netns:{self.topo.client_ns}"])
        self.assertGreater(p["hosts"]["server"]["cpu_s"], 0)
        self.assertEqual(points["idle 20"]["status"], "ok", points["idle 20"]["failure"])

    def test_load_from_a_namespace_and_over_ssh_at_once(self):
        # Two client hosts, one of them ssh:// (the server's own machine, here its namespace):
        # the ssh generator's gate is released down its connection, its CPU comes from the wrapper.
        clients = [f"netns:{self.topo.client_ns}", self.spec()]
        r = subprocess.run([PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin", self.wrk,
                            "--out", self.out, "--lock-timeout", "600", "--server-host", self.spec(),
                            "--client-host", clients[0], "--client-host", clients[1]],
                           capture_output=True, text=True, timeout=300, cwd=REPO, env=self.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        (run_id,) = os.listdir(self.out)
        with open(os.path.join(self.out, run_id, "points.jsonl")) as f:
            points = {p["load"]["key"]: p for p in map(json.loads, f)}
        p = points["-t1 -c4"]
        self.assertEqual(p["status"], "ok", p["failure"])
        gens = p["clients"]["generators"]
        self.assertEqual([g["host"] for g in gens], clients)
        self.assertEqual([g["start_clock"] for g in gens], ["host", "harness release"])
        self.assertTrue(all(g["requests"] > 0 and g["cpu_s"] is not None for g in gens), gens)
        self.assertEqual(p["wrk"]["requests"], sum(g["requests"] for g in gens))
        self.assertEqual(p["commands"]["clients"][1][:2], ["ssh", f"root@{self.topo.server_ssh_addr}"])
        self.assertEqual(p["verdict"] == "window-unbounded", not p["clients"]["bounded"], p["verdict_evidence"])
        self.assertEqual(points["idle 20"]["status"], "ok", points["idle 20"]["failure"])

    def test_sigkill_of_the_harness_kills_the_remote_server(self):
        proc = subprocess.Popen(self.argv(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=self.env())
        try:
            deadline = time.monotonic() + 700
            while time.monotonic() < deadline and proc.poll() is None:
                if any("--model fake-ok" in p and "python3 -c" not in p and "ssh" not in p.split()[1]
                       for p in processes_matching(self.tmp)):
                    break
                time.sleep(0.05)
            self.assertIsNone(proc.poll(), "the sweep ended before its server started")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        deadline = time.monotonic() + 5
        while processes_matching(self.tmp) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(processes_matching(self.tmp), [])

    def test_a_host_that_lacks_the_binary_is_named(self):
        # A second sshd that sees this test's directory (the fake server's) as an empty tmpfs.
        sshd = self.start_sshd(2222, hide=self.tmp)
        try:
            spec = f"ssh://root@{self.topo.server_ssh_addr}:2222?address={self.topo.server_addr}"
            r = subprocess.run([PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin",
                                self.wrk, "--out", self.out, "--lock-timeout", "600", "--server-host", spec,
                                "--client-host", f"netns:{self.topo.client_ns}"],
                               capture_output=True, text=True, timeout=120, cwd=REPO, env=self.env())
        finally:
            self.stop_sshd(sshd)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{spec} lacks the server binary {self.server}", r.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_a_host_that_dies_mid_sweep_is_named_and_resume_continues(self):
        with open(self.scen, "a") as f:  # four points, so that the host dies with some still to run
            f.write("[[loads]]\ngenerator = \"wrk\"\nname = \"hello8\"\nwrk_threads = 1\nconnections = 8\n"
                    "[[loads]]\ngenerator = \"wrk\"\nname = \"hello2\"\nwrk_threads = 1\nconnections = 2\n")
        proc = subprocess.Popen(self.argv(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env())
        try:
            deadline = time.monotonic() + 700
            points = []
            while time.monotonic() < deadline and proc.poll() is None:
                points = glob.glob(os.path.join(self.out, "*", "points.jsonl"))
                if points and os.path.getsize(points[0]) > 0:
                    break
                time.sleep(0.05)
            self.assertIsNone(proc.poll(), "the sweep ended before the host could die")
            # The host dies: every process in the server namespace (sshd, its sessions, the
            # wrappers, the server) is killed at once.
            for pid in ip("netns", "pids", self.topo.server_ns).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 3, out + err)
        self.assertIn(f"host {self.spec()} lost mid-sweep", err)
        run_dir = os.path.dirname(points[0])
        with open(points[0]) as f:
            kept = [json.loads(line) for line in f]
        self.assertGreaterEqual(len(kept), 1)
        self.assertLess(len(kept), 4)
        self.assertTrue(all(p["status"] == "ok" for p in kept), [p["failure"] for p in kept])
        with open(os.path.join(run_dir, "meta.json")) as f:
            self.assertEqual(json.load(f)["interrupted"]["host_lost"], self.spec())
        # The host comes back: --resume measures what is left.
        type(self).sshd = self.start_sshd(22)
        r = subprocess.run([PYTHON, CBENCH, "sweep", "--resume", run_dir, "--server-bin", self.server,
                            "--wrk-bin", self.wrk, "--lock-timeout", "600"],
                           capture_output=True, text=True, timeout=700, cwd=REPO, env=self.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(points[0]) as f:
            points = [json.loads(line) for line in f]
        self.assertEqual(sorted(p["load"]["key"] for p in points), ["-t1 -c2", "-t1 -c4", "-t1 -c8", "idle 20"])
        self.assertTrue(all(p["status"] == "ok" for p in points), [p["failure"] for p in points])

    def test_an_unreachable_host_is_named(self):
        r = subprocess.run([PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin",
                            self.wrk, "--out", self.out, "--lock-timeout", "600", "--server-host",
                            f"ssh://nobody@{self.topo.server_ssh_addr}"],
                           capture_output=True, text=True, timeout=120, cwd=REPO, env=self.env())
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"ssh://nobody@{self.topo.server_ssh_addr}: cannot connect over ssh", r.stderr)
        self.assertFalse(os.path.exists(self.out))


class TwoClientHosts(unittest.TestCase):
    """The server in one namespace, load from two others at once (each on its own veth pair):
    one generator per client host, released together, merged into one point."""

    @classmethod
    def setUpClass(cls):
        skip_if_elsewhere()
        cls.topo = Topology(second_client=True)
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
        private_fakes(self)
        self.scen = os.path.join(self.tmp, "mh2.toml")
        loads = "[[loads]]\ngenerator = \"wrk\"\nname = \"hello\"\nwrk_threads = 2\nconnections = 4\n"
        # cbench-load is found beside the server binary (here the fake's copy): link the build's.
        self.loadgen = os.path.join(REPO, "build", "cbench-load")
        if os.access(self.loadgen, os.X_OK):
            os.symlink(self.loadgen, os.path.join(self.tmp, "cbench-load"))
            loads += "[[loads]]\nname = \"own\"\nwrk_threads = 1\nconnections = 4\ngenerator = \"cbench-load\"\n"
        else:
            print(f"test_multihost: the cbench-load point skipped: {self.loadgen} is not built",
                  file=sys.stderr, flush=True)
        with open(self.scen, "w") as f:
            f.write("duration_s = 1\nwarmup_s = 0.3\nrepetitions = 1\ntimeout_s = 2\n" + loads
                    + "[[rows]]\nmodel = \"fake-ok\"\n")

    def tearDown(self):
        # Whatever this test started and left (a failed sweep's server, generator or gate) is
        # named in the failure, and killed so that nothing outlives the test.
        left = processes_matching(self.tmp)
        for line in left:
            try:
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(left, [], "processes left behind")

    def test_a_sweep_with_load_from_two_namespaces(self):
        t = self.topo
        clients = [f"netns:{t.client_ns}", f"netns:{t.client2_ns}"]
        r = subprocess.run([PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin", self.wrk,
                            "--out", self.out, "--lock-timeout", "600",
                            "--server-host", f"netns:{t.server_ns}@{t.server_addr}",
                            "--client-host", clients[0], "--client-host", clients[1]],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("load from 2 client hosts", r.stdout)
        (run_id,) = os.listdir(self.out)
        with open(os.path.join(self.out, run_id, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(self.out, run_id, "points.jsonl")) as f:
            points = [json.loads(line) for line in f]
        # One environment entry per host, each read on that host: distinct addresses.
        topo = meta["topology"]
        self.assertEqual(topo["kind"], "across-namespaces")
        self.assertEqual(meta["harness"]["client_hosts"], clients)
        self.assertEqual([c["spec"] for c in topo["clients"]], clients)
        self.assertEqual([c["address"] for c in topo["clients"]], [t.client_addr, t.client2_addr])
        envs = [topo["server"]["env"]] + [c["env"] for c in topo["clients"]]
        addrs = [sorted(a for link, a_list in e["addresses"].items() if link != "lo" for a in a_list) for e in envs]
        self.assertEqual(addrs[1:], [[f"{t.client_addr}/24"], [f"{t.client2_addr}/24"]])
        self.assertIn(f"{t.server_addr}/24", addrs[0])
        self.assertEqual(len({tuple(a) for a in addrs}), 3, addrs)
        net = topo["network"]
        self.assertEqual(net["client_addresses"], [t.client_addr, t.client2_addr])
        self.assertEqual([x.get("from") for x in net["rtt"]], clients)
        self.assertTrue(all(x["echo_us"]["median"] > 0 for x in net["rtt"]), net["rtt"])
        self.assertEqual(len(points), 2 if os.path.lexists(os.path.join(self.tmp, "cbench-load")) else 1)
        for p in points:
            with self.subTest(p["load"]["key"]):
                self.assertEqual(p["status"], "ok", p["failure"])
                c = p["clients"]
                print(f"test_multihost: {p['load']['key']}: start skew {c['skew_s'] * 1e3:.2f} ms, release "
                      f"{c['release_spread_s'] * 1e6:.0f} us, window {c['window_s']:.3f} s, unshared "
                      f"{c['max_unshared_fraction'] * 100:.1f}%, bounded {c['bounded']}", file=sys.stderr, flush=True)
                self.assertEqual(c["hosts"], 2)
                gens = c["generators"]
                self.assertEqual([g["host"] for g in gens], clients)
                self.assertEqual([g["connections"] for g in gens], [2, 2])  # -c4 split evenly
                self.assertTrue(all(g["requests"] > 0 for g in gens), gens)
                self.assertEqual(p["wrk"]["requests"], sum(g["requests"] for g in gens))
                self.assertEqual(c["requests_sum"], p["wrk"]["requests"])
                self.assertEqual(sum(g["errors"] for g in gens), c["errors_sum"])
                self.assertTrue(all(g["cpu_s"] is not None and g["start_clock"] == "host" for g in gens), gens)
                self.assertGreaterEqual(c["skew_s"], 0.0)
                self.assertGreater(c["window_s"], 0.0)
                # An unbounded window marks the point; a bounded one keeps its CPU verdict.
                self.assertEqual(p["verdict"] == "window-unbounded", not c["bounded"], p["verdict_evidence"])
                self.assertEqual([x[:4] for x in p["commands"]["clients"]],
                                 [[IP, "netns", "exec", t.client_ns], [IP, "netns", "exec", t.client2_ns]])
                self.assertTrue(all(f"http://{t.server_addr}:" in " ".join(x) for x in p["commands"]["clients"]))
                self.assertEqual([h["host"] for h in p["hosts"]["clients"]], clients)
                self.assertEqual(p["client"]["hosts"], 2)
                if p["load"]["generator"] == "cbench-load":
                    self.assertTrue(p["wrk"]["latency_merged"])
                    self.assertIsNotNone(p["wrk"]["latency_us"]["p99"])
                else:
                    self.assertFalse(p["wrk"]["latency_merged"])
                    self.assertIsNone(p["wrk"]["latency_us"]["p99"])
                    self.assertTrue(all("p99" in g["latency_us"] for g in gens), gens)  # kept per host

    def test_a_point_with_fewer_connections_than_hosts_is_refused(self):
        with open(self.scen, "a") as f:
            f.write("[[loads]]\ngenerator = \"wrk\"\nname = \"one\"\nwrk_threads = 1\nconnections = 1\n")
        t = self.topo
        r = subprocess.run([PYTHON, CBENCH, "sweep", self.scen, "--server-bin", self.server, "--wrk-bin", self.wrk,
                            "--out", self.out, "--server-host", f"netns:{t.server_ns}@{t.server_addr}",
                            "--client-host", f"netns:{t.client_ns}", "--client-host", f"netns:{t.client2_ns}"],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("1 connections cannot be split between 2 client hosts", r.stderr)
        self.assertFalse(os.path.exists(self.out))


class TopologyIsPartOfTheEnvironment(unittest.TestCase):
    """compare refuses to mix runs measured across namespaces with loopback runs (no namespaces
    needed: two runs in memory)."""

    def test_compare_refuses_a_different_topology(self):
        from cbenchlib.render import runcompare
        from cbenchlib.analysis import runload
        env = {"cpu_model": "x", "cpu_count": 2, "kernel": "k", "compiler": "c",
               "server_cpus": "0", "client_cpus": "1"}
        old = runload.Run("old", {"env": dict(env)}, [], False)  # before env.topology existed
        loop = runload.Run("loop", {"env": dict(env, topology="loopback")}, [], False)
        ns = runload.Run("ns", {"env": dict(env, topology="across-namespaces")}, [], False)
        self.assertEqual(runcompare.env_differences(old, loop), [])
        self.assertEqual(runcompare.env_differences(loop, ns),
                         [("topology", "loopback", "across-namespaces")])
        self.assertEqual(runcompare.env_differences(old, ns),
                         [("topology", "loopback", "across-namespaces")])


if __name__ == "__main__":
    unittest.main()
