"""One model's soak: start cbench-server, saturate it with cbench-load beside the churn client
(soakclient.py) for the soak's duration, sample its RSS, threads and open descriptors every
sample interval, stop the load, let it settle, sample again, ask once more, stop it.

What it records, per sample (the soak's samples.jsonl, SCHEMA.md "Soak runs"):
  model, phase ("baseline" before the load, "load", "after" once the load stopped),
  t_s (seconds since the load started; negative for the baseline), rss_kb, threads, fds.
The judging of these samples is analysis/soak.py's.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import time

from . import soakclient
from .failure import tail
from .localhost import LocalHost
from .procstat import parse_status
from .server import READY_RE, STOP_GRACE_S, model_command
from ..format.scenario_types import Load, Point, Row

SAMPLES_FILE = "samples.jsonl"
READY_TIMEOUT_S = 10.0
BASELINE_WAIT_S = 0.2        # the server closes the priming connection before the baseline sample
SETTLE_S = 1.0               # after the load stops: closed connections are noticed within this
SETTLE_MAX_S = 5.0           # a model whose descriptors are not back by then has kept some
LOAD_CONNECTIONS = 8         # cbench-load's closed-loop connections: enough to saturate 2 cores
LOAD_EXIT_GRACE_S = 5.0
# The churn client's threads: keep-alive connections carry the malformed requests; the rest churn.
CHURN_ROLES = ("keepalive", "keepalive", "close", "close", "abort", "abort", "slow")
BOUNDED_HEADROOM = 2         # threads of a bounded model beyond the connections it is given


@dataclasses.dataclass(frozen=True)
class SoakPlan:
    """The soak of one model: how long, how it is loaded, where it writes."""
    server_bin: str
    load_bin: str | None       # None: no saturating load beside the churn client
    model: str
    bounded: bool
    threads: int
    duration_s: float
    sample_s: float
    addr: str = "127.0.0.1"

    def server_threads(self) -> int:
        """A bounded model serves at most --threads connections: it gets one per connection the
        soak opens at once, and headroom, so the load stays within its bound."""
        if not self.bounded:
            return self.threads
        return max(self.threads, LOAD_CONNECTIONS + len(CHURN_ROLES) + BOUNDED_HEADROOM)


@dataclasses.dataclass
class SoakOutcome:
    """What one model's soak observed (analysis/soak.py judges it)."""
    model: str
    samples: list
    died: str | None = None          # why the server stopped before the soak did
    answered_after: bool = False     # GET / answered 200 after the load
    churn: dict = dataclasses.field(default_factory=dict)
    load: dict | None = None
    exit_status: int | None = None
    argv: list = dataclasses.field(default_factory=list)


def server_argv(plan: SoakPlan) -> list[str]:
    """The sweep's command for a plain model row of plan.model (run/server.py model_command)."""
    row = Row(key=plan.model, label=None, kind="model", model=plan.model, threads=plan.server_threads(),
              queues=None, gvl=False, backend=None, extra_args=(), loads=None, command=None,
              config_template=None)
    return model_command(plan.server_bin, Point(row, Load(set_name="soak")), plan.addr, [])


def count_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def take_sample(host: LocalHost, pid: int, model: str, phase: str, t_s: float) -> dict:
    """One sample of the server process; OSError if it is gone."""
    status = parse_status(host.read_proc(pid, "status"))
    return {"model": model, "phase": phase, "t_s": round(t_s, 3), "rss_kb": status["vm_rss_kb"],
            "threads": status["threads"], "fds": count_fds(pid)}


def await_ready(proc, log_path: str) -> int:
    """The port from the server's readiness line; RuntimeError if it exits or stays silent."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        m = READY_RE.search(tail(log_path, 1 << 16))
        if m:
            fields = dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
            return int(fields["port"])
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before it was ready: {tail(log_path)}")
        time.sleep(0.01)
    raise RuntimeError(f"no readiness line within {READY_TIMEOUT_S:g} s")


def answers(addr: str, port: int) -> bool:
    """True if one GET / on a fresh connection answers 200."""
    try:
        with socket.create_connection((addr, port), timeout=soakclient.SOCKET_TIMEOUT_S) as sock:
            sock.sendall(soakclient.GOOD_REQUEST)
            return soakclient.read_response(sock, b"")[0] == 200
    except (OSError, soakclient.ResponseError):
        return False


class SampleLog:
    """Appends samples to the run's samples.jsonl as they are taken (a crash keeps them)."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, SAMPLES_FILE)

    def append(self, sample: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(sample, separators=(",", ":")) + "\n")


