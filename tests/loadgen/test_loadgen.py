#!/usr/bin/python3
"""Behaviour of cbench-load against fake_server.py (loopback only, every run bounded).

Usage: test_loadgen.py PATH/TO/cbench-load [PATH/TO/cbench-server]

With CBENCH_LOAD_ENGINE=epoll|uring in the environment every generator run gets --engine that
(ctest runs the suite once per engine: the behaviour is the engine's contract, not its speed).

The stall test is Gil Tene's coordinated-omission check: a server whose one thread blocks once
for exactly 1 s under an offered rate R must show about R requests delayed, spread evenly over
0..1 s (about R/2 above 500 ms); an unstalled control at the same rate must not. Bounds are
generous (the machine may be busy): they separate "the stall is measured" from "it is hidden",
which is the behaviour under test, not the machine's speed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = None  # set from argv
SERVER = None  # cbench-server, optional second argument (the overload test needs it)

RATE = 200           # requests/s offered in the stall test
STALL_S = 1.0
DURATION_S = 3.5     # stall starts 1 s after the first request; 1.5 s left to drain afterwards
RUN_TIMEOUT_S = 60   # no generator run may take longer than this: a hang fails the test


class ServerProcess:
    """A server child (self.proc, its stdout piped) listening on 127.0.0.1:self.port; stopped on
    leaving the with block."""

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


class FakeServer(ServerProcess):
    def __init__(self, mode, **kw):
        args = [sys.executable, os.path.join(HERE, "fake_server.py"), "--mode", mode, "--lifetime-s", "60"]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("fake-server ready port="):
            self.proc.kill()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.port = int(line.strip().split("=")[1])


class ModelServer(ServerProcess):
    """cbench-server (CBENCH_LOADGEN_SERVER) running MODEL on 127.0.0.1 and an ephemeral port;
    the calling test is skipped when the binary is not given or not built."""

    def __init__(self, test, model="epoll-reactor"):
        binary = os.environ.get("CBENCH_LOADGEN_SERVER", "")
        if not os.path.exists(binary):
            test.skipTest("cbench-server not given or not built")
        self.proc = subprocess.Popen([binary, "--model", model, "--port", "0"], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split("port=")[1].split()[0])


def run_load(*args):
    """Runs cbench-load (with --engine $CBENCH_LOAD_ENGINE when that is set and args name no
    engine); returns (exit code, parsed JSON or None, stderr)."""
    engine = os.environ.get("CBENCH_LOAD_ENGINE")
    if engine and "--engine" not in args:
        args = ("--engine", engine, *args)
    p = subprocess.run([LOAD, *map(str, args)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    data = None
    if "--json" in args and p.stdout.strip():
        data = json.loads(p.stdout)
    return p.returncode, data, p.stderr


def count_between(data, low_us, high_us):
    """Samples whose bucket midpoint lies in [low_us, high_us), from latency_histogram_us."""
    n = 0
    for lo, hi, count in data["latency_histogram_us"]:
        mid = (lo * hi) ** 0.5 if lo > 0 else hi / 2
        if low_us <= mid < high_us:
            n += count
    return n


_WRK_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def parse_wrk_latency(stdout):
    """{max, p50, p99 (us), requests} from wrk --latency's text output."""
    def us(text):
        m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
        return float(m.group(1)) * _WRK_UNITS_US[m.group(2)]
    out = {}
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", stdout, re.M)
    out["max"] = us(m.group(3))
    for pct in ("50", "99"):
        out["p" + pct] = us(re.search(rf"^\s*{pct}%\s+(\S+)", stdout, re.M).group(1))
    out["requests"] = int(re.search(r"(\d+) requests in", stdout).group(1))
    return out


