"""The CPU layout (plan/cpulayout.py) and the sysfs reader (run/cputopo.py), on sysfs fixtures
of three machines (tests/harness/fixtures/sysfs/): a 2-vCPU guest, an 8-core 16-thread desktop
(CPU n and n+8 share a core) and a two-socket 128-CPU server (node 0: 0-31,64-95). Nothing here
depends on the machine the tests run on."""
import contextlib
import io
import os
import re
import tempfile
import types
import unittest

from common import FIXTURES, run_cbench
from cbenchlib.cmd import calibrate, regress
from cbenchlib.cmd.sweep import choose_cpus, generated_cpus
from cbenchlib.format import scenario
from cbenchlib.plan import cpulayout, sweepplan
from cbenchlib.plan.cpulayout import Layout, LayoutError, Topology
from cbenchlib.run import cputopo, envinfo

SYSFS = os.path.join(FIXTURES, "sysfs")
GUEST, DESKTOP, SERVER = "guest-2cpu", "desktop-16t-smt", "server-128cpu-2node"

# fixture -> (CPUs, cores, SMT threads, NUMA nodes, governors, turbo, automatic server, client)
MACHINES = {
    GUEST: (2, 2, 1, 1, {}, None, "0", "1"),
    DESKTOP: (16, 8, 2, 1, {"powersave": "0-15"}, True, "0-3,8-11", "4-7,12-15"),
    SERVER: (128, 64, 2, 2, {"performance": "0-127"}, True, "0-31,64-95", "32-63,96-127"),
}


def root(name: str) -> str:
    return os.path.join(SYSFS, name)


def topo_of(n_cpus: int, siblings: int = 1, nodes: int = 1) -> Topology:
    """A synthetic machine: cores of `siblings` consecutive CPUs, split evenly between nodes."""
    cpus = tuple(range(n_cpus))
    cores = tuple(cpus[i:i + siblings] for i in range(0, n_cpus, siblings))
    per = n_cpus // nodes
    return Topology(cpus=cpus, cores=cores, nodes={n: cpus[n * per:(n + 1) * per] for n in range(nodes)})


class TopologyFromSysfs(unittest.TestCase):
    def test_each_fixture(self):
        for name, (n, cores, smt, nodes, governors, turbo, _, _) in MACHINES.items():
            with self.subTest(name):
                t = cputopo.read(root(name))
                self.assertEqual((len(t.cpus), len(t.cores), t.smt_threads, len(t.nodes)), (n, cores, smt, nodes))
                self.assertTrue(all(len(c) == smt for c in t.cores))
                f = cputopo.frequency(t, root(name))
                self.assertEqual((f["governors"], f["turbo"]), (governors, turbo))

    def test_siblings_stay_in_one_core(self):
        t = cputopo.read(root(DESKTOP))
        self.assertIn((3, 11), t.cores)
        t = cputopo.read(root(SERVER))
        self.assertIn((40, 104), t.cores)

    def test_missing_root_is_empty_not_an_error(self):
        t = cputopo.read(os.path.join(SYSFS, "no-such-machine"))
        self.assertEqual(t.cpus, ())
        lay = cpulayout.automatic(t)
        self.assertEqual((lay.server_cpus, lay.client_cpus), ("0", "1"))


