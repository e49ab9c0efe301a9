"""Shared paths and helpers of the harness tests (stdlib unittest only)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")
CBENCH = os.path.join(REPO, "scripts", "cbench")
PYTHON = "/usr/bin/python3"
FAKE_SERVER = os.path.join(HERE, "fake_server.py")

sys.path.insert(0, os.path.join(REPO, "scripts"))


def private_fakes(test) -> None:
    """Gives a test a private temporary directory holding a copy of the fake server and a wrk
    link (their paths mark this test's processes, so orphan checks cannot confuse them with anyone
    else's), and a runs directory under it: sets test.tmp, test.server, test.wrk and test.out."""
    import shutil
    import tempfile
    test.tmp = tempfile.mkdtemp(prefix="cbench-test-")
    test.server = os.path.join(test.tmp, "fake_server.py")
    shutil.copy(FAKE_SERVER, test.server)
    test.wrk = os.path.join(test.tmp, "wrk")
    os.symlink(shutil.which("wrk") or "/usr/bin/wrk", test.wrk)
    test.out = os.path.join(test.tmp, "runs")


# The machine-wide benchmark lock: a test sweep runs wrk, and must neither disturb nor be disturbed
# by a benchmark on this machine. 600 s: a reference sweep may hold it for minutes; wait, not fail.
BENCH_LOCK = "/tmp/cbench-bench.lock"
BENCH_LOCK_TIMEOUT_S = 600


def fake_server_fixture(test) -> None:
    """The one setup of a test that sweeps against the fake server: private_fakes(test), and a
    cleanup (after tearDown) that removes test.tmp and fails the test when a process whose
    command line names test.tmp is still alive."""
    import shutil

    private_fakes(test)

    def no_process_left():
        left = processes_matching(test.tmp)
        shutil.rmtree(test.tmp, ignore_errors=True)
        test.assertEqual(left, [], "processes left behind")
    test.addCleanup(no_process_left)


def fake_sweep_args(test, *extra, lock=None) -> list[str]:
    """`cbench sweep` arguments for the fixture's fake server, wrk link and runs directory, under
    the benchmark lock (BENCH_LOCK, read at the call, unless lock names another), then extra (the
    scenario and flags)."""
    return ["sweep", "--server-bin", test.server, "--wrk-bin", test.wrk, "--out", test.out,
            "--lock-file", lock or BENCH_LOCK, "--lock-timeout", str(BENCH_LOCK_TIMEOUT_S)] + list(extra)


def run_cbench(args, timeout=120, **kw):
    """Run scripts/cbench with args; returns CompletedProcess (text)."""
    return subprocess.run([PYTHON, CBENCH] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, **kw)


def processes_matching(token: str) -> list[str]:
    """Command lines of live processes whose argv contains token (orphan checks)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        text = " ".join(a.decode(errors="replace") for a in argv)
        if token in text:
            out.append(f"{pid}: {text}")
    return out