class StallTest(unittest.TestCase):
    def test_open_loop_shows_the_stall_in_full(self):
        with FakeServer("stall", stall_after_s=1.0, stall_s=STALL_S) as srv:
            rc, data, err = run_load("--rate", RATE, "--connections", 10, "--duration", DURATION_S,
                                     "--json", "--carry-on", srv.url())
        self.assertEqual(rc, 0, err)
        self.assertEqual(data["errors"]["aborted"], 0, data["errors"])
        self.assertGreater(data["requests"], RATE * (DURATION_S - 1.0) * 0.8, "most of the offered load answered")
        delayed = count_between(data, 50e3, 2e6)  # about R requests were due during the stall
        above_half = count_between(data, 500e3, 2e6)  # about R/2 of them waited more than 500 ms
        quarters = [count_between(data, q * 250e3, (q + 1) * 250e3) for q in range(1, 4)]
        msg = f"delayed={delayed} above_500ms={above_half} quarters(250ms..1s)={quarters} max={data['latency_us']['max']}"
        self.assertTrue(0.8e6 <= data["latency_us"]["max"] <= 1.8e6, msg)
        # The stall as it happened: the first request caught in it waited longest, so the max is
        # the stall's real length, which a preempted test server stretches (1.3 s was seen at load
        # average 11 under ASan). About R x that many requests were due during it, and
        # R x (length - 0.5 s) of them waited more than 500 ms (R/2 for exactly 1 s).
        stall_s = data["latency_us"]["max"] / 1e6
        self.assertTrue(0.7 * RATE * stall_s <= delayed <= 1.3 * RATE * stall_s, msg)
        self.assertTrue(0.6 * RATE * (stall_s - 0.5) <= above_half <= 1.4 * RATE * (stall_s - 0.5), msg)
        # spread evenly: each 250 ms slice of the stall holds about R/4 samples
        for q in quarters:
            self.assertTrue(0.1 * RATE <= q <= 0.45 * RATE, msg)
        self.assertIn("send_lag_histogram_us", data)
        self.assertGreater(data["send_lag_us"]["count"], 0)

    def test_closed_loop_hides_the_stall(self):
        # The contrast that makes the open-loop check meaningful: each of the 10 connections has at
        # most one request caught in the stall, so at most 10 slow samples.
        with FakeServer("stall", stall_after_s=1.0, stall_s=STALL_S) as srv:
            rc, data, err = run_load("--connections", 10, "--duration", DURATION_S, "--json", srv.url())
        self.assertEqual(rc, 0, err)
        self.assertLessEqual(count_between(data, 500e3, 1e12), 10, data["latency_us"])
        self.assertGreater(data["latency_us"]["max"], 0.8e6, "the one stalled sample per connection is kept")

    def test_wrk_on_the_same_stall(self):
        # wrk (closed loop, 10 connections) on the same 1 s stall. Each connection has one request
        # caught in the stall, so wrk's own samples hold one slow sample per connection, and its
        # max is that sample: about 1 s. Debian's wrk 4.1 then "corrects" its histogram after the
        # run (stats_correct in wrk.c): for every sample above twice the mean per-connection
        # interval e it adds synthetic samples at n - e, n - 2e, ... So its reported
        # percentiles are NOT the raw "one slow sample per connection": the synthetic samples fill
        # the stall, and for a stall of S s in a run of D s about (S - 0.5) / D of them lie above
        # 500 ms whatever the rate (here about 12%), so wrk's p99 lands near the stall's length.
        # The raw per-request samples cannot be read back (wrk's Lua `latency[i]` returns the
        # index, not the bucket's count, in this build). The test pins both facts: max ~1 s, and a
        # p99 that only the synthetic correction can explain (the raw histogram holds at most 10
        # slow samples among thousands, so its p99 would be well under 500 ms).
        wrk = shutil.which("wrk")
        if not wrk:
            self.skipTest("wrk not installed (Debian package wrk)")
        with FakeServer("stall", stall_after_s=1.0, stall_s=STALL_S) as srv:
            p = subprocess.run([wrk, "-t1", "-c10", "-d4s", "--timeout", "3s", "--latency", srv.url()],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        self.assertEqual(p.returncode, 0, p.stderr)
        stats = parse_wrk_latency(p.stdout)
        msg = f"wrk: {stats}\n{p.stdout}"
        self.assertTrue(0.8e6 <= stats["max"] <= 1.8e6, msg)
        self.assertGreater(stats["requests"], 1000, msg)  # thousands of raw samples, <= 10 slow
        self.assertGreater(stats["p99"], 500e3, msg)  # only wrk's synthetic samples put it there
        self.assertLess(stats["p50"], 500e3, msg)

    def test_unstalled_control(self):
        with FakeServer("ok") as srv:
            rc, data, err = run_load("--rate", RATE, "--connections", 10, "--duration", DURATION_S,
                                     "--json", "--carry-on", srv.url())
        self.assertEqual(rc, 0, err)
        self.assertFalse(data["overloaded"])
        # "A few milliseconds" on an idle machine. The bound is 100 ms, not 250 and not 50: with
        # other builds running on this 2-core machine the control's p99 was 4-8 ms (max 15 ms) in
        # five runs at load average 7, but the Python test server and the generator are both
        # preempted for tens of ms at worst (56 ms was once seen with 8 builds running), so 50 ms
        # would flake under the loaded CI this runs on. 100 ms is about twice that worst case and
        # still 10x below the stalled run's p99 (about 990 ms): a generator that invented delays,
        # or measured the stall into the control, fails it.
        self.assertLess(data["latency_us"]["p99"], 100e3, data["latency_us"])
        self.assertEqual(count_between(data, 500e3, 1e12), 0)


class OverloadTest(unittest.TestCase):
    """Open loop past capacity: epoll-reactor on /sleep?ms=10 serves about 100 req/s (its one
    thread sleeps in every request); offered 200 req/s for 5 s, the queue grows all run long, so
    the median from the intended send time is above 1 s (about 1.25 s ideally; a slower, busier
    machine only makes it larger), and the point is marked overloaded."""

    def test_epoll_reactor_sleep_is_overloaded(self):
        with ModelServer(self) as server:
            rc, data, err = run_load("--rate", 200, "--connections", 10, "--duration", 5, "--json", "--carry-on",
                                     server.url("/sleep?ms=10"))
        self.assertEqual(rc, 0, err)
        self.assertTrue(data["overloaded"], data["rate_achieved"])
        self.assertGreater(data["latency_us"]["p50"], 1e6, data["latency_us"])
        self.assertLess(data["rate_achieved"], 150)
        self.assertGreater(data["requests"], 0)
        series = [s["p50_us"] for s in data["latency_series"] if s["count"]]
        self.assertGreater(series[-1], series[0], "latency grows over an overloaded run")


class SlowReaderTest(unittest.TestCase):
    """--read-rate (slow readers) against a real model: epoll-reactor serving
    /bytes?n=1048576 to 2 connections, read at 2 MB/s per connection, with more responses in
    flight per connection than the kernel can buffer between server and generator: the most TCP
    autotuning may grow a send buffer to (tcp_wmem's maximum) plus the most it may grow a receive
    buffer to (tcp_rmem's maximum), read from /proc, so that the buffers must fill whatever the
    machine's settings and however far autotuning went (a fixed depth of 4 passed on one machine
    and not on another, whose buffers held 4 MiB per connection). Once they are full the server's
    non-blocking writes come back short: its --trace-writes lines show writes smaller than one
    response. Every byte must still arrive intact: each response framed by its Content-Length (a
    lost or extra byte would misframe the next status line, counted as malformed), and the
    generator reads no faster than asked. The test pins the short writes, the intact bytes and
    the rate."""

    RESPONSE_BYTES = 1048576
    RATE_BYTES_PER_S = 2_000_000
    DURATION_S = 2

    # when /proc does not say: Linux's defaults (4 MiB send, 6 MiB receive)
    DEFAULT_BUFFER_BOUND_BYTES = 4 * 1048576 + 6 * 1048576
    MAX_DEPTH = 256

    @classmethod
    def kernel_buffer_bound_bytes(cls):
        """The most a loopback TCP connection can hold in flight: the send buffer's and the
        receive buffer's autotuning maxima (the third field of tcp_wmem and tcp_rmem)."""
        try:
            total = 0
            for name in ("tcp_wmem", "tcp_rmem"):
                with open(f"/proc/sys/net/ipv4/{name}") as f:
                    total += int(f.read().split()[2])
            return total
        except (OSError, IndexError, ValueError):
            return cls.DEFAULT_BUFFER_BOUND_BYTES

    def test_partial_writes_and_intact_bytes(self):
        if not os.path.exists(os.environ.get("CBENCH_LOADGEN_SERVER", "")):
            self.skipTest("cbench-server not given or not built")
        depth = min(self.MAX_DEPTH, self.kernel_buffer_bound_bytes() // self.RESPONSE_BYTES + 2)
        server = subprocess.Popen([os.environ["CBENCH_LOADGEN_SERVER"], "--model", "epoll-reactor", "--port", "0",
                                   "--trace-writes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            port = int(line.split("port=")[1].split()[0])
            rc, data, err = run_load("--connections", 2, "--pipeline", depth, "--duration", self.DURATION_S,
                                     "--read-rate", self.RATE_BYTES_PER_S, "--json",
                                     f"http://127.0.0.1:{port}/bytes?n={self.RESPONSE_BYTES}")
        finally:
            server.terminate()
            _, server_err = server.communicate(timeout=10)
            server.stdout.close()
        self.assertEqual(rc, 0, err)
        writes = [int(w) for w in re.findall(r"^cbench-server: pump write (\d+)$", server_err, re.M)]
        msg = f"pipeline {depth}; generator: {data['requests']} responses, {data['bytes_read']} bytes, " \
              f"errors {data['errors']}; server writes: {writes[:20]}"
        self.assertEqual(data["read_rate_bytes_per_s"], self.RATE_BYTES_PER_S, msg)
        self.assertGreaterEqual(data["requests"], 2, msg)
        self.assertEqual(data["errors"]["malformed"], 0, msg)
        self.assertEqual(data["errors"]["aborted"], 0, msg)
        self.assertEqual(data["non2xx"], 0, msg)
        self.assertGreaterEqual(data["bytes_read"], data["requests"] * self.RESPONSE_BYTES, msg)
        # never faster than asked: the bucket starts with 1/100 s of the rate
        limit = 2 * self.RATE_BYTES_PER_S * (self.DURATION_S + 0.01 + 0.05)
        self.assertLessEqual(data["bytes_read"], limit, msg)
        self.assertTrue(writes, "no --trace-writes output: " + server_err[-500:])
        self.assertTrue(any(w < self.RESPONSE_BYTES for w in writes), "no partial write: " + msg)


class LargeResponseTest(unittest.TestCase):
    """Fast readers of 1 MiB responses from epoll-reactor, pipelined: each response arrives in
    many reads (the uring engine's receive buffers are 16 KiB, so one response is dozens of
    completions, and a turn's completions can outnumber the buffers), and every byte must still
    be framed: no malformed response, bytes_read at least requests x size."""

    RESPONSE_BYTES = 1048576

    def test_many_reads_per_response_stay_framed(self):
        with ModelServer(self) as server:
            rc, data, err = run_load("--connections", 4, "--threads", 2, "--pipeline", 2, "--duration", 1, "--json",
                                     server.url(f"/bytes?n={self.RESPONSE_BYTES}"))
        self.assertEqual(rc, 0, err)
        msg = f"{data['requests']} responses, {data['bytes_read']} bytes, errors {data['errors']}"
        self.assertGreater(data["requests"], 4, msg)
        self.assertEqual(data["errors"], {"connect": 0, "read": 0, "closed": 0, "malformed": 0, "aborted": 0,
                                          "backlog_overflow": 0}, msg)
        self.assertGreaterEqual(data["bytes_read"], data["requests"] * self.RESPONSE_BYTES, msg)
        self.assertEqual(data["latency_us"]["count"], data["requests"], "one latency sample per response")


class FramingTest(unittest.TestCase):
    def test_chunked_responses_are_framed(self):
        with FakeServer("chunked") as srv:
            rc, data, err = run_load("--connections", 4, "--duration", 1, "--pipeline", 4, "--json", srv.url())
        self.assertEqual(rc, 0, err)
        self.assertGreater(data["requests"], 0)
        self.assertEqual(data["errors"]["malformed"], 0)


class EngineTest(unittest.TestCase):
    """--engine: each engine named in the JSON it ran with, the same counts of the same load (one
    latency sample per response, every request sent answered or unfinished), and a bad name
    refused before any load runs."""

    def test_each_engine_runs_and_names_itself(self):
        for engine in ("epoll", "uring"):
            for extra in ([], ["--pipeline", 4], ["--rate", 400]):
                with self.subTest(engine=engine, args=extra), FakeServer("ok") as srv:
                    rc, data, err = run_load("--engine", engine, "--connections", 4, "--threads", 2, "--duration", 1,
                                             "--json", "--carry-on", *extra, srv.url())
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(data["engine"], engine)
                    self.assertGreater(data["requests"], 0)
                    self.assertEqual(data["latency_us"]["count"], data["requests"])
                    self.assertEqual(sum(s["count"] for s in data["latency_series"]), data["requests"])
                    self.assertEqual(data["sent"], data["requests"] + data["unfinished"], data)
                    self.assertEqual(data["errors"]["malformed"] + data["errors"]["aborted"], 0, data["errors"])

    def test_default_engine_is_uring_where_it_runs(self):
        with FakeServer("ok") as srv:
            # The environment's engine is not applied here: this is the run without --engine.
            probe = subprocess.run([LOAD, "--engine", "uring", "--connections", "1", "--duration", "0.2", "--json",
                                    srv.url()], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            expected = "epoll" if "cannot run here" in probe.stderr else "uring"
            p = subprocess.run([LOAD, "--connections", "2", "--duration", "0.5", "--json", srv.url()],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["engine"], expected, probe.stderr)

    def test_unknown_engine_is_a_usage_error(self):
        rc, _, err = run_load("--engine", "kqueue", "--duration", 1, "http://127.0.0.1:1/")
        self.assertEqual(rc, 1, err)
        self.assertIn("--engine must be 'epoll' or 'uring'", err)


class DutyCycleTest(unittest.TestCase):
    """--duty K:P:MS offers the rate only in slice P of every K: with 1 s slices and a 2 s run,
    phase 0 loads the first second and phase 1 the second (the latency series, by response time,
    shows which), each at the full rate, and the rate achieved is judged over the on-time."""
    RATE = 300

    def test_each_phase_loads_its_slice_at_the_full_rate(self):
        for phase, on_slot in [(0, 0), (1, 1)]:
            with self.subTest(phase=phase), FakeServer("ok") as srv:
                # --carry-on: the schedule is under test, not the send lag of a busy machine
                rc, data, err = run_load("--connections", 4, "--rate", self.RATE, "--duration", 2,
                                         "--duty", f"2:{phase}:1000", "--carry-on", "--json", srv.url())
                self.assertEqual(rc, 0, err)
                self.assertEqual(data["duty"], {"slices": 2, "phase": phase, "slice_ms": 1000.0, "active_s": 1.0})
                self.assertGreater(data["requests"], 0.9 * self.RATE)
                self.assertLessEqual(data["requests"], self.RATE + 1)
                self.assertGreater(data["rate_achieved"], 0.9 * self.RATE)
                self.assertFalse(data["overloaded"])
                counts = [s["count"] for s in data["latency_series"]]
                self.assertGreater(counts[on_slot], 0.9 * self.RATE, counts)
                self.assertLess(counts[1 - on_slot], 0.05 * self.RATE, counts)

    def test_start_at_delays_the_window(self):
        with FakeServer("ok") as srv:
            t0 = time.time()
            rc, data, err = run_load("--connections", 2, "--rate", 100, "--duration", 1,
                                     "--start-at", f"{t0 + 1.5:.3f}", "--carry-on", "--json", srv.url())
            took = time.time() - t0
        self.assertEqual(rc, 0, err)
        self.assertGreater(took, 2.4)  # 1.5 s of wait, then the 1 s window
        self.assertGreater(data["requests"], 90)

    def test_without_duty_the_field_is_null(self):
        with FakeServer("ok") as srv:
            rc, data, err = run_load("--connections", 2, "--rate", 100, "--duration", 1, "--carry-on", "--json", srv.url())
        self.assertEqual(rc, 0, err)
        self.assertIsNone(data["duty"])


class BadInputTest(unittest.TestCase):
    def assert_usage_error(self, args, needle):
        t0 = time.monotonic()
        rc, _, err = run_load(*args)
        self.assertEqual(rc, 1, err)
        self.assertIn(needle, err)
        self.assertLess(time.monotonic() - t0, 10, "a usage error must not run a load")

    def test_unparsable_urls(self):
        for url, needle in [("ftp://127.0.0.1/", "unparsable URL"), ("http://127.0.0.1:99999/", "bad port"),
                            ("http://:80/", "unparsable URL"), ("not a url", "unparsable URL")]:
            with self.subTest(url=url):
                self.assert_usage_error(["--duration", 1, url], needle)

    def test_bad_numbers(self):
        url = "http://127.0.0.1:1/"
        for args, needle in [(["--rate", 0], "--rate must be > 0"), (["--rate", "-5"], "--rate must be > 0"),
                             (["--rate", "abc"], "not a number"), (["--connections", 0], "--connections"),
                             (["--threads", 4, "--connections", 2], "--threads must not exceed"),
                             (["--duration", 0], "--duration"), (["--bogus"], "unknown option"),
                             (["--read-rate", 0], "--read-rate must be >= 1"), (["--read-rate", "x"], "not a number"),
                             (["--rate", 10, "--duty", "2:0"], "--duty must be SLICES:PHASE:SLICE_MS"),
                             (["--duty", "2:0:500"], "--duty needs --rate"),
                             (["--rate", 10, "--duty", "1:0:500"], "--duty SLICES must be 2 to 64"),
                             (["--rate", 10, "--duty", "2:2:500"], "--duty PHASE must be"),
                             (["--rate", 10, "--duty", "2:0:0.5"], "--duty SLICE_MS must be"),
                             (["--rate", 10, "--duty", "2:x:500"], "not a number"),
                             (["--rate", 10, "--duration", "0.4", "--duty", "2:1:500"], "no on-time"),
                             (["--start-at", "1"], "--start-at must be within the next 60 s"),
                             (["--start-at", f"{time.time() + 3600:.0f}"], "--start-at must be within")]:
            with self.subTest(args=args):
                self.assert_usage_error([*args, url], needle)

    def test_server_that_closes_every_connection(self):
        for mode_args in (["--connections", 4], ["--connections", 4, "--rate", 100]):
            with self.subTest(args=mode_args), FakeServer("close") as srv:
                rc, data, err = run_load(*mode_args, "--duration", 1, "--json", srv.url())
                self.assertEqual(rc, 3, err)
                self.assertIn("no response parsed", err)
                e = data["errors"]
                self.assertGreater(e["closed"] + e["read"] + e["connect"], 0, e)
                self.assertEqual(data["requests"], 0)

    def test_server_that_sends_garbage(self):
        with FakeServer("garbage") as srv:
            rc, data, err = run_load("--connections", 4, "--duration", 1, "--json", srv.url())
        self.assertEqual(rc, 3, err)
        self.assertGreater(data["errors"]["malformed"], 0, data["errors"])

    def test_nothing_listening(self):
        with FakeServer("ok") as srv:
            port = srv.port
        rc, data, err = run_load("--connections", 2, "--duration", 1, "--json", f"http://127.0.0.1:{port}/")
        self.assertEqual(rc, 3, err)
        self.assertGreater(data["errors"]["connect"], 0)


if __name__ == "__main__":
    LOAD = os.path.abspath(sys.argv.pop(1))
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        os.environ["CBENCH_LOADGEN_SERVER"] = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