class AutomaticLayout(unittest.TestCase):
    def test_fixtures_disjoint_whole_cores(self):
        for name, (*_, server, client) in MACHINES.items():
            with self.subTest(name):
                t = cputopo.read(root(name))
                lay = cpulayout.automatic(t)
                self.assertEqual((lay.server_cpus, lay.client_cpus), (server, client))
                s, c = set(scenario.cpu_list(server)), set(scenario.cpu_list(client))
                self.assertFalse(s & c)
                for core in t.cores:  # every core wholly on one side
                    self.assertIn(len(set(core) & s), (0, len(core)), core)
                self.assertTrue(lay.reason)
                self.assertEqual(cpulayout.check(lay, t), [])

    def test_odd_shapes(self):
        cases = [  # (label, topology, server, client, words in the reason)
            ("one CPU", topo_of(1), "0", "0", "share"),
            ("two siblings", topo_of(2, siblings=2), "0", "1", "SMT siblings"),
            ("three cores", topo_of(3), "0-1", "2", "3 cores"),
            ("one core, four threads", topo_of(4, siblings=4), "0-1", "2-3", "one core"),
            ("four nodes", topo_of(16, siblings=2, nodes=4), "0-3", "4-7", "node 1"),
            ("64 CPUs, one node", topo_of(64), "0-31", "32-63", "32 whole cores"),
        ]
        for label, t, server, client, words in cases:
            with self.subTest(label):
                lay = cpulayout.automatic(t)
                self.assertEqual((lay.server_cpus, lay.client_cpus), (server, client))
                self.assertIn(words, lay.reason)

    def test_format_cpu_list(self):
        for cpus, text in [([], ""), ([0], "0"), ([0, 1, 2, 5, 8, 9], "0-2,5,8-9"), ([3, 1, 2], "1-3")]:
            self.assertEqual(cpulayout.format_cpu_list(cpus), text)


class Resolve(unittest.TestCase):
    AUTO = Layout("0-3", "4-7", "automatic", "the topology's")

    def test_flag_beats_scenario_beats_automatic(self):
        cases = [  # (scenario's keys, flags, server, client, source)
            ({}, {}, "0-3", "4-7", "automatic"),
            ({"server_cpus": "0"}, {}, "0", "4-7", "scenario"),
            ({"server_cpus": "0", "client_cpus": "1"}, {}, "0", "1", "scenario"),
            ({"server_cpus": "0"}, {"server_cpus": "2"}, "2", "4-7", "flag"),
            ({"server_cpus": "0", "client_cpus": "1"}, {"client_cpus": "5", "server_cpus": None}, "0", "5", "flag"),
        ]
        for given, flags, server, client, source in cases:
            with self.subTest(given=given, flags=flags):
                lay = cpulayout.resolve(self.AUTO, given, flags)
                self.assertEqual((lay.server_cpus, lay.client_cpus, lay.source), (server, client, source))

    def test_explicit_cpus_reads_only_what_the_file_sets(self):
        self.assertEqual(cpulayout.explicit_cpus('name = "x"\n'), {})
        self.assertEqual(cpulayout.explicit_cpus('server_cpus = "0-1"\n'), {"server_cpus": "0-1"})


class Check(unittest.TestCase):
    def test_bad_lists_fail_naming_them(self):
        t = cputopo.read(root(GUEST))
        cases = [  # (server, client, words in the message)
            ("0-7", "1", ['server_cpus (--server-cpus) "0-7"', "CPU 2-7 do not exist", "usable CPUs: 0-1"]),
            ("0", "3", ['client_cpus (--client-cpus) "3"', "CPU 3 does not exist"]),
            ("0,x", "1", ["server_cpus (--server-cpus)", "'0,x'"]),
            ("3-1", "1", ["runs backwards"]),
        ]
        for server, client, words in cases:
            with self.subTest(server=server, client=client):
                with self.assertRaises(LayoutError) as cm:
                    cpulayout.check(Layout(server, client, "flag", ""), t)
                for w in words:
                    self.assertIn(w, str(cm.exception))

    def test_warnings(self):
        t = cputopo.read(root(DESKTOP))
        cases = [  # (server, client, rows, wrk threads, words in the warnings; None: none)
            ("0-3,8-11", "4-7,12-15", [("a", 8)], 8, None),
            ("0", "0", [], 0, "share CPU 0"),
            ("0-3", "8-11", [], 0, "share 4 physical cores"),
            ("0", "4-7", [("ever t4", 4), ("pull t1", 1)], 0, "1 row runs more server threads than the 1 server CPU: ever t4 (4)"),
            ("0-3,8-11", "4", [], 8, "wrk runs up to 8 threads on 1 client CPU"),
        ]
        for server, client, rows, wrk, words in cases:
            with self.subTest(server=server, client=client):
                out = cpulayout.check(Layout(server, client, "flag", ""), t, rows, wrk)
                if words is None:
                    self.assertEqual(out, [])
                else:
                    self.assertTrue(any(words in w for w in out), out)


