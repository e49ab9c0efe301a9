"""`cbench compare A B`: environment refusal, --force, significance wording."""
import os
import tempfile
import unittest

from helpers import RUN_A, RUN_B, RUN_OTHER_KERNEL, cbench, point, write_run


class CompareRunsTest(unittest.TestCase):
    def test_refuses_a_different_kernel_naming_field_and_values(self):
        rc, out, err = cbench("compare", RUN_B, RUN_OTHER_KERNEL)
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, "")
        self.assertIn("env.kernel differs", err)
        self.assertIn("'6.1.0-synthetic-amd64'", err)
        self.assertIn("'6.5.0-synthetic-other'", err)
        self.assertIn("--force", err)

    def test_force_compares_and_says_so(self):
        rc, out, err = cbench("compare", RUN_B, RUN_OTHER_KERNEL, "--force")
        self.assertEqual(rc, 0, err)
        self.assertIn("--force although the environments differ", out)
        self.assertIn("env.kernel", out)

    def test_each_pinning_and_machine_field_is_checked(self):
        with tempfile.TemporaryDirectory() as tmp:
            base = {"cpu_model": "X", "cpu_count": 2, "kernel": "k", "compiler": "g++ 12",
                    "server_cpus": "0", "client_cpus": "1"}
            a = write_run(os.path.join(tmp, "a"), [point("r", 1.0)], {"env": base})
            for field, other in [("cpu_model", "Y"), ("cpu_count", 4), ("compiler", "clang 14"),
                                 ("server_cpus", "0-1"), ("client_cpus", "2")]:
                with self.subTest(field=field):
                    b = write_run(os.path.join(tmp, f"b-{field}"), [point("r", 1.0)],
                                  {"env": dict(base, **{field: other})})
                    rc, _, err = cbench("compare", a, b)
                    self.assertNotEqual(rc, 0)
                    self.assertIn(f"env.{field} differs", err)

    def test_significance_and_geometric_mean(self):
        rc, out, err = cbench("compare", RUN_A, RUN_B)
        self.assertEqual(rc, 0, err)
        self.assertIn("faster", out)
        self.assertIn("slower", out)
        self.assertIn("| not significant |", out)
        self.assertIn("Geometric mean of B/A over 8 matching points", out)

    def test_usage_errors(self):
        self.assertEqual(cbench("compare", RUN_A)[0], 2)
        self.assertEqual(cbench("compare", RUN_A, RUN_B, "--published", "ever")[0], 2)
        rc, _, err = cbench("compare", RUN_A, "--published", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("nope.json", err)



EPYC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "results", "runs", "20261122T063927Z-ever-table")


class ReplicationTest(unittest.TestCase):
    """compare --replication: each machine's verdicts side by side, numbers never mixed."""

    def test_epyc_run_beside_a_machine_where_the_single_thread_was_client_bound(self):
        import math
        import random
        rng = random.Random(7)
        pts = []
        for key, label, model, rps, verdict in (
                ("pull-loop t1", "ever single thread", "pull-loop", 90000, "client-bound"),
                ("worker-pool t1 shared", "ever 1 worker thread", "worker-pool", 50000, "server-bound")):
            for rep in range(4):
                p = point(key, rps * math.exp(rng.gauss(0, 0.05)), load_key="-t4 -c64 /spin?us=10", connections=64,
                          label=label, model=model, rep=rep, path="/spin?us=10", verdict=verdict)
                pts.append(p)
        with tempfile.TemporaryDirectory() as tmp:
            other = write_run(os.path.join(tmp, "xeon"), pts,
                              {"scenario_name": "ever-table", "env": {"cpu_model": "Intel Xeon (fixture)",
                                                                      "cpu_count": 2, "kernel": "6.1"}})
            rc, out, err = cbench("compare", "--replication", EPYC, other, "--published", "ever")
        self.assertEqual(rc, 0, err)
        self.assertIn("Run 1: `20261122T063927Z-ever-table`", out)
        self.assertIn("Intel Xeon (fixture)", out)
        row = next(ln for ln in out.splitlines() if ln.startswith("| ever single thread / ever 1 worker thread |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        self.assertTrue(cells[1].startswith("**supported** 1.77 (1.70–1.84)"), cells)
        self.assertEqual(cells[2], "**undecided**")  # client-bound req/s never decides, and is not pooled
        self.assertNotIn("not supported", out)

    def test_needs_two_runs(self):
        self.assertEqual(cbench("compare", "--replication", RUN_A)[0], 2)


if __name__ == "__main__":
    unittest.main()
