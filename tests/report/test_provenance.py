"""Provenance: git state recorded and checked, machine fingerprint, and the
per-CPU busy/softirq/steal split of a measured window (procstat.cpu_window)."""
import os
import shutil
import subprocess
import tempfile
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)

from cbenchlib.run import envinfo, procstat


def git(repo, *argv):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv], cwd=repo, check=True,
                   capture_output=True)


class GitProvenanceTest(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp(prefix="cbench-git-")
        self.addCleanup(shutil.rmtree, self.repo)
        git(self.repo, "init", "-q")
        with open(os.path.join(self.repo, "a.cpp"), "w") as f:
            f.write("int main() {}\n")
        os.makedirs(os.path.join(self.repo, "results"))
        git(self.repo, "add", "a.cpp")
        git(self.repo, "commit", "-qm", "one")

    def test_clean_tree_is_accepted(self):
        info = envinfo.git_info(self.repo)
        self.assertRegex(info["git_commit"], r"^[0-9a-f]{40}$")
        self.assertIs(info["git_dirty"], False)
        self.assertIsNone(envinfo.dirty_refusal(info, allow_dirty=False))

    def test_a_run_writing_into_results_is_not_a_change(self):
        with open(os.path.join(self.repo, "results", "points.jsonl"), "w") as f:
            f.write("{}\n")
        self.assertIs(envinfo.git_info(self.repo)["git_dirty"], False)

    def test_dirty_tree_is_refused_unless_allowed_and_then_recorded(self):
        with open(os.path.join(self.repo, "a.cpp"), "a") as f:
            f.write("// edit\n")
        info = envinfo.git_info(self.repo)
        self.assertIs(info["git_dirty"], True)
        self.assertEqual(info["git_dirty_files"], ["a.cpp"])
        self.assertRegex(info["git_diff_sha256"], r"^[0-9a-f]{64}$")
        refusal = envinfo.dirty_refusal(info, allow_dirty=False)
        self.assertIn("uncommitted changes (a.cpp)", refusal)
        self.assertIsNone(envinfo.dirty_refusal(info, allow_dirty=True))
        with open(os.path.join(self.repo, "a.cpp"), "a") as f:
            f.write("// another edit\n")
        self.assertNotEqual(envinfo.git_info(self.repo)["git_diff_sha256"], info["git_diff_sha256"])

    def test_unknown_commit_is_refused_with_gits_reason(self):
        not_a_repo = tempfile.mkdtemp(prefix="cbench-nogit-")
        self.addCleanup(shutil.rmtree, not_a_repo)
        info = envinfo.git_info(not_a_repo)
        self.assertIsNone(info["git_commit"])
        self.assertIn("git rev-parse HEAD", info["git_error"])
        self.assertIn("cannot tell which commit", envinfo.dirty_refusal(info, allow_dirty=True))


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 106
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
stepping\t: 6
microcode\t: 0xd0003a5
flags\t\t: fpu vme hypervisor avx2

processor\t: 1
vendor_id\t: GenuineIntel
"""


class MachineTest(unittest.TestCase):
    def test_cpu_identity(self):
        ident = envinfo.cpu_identity(CPUINFO)
        self.assertEqual((ident["cpu_vendor"], ident["cpu_family"], ident["cpu_model_number"],
                          ident["cpu_stepping"], ident["microcode"], ident["virtualized"]),
                         ("GenuineIntel", "6", "106", "6", "0xd0003a5", True))
        self.assertIs(envinfo.cpu_identity(CPUINFO.replace(" hypervisor", ""))["virtualized"], False)

    def test_guest_says_smt_is_invisible(self):
        self.assertIn("not visible", envinfo.smt_siblings("0", True)["note"])
        self.assertIsNone(envinfo.smt_siblings("0", False)["note"])

    def test_collect_records_the_machine_fingerprint_fields(self):
        env = envinfo.provenance("0", "1")
        for key in ("cpu_family", "cpu_model_number", "cpu_stepping", "microcode", "smt", "mitigations",
                    "sysctl", "ulimit_nofile", "transparent_hugepage", "perf_version",
                    "hardware_counters", "irq_time_accounting"):
            self.assertIn(key, env)
        self.assertEqual(sorted(env["sysctl"]), sorted(envinfo.SYSCTLS))


STAT_A = ("cpu  0 0 0 0 0 0 0 0 0 0\n"
          "cpu0 100 0 100 800 0 0 0 0 0 0\n"
          "cpu1 100 0 100 800 0 0 0 0 0 0\n")
# Over the window, CPU 0: 40 user, 30 system, 10 softirq, 10 steal, 10 idle ticks;
# CPU 1: 20 user, 20 system, 0 softirq, 0 steal, 60 idle.
STAT_B = ("cpu  0 0 0 0 0 0 0 0 0 0\n"
          "cpu0 140 0 130 810 0 0 10 10 0 0\n"
          "cpu1 120 0 120 860 0 0 0 0 0 0\n")
SOFTIRQS_A = "                    CPU0       CPU1\n      NET_RX:        100        50\n      NET_TX:          1          2\n"
SOFTIRQS_B = "                    CPU0       CPU1\n      NET_RX:        400        60\n      NET_TX:          3          2\n"


class CpuWindowTest(unittest.TestCase):
    def test_split_and_steal_is_not_busy(self):
        w = procstat.cpu_window(STAT_A, STAT_B, SOFTIRQS_A, SOFTIRQS_B, ["0"], ["1"])
        c0 = w["cpus"]["0"]
        self.assertEqual((c0["busy_frac"], c0["softirq_frac"], c0["steal_frac"], c0["idle_frac"]),
                         (0.8, 0.1, 0.1, 0.1))
        self.assertEqual((c0["net_rx"], c0["net_tx"]), (300, 2))
        self.assertEqual(w["busy_frac"], {"server": 0.8, "client": 0.4})
        self.assertEqual(w["steal_frac"], {"server": 0.1, "client": 0.0})
        # the older (busy, total) form no longer counts steal as busy either
        before, after = procstat.parse_system_stat(STAT_A), procstat.parse_system_stat(STAT_B)
        self.assertEqual(procstat.machine_window(before, after, 100)["cpu_busy"]["0"], 0.8)

    def test_steal_is_flagged_as_disturbance(self):
        w = procstat.cpu_window(STAT_A, STAT_B, None, None, ["0"], ["1"])
        self.assertEqual(procstat.steal_disturbance(w), "DISTURBED: hypervisor steal server CPU 10%")
        self.assertIsNone(procstat.steal_disturbance({"steal_frac": {"server": 0.01, "client": 0.0}}))

    def test_cpu_list(self):
        self.assertEqual(procstat.cpu_list("0-2,5"), ["0", "1", "2", "5"])
        self.assertEqual(procstat.cpu_list(None), [])

    def test_real_proc_files_parse(self):
        with open("/proc/stat") as f:
            text = f.read()
        w = procstat.cpu_window(text, text, procstat.read_softirqs(), procstat.read_softirqs(), ["0"], [])
        self.assertIn("cpus", w)


class RubyPeerVersionTest(unittest.TestCase):
    """peer_versions reads each Ruby server's version from what its probe prints: every probe is
    run as a stub that prints a recorded output (on stdout or stderr), never the real server."""

    CASES = (  # (peer, stream, what the probe printed, version recorded)
        ("puma", "stdout", "puma version 5.6.5\n", "5.6.5"),
        ("unicorn", "stdout", "unicorn v6.0.0\n", "6.0.0"),
        ("thin", "stdout", "thin 1.8.1 codename Infinite Smoothie\n", "1.8.1"),
        ("async-http", "stdout", "0.59.5", "0.59.5"),
        ("async-http", "stdout", "<internal:x>: warning: y\n", None),   # no version: not recorded
        ("puma", "stderr", "puma version 6.4.2\n", "6.4.2"),
    )

    def stub(self, directory: str, stream: str, text: str) -> str:
        path = os.path.join(directory, "probe")
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nprintf '%s' '{text}'{' >&2' if stream == 'stderr' else ''}\n")
        os.chmod(path, 0o755)
        return path

    def test_versions_from_probe_output(self):
        for peer, stream, text, expected in self.CASES:
            with self.subTest(peer=peer, output=text), tempfile.TemporaryDirectory() as d:
                probe = self.stub(d, stream, text)
                argv0 = envinfo.PEER_VERSION_PROBES[peer][0][0]
                found = envinfo.peer_versions(which=lambda name: probe if name == argv0 else None)
                self.assertEqual(found.get(peer), expected, found)

    def test_a_missing_server_is_left_out(self):
        self.assertEqual(envinfo.peer_versions(which=lambda name: None), {})


if __name__ == "__main__":
    unittest.main()
