"""`cbench sweep --profile` and `cbench profile`: the profile repetition is recorded
apart from the measured points, and the classifier groups canned perf-script samples."""
import json
import os
import unittest

from common import FIXTURES, fake_server_fixture, fake_sweep_args, run_cbench
from cbenchlib.run import cpubreakdown, profiling
from cbenchlib.format import resultio
from cbenchlib.format import runlogs

SCRIPT = """\
cbench-server 4242/4243
\t    ffffffff8a1b2c3d tcp_sendmsg_locked+0x1d ([kernel.kallsyms])
\t    ffffffff8a1b2000 tcp_sendmsg ([kernel.kallsyms])
\t        7f00001000 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t        5500001000 cb::http::Pump::flush() (/work/build/cbench-server)

cbench-server 4242/4243
\t        7f00002000 __memmove_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t        5500002000 cb::http::Codec::feed(std::basic_string_view<char>) (/work/build/cbench-server)

cbench-server 4242/4244
\t        7f00003000 __lll_lock_wait (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t        5500003000 (anonymous namespace)::Worker::run() (/work/build/cbench-server)

cbench-server 4242/4242
\t        7f00004000 ev_run (/usr/lib/x86_64-linux-gnu/libev.so.4.0.0)

cbench-server 4242/4242
\t    ffffffff8a000000 ep_poll ([kernel.kallsyms])
\t    ffffffff8a000100 do_epoll_wait ([kernel.kallsyms])

cc1plus 777/777
\t          59b1b7 df_set_flags+0x7 (/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus)

cbench-server 4242/4243
\t    ffffffff8a000200 futex_wait_queue ([kernel.kallsyms])

cbench-server 4242/4243
\t        7f00005000 malloc (/usr/lib/x86_64-linux-gnu/libc.so.6)

cbench-server 4242/4243
\t    ffffffff8a000300 tcp_rcv_established (inlined)
\t    ffffffff8a000300 tcp_v4_do_rcv ([kernel.kallsyms])

cbench-server 4242/4244
\t    ffffffff8a000400 _raw_spin_unlock_irqrestore ([kernel.kallsyms])
\t    ffffffff8a000410 try_to_wake_up ([kernel.kallsyms])
\t    ffffffff8a000420 futex_wake ([kernel.kallsyms])

cbench-server 4242/4244
\t    ffffffff8a000500 _raw_spin_unlock_bh ([kernel.kallsyms])
\t    ffffffff8a000510 release_sock ([kernel.kallsyms])
\t    ffffffff8a000520 tcp_sendmsg ([kernel.kallsyms])

cbench-server 4242/4242
\t    ffffffff8a000600 __put_user_nocheck_8 ([kernel.kallsyms])
\t    ffffffff8a000610 ep_send_events ([kernel.kallsyms])
\t    ffffffff8a000620 do_epoll_wait ([kernel.kallsyms])

cbench-server 4242/4242
\t    ffffffff8a000700 zzz_unclaimed ([kernel.kallsyms])
\t    ffffffff8a000710 do_syscall_64 ([kernel.kallsyms])
\t        7f00006000 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t        5500006000 (anonymous namespace)::Server::work() (/work/build/cbench-server)

cbench-server 4242/4244
\t        7f00007000 __libc_write (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t        5500007000 (anonymous namespace)::Server::work() (/work/build/cbench-server)
"""


class ClassifyPerfScript(unittest.TestCase):
    # (label, sample index in SCRIPT's server samples, group)
    CASES = [
        ("kernel TCP leaf under the pump", 0, "kernel TCP"),
        ("memmove takes its caller's class: the codec", 1, "codec and handler"),
        ("glibc mutex wait", 2, "futex and scheduler"),
        ("libev's loop", 3, "epoll or libev"),
        ("kernel epoll", 4, "epoll or libev"),
        ("kernel futex", 5, "futex and scheduler"),
        ("malloc with no caller known", 6, "other user space"),
        ("a kernel frame inlined into a kernel caller", 7, "kernel TCP"),
        ("a wake-up's spin unlock counts for the scheduler", 8, "futex and scheduler"),
        ("a socket lock's spin unlock counts for TCP", 9, "kernel TCP"),
        ("epoll_wait copying events out", 10, "epoll or libev"),
        ("an unclaimed kernel leaf never borrows from user space or syscall entry", 11, "other kernel"),
        ("a libc wrapper under the model's own function", 12, "loop and queue"),
    ]

    def test_table(self):
        samples = profiling.parse_script(SCRIPT, pids={4242})
        self.assertEqual(len(samples), 13)  # cc1plus (pid 777) is not the server
        for label, i, group in self.CASES:
            with self.subTest(label):
                self.assertEqual(cpubreakdown.GROUP_OF[cpubreakdown.classify_stack(samples[i][1])], group)

    def test_fold_round_trips_through_summarize(self):
        folded = profiling.fold(profiling.parse_script(SCRIPT, pids={4242}))
        self.assertIn("cbench-server;cb::http::Pump::flush();__send;tcp_sendmsg_[k];tcp_sendmsg_locked_[k]", folded)
        s = profiling.summarize([f"{k} {n}\n" for k, n in folded.items()])
        self.assertEqual(s["samples"], 13)
        self.assertEqual(s["groups"]["futex and scheduler"], 3)
        self.assertEqual(s["groups"]["epoll or libev"], 3)
        self.assertEqual(s["top"]["kernel TCP"], [("_raw_spin_unlock_bh", 1), ("tcp_rcv_established", 1),
                                                  ("tcp_sendmsg_locked", 1)])

    def test_every_class_has_a_group(self):
        classes = [c for c, _ in cpubreakdown.CLASSES + cpubreakdown.USER_CLASSES] + \
            [cpubreakdown.USER_OTHER, cpubreakdown.OTHER_KERNEL]
        self.assertEqual(sorted(classes), sorted(cpubreakdown.GROUP_OF))


class ProfileRepetitionIsNotMeasured(unittest.TestCase):
    def setUp(self):
        ok, why = profiling.perf_available()
        if not ok:
            self.skipTest(f"perf cannot record here: {why}")
        fake_server_fixture(self)  # private fakes; fails the test if a process outlives it

    def test_profile_records_apart_from_points(self):
        r = run_cbench(fake_sweep_args(self, os.path.join(FIXTURES, "scenarios", "profile.toml"), "--profile"),
                       timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        (run,) = [os.path.join(self.out, d) for d in os.listdir(self.out)]
        points, bad, _ = resultio.read_points(os.path.join(run, "points.jsonl"))
        # 4 points (2 rows x 1 wrk and 1 idle load) x 2 measured repetitions; the profile pass adds none.
        self.assertFalse(bad)
        self.assertEqual(len(points), 8)
        self.assertEqual(sorted(p["rep"] for p in points), [0] * 4 + [1] * 4)
        # profile/ is in the run's logs.tar.xz once the sweep has finished (runlogs)
        prof = [json.loads(line) for line in runlogs.read_text(run, "profile/index.jsonl").splitlines()]
        self.assertEqual(len(prof), 2)  # one per wrk point, none for the idle point
        self.assertEqual({p["point_id"] for p in prof},
                         {p["point_id"] for p in points if "idle" not in p["point_id"]})
        for p in prof:
            self.assertEqual(p["status"], "ok", p)
            self.assertTrue(runlogs.exists(run, p["folded"]))
        self.assertEqual([f for f in runlogs.names(run, "profile/") if f.endswith(".data")], [])
        out = run_cbench(["profile", run], timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("fake-ok t1", out.stdout)
        self.assertIn("samples", out.stdout)


if __name__ == "__main__":
    unittest.main()
