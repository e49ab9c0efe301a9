"""/proc sampling, against this test's own process."""
import os
import threading
import time
import unittest

import common  # noqa: F401  (sys.path)
from cbenchlib.run import procstat
from cbenchlib.run.host import LocalHost


class ProcSampling(unittest.TestCase):
    def setUp(self):
        self.host = LocalHost()
        self.pid = os.getpid()

    def test_cpu_time_grows_with_work(self):
        a = procstat.sample(self.host, self.pid, include_descendants=False)
        end = time.process_time() + 0.3
        x = 0
        while time.process_time() < end:
            x += 1
        b = procstat.sample(self.host, self.pid, include_descendants=False)
        w = procstat.window(a, b)
        busy = w["cpu_user_s"] + w["cpu_sys_s"]
        self.assertGreaterEqual(busy, 0.2, w)    # clock ticks are 10 ms
        self.assertLessEqual(busy, w["window_s"] + 0.05, w)
        self.assertGreater(b["rss_kb"], 0)
        self.assertGreaterEqual(b["hwm_kb"], b["rss_kb"])

    def test_threads_and_context_switches_of_every_thread(self):
        a = procstat.sample(self.host, self.pid, include_descendants=False)
        stop = threading.Event()

        def sleeper():
            # Each wait is a voluntary context switch of this (non-main) thread.
            for _ in range(50):
                if stop.wait(0.002):
                    break

        t = threading.Thread(target=sleeper)
        t.start()
        time.sleep(0.05)
        b = procstat.sample(self.host, self.pid, include_descendants=False)
        self.assertEqual(b["threads"], a["threads"] + 1)
        # The per-process status file counts only the main thread; the sample sums tasks.
        self.assertGreaterEqual(b["ctx_voluntary"] - a["ctx_voluntary"], 10)
        stop.set()
        t.join()

    def test_read_syscalls_are_counted(self):
        a = procstat.sample(self.host, self.pid, include_descendants=False)
        fd = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            for _ in range(100):
                os.pread(fd, 64, 0)
        finally:
            os.close(fd)
        b = procstat.sample(self.host, self.pid, include_descendants=False)
        self.assertGreaterEqual(b["syscr"] - a["syscr"], 100)

    def test_descendants_are_summed(self):
        p = self.host.spawn(["sleep", "5"])
        try:
            s = procstat.sample(self.host, self.pid, include_descendants=True)
            self.assertIn(p.pid, s["pids"])
        finally:
            p.stop(1.0)

    def test_gone_process_raises(self):
        p = self.host.spawn(["true"])
        p.wait(5)
        with self.assertRaises(OSError):
            procstat.sample(self.host, p.pid)

    def test_machine_window_from_proc_stat(self):
        before = procstat.parse_system_stat(
            "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 60 0 20 500 5 0 0 0 0 0\n"
            "cpu1 40 0 30 500 5 0 0 0 0 0\nintr 1 2 3\n")
        after = procstat.parse_system_stat(
            "cpu  300 0 150 1100 10 0 0 0 0 0\ncpu0 160 0 70 500 5 0 0 0 0 0\n"
            "cpu1 140 0 80 600 5 0 0 0 0 0\n")
        m = procstat.machine_window(before, after, 100)
        self.assertEqual(m["cpu_busy"], {"0": 1.0, "1": 0.6})
        self.assertEqual(m["busy_cpu_s"], 3.0)
        real = procstat.parse_system_stat(self.host.read_system_stat())
        self.assertIn("all", real)
        self.assertIn("0", real)

    def test_parse_stat_with_a_hostile_comm(self):
        fields = " ".join(str(i) for i in range(3, 53))
        text = f"123 (a) b (c) {fields}"
        st = procstat.parse_stat(text.replace(" 3 ", " R ", 1), 100)
        # field 14 (utime) = 14 ticks, field 15 = 15, field 20 = 20 threads
        self.assertEqual((st["utime_s"], st["stime_s"], st["num_threads"]), (0.14, 0.15, 20))


if __name__ == "__main__":
    unittest.main()
