"""One measured repetition of one point: the runner's whole life cycle, composed of a server
session (server.py), the load generators (generators.py), the window's samplers (samplers.py)
and the idle-connections measurement (idle.py).

wrk point:  start the server pinned (fresh per repetition) -> wait for its
readiness line (deadline) -> primer (a few requests must answer 200) ->
a rate_fraction point's peak (once per sweep), or a fixed-rate point's common
rate (resolved by the pilots before the first block) -> discarded warm-up run of the
same shape -> samples -> measured run pinned to the client CPUs -> samples ->
the server must still be alive and answer -> stop the server (SIGTERM its
group, SIGKILL after a grace).

pilot of a fixed-rate load (`pilot`): start -> ready -> primer -> warm-up ->
closed-loop cbench-load run (the row's peak on the load's shape) -> stop.

idle point: start -> ready -> primer -> sample -> open N idle connections ->
let the server settle -> sample -> close them -> post-check -> stop.

Every failure becomes a record with status "failed", a reason and the tail of
the server's output; nothing here exits the sweep except an interruption,
which propagates after this module has stopped every process it started.
"""
from __future__ import annotations

import os
import re
import time
import traceback

from . import kernelnet, procstat, wrk
from .context import RunContext
from .failure import OUTPUT_TAIL_CHARS, PointFailed, tail
from .generators import Generators, Peaks, mark_window, parse_output, warmup_window
from .idle import FD_HEADROOM, measure_idle
from .samplers import WindowSamplers
from .server import (POST_CHECK_MIN_TIMEOUT_S, PRIMER_REQUESTS, PRIMER_TIMEOUT_S, ServerSession,
                     model_command, render_peer)
from ..format import loadgen, resultio, verdict
from ..format.resultio import utc_now
from ..format.scenario import Point, Settings, cpu_list_count

# A replica row (Row.hardening set: faithful to a published design, not hardened) is measured as
# the published table was, on a fresh server with no warm-up: a warm-up run ends by closing its
# connections with requests in flight, and the nio4r worker design (the original example and its
# replica alike, Ruby 3.1.2 and nio4r 2.5.8) then spins on the closed connections' readiness and
# answers nothing more. Every replica row gets the same treatment, so the Ruby stack's rows stay
# comparable with each other, and so does a C++ model row run with its unhardened default (the
# same design: format/scenario_types.MODEL_HARDENING); the other C++ rows keep their warm-up.
# Recorded in each point.
REPLICA_WARMUP_SKIPPED = ("replica: measured as published, on a fresh server with no warm-up "
                          "(a warm-up's abrupt close stops the nio4r worker design from answering)")

# Names cmd/sweep.py (FD_HEADROOM: the descriptors it reserves) and the tests reach through runner.
__all__ = ["FD_HEADROOM", "Runner", "model_command", "point_tag", "render_peer", "slug"]


def slug(text: str, limit: int = 60) -> str:
    """text as a file-name fragment: runs of other characters become one '-'."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit]


def point_tag(point: Point, rep: int, seq: int) -> str:
    """The prefix of a repetition's log files: its place in the run, repetition, row and load."""
    return f"{seq:04d}-r{rep}-{slug(point.row.key + ' ' + point.load.key)}"