class Planning(unittest.TestCase):
    TEXT = ('name = "x"\n{cpus}[[loads]]\ngenerator = \"wrk\"\nexplicit = [{{ wrk_threads = 2, connections = 4 }}]\n'
            '[[rows]]\nmodel = "pull-loop"\nthreads = 1\n')

    def plan(self, cpus_text="", recorded=None, hosts=("local", ["local"]), **flags):
        sc = scenario.parse(self.TEXT.format(cpus=cpus_text), "x.toml")
        machine = sweepplan.Machine(git_commit=lambda: None, split_connections=lambda c, h: [],
                                    profile_estimate_s=lambda p, s: 0.0,
                                    topology=lambda: cputopo.read(root(DESKTOP)))
        args = types.SimpleNamespace(server_cpus=flags.get("server"), client_cpus=flags.get("client"))
        sc, layout, _ = sweepplan.plan_layout(sc, args, hosts, recorded, machine)
        self.assertEqual((sc.settings.server_cpus, sc.settings.client_cpus),
                         (layout.server_cpus, layout.client_cpus))
        return layout

    def test_sources(self):
        cases = [  # (label, plan kwargs, server, client, source)
            ("automatic", {}, "0-3,8-11", "4-7,12-15", "automatic"),
            ("scenario", {"cpus_text": 'server_cpus = "0"\nclient_cpus = "1"\n'}, "0", "1", "scenario"),
            ("flag", {"cpus_text": 'server_cpus = "0"\n', "server": "2-3"}, "2-3", "4-7,12-15", "flag"),
            ("resumed", {"recorded": {"server_cpus": "5", "client_cpus": "6"}, "server": "1"}, "5", "6", "recorded"),
            ("ssh: unchecked", {"hosts": ("ssh://box", ["local"]), "server": "0-99"}, "0-99", "1", "flag"),
        ]
        for label, kw, server, client, source in cases:
            with self.subTest(label):
                lay = self.plan(**kw)
                self.assertEqual((lay.server_cpus, lay.client_cpus, lay.source), (server, client, source))

    def test_bad_list_is_a_plan_error(self):
        with self.assertRaises(sweepplan.PlanError) as cm:
            self.plan(server="0-31")
        self.assertIn('"0-31": CPU 16-31 do not exist', str(cm.exception))


