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


if __name__ == "__main__":
    unittest.main()