class Runner:
    def __init__(self, host, settings: Settings, server_bin: str, wrk_bin: str | None,
                 run_dir: str, repo: str, available_models: set[str] | None, client_host=None,
                 client_hosts=None, wrk_bins=None):
        # host: where the server runs (and is sampled); client_host: where wrk runs and the
        # harness's own probes connect from (the same host unless given).
        # client_hosts: several load hosts (the first is client_host: the probes, idle points
        # and --profile's unmeasured run use it alone); wrk_bins: wrk's path on each.
        self.host = host
        self.client_host = client_host if client_host is not None else host
        self.client_hosts = list(client_hosts) if client_hosts else [self.client_host]
        self.client_host = self.client_hosts[0]
        self.wrk_bins = list(wrk_bins) if wrk_bins else [wrk_bin] * len(self.client_hosts)
        self.settings = settings
        self.server_bin = server_bin
        self.wrk_bin = wrk_bin
        # Absolute, so that a relative path means the same to every process started (nginx,
        # for one, resolves a relative -c against its -p prefix).
        self.run_dir = os.path.abspath(run_dir)
        self.logs_dir = os.path.join(self.run_dir, resultio.LOGS_DIR)
        self.repo = os.path.abspath(repo)
        self.available = available_models
        self.addr = host.client_address
        self.server_cpu_count = cpu_list_count(settings.server_cpus)
        self.client_cpu_count = cpu_list_count(settings.client_cpus)
        ctx = RunContext(host, tuple(self.client_hosts), settings, server_bin, self.run_dir, self.logs_dir, self.repo)
        self.server_session = ServerSession(ctx)
        self.generators = Generators(ctx, self.wrk_bins, wrk_bin, self.client_cpu_count)
        # a rate_fraction point's peak, measured once per Runner (one sweep); the fixed-rate
        # loads' common rates (Peaks.set_common)
        self.peaks = Peaks()

    def run(self, point: Point, rep: int, seq: int, block: int | None = None) -> dict:
        """One repetition of one point -> its points.jsonl record (status ok or failed).
        `block` is the round it runs in (default: rep, as in the initial blocks)."""
        tag = point_tag(point, rep, seq)
        record = resultio.new_point(point.id, rep, seq, rep if block is None else block,
                                    point.row.to_json(), point.load.to_json(self.settings))
        server = None
        try:
            self.check_runnable(point)
            server = self.server_session.start(point, tag, record)
            record["server_ready"] = server.ready
            self.server_session.primer(server, point.load.path if not point.load.is_idle else "/",
                                       PRIMER_REQUESTS, PRIMER_TIMEOUT_S, "primer")
            if point.load.is_idle:
                measure_idle(self.host, self.client_host, self.server_session, point, server, record)
            else:
                point = self.peaks.resolve(self.generators, point, server, tag, record)
                self._measure_load(point, server, tag, record)
        except PointFailed as exc:
            _record_failure(record, exc, server)
        except Exception as exc:  # noqa: BLE001 - a harness bug costs one point, not the sweep
            reason = f"harness error: {exc.__class__.__name__}: {exc}"
            record["status"] = "failed"
            record["failure"] = {"reason": reason,
                                 "server_output_tail": tail(server.log_path) if server else None,
                                 "traceback": traceback.format_exc()[-OUTPUT_TAIL_CHARS:]}
            record["verdict"] = "unclear"
            record["verdict_evidence"] = f"failed: {reason}"
        finally:
            # Runs on interruption too: the server never outlives its point.
            if server is not None:
                record["server_exit_status"] = self.server_session.stop(server)
        record["ended_utc"] = utc_now()
        return record

    def pilot(self, point: Point, tag: str) -> dict:
        """A fixed-rate load's pilot (plan/pilots.py): POINT is a row's closed-loop point on the
        load's shape, run on a fresh server after the primer and the warm-up (none for a replica,
        as in run). Returns Peaks.measure's {"req_per_s", "log", "measured_in"} with "utc", or
        {"failed": reason}: a pilot that cannot run leaves its row out of the common rate's
        minimum and never stops the sweep (an interruption still propagates)."""
        record = resultio.new_point(point.id, 0, -1, -1, point.row.to_json(), point.load.to_json(self.settings))
        server = None
        try:
            self.check_runnable(point)
            server = self.server_session.start(point, tag, record)
            self.server_session.primer(server, point.load.path, PRIMER_REQUESTS, PRIMER_TIMEOUT_S, "primer")
            if not point.row.hardening:
                self._warmup(point, server, tag, record)
            return {**Peaks.measure(self.generators, point, server, tag), "utc": utc_now()}
        except PointFailed as exc:
            return {"failed": exc.reason}
        except Exception as exc:  # noqa: BLE001 - a harness bug costs one pilot, not the sweep
            return {"failed": f"{exc.__class__.__name__}: {exc}"}
        finally:
            if server is not None:
                self.server_session.stop(server)

    def check_runnable(self, point: Point) -> None:
        """PointFailed (skipped for a model not built or a peer not installed) if the point
        cannot run here."""
        row = point.row
        if row.kind in ("model", "instrument") and self.available is not None \
                and row.model not in self.available:
            raise PointFailed(f"model {row.model!r} is not in `cbench-server --list` "
                              f"(not built yet?); point skipped", tail="", skipped=True)
        if row.kind == "peer" and row.command and os.sep not in row.command[0] \
                and self.host.which(row.command[0]) is None:
            raise PointFailed(f"peer {row.model!r}: {row.command[0]} is not installed "
                              f"(scripts/deps.sh installs nginx-light and h2o); point skipped",
                              tail="", skipped=True)
        missing = self.generators.missing(point)
        if missing:
            raise PointFailed(missing, tail="")

    # -- a load point -------------------------------------------------------------------------
    def _measure_load(self, point: Point, server, tag: str, record: dict) -> None:
        """Warm-up, then the measured window between the samplers, then the record's figures,
        verdict and the post-check."""
        s = self.settings
        if point.row.hardening:
            record["warmup"] = {"skipped": REPLICA_WARMUP_SKIPPED}
        else:
            self._warmup(point, server, tag, record)
        out_path = os.path.join(self.logs_dir, f"{tag}-wrk.txt")
        record["logs"]["wrk"] = os.path.relpath(out_path, self.run_dir)
        samplers = WindowSamplers(self.host, s, self.logs_dir, tag, point, server)
        samplers.start()
        try:
            run = self._measured_run(point, server, tag, out_path, record)
        except PointFailed:
            samplers.abort()
            raise
        server_alive = samplers.stop(record)
        result, returncode, stderr_tail = self._result(point, server, run, record, server_alive)
        record["wrk"] = result
        if not server_alive:
            raise PointFailed(f"server exited with status {server.proc.returncode} during the measured run")
        samplers.fill_server(record, result)
        derive(record, self.server_cpu_count, self.client_cpu_count)
        samplers.fill_counters(record, result)
        kernelnet.apply_verdict(record)
        mark_window(record)
        if result["requests"] == 0:
            raise PointFailed("no response in the measured window (server stopped answering?)")
        if returncode != 0:
            who = "wrk" if not self.generators.multi else next(
                f"the load generator on {g['host']}" for g in record["clients"]["generators"] if g["exit_status"] != 0)
            raise PointFailed(f"{who} exited with status {returncode}; stderr: {stderr_tail.strip()[-500:]}")
        self.post_check(point, server, record)

    def post_check(self, point: Point, server, record: dict) -> None:
        """The server must still answer after the measured run (record["post_check"]); PointFailed
        if it does not, but for a replica row, whose failure is recorded as a finding."""
        s = self.settings
        # The whole timeout, even for an unhardened design: the time its answer takes behind the
        # duplicate jobs its monitors queued is the figure (in the committed runs, seconds at the
        # fewest connections and past the timeout beyond), and a shorter wait would censor it.
        wait_s = max(POST_CHECK_MIN_TIMEOUT_S, float(s.timeout_s))
        try:
            answered_s = self.server_session.primer(server, point.load.path, 1, wait_s,
                                                    "post-check after the measured run")
        except PointFailed as exc:
            if not point.row.hardening:
                raise
            # A replica is faithful, not hardened: what it does once the load has gone is a
            # finding about the published design, recorded; the window it served is kept.
            record["post_check"] = {"failed": exc.reason, "waited_s": wait_s, "hardening": point.row.hardening}
        else:
            record["post_check"] = {"answered_ms": round(answered_s * 1000.0, 3)}

    def _warmup(self, point: Point, server, tag: str, record: dict) -> None:
        """The discarded warm-up run (settings.warmup_s, cut short of wrk's whole seconds)."""
        s = self.settings
        if s.warmup_s <= 0:
            return
        duration_s, stop_after_s = warmup_window(point.load, s.warmup_s)
        if self.generators.multi:
            runs = self.generators.run_on_clients(point, server, duration_s, tag, "warmup", stop_after_s=stop_after_s)
            record["logs"]["warmup"] = os.path.relpath(runs[0].out_path, self.run_dir)
            record["commands"]["warmup"] = runs[0].proc.argv
        else:
            path = os.path.join(self.logs_dir, f"{tag}-warmup.txt")
            record["logs"]["warmup"] = os.path.relpath(path, self.run_dir)
            proc, _, _ = self.generators.run_one(point, server, duration_s, path, stop_after_s=stop_after_s)
            record["commands"]["warmup"] = proc.argv
        if server.proc.poll() is not None:
            raise PointFailed(f"server exited with status {server.proc.returncode} during the warm-up")

    def _measured_run(self, point: Point, server, tag: str, out_path: str, record: dict):
        """The measured run: the ClientRun list of several client hosts, or one generator's
        (Process, stdout, stderr tail); fills the record's commands (and logs, several hosts)."""
        duration_s = self.settings.duration_s
        if self.generators.multi:
            runs = self.generators.run_on_clients(point, server, duration_s, tag, "wrk")
            record["logs"]["wrk"] = os.path.relpath(runs[0].out_path, self.run_dir)
            record["logs"]["clients"] = [os.path.relpath(r.out_path, self.run_dir) for r in runs]
            record["commands"]["client"] = runs[0].proc.argv
            record["commands"]["clients"] = [r.proc.argv for r in runs]
            return runs
        run = self.generators.run_one(point, server, duration_s, out_path)
        record["commands"]["client"] = run[0].argv
        return run

    def _result(self, point: Point, server, run, record: dict, server_alive: bool) -> tuple[dict, int, str]:
        """(the "wrk" object, the generators' exit status, its stderr's tail) of the measured
        run; fills record["client"] (and record["clients"], several hosts). PointFailed if an
        output cannot be read, saying so first if the server died in the window."""
        died = "" if server_alive else \
            f"server exited with status {server.proc.returncode} during the measured run; "
        if self.generators.multi:
            try:
                return self.generators.merge_clients(run, record)
            except PointFailed as exc:
                if died:
                    raise PointFailed(died + exc.reason)
                raise
        proc, stdout, stderr_tail = run
        if proc.rusage is not None:
            wall = (proc.ended or time.monotonic()) - proc.started
            record["client"] = {"cpu_user_s": round(proc.rusage.ru_utime, 3),
                                "cpu_sys_s": round(proc.rusage.ru_stime, 3),
                                "wall_s": round(wall, 3), "exit_status": proc.returncode}
        try:
            result = parse_output(point.load, stdout)
        except (wrk.WrkOutputError, loadgen.LoadgenOutputError) as exc:
            reason = f"wrk exited with status {proc.returncode}: {exc}"
            if stderr_tail.strip():
                reason += f"; stderr: {stderr_tail.strip()[-500:]}"
            raise PointFailed(died + reason)
        return result, proc.returncode, stderr_tail