class CpuRelativeCounts(unittest.TestCase):
    """threads and wrk_threads written relative to the CPUs given ("cpus", "2*cpus", "cpus/2")."""
    TEXT = ('name = "x"\n[[loads]]\ngenerator = \"wrk\"\nwrk_threads = {wrk}\nconnections = [4, 64]\n'
            '[[rows]]\nmodel = "pull-loop"\nthreads = {threads}\n')

    def parse(self, threads, wrk="2", counts=None):
        return scenario.parse(self.TEXT.format(threads=threads, wrk=wrk), "x.toml", cpu_counts=counts)

    def test_counts(self):
        cases = [  # (threads, wrk_threads, server CPUs, client CPUs, row threads, wrk -t per connections)
            ('["1", "cpus", "2*cpus"]', '"cpus"', 8, 4, [1, 8, 16], [4, 4]),
            ('["1", "cpus", "2*cpus"]', '"cpus"', 1, 1, [1, 2], [1, 1]),
            ('"cpus/2"', '"2*cpus"', 1, 64, [1], [4, 64]),
            ('["cpus/2", 4]', "2", 16, 1, [8, 4], [2, 2]),
            ('" cpus "', '"cpus"', 3, 3, [3], [3, 3]),
        ]
        for threads, wrk, server, client, rows, wrks in cases:
            with self.subTest(threads=threads, server=server):
                sc = self.parse(threads, wrk, {"server": server, "client": client})
                self.assertEqual([r.threads for r in sc.rows], rows)
                self.assertEqual([ld.wrk_threads for ld in sc.load_sets["load0"]], wrks)

    def test_without_counts_the_files_own_lists_count(self):
        text = 'server_cpus = "0-5"\n' + self.TEXT.format(threads='"cpus"', wrk="1")
        self.assertEqual(scenario.parse(text, "x.toml").rows[0].threads, 6)
        self.assertEqual(self.parse('"cpus"').rows[0].threads, 1)  # the default "0"

    def test_explicit_loads(self):
        text = ('name = "x"\n[[loads]]\ngenerator = \"wrk\"\nexplicit = [{ wrk_threads = "cpus", connections = 64 }]\n'
                '[[rows]]\nmodel = "pull-loop"\n')
        sc = scenario.parse(text, "x.toml", cpu_counts={"server": 1, "client": 6})
        self.assertEqual(sc.load_sets["load0"][0].key, "-t6 -c64")

    def test_bad_values_name_the_key(self):
        cases = [('"3*cpu"', "rows[0].threads: expected an integer, got a string '3*cpu'"),
                 ('["cpus", "cpus"]', "rows[0].threads: repeated value"),
                 ('"2048*cpus"', "rows[0].threads: must be between 1 and 1024, got 2048")]
        for threads, words in cases:
            with self.subTest(threads), self.assertRaises(scenario.ScenarioError) as cm:
                self.parse(threads)
            self.assertIn(words, str(cm.exception))