def soak_model(plan: SoakPlan, host: LocalHost, logs_dir: str, log: SampleLog) -> SoakOutcome:
    """Runs one model's soak; the server is stopped whatever happens."""
    out = SoakOutcome(model=plan.model, samples=[], argv=server_argv(plan))
    log_path = os.path.join(logs_dir, f"{plan.model}-server.log")
    proc = host.spawn(out.argv, stdout=log_path, stderr="stdout")
    try:
        port = await_ready(proc, log_path)
    except RuntimeError as exc:
        proc.stop(STOP_GRACE_S)
        out.died = f"not started: {exc}"
        return out
    try:
        _drive(plan, host, proc, port, logs_dir, log, out)
    finally:
        out.exit_status = proc.stop(STOP_GRACE_S)
    return out


def _record(out: SoakOutcome, log: SampleLog, sample: dict) -> None:
    out.samples.append(sample)
    log.append(sample)


def _drive(plan: SoakPlan, host: LocalHost, proc, port: int, logs_dir: str, log: SampleLog,
           out: SoakOutcome) -> None:
    """Baseline sample, the loaded phase with a sample per interval, then the settled samples."""
    if not answers(plan.addr, port):
        out.died = "did not answer GET / before the load"
        return
    time.sleep(BASELINE_WAIT_S)
    _record(out, log, take_sample(host, proc.pid, plan.model, "baseline", -plan.sample_s))
    loader = _start_load(plan, port, logs_dir)
    churn = soakclient.ChurnClient(plan.addr, port, list(CHURN_ROLES))
    churn.start()
    start = time.monotonic()
    try:
        _sample_until(plan, host, proc, start, start + plan.duration_s, "load", log, out)
    finally:
        out.churn = churn.stop().to_json()
        out.load = _stop_load(loader)
    if out.died:
        return
    stop_t = time.monotonic()
    time.sleep(SETTLE_S)
    baseline_fds = out.samples[0]["fds"]
    while True:
        sample = _sample_or_death(host, proc, plan.model, "after", time.monotonic() - start, out)
        if sample is None:
            return
        _record(out, log, sample)
        if sample["fds"] <= baseline_fds or time.monotonic() - stop_t >= SETTLE_MAX_S:
            break
        time.sleep(plan.sample_s / 2)
    out.answered_after = answers(plan.addr, port)


def _sample_until(plan: SoakPlan, host: LocalHost, proc, start: float, end: float, phase: str,
                  log: SampleLog, out: SoakOutcome) -> None:
    n = 0
    while not out.died:
        n += 1
        wake = start + n * plan.sample_s
        if wake > end + 1e-6:
            return
        time.sleep(max(0.0, wake - time.monotonic()))
        sample = _sample_or_death(host, proc, plan.model, phase, time.monotonic() - start, out)
        if sample is not None:
            _record(out, log, sample)


def _sample_or_death(host: LocalHost, proc, model: str, phase: str, t_s: float, out: SoakOutcome):
    status = proc.poll()
    if status is None:
        try:
            return take_sample(host, proc.pid, model, phase, t_s)
        except OSError:
            status = proc.poll()
    out.died = f"exited with status {status} during the {phase} phase at {t_s:.1f} s"
    return None


def _start_load(plan: SoakPlan, port: int, logs_dir: str):
    if not plan.load_bin:
        return None
    argv = [plan.load_bin, "--connections", str(LOAD_CONNECTIONS), "--threads", "1",
            "--duration", f"{plan.duration_s:g}", "--carry-on", "--json",
            f"http://{plan.addr}:{port}/"]
    err = open(os.path.join(logs_dir, f"{plan.model}-load.log"), "w", encoding="utf-8")
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
    finally:
        err.close()


def _stop_load(loader) -> dict | None:
    """cbench-load's figures (requests, errors), or {"exit": status} if it printed none."""
    if loader is None:
        return None
    try:
        stdout, _ = loader.communicate(timeout=LOAD_EXIT_GRACE_S)
    except subprocess.TimeoutExpired:
        loader.kill()
        stdout, _ = loader.communicate()
    try:
        report = json.loads(stdout)
    except ValueError:
        return {"exit": loader.returncode}
    return {"exit": loader.returncode, "requests": report.get("requests"), "non2xx": report.get("non2xx"),
            "errors": report.get("errors"), "rate_achieved": report.get("rate_achieved")}
