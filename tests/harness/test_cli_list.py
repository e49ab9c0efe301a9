"""`cbench --version` and `cbench list`: the entry points a new user tries first."""
import os
import subprocess
import unittest

import common  # noqa: F401  (puts scripts/ on sys.path)

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CBENCH = os.path.join(REPO, "scripts", "cbench")
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_server.py")


def cbench(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["/usr/bin/python3", CBENCH, *args], capture_output=True, text=True, timeout=60)


class Version(unittest.TestCase):
    def test_names_the_commit(self):
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        r = cbench("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("cbench "), r.stdout)
        if head.returncode == 0:  # a clone: the version is the commit (describe may abbreviate longer)
            self.assertIn(r.stdout.split()[1][:7], head.stdout.strip() + r.stdout)


class ListVerb(unittest.TestCase):
    def test_every_section(self):
        # (what, a line it must contain)
        cases = [("scenarios", "ever-table"), ("published", "ever"), ("generators", "cbench-load"),
                 ("models", "fake-ok")]
        for what, want in cases:
            with self.subTest(what):
                r = cbench("list", what, "--server-bin", FAKE)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(want, r.stdout)

    def test_a_missing_binary_is_said_not_raised(self):
        r = cbench("list", "models", "--server-bin", "/nonexistent/cbench-server")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("none: cannot run /nonexistent/cbench-server", r.stdout)
        self.assertNotIn("Traceback", r.stderr)

    def test_an_unknown_section_is_one_line(self):
        r = cbench("list", "nothing")
        self.assertEqual(r.returncode, 2)
        self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