def _record_failure(record: dict, exc: PointFailed, server) -> None:
    """Turns record into a failed one: the reason, the server output's tail, the fields
    measured before the failure."""
    record["status"] = "failed"
    record["failure"] = {"reason": exc.reason,
                         "server_output_tail": exc.tail if exc.tail is not None
                         else (tail(server.log_path) if server else None)}
    if exc.partial.get("skipped"):
        record["failure"]["skipped"] = True
    for k, v in exc.partial.items():
        if k != "skipped" and record.get(k) is None:
            record[k] = v
    record["verdict"] = "unclear"
    record["verdict_evidence"] = f"failed: {exc.reason}"


def derive(record: dict, server_cpu_count: int, client_cpu_count: int) -> None:
    """record["derived"] (per-request CPU, system calls, context switches; CPU utilisations), the
    machine's other CPU use, and the verdict with its evidence."""
    w, srv, cli = record["wrk"], record["server"], record["client"]
    req = w["requests"]
    # CPU and switches from the server's own getrusage when it wrote one (the whole thread group,
    # exited threads included: servercounters.rusage_window); else from /proc, whose switches are
    # the live threads' only (peers, older builds). The /proc switches stay as a cross-check.
    ru = srv.get("rusage")
    counts = ru or srv
    cpu_user_s, cpu_sys_s = counts["cpu_user_s"], counts["cpu_sys_s"]
    cpu = cpu_user_s + cpu_sys_s
    window_s = srv["window_s"]

    def per_req(x, scale=1.0):
        return None if x is None or req == 0 else round(x * scale / req, 4)

    # Every system call when perf counted them (syscount.py); else the read/write family only.
    if srv.get("syscalls") is not None:
        syscalls = srv["syscalls"]
    else:
        syscalls = None if srv["syscr"] is None else srv["syscr"] + srv["syscw"]
    proc_ctx = None if srv["ctx_voluntary"] is None else srv["ctx_voluntary"] + srv["ctx_involuntary"]
    ctx = ru["ctx_voluntary"] + ru["ctx_involuntary"] if ru else proc_ctx
    server_util = round(cpu / window_s / server_cpu_count, 4) if window_s > 0 else None
    client_util = None
    if cli and cli.get("hosts"):  # several client hosts: the busiest host's (multiclient.py)
        client_util = cli.get("cpu_util")
    elif cli and cli["wall_s"] > 0:
        client_util = round((cli["cpu_user_s"] + cli["cpu_sys_s"]) / cli["wall_s"]
                            / client_cpu_count, 4)
    # CPU time the rest of the machine used in the window (other processes, the harness,
    # interrupts): a benchmark sharing its CPUs is disturbed, and the evidence says so.
    other_util = None
    machine = record.get("machine")
    if machine and cli and cli["cpu_user_s"] is not None:
        # Several client hosts: only the generators on the server's machine are in its /proc/stat.
        client_here_s = cli["cpu_same_machine_s"] if cli.get("hosts") else cli["cpu_user_s"] + cli["cpu_sys_s"]
        other_s = machine["busy_cpu_s"] - cpu - client_here_s
        machine["other_cpu_s"] = round(max(0.0, other_s), 3)
        other_util = round(max(0.0, other_s) / window_s, 4) if window_s > 0 else None
        machine["other_cpu_util"] = other_util
    record["derived"] = {
        "server_cpu_us_per_req": per_req(cpu, 1e6),
        "server_user_us_per_req": per_req(cpu_user_s, 1e6),
        "server_sys_us_per_req": per_req(cpu_sys_s, 1e6),
        "syscalls_per_req": per_req(syscalls),
        "ctx_switches_per_req": per_req(ctx),
        "ctx_switches_per_req_proc": per_req(proc_ctx),
        "server_counts_source": "rusage" if ru else "proc",
        "server_cpu_util": server_util,
        "client_cpu_util": client_util,
    }
    record["verdict"], record["verdict_evidence"] = verdict.judge(
        w, server_util, client_util, server_cpu_count, client_cpu_count,
        other_cpu_util=other_util)
    steal_note = procstat.steal_disturbance(machine)  # steal is disturbance
    if steal_note:
        record["verdict_evidence"] += f"; {steal_note}"
