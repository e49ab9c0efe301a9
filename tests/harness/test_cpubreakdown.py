"""cpubreakdown: perf report parsing, symbol classes and the per-request split."""
import unittest

from common import REPO  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.run import cpubreakdown as cb

REPORT = """\
# Samples: 1K of event 'cpu-clock'
#
# Overhead       Samples  Command          Shared Object      Symbol
# ........  ............  ...............  .................  ..............
#
    40.00%           400  cbench-server    [kernel.kallsyms]  [k] tcp_sendmsg_locked
    20.00%           200  cbench-server    cbench-server      [.] cb::http::Codec::feed(std::basic_string_view<char, std::char_traits<char> >, std::string&, unsigned long)
    10.00%           100  cbench-server    [kernel.kallsyms]  [k] entry_SYSCALL_64
    10.00%           100  cbench-server    [kernel.kallsyms]  [k] io_recv
     5.00%            50  cbench-server    [kernel.kallsyms]  [k] __schedule
     5.00%            50  cbench-server    [kernel.kallsyms]  [k] some_unclaimed_symbol
    10.00%           100  cc1plus          cc1plus            [.] something_else
"""


class Classify(unittest.TestCase):
    CASES = [
        ("user space", "libc.so.6", "__memcpy_avx", "user_other"),
        ("codec", "cbench-server", "cb::http::Codec::feed(std::basic_string_view<char>)", "codec_handler"),
        ("spin handler", "cbench-server", "cb::http::spin_for(std::chrono::duration<long, std::ratio<1l, 1000000l> >)", "codec_handler"),
        ("libev run", "libev.so.4.0.0", "ev_run", "event_library"),
        ("libev backend", "libev.so.4.0.0", "epoll_poll", "event_library"),
        ("glibc mutex", "libc.so.6", "__lll_lock_wait", "lock_user"),
        ("std::mutex", "cbench-server", "std::mutex::lock()", "lock_user"),
        ("selector loop", "cbench-server", "(anonymous namespace)::SelectorPool::on_ready(int)", "loop_queue"),
        ("fiber switch", "libboost_context.so.1.74.0", "jump_fcontext", "loop_queue"),
        ("futex", "[kernel.kallsyms]", "futex_wait_queue", "futex"),
        ("pipe wake-up", "[kernel.kallsyms]", "pipe_write", "io_interface"),
        ("tcp", "[kernel.kallsyms]", "tcp_v4_rcv", "tcp_stack"),
        ("loopback", "[kernel.kallsyms]", "loopback_xmit", "tcp_stack"),
        ("entry", "[kernel.kallsyms]", "entry_SYSCALL_64_after_hwframe", "syscall_entry_exit"),
        ("exit", "[kernel.kallsyms]", "syscall_exit_to_user_mode", "syscall_entry_exit"),
        ("io_uring", "[kernel.kallsyms]", "io_submit_sqes", "io_interface"),
        ("epoll", "[kernel.kallsyms]", "ep_poll", "io_interface"),
        ("scheduler", "[kernel.kallsyms]", "try_to_wake_up", "sched_wakeup"),
        ("unclaimed", "[kernel.kallsyms]", "zzz_unknown", "other_kernel"),
    ]

    def test_table(self):
        for label, dso, sym, want in self.CASES:
            with self.subTest(label):
                self.assertEqual(cb.classify(dso, sym), want)


class Breakdown(unittest.TestCase):
    def test_parse_keeps_symbols_with_spaces(self):
        rows = cb.parse_report(REPORT)
        self.assertEqual(len(rows), 7)
        self.assertEqual(rows[1][0], "cbench-server")
        self.assertTrue(rows[1][2].startswith("cb::http::Codec::feed("))

    def test_split_of_the_server_samples_only(self):
        b = cb.breakdown(cb.parse_report(REPORT), cpu_us_per_req=9.0)
        self.assertEqual(b["server_samples"], 900)  # cc1plus is not the server
        self.assertEqual(b["other_on_cpu_samples"], {"cc1plus": 100})
        c = b["classes"]
        self.assertAlmostEqual(c["tcp_stack"]["us_per_req"], 4.0)
        self.assertAlmostEqual(c["user"]["us_per_req"], 2.0)
        self.assertAlmostEqual(c["syscall_entry_exit"]["us_per_req"], 1.0)
        self.assertAlmostEqual(c["io_interface"]["us_per_req"], 1.0)
        self.assertAlmostEqual(sum(v["us_per_req"] for v in c.values()), 9.0, places=2)
        self.assertEqual(b["top_other_kernel"], [("some_unclaimed_symbol", 50)])


if __name__ == "__main__":
    unittest.main()
