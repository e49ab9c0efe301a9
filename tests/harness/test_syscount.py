"""syscount: parsing perf's CSV output, and a real count when perf works on this machine."""
import os
import tempfile
import unittest

from common import REPO  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.run import host as hostmod
from cbenchlib.run import syscount


class Parse(unittest.TestCase):
    CASES = [
        ("a count", "291330,,raw_syscalls:sys_enter,811831581,100.00,,\n", 291330),
        ("with the header perf writes to -o", "# started on Sun Nov 22\n\n17,,raw_syscalls:sys_enter,1,100.00,,\n", 17),
        ("not counted", "<not counted>,,raw_syscalls:sys_enter,0,0.00,,\n", None),
        ("not supported", "<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n", None),
        ("another event only", "12865,,context-switches,811831581,100.00,,\n", None),
        ("empty", "", None),
    ]

    def test_table(self):
        for label, text, want in self.CASES:
            with self.subTest(label):
                self.assertEqual(syscount.parse(text), want)


class RealCount(unittest.TestCase):
    def test_counts_calls_made_on_the_counted_cpu(self):
        if not syscount.available():
            self.skipTest("perf cannot count raw_syscalls:sys_enter here (not installed, or not permitted)")
        h = hostmod.LocalHost()
        with tempfile.TemporaryDirectory() as tmp:
            c = syscount.Counter(h, "0", os.path.join(tmp, "perf.txt"), None)
            c.start()
            # 2000 getppid calls pinned to CPU 0: the count must include at least those.
            p = h.spawn(["/usr/bin/python3", "-c", "import os\nfor _ in range(2000): os.getppid()"], cpus="0")
            self.assertEqual(p.wait(30), 0)
            n = c.stop()
            h.kill_all()
        self.assertIsNotNone(n, "perf produced no count")
        self.assertGreaterEqual(n, 2000)


if __name__ == "__main__":
    unittest.main()