class DryRunOnFixtures(unittest.TestCase):
    """`cbench sweep SCENARIO --dry-run` pointed at each fixture through CBENCH_SYSFS_ROOT."""

    def dry_run(self, name, *extra):
        env = dict(os.environ, CBENCH_SYSFS_ROOT=root(name))
        return run_cbench(["sweep", "smoke", "--dry-run", "--server-bin", "/nonexistent/cbench-server",
                           *extra], timeout=60, env=env)

    def test_layout_line_per_fixture(self):
        for name, (*_, server, client) in MACHINES.items():
            with self.subTest(name):
                r = self.dry_run(name)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"CPU layout: server {server}, wrk {client} (automatic: ", r.stdout)
                self.assertIn(f"server on CPU {server}, wrk on CPU {client}", r.stdout)

    def test_system_warnings(self):
        r = self.dry_run(DESKTOP)
        self.assertIn("frequency governor 'powersave'", r.stdout)
        self.assertIn("turbo / boost is on (intel_pstate/no_turbo)", r.stdout)
        r = self.dry_run(SERVER)
        self.assertNotIn("governor", r.stdout)
        self.assertIn("turbo / boost is on (cpufreq/boost)", r.stdout)

    def test_relative_threads_follow_the_layout(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rel.toml")
            with open(path, "w") as f:
                f.write('name = "rel"\n[[loads]]\ngenerator = \"wrk\"\nwrk_threads = "cpus"\nconnections = 64\n'
                        '[[rows]]\nmodel = "pull-loop"\nthreads = ["1", "cpus", "2*cpus"]\n')
            for name, rows, wrk in [(GUEST, ["t1", "t2"], "-t1 -c64"), (DESKTOP, ["t1", "t8", "t16"], "-t8 -c64"),
                                    (SERVER, ["t1", "t64", "t128"], "-t64 -c64")]:
                with self.subTest(name):
                    r = run_cbench(["sweep", path, "--dry-run", "--server-bin", "/nonexistent/cbench-server"],
                                   timeout=60, env=dict(os.environ, CBENCH_SYSFS_ROOT=root(name)))
                    self.assertEqual(r.returncode, 0, r.stderr)
                    keys = re.findall(r"pull-loop (t\d+)\s+(-t\d+ -c64)", r.stdout)
                    self.assertEqual([k for k, _ in keys], rows)
                    self.assertEqual({w for _, w in keys}, {wrk})

    def test_bad_list_fails_naming_it(self):
        r = self.dry_run(GUEST, "--server-cpus", "0-7")
        self.assertEqual(r.returncode, 2)
        self.assertIn('server_cpus (--server-cpus) "0-7": CPU 2-7 do not exist', r.stderr)

    def test_overlap_warns(self):
        r = self.dry_run(GUEST, "--server-cpus", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: the server (CPU 1) and wrk (CPU 1) share CPU 1", r.stdout)


class Recorded(unittest.TestCase):
    def setUp(self):
        self.old = os.environ.get(cputopo.SYSFS_ROOT_ENV)

    def tearDown(self):
        if self.old is None:
            os.environ.pop(cputopo.SYSFS_ROOT_ENV, None)
        else:
            os.environ[cputopo.SYSFS_ROOT_ENV] = self.old

    def test_env_cpu(self):
        os.environ[cputopo.SYSFS_ROOT_ENV] = root(SERVER)
        cpu = envinfo.cpu_settings("0-31,64-95", "32-63,96-127")
        self.assertEqual(cpu["topology"]["numa_nodes"], {"0": "0-31,64-95", "1": "32-63,96-127"})
        self.assertEqual(cpu["topology"]["smt_threads_per_core"], 2)
        self.assertEqual(cpu["frequency"]["governors"], {"performance": "0-127"})
        self.assertTrue(cpu["layout"]["is_automatic"])
        self.assertIn("2 NUMA nodes", cpu["layout"]["automatic"]["reason"])
        self.assertEqual(len(cpu["warnings"]), 1)  # boost only
        self.assertFalse(envinfo.cpu_settings("0", "1")["layout"]["is_automatic"])

    def test_generated_scenarios_carry_the_layout(self):
        args = types.SimpleNamespace(server_cpus=None, client_cpus="100", sysfs_root=root(SERVER),
                                     model="pull-loop", threads=1, path="/", wrk_threads=2, connections=4,
                                     duration=1, warmup=0.5)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            self.assertIsNone(choose_cpus(args, "calibrate"))
        self.assertIn("calibrate: CPU layout: server 0-31,64-95, wrk 100 (flag: ", out.getvalue())
        self.assertEqual(generated_cpus(args), {"server_cpus": "0-31,64-95", "client_cpus": "100"})
        for text in (calibrate.scenario_toml("c", args, [("A", None)], 1, 1),
                     regress.scenario_toml(args, ["pull-loop"], "/b/cbench-server", [], 1, 1, 1)):
            s = scenario.parse(text, "x.toml").settings
            self.assertEqual((s.server_cpus, s.client_cpus), ("0-31,64-95", "100"))
        bad = types.SimpleNamespace(server_cpus="0-200", client_cpus=None, sysfs_root=root(SERVER))
        self.assertIn('"0-200": CPU 128-200 do not exist', choose_cpus(bad, "regress"))


class RuntimeEnvironment(unittest.TestCase):
    """env.runtime_env: the inherited variables that change allocation or linking, and no others."""

    def test_table(self):
        # (label, environment, recorded)
        for label, environ, want in [
                ("none set", {"PATH": "/usr/bin", "HOME": "/root"}, {}),
                ("malloc settings and tunables", {"MALLOC_ARENA_MAX": "1", "GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0",
                                                  "PATH": "/usr/bin"},
                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0", "MALLOC_ARENA_MAX": "1"}),
                ("a preloaded library", {"LD_PRELOAD": "/x/libjemalloc.so", "LD_LIBRARY_PATH": "/x"},
                 {"LD_PRELOAD": "/x/libjemalloc.so"}),
                ("a name that only contains MALLOC_", {"MY_MALLOC_ARENA": "2"}, {})]:
            with self.subTest(label):
                self.assertEqual(envinfo.runtime_env(environ), want)
                self.assertEqual(list(envinfo.runtime_env(environ)), sorted(want))


if __name__ == "__main__":
    unittest.main()
