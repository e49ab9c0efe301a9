"""The regression gate end to end (ctest harness_regress) against the real cbench-server, on its
default metric, instructions per request (callgrind): 10 gates of an unchanged candidate (A/A)
and 10 of a candidate that does 10% more work per request, the size the gate exists to catch.

The handicap is real work in the server: `--handicap-loops N` runs N iterations of the /spin loop
in every request the candidate answers, N = 10% of the baseline's instructions per request (from
the first A/A gate) / the instructions of one loop (from one gate with a 1,000-loop handicap),
rounded up. Required: the A/A passes in at least 9 of 10 gates, the handicapped candidate is
caught (FAIL, or undecided: not passed, exit status non-zero) in at least 8 of 10, every exit
status matches its verdict, and an undecided gate (one block: no interval) exits 3 and says how
many repetitions would decide it. Counts, not times: no assertion depends on this machine's speed.

Bounded: one model, 3 blocks of one callgrind process per side (two at once), ~10 s per gate
with the baseline kept; 22 gates, about 4 minutes. The test holds the machine-wide benchmark lock
for all of them (the gates get a private lock file), so that no other benchmark waits between two
gates or runs beside one. With a clean tree the HEAD baseline is the
candidate's fresh build, copied; with uncommitted changes it is built from `git archive HEAD` once
(minutes) and kept in build-regress/<commit>/ for the next run.
"""
import json
import math
import os
import re
import tempfile
import unittest

from common import REPO, run_cbench
from cbenchlib.run import benchlock

SERVER_BIN = os.environ.get("CBENCH_SERVER_BIN") or os.path.join(REPO, "build", "cbench-server")
GATE = ["regress", "--baseline", "HEAD", "--models", "epoll-reactor", "--repetitions", "3",
        "--server-bin", SERVER_BIN]
TRIALS = 10
HANDICAP_FRACTION = 0.10  # of the baseline's instructions per request: the default threshold itself
PROBE_LOOPS = 1000
TIMEOUT_S = 300  # one gate; it may wait for the machine-wide lock
EXIT = {"pass": 0, "FAIL": 1, "undecided": 3}


def gate(extra: list[str] = ()) -> tuple[object, dict]:
    """(process, its one model's regress.json entry with the meta) of one gate run."""
    proc = run_cbench(GATE + ["--lock-file", RegressGate.private_lock] + list(extra), timeout=TIMEOUT_S)
    m = re.search(r"everything in (\S+)\)", proc.stdout)
    if not m:
        raise AssertionError("no gate directory printed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    with open(os.path.join(m.group(1), "regress.json")) as f:
        res = json.load(f)
    (model,) = res["models"]
    model["meta"] = res["meta"]
    return proc, model


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


class RegressGate(unittest.TestCase):
    private_lock = ""

    @classmethod
    def setUpClass(cls):
        cls._lock = benchlock.acquire(benchlock.DEFAULT_PATH, None, "regress_gate", "tests/harness/regress_gate.py")
        fd, cls.private_lock = tempfile.mkstemp(prefix="cbench-regress-gate-", suffix=".lock")
        os.close(fd)

    @classmethod
    def tearDownClass(cls):
        cls._lock.close()
        os.unlink(cls.private_lock)

    def setUp(self):
        if not os.path.exists(SERVER_BIN):
            self.fail(f"{SERVER_BIN} does not exist: build cbench-server first")

    def check(self, proc, m):
        why = json.dumps({k: v for k, v in m.items() if k != "meta"}, indent=1) + "\n" + proc.stdout[-1500:] \
            + proc.stderr[-1500:]
        self.assertEqual(m["meta"]["metrics"], ["instructions_per_req"], why)
        self.assertEqual(proc.returncode, EXIT[m["gate"]], why)
        if m["gate"] == "undecided":  # fails closed, and says what would decide it
            self.assertIn("UNDECIDED: epoll-reactor", proc.stdout, why)
            self.assertRegex(m["reason"], r"--repetitions \d+|more than \d+ blocks", why)

    def test_aa_passes_and_ten_percent_is_caught(self):
        aa = []
        for _ in range(TRIALS):
            proc, m = gate()
            self.check(proc, m)
            aa.append(m)
        base = median([v for m in aa for v in m["instructions_per_req"]["baseline"]])
        proc, probe = gate(["--candidate-args", f"--handicap-loops {PROBE_LOOPS}"])
        self.check(proc, probe)
        self.assertEqual(probe["gate"], "FAIL", probe["reason"])
        per_loop = (median(probe["instructions_per_req"]["candidate"])
                    - median(probe["instructions_per_req"]["baseline"])) / PROBE_LOOPS
        self.assertGreater(per_loop, 0)
        loops = math.ceil(HANDICAP_FRACTION * base / per_loop)
        ab = []
        for _ in range(TRIALS):
            proc, m = gate(["--candidate-args", f"--handicap-loops {loops}"])
            self.check(proc, m)
            ab.append(m)
        words = lambda ms: [m["gate"] for m in ms]  # noqa: E731
        ratios = lambda ms: [round(m["metrics"]["instructions_per_req"]["slowdown"]["ratio"], 4) for m in ms]  # noqa: E731
        print(f"\n{base:.1f} instructions/request, {per_loop:.2f} per loop; +10% = {loops} loops."
              f"\nA/A: {words(aa)} {ratios(aa)}\n+10%: {words(ab)} {ratios(ab)}")
        self.assertGreaterEqual(words(aa).count("pass"), 9, f"A/A: {words(aa)}")
        self.assertGreaterEqual(TRIALS - words(ab).count("pass"), 8, f"+10%: {words(ab)}")

    def test_fixed_rate_metric_is_measured_in_turns(self):
        """The wall-clock metric at the fixed-rate load: both rows offered one open-loop rate, each
        baseline and candidate in alternate turns of one window, judged by the same rule. Behaviour
        only: its verdict depends on the machine (bench/regress_trials.py measures its rates)."""
        proc, m = gate(["--metrics", "server_cpu_us_per_req@fixed-rate"])
        why = json.dumps({k: v for k, v in m.items() if k != "meta"}, indent=1) + proc.stdout[-1500:]
        self.assertEqual(proc.returncode, EXIT[m["gate"]], why)
        self.assertEqual(list(m["loads"]), ["fixed-rate"], why)
        self.assertIn("server_cpu_us_per_req@fixed-rate", m["metrics"], why)
        self.assertIn("fixed rate: cbench-load", proc.stdout)
        gate_dir = re.search(r"everything in (\S+)\)", proc.stdout).group(1)
        (run,) = os.listdir(os.path.join(gate_dir, "runs"))
        with open(os.path.join(gate_dir, "runs", run, "points.jsonl")) as f:
            pts = [json.loads(line) for line in f]
        self.assertEqual(len(pts), 2 * 3, why)  # two rows, three blocks
        for p in pts:
            self.assertEqual(p["wrk"]["mode"], "open")
            self.assertEqual((p["alternation"]["slices"], p["alternation"]["slice_ms"]), (2, 500))
        rates = {p["wrk"]["rate_offered"] for p in pts}
        self.assertEqual(len(rates), 1, f"one offered rate for both rows: {rates}")

    def test_undecided_exits_non_zero_and_says_what_would_decide(self):
        proc, m = gate(["--repetitions", "1"])
        self.assertEqual(m["gate"], "undecided", m)
        self.assertEqual(proc.returncode, 3)
        self.assertIn("--repetitions 2", m["reason"])
        self.assertIn("UNDECIDED: epoll-reactor", proc.stdout)


if __name__ == "__main__":
    unittest.main()
