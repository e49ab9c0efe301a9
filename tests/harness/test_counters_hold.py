"""Counters that hold: a server's context switches and CPU come from its own getrusage (the whole
thread group, exited threads included), checked against the kernel's count (perf stat); a
point's unserved connections and a latency capped by the run's length are recorded and said.

Live tests (bounded, a few seconds) need build/cbench-server and build/cbench-load; the perf
test also needs perf able to count software events."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from common import REPO

from cbenchlib.format import loadgen, metrics, verdict
from cbenchlib.run import procstat, runner, servercounters

SERVER_BIN = os.environ.get("CBENCH_SERVER_BIN") or os.path.join(REPO, "build", "cbench-server")
LOAD_BIN = os.path.join(REPO, "build", "cbench-load")
READY = re.compile(r"port=(\d+) .*pid=(\d+)")


def _rusage(utime_us=0, stime_us=0, nvcsw=0, nivcsw=0):
    return {"utime_us": utime_us, "stime_us": stime_us, "nvcsw": nvcsw, "nivcsw": nivcsw,
            "minflt": 0, "majflt": 0}


def _snap(rusage, **counters):
    out = {"accepts": 0, **counters}
    if rusage is not None:
        out[servercounters.RUSAGE_KEY] = rusage
    return out


class RusageWindow(unittest.TestCase):
    def test_single_process(self):
        got = servercounters.rusage_window(_snap(_rusage(1000, 500, 10, 2)),
                                           _snap(_rusage(301000, 100500, 4010, 102)))
        self.assertEqual(got, {"cpu_user_s": 0.3, "cpu_sys_s": 0.1, "ctx_voluntary": 4000,
                               "ctx_involuntary": 100, "minflt": 0, "majflt": 0, "processes": 1})

    def test_cluster_sums_workers_with_both_snapshots_from_one_pid(self):
        before = [{"pid": 1, "counters": _snap(_rusage(nvcsw=5))}, {"pid": 2, "counters": _snap(_rusage(nvcsw=7))}]
        after = [{"pid": 1, "counters": _snap(_rusage(nvcsw=105))}, {"pid": 2, "counters": _snap(_rusage(nvcsw=57))}]
        self.assertEqual(servercounters.rusage_window(before, after)["ctx_voluntary"], 150)
        restarted = [after[0], {"pid": 3, "counters": _snap(_rusage(nvcsw=57))}]
        self.assertIsNone(servercounters.rusage_window(before, restarted))

    def test_missing_rusage_gives_none(self):
        cases = [(None, None), (_snap(None), _snap(None)), (_snap(_rusage()), None), ([None], [None])]
        for before, after in cases:
            with self.subTest(before=before, after=after):
                self.assertIsNone(servercounters.rusage_window(before, after))

    def test_per_request_counters_leave_rusage_out(self):
        got = servercounters.per_request(_snap(_rusage(), accepts=1), _snap(_rusage(nvcsw=9), accepts=11), 10)
        self.assertEqual(got, {"accepts": 1.0})


def _record(rusage_window=None, proc_ctx=(3, 1)):
    wrk = {"requests": 1000, "duration_us": 2_000_000, "errors": {k: 0 for k in
           ("connect", "read", "write", "timeout", "status")}, "latency_us": {"max": 5000.0}}
    srv = {"cpu_user_s": 0.5, "cpu_sys_s": 0.5, "window_s": 2.0, "syscr": 0, "syscw": 0,
           "ctx_voluntary": proc_ctx[0], "ctx_involuntary": proc_ctx[1], "rusage": rusage_window}
    return {"wrk": wrk, "server": srv, "client": None}


class DeriveSource(unittest.TestCase):
    def test_rusage_preferred_and_named(self):
        rec = _record({"cpu_user_s": 0.6, "cpu_sys_s": 0.2, "ctx_voluntary": 1500, "ctx_involuntary": 500})
        runner.derive(rec, 1, 1)
        d = rec["derived"]
        self.assertEqual((d["ctx_switches_per_req"], d["server_counts_source"]), (2.0, "rusage"))
        self.assertEqual(d["server_cpu_us_per_req"], 800.0)
        self.assertEqual(d["ctx_switches_per_req_proc"], 0.004)

    def test_proc_without_rusage(self):
        rec = _record(None)
        runner.derive(rec, 1, 1)
        d = rec["derived"]
        self.assertEqual((d["ctx_switches_per_req"], d["server_counts_source"]), (0.004, "proc"))
        self.assertEqual(d["server_cpu_us_per_req"], 1000.0)


class VerdictMarks(unittest.TestCase):
    CASES = [  # (max latency us, duration us, unserved, connections, verdict, phrase or None)
        (5_000.0, 2_000_000, 0, 10, verdict.UNCLEAR, None),
        (1_990_000.0, 2_000_000, 0, 10, verdict.UNCLEAR, "latency capped by the run's duration"),
        (68_760.0, 2_000_000, 9999, 10000, verdict.ERROR_BOUND, "9999 of 10000 connections never answered"),
    ]

    def test_marks(self):
        for max_us, dur_us, unserved, conns, want, phrase in self.CASES:
            with self.subTest(max_us=max_us, unserved=unserved):
                w = {"requests": 1000, "duration_us": dur_us, "latency_us": {"max": max_us},
                     "errors": {k: 0 for k in ("connect", "read", "write", "timeout", "status")},
                     "connections_unserved": unserved, "connections": conns}
                v, ev = verdict.judge(w, 0.5, 0.5, 1, 1)
                self.assertEqual(v, want, ev)
                if phrase:
                    self.assertIn(phrase, ev)
                else:
                    self.assertNotIn("never answered", ev)
                    self.assertNotIn("capped", ev)

    def test_metric_registered(self):
        self.assertEqual(metrics.get("wrk.connections_unserved").unit, "connections")


def _start(argv, out_path):
    """Starts argv with stdout to out_path; returns (proc, port, server pid) once ready."""
    out = open(out_path, "w")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(out_path) as f:
            m = READY.search(f.read())
        if m:
            return proc, int(m.group(1)), int(m.group(2))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"server not ready: {open(out_path).read()}")


def _one_request(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        need = int(m.group(1)) if m else 0
        while len(body) < need:
            chunk = s.recv(4096)
            if not chunk:
                return
            body += chunk
        time.sleep(0.002)  # the server's thread blocks in its next read before the close arrives


def _live_thread_switches(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = procstat.parse_status(f.read())
        except OSError:
            continue
        total += st.get("ctx_voluntary", 0) + st.get("ctx_involuntary", 0)
    return total


def _perf_counts_switches() -> str | None:
    """None when perf can count context switches here, else why not."""
    if not shutil.which("perf"):
        return "no perf on PATH"
    r = subprocess.run(["perf", "stat", "-e", "context-switches", "-x,", "true"], capture_output=True, text=True)
    if r.returncode != 0 or "<not supported>" in r.stderr or "context-switches" not in r.stderr:
        return f"perf cannot count context-switches: {r.stderr.strip()[:200]}"
    return None


@unittest.skipUnless(os.access(SERVER_BIN, os.X_OK), f"no cbench-server at {SERVER_BIN}")
class ThreadPerConnectionAgainstPerf(unittest.TestCase):
    CONNECTIONS = 200
    AGREE_FRAC = 0.05  # rusage and perf count the same switches; exit and start-up differ by a few

    def test_rusage_switches_are_the_kernels(self):
        why = _perf_counts_switches()
        if why:
            self.skipTest(why)
        tmp = tempfile.mkdtemp(prefix="cbench-counters-")
        self.addCleanup(shutil.rmtree, tmp, True)
        perf_out, counters = os.path.join(tmp, "perf.csv"), os.path.join(tmp, "counters.json")
        proc, port, pid = _start(["perf", "stat", "-e", "context-switches", "-x,", "-o", perf_out, "--",
                                  SERVER_BIN, "--model", "thread-per-connection", "--port", "0",
                                  "--counters-out", counters], os.path.join(tmp, "server.out"))
        try:
            for _ in range(self.CONNECTIONS):
                _one_request(port)
            time.sleep(0.2)  # let the connection threads see EOF and exit
            proc_sum = _live_thread_switches(pid)
            os.kill(pid, signal.SIGTERM)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with open(perf_out) as f:
            perf = next(int(line.split(",")[0]) for line in f if "context-switches" in line)
        with open(counters) as f:
            ru = json.load(f)["rusage"]
        rusage = ru["nvcsw"] + ru["nivcsw"]
        print(f"\nthread-per-connection, {self.CONNECTIONS} one-request connections: "
              f"perf {perf}, rusage {rusage}, /proc live threads {proc_sum}")
        self.assertLessEqual(abs(rusage - perf), self.AGREE_FRAC * perf, (perf, rusage))
        # Every connection's thread blocked at least once before it exited: the live threads'
        # sum misses at least one switch per connection, which rusage keeps.
        self.assertGreaterEqual(rusage - proc_sum, self.CONNECTIONS, (rusage, proc_sum))


@unittest.skipUnless(os.access(SERVER_BIN, os.X_OK) and os.access(LOAD_BIN, os.X_OK),
                     "needs build/cbench-server and build/cbench-load")
class BlockingPoolStarvation(unittest.TestCase):
    def test_unserved_connections_shown(self):
        tmp = tempfile.mkdtemp(prefix="cbench-counters-")
        self.addCleanup(shutil.rmtree, tmp, True)
        proc, port, _ = _start([SERVER_BIN, "--model", "blocking-pool", "--threads", "2", "--port", "0"],
                               os.path.join(tmp, "server.out"))
        try:
            r = subprocess.run([LOAD_BIN, "--connections", "20", "--duration", "2", "--json",
                                f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=30)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        w = loadgen.parse("cbench-load", r.stdout)
        w["connections"] = 20
        print(f"\nblocking-pool --threads 2, 20 connections, 2 s: {w['connections_unserved']} unserved, "
              f"{w['requests']} requests")
        self.assertEqual(w["connections_unserved"], 18)
        v, ev = verdict.judge(w, 0.5, 0.5, 1, 1)
        self.assertEqual(v, verdict.ERROR_BOUND)
        self.assertIn("18 of 20 connections never answered", ev)


if __name__ == "__main__":
    unittest.main()
