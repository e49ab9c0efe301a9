"""One measured repetition of one point: the runner's whole life cycle.

wrk point:  start the server pinned (fresh per repetition) -> wait for its
readiness line (deadline) -> primer (a few requests must answer 200) ->
discarded warm-up wrk run of the same shape -> /proc sample -> measured wrk
run pinned to the client CPUs -> /proc sample -> the server must still be
alive and answer -> stop the server (SIGTERM its group, SIGKILL after a grace).

idle point: start -> ready -> primer -> sample -> open N idle connections ->
let the server settle -> sample -> close them -> post-check -> stop.

A fresh server per repetition keeps repetitions independent (no heap, thread
or connection state carried over from an earlier point; VmHWM is a lifetime
peak, so a reused server would report an earlier point's peak), and a crash
costs one point only. The price is ~0.1 s of start-up per repetition.

Every failure becomes a record with status "failed", a reason and the tail of
the server's output; nothing here exits the sweep except an interruption,
which propagates after this module has stopped every process it started.
"""
from __future__ import annotations

import dataclasses
import errno
import http.client
import math
import os
import re
import selectors
import signal
import socket
import string
import time

from . import kernelnet, multiclient, procstat, servercounters, sockstat, syscount, workers, wrk
from ..format import loadgen, verdict
from .host import GATE_ARMED, GATE_GO_RE, HostError, same_machine, wait_all
from ..format.resultio import utc_now
from ..format.scenario import Point, Settings, cpu_list_count
from ..format import resultio  # the point record's skeleton (new_point) and the run directory's layout

READY_RE = re.compile(r"^cbench-server ready (.*)$", re.M)
PRIMER_REQUESTS = 3          # enough to see a keep-alive connection answer more than once
PRIMER_TIMEOUT_S = 5.0
POST_CHECK_MIN_TIMEOUT_S = 5.0
STOP_GRACE_S = 5.0           # SIGTERM -> SIGKILL; models must exit within this on SIGTERM
WRK_GRACE_S = 15.0           # beyond duration + timeout, before a hung wrk is killed
OUTPUT_TAIL_CHARS = 3000
IDLE_CONNECT_BATCH = 256     # connects in flight at once: stays under the listen backlog
IDLE_SETTLE_SAMPLES = 3      # equal samples (threads, RSS) that mean the server has settled
IDLE_SETTLE_INTERVAL_S = 0.1
IDLE_SETTLE_MAX_S = 5.0
FD_HEADROOM = 64             # descriptors the harness needs besides the idle connections
# Several client hosts (issue 18): how long every generator's start gate may take to say it is
# armed (python3 -S starts in ~10 ms here; an ssh host adds its connection's round trips).
GATE_ARM_TIMEOUT_S = 15.0


class PointFailed(Exception):
    def __init__(self, reason: str, tail: str | None = None, **partial):
        super().__init__(reason)
        self.reason = reason
        self.tail = tail
        self.partial = partial


class ServerHandle:
    def __init__(self, proc, port: int, log_path: str, ready: dict):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.ready = ready

    @property
    def pid(self) -> int:
        return self.proc.pid


def tail(path: str, chars: int = OUTPUT_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit]


def model_command(server_bin: str, point: Point, host_addr: str, server_args) -> list[str]:
    row = point.row
    argv = [server_bin, "--model", row.model, "--host", host_addr, "--port", "0",
            "--threads", str(row.threads)]
    if row.queues:
        argv += ["--queues", row.queues]
    if row.gvl:
        argv.append("--gvl")
    if row.backend:
        argv += ["--backend", row.backend]
    if row.processes:  # cluster mode and keep-alive policy (issue 15)
        argv += ["--processes", str(row.processes)]
    if not row.keepalive:
        argv += ["--keepalive", "off"]
    return argv + list(row.extra_args) + list(server_args)


def peer_dir(run_dir: str, model: str) -> str:
    """The run's scratch directory of a peer (pid file, temp paths): <run_dir>/peers/<model>."""
    return os.path.join(run_dir, "peers", model)


def render_peer(point: Point, addr: str, port: int, run_dir: str, repo: str, tag: str) -> tuple[list[str], str | None]:
    """(argv, config path) of a peer row, with the row's extra_args appended to its command.

    Placeholders in the command and the config template ($$ is a literal $):
      $port, $host      where to listen (a free port the harness picked; peers cannot report one)
      $threads          the row's thread count (worker processes or threads)
      $config           the rendered config: <run_dir>/logs/<tag>-<model>.conf
      $run_dir          the run directory
      $peer_dir         <run_dir>/peers/<model>, created here: pid file, temp paths
      $repo             the repository (e.g. for files a config serves)
      $user             the user the harness runs as (a peer started as root stays root)
      $root_only        "" when the harness runs as root, "# " otherwise: comments out a line
                        (a `user` directive) that only root may use
    """
    row = point.row
    run_dir, repo = os.path.abspath(run_dir), os.path.abspath(repo)
    config_path = None
    scratch = peer_dir(run_dir, row.model)
    os.makedirs(scratch, exist_ok=True)
    values = {"port": str(port), "host": addr, "threads": str(row.threads), "run_dir": run_dir,
              "peer_dir": scratch, "repo": repo, "user": _user_name(),
              "root_only": "" if os.geteuid() == 0 else "# "}
    if row.config_template:
        template_path = row.config_template if os.path.isabs(row.config_template) \
            else os.path.join(repo, row.config_template)
        with open(template_path, encoding="utf-8") as f:
            text = string.Template(f.read()).substitute(values)
        config_path = os.path.join(run_dir, "logs", f"{tag}-{row.model}.conf")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(text)
    values["config"] = config_path or ""
    argv = [string.Template(a).substitute(values) for a in row.command + row.extra_args]
    return argv, config_path


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def _user_name() -> str:
    import pwd
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclasses.dataclass
class ClientRun:
    """One generator of a point measured from several client hosts: its host, its share of the
    load, its process, its output files, and when the harness released its gate."""
    host: object
    load: object          # scenario.Load with this host's connections, threads and rate
    wrk_bin: str | None
    proc: object = None
    out_path: str = ""
    err_path: str = ""
    released_s: float | None = None


class Runner:
    def __init__(self, host, settings: Settings, server_bin: str, wrk_bin: str | None,
                 run_dir: str, repo: str, available_models: set[str] | None, client_host=None,
                 client_hosts=None, wrk_bins=None):
        # host: where the server runs (and is sampled); client_host: where wrk runs and the
        # harness's own probes connect from (issue 18; the same host unless given).
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

    # -- public -----------------------------------------------------------------------
    def run(self, point: Point, rep: int, seq: int, block: int | None = None) -> dict:
        """One repetition of one point -> its points.jsonl record (status ok or failed).
        `block` is the round it runs in (default: rep, as in the initial blocks)."""
        tag = f"{seq:04d}-r{rep}-{_slug(point.row.key + ' ' + point.load.key)}"
        record = resultio.new_point(point.id, rep, seq, rep if block is None else block,
                                    point.row.to_json(), point.load.to_json(self.settings))
        server = None
        try:
            self._check_runnable(point)
            server = self._start_server(point, tag, record)
            record["server_ready"] = server.ready
            self._primer(server, point.load.path if not point.load.is_idle else "/",
                         PRIMER_REQUESTS, PRIMER_TIMEOUT_S, "primer")
            if point.load.is_idle:
                self._measure_idle(point, server, record)
            else:
                point = loadgen.resolve_rate(self, point, server, tag, record)  # issue 17
                self._measure_wrk(point, server, tag, record)
        except PointFailed as exc:
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
        except Exception as exc:  # noqa: BLE001 - a harness bug costs one point, not the sweep
            import traceback
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
                status = server.proc.stop(STOP_GRACE_S)
                record["server_exit_status"] = status
        record["ended_utc"] = utc_now()
        return record

    # -- steps --------------------------------------------------------------------------
    def _check_runnable(self, point: Point):
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
        if not point.load.is_idle and point.load.generator != "wrk":  # issue 17
            for h in self.client_hosts:
                if not loadgen.binary(h, self.server_bin, point.load.generator):
                    raise PointFailed(f"{point.load.generator} not found on {h.name} (cbench-load: built "
                                      "beside cbench-server; h2load: Debian nghttp2-client)", tail="")
        elif not point.load.is_idle and not self.wrk_bin:
            raise PointFailed("wrk not found", tail="")

    def _start_server(self, point: Point, tag: str, record: dict) -> ServerHandle:
        log_path = os.path.join(self.logs_dir, f"{tag}-server.log")
        record["logs"]["server"] = os.path.relpath(log_path, self.run_dir)
        if point.row.kind == "peer":
            return self._start_peer(point, tag, log_path, record)
        # Issue 19: a row may name its own build (cbench regress: baseline beside candidate);
        # a relative path is relative to the repository.
        server_bin = os.path.join(self.repo, point.row.binary) if point.row.binary else self.server_bin
        argv = model_command(server_bin, point, self.addr, self.settings.server_args)
        counters_args, self._counters_path = servercounters.server_args(self.logs_dir, tag)
        extra = servercounters.supported_args(server_bin, counters_args + servercounters.response_args(self.settings))
        if "--counters-out" not in extra:
            self._counters_path = None  # an older build: SIGUSR1 would kill it
        argv += extra
        proc = self.host.spawn(argv, cpus=self.settings.server_cpus, stdout=log_path, stderr="stdout")
        record["commands"]["server"] = proc.argv
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while True:
            text = tail(log_path, 1 << 16)
            m = READY_RE.search(text)
            if m:
                ready = dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
                try:
                    port = int(ready["port"])
                except (KeyError, ValueError):
                    proc.stop(STOP_GRACE_S)
                    raise PointFailed(f"readiness line has no port: {m.group(0)!r}", tail=tail(log_path))
                if "pid" in ready and ready["pid"] != str(proc.pid):
                    ready["pid_mismatch"] = f"reported {ready['pid']}, started {proc.pid}"
                return ServerHandle(proc, port, log_path, ready)
            status = proc.poll()
            if status is not None:
                proc.stop(0)
                raise PointFailed(f"server exited with status {status} before it was ready",
                                  tail=tail(log_path))
            if time.monotonic() >= deadline:
                proc.stop(STOP_GRACE_S)
                raise PointFailed(f"server printed no readiness line within "
                                  f"{self.settings.ready_timeout_s:g} s", tail=tail(log_path))
            time.sleep(0.01)

    def _start_peer(self, point: Point, tag: str, log_path: str, record: dict) -> ServerHandle:
        """Peers (nginx, h2o; issue 7) print no readiness line: they are ready when they accept."""
        port = self.host.free_port(self.addr)
        try:
            argv, config = render_peer(point, self.addr, port, self.run_dir, self.repo, tag)
        except (OSError, KeyError, ValueError) as exc:
            raise PointFailed(f"cannot prepare peer {point.row.model!r}: {exc}", tail="")
        if os.sep not in argv[0]:
            argv[0] = self.host.which(argv[0]) or argv[0]
        proc = self.host.spawn(argv, cpus=self.settings.server_cpus, stdout=log_path, stderr="stdout")
        record["commands"]["server"] = proc.argv
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                proc.stop(0)
                raise PointFailed(f"peer exited with status {proc.returncode} before it accepted",
                                  tail=tail(log_path))
            try:
                with self.client_host.connect(self.addr, port, 0.5):
                    return ServerHandle(proc, port, log_path, {"port": str(port), "config": config})
            except OSError:
                time.sleep(0.05)
        proc.stop(STOP_GRACE_S)
        raise PointFailed(f"peer accepted no connection within {self.settings.ready_timeout_s:g} s",
                          tail=tail(log_path))

    def _primer(self, server: ServerHandle, path: str, count: int, timeout_s: float, what: str):
        """count GETs of path on one keep-alive connection; each must answer 200."""
        conn = http.client.HTTPConnection(self.addr, server.port, timeout=timeout_s)
        try:
            conn.sock = self.client_host.connect(self.addr, server.port, timeout_s)
            for i in range(count):
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise PointFailed(f"{what}: GET {path} answered {resp.status} {resp.reason} "
                                      f"(request {i + 1} of {count})")
        except (OSError, http.client.HTTPException) as exc:
            alive = server.proc.poll()
            state = "running" if alive is None else f"exited with status {alive}"
            raise PointFailed(f"{what}: GET {path} failed: {exc.__class__.__name__}: {exc} "
                              f"(server {state})")
        finally:
            conn.close()

    def _generator_argv(self, host, load, server: ServerHandle, duration_s: int, wrk_bin: str | None) -> list[str]:
        """The load generator's argv on host: wrk, or the row's other generator (issue 17)."""
        url = f"http://{self.addr}:{server.port}{load.path}"
        if load.generator != "wrk":
            return loadgen.command(loadgen.binary(host, self.server_bin, load.generator), load, url, duration_s)
        return wrk.command(wrk_bin, url, load.wrk_threads, load.connections, duration_s,
                           self.settings.timeout_s, load.pipeline)

    def _run_wrk(self, point: Point, server: ServerHandle, duration_s: int, out_path: str,
                 stop_after_s: float | None = None):
        argv = self._generator_argv(self.client_host, point.load, server, duration_s, self.wrk_bin)
        err_path = out_path[:-4] + ".err" if out_path.endswith(".txt") else out_path + ".err"
        proc = self.client_host.spawn(argv, cpus=self.settings.client_cpus, stdout=out_path, stderr=err_path)
        try:
            if stop_after_s is not None:
                # wrk's -d is whole seconds; a shorter warm-up is cut with SIGINT, on which
                # wrk stops its threads and prints its summary as usual.
                if proc.wait(stop_after_s) is None:
                    proc.signal_group(signal.SIGINT)
            limit = duration_s + self.settings.timeout_s + WRK_GRACE_S
            if proc.wait(max(0.0, limit - (time.monotonic() - proc.started))) is None:
                proc.stop(1.0)
                raise PointFailed(f"wrk did not exit within {limit:g} s; killed")
        finally:
            if proc.returncode is None:
                proc.stop(1.0)
            else:
                self.client_host._forget(proc)
        with open(out_path, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        return proc, stdout, tail(err_path, 2000)

    # -- several client hosts (issue 18; the arithmetic is multiclient.py's) ---------------------
    def _run_on_clients(self, point: Point, server: ServerHandle, duration_s: int, tag: str, what: str,
                        stop_after_s: float | None = None) -> list[ClientRun]:
        """One generator per client host, each with its share of the load (multiclient.py),
        started behind a gate, released together once every one is armed (so neither process
        start-up nor an ssh round trip skews the start), and waited for together (each one's
        exit time is its own). Raises PointFailed naming the host; stops whatever still runs."""
        load = point.load
        shares = multiclient.split_connections(load.connections, len(self.client_hosts))
        runs = []
        for i, (host, conns) in enumerate(zip(self.client_hosts, shares)):
            sub = dataclasses.replace(load, connections=conns, wrk_threads=min(load.wrk_threads, conns),
                                      rate=None if load.rate is None else load.rate * conns / load.connections)
            out = os.path.join(self.logs_dir, f"{tag}-{what}-c{i}.txt")
            runs.append(ClientRun(host, sub, self.wrk_bins[i], out_path=out, err_path=out[:-4] + ".err"))
        try:
            for r in runs:
                argv = self._generator_argv(r.host, r.load, server, duration_s, r.wrk_bin)
                try:
                    r.proc = r.host.spawn(argv, cpus=self.settings.client_cpus, stdout=r.out_path,
                                          stderr=r.err_path, gate=True)
                except (HostError, OSError) as exc:
                    raise PointFailed(f"cannot start the load generator on {r.host.name}: {exc}")
            self._await_armed(runs)
            for r in runs:
                r.released_s = time.monotonic()
                r.proc.release()
            procs = [r.proc for r in runs]
            if stop_after_s is not None and not wait_all(procs, stop_after_s):
                for r in runs:  # a warm-up shorter than -d: cut as in _run_wrk
                    if r.proc.poll() is None:
                        r.proc.signal_group(signal.SIGINT)
            limit = duration_s + self.settings.timeout_s + WRK_GRACE_S
            if not wait_all(procs, max(0.0, limit - (time.monotonic() - runs[0].released_s))):
                late = ", ".join(r.host.name for r in runs if r.proc.poll() is None)
                raise PointFailed(f"the load generator on {late} did not exit within {limit:g} s; killed")
        finally:
            for r in runs:
                if r.proc is None:
                    continue
                if r.proc.poll() is None:
                    r.proc.stop(1.0)
                else:
                    if hasattr(r.proc, "_close"):
                        r.proc._close()  # an ssh generator: end its connection's session too
                    r.host._forget(r.proc)
        return runs

    def _await_armed(self, runs: list[ClientRun]) -> None:
        """Until every generator's gate has printed GATE_ARMED; PointFailed naming a host whose
        generator exited first or did not arm within GATE_ARM_TIMEOUT_S."""
        deadline = time.monotonic() + GATE_ARM_TIMEOUT_S
        waiting = list(runs)
        while waiting:
            for r in list(waiting):
                if GATE_ARMED in tail(r.err_path, 1 << 16):
                    waiting.remove(r)
                elif r.proc.poll() is not None:
                    raise PointFailed(f"the load generator on {r.host.name} exited with status "
                                      f"{r.proc.returncode} before its start: {tail(r.err_path, 500).strip()}")
            if waiting and time.monotonic() >= deadline:
                raise PointFailed(f"the load generator on {', '.join(r.host.name for r in waiting)} was not "
                                  f"ready to start within {GATE_ARM_TIMEOUT_S:g} s")
            if waiting:
                time.sleep(0.005)

    def _merge_clients(self, point: Point, runs: list[ClientRun], record: dict) -> tuple[dict, int, str]:
        """(the merged "wrk" object, the first non-zero exit status or 0, that generator's stderr
        tail) of a multi-client run; fills record["clients"] (per host, the window and its bound)
        and record["client"] (summed CPU, the busiest host's utilisation). PointFailed naming the
        host whose output cannot be read."""
        results, gens, extra = [], [], []
        for r in runs:
            with open(r.out_path, encoding="utf-8", errors="replace") as f:
                stdout = f.read()
            err_text = tail(r.err_path, 1 << 16)
            try:
                result = (wrk.parse(stdout, r.load.pipeline) if r.load.generator == "wrk"
                          else loadgen.parse(r.load.generator, stdout, r.load.pipeline))
            except (wrk.WrkOutputError, loadgen.LoadgenOutputError) as exc:
                raise PointFailed(f"the load generator on {r.host.name} exited with status {r.proc.returncode}: "
                                  f"{exc}; stderr: {err_text.strip()[-500:]}")
            go = GATE_GO_RE.search(err_text)
            gate_user, gate_sys = (float(go.group(2)), float(go.group(3))) if go else (0.0, 0.0)
            on_host_clock = go is not None and r.host.shares_clock
            started = int(go.group(1)) / 1e9 if on_host_clock else r.released_s
            ended = r.proc.ended if r.proc.ended is not None else time.monotonic()
            wall = ended - started
            user = sys_ = util = None
            if r.proc.rusage is not None:  # minus the gate's own start-up (exec keeps CPU times)
                user = max(0.0, r.proc.rusage.ru_utime - gate_user)
                sys_ = max(0.0, r.proc.rusage.ru_stime - gate_sys)
                util = round((user + sys_) / wall / self.client_cpu_count, 4) if wall > 0 else None
            duration_s = (result.get("duration_us") or 0) / 1e6
            results.append(result)
            gens.append({"host": r.host.name, "started_s": started, "ended_s": ended,
                         "requests": result["requests"], "errors": sum(result["errors"].values()),
                         "cpu_util": util, "latency_us": result["latency_us"], "duration_s": duration_s or None})
            extra.append({"connections": r.load.connections, "threads": r.load.wrk_threads,
                          "rate": r.load.rate, "req_per_s": result["req_per_s"],
                          "duration_s": round(duration_s, 6), "errors_by_kind": result["errors"],
                          "cpu_user_s": None if user is None else round(user, 3),
                          "cpu_sys_s": None if sys_ is None else round(sys_, 3),
                          "cpu_s": None if user is None else round(user + sys_, 3),
                          "exit_status": r.proc.returncode,
                          "start_clock": "host" if on_host_clock else "harness release",
                          "same_machine_as_server": same_machine(r.host, self.host),
                          "log": os.path.relpath(r.out_path, self.run_dir)})
        merged = multiclient.merge(gens)
        for g, x in zip(merged["generators"], extra):
            g.update(x)
        t0 = min(r.released_s for r in runs)
        releases = [r.released_s for r in runs]
        record["clients"] = {
            "hosts": len(runs), "split": "connections split evenly; each host the point's -t (at most its "
                                         "connections); an open-loop rate split as the connections",
            "skew_s": merged["skew_s"], "release_spread_s": round(max(releases) - min(releases), 6),
            "window_s": merged["window_s"], "bounded": merged["bounded"],
            "max_unshared_fraction": merged["max_unshared_fraction"],
            "max_unshared_allowed": multiclient.MAX_UNSHARED_FRACTION,
            "requests_sum": merged["requests_sum"], "errors_sum": merged["errors_sum"],
            "requests_in_window": merged["requests"], "errors_in_window": merged["errors"],
            "req_per_s": merged["req_per_s"], "client_bound_hosts": merged["client_bound_hosts"],
            "generators": [dict(g, started_s=round(x["started_s"] - t0, 6), ended_s=round(x["ended_s"] - t0, 6))
                           for g, x in zip(merged["generators"], gens)],
        }
        result = multiclient.merge_results(results, merged)
        record["clients"]["latency_merged"] = result["latency_merged"]
        per = record["clients"]["generators"]
        have_cpu = all(g["cpu_s"] is not None for g in per)
        utils = [g["cpu_util"] for g in per if g["cpu_util"] is not None]
        record["client"] = {
            "cpu_user_s": round(sum(g["cpu_user_s"] for g in per), 3) if have_cpu else None,
            "cpu_sys_s": round(sum(g["cpu_sys_s"] for g in per), 3) if have_cpu else None,
            "wall_s": round(max(g["wall_s"] for g in per), 3),
            "exit_status": next((g["exit_status"] for g in per if g["exit_status"] != 0), 0),
            # the busiest host's: client-bound is judged per host (multiclient.py)
            "cpu_util": max(utils) if len(utils) == len(per) else None,
            # what the server's machine spent on generators (its /proc/stat counts only those)
            "cpu_same_machine_s": round(sum(g["cpu_s"] for g in per if g["same_machine_as_server"]), 3)
            if have_cpu else None,
            "hosts": len(per)}
        bad = next((r for r in runs if r.proc.returncode != 0), None)
        return result, (bad.proc.returncode if bad else 0), (tail(bad.err_path, 2000) if bad else "")

    def _mark_window(self, record: dict) -> None:
        """A multi-client point whose generators did not share enough of their runs is marked
        (multiclient.WINDOW_UNBOUNDED), keeping the verdict it would have had in its evidence."""
        c = record.get("clients")
        if c is None:
            return
        hosts = ", ".join(f"{g['host']} {g['requests']} req {_pct(g['cpu_util'])} CPU"
                          + (" (client-bound)" if g["client_bound"] else "") for g in c["generators"])
        record["verdict_evidence"] += (f"; {c['hosts']} client hosts ({hosts}), start skew "
                                       f"{c['skew_s'] * 1e3:.1f} ms, shared window {c['window_s']:.3f} s")
        if not c["bounded"]:
            record["verdict_evidence"] = (
                f"window not bounded: a generator ran {c['max_unshared_fraction'] * 100:.1f}% of its run outside "
                f"the window all generators shared (more than {multiclient.MAX_UNSHARED_FRACTION * 100:g}%), so "
                f"the summed throughput is not trusted (was {record['verdict']}: {record['verdict_evidence']})")
            record["verdict"] = multiclient.WINDOW_UNBOUNDED

    def _measure_wrk(self, point: Point, server: ServerHandle, tag: str, record: dict):
        s = self.settings
        load = point.load
        multi = len(self.client_hosts) > 1  # issue 18: several load hosts, released together
        if s.warmup_s > 0 and multi:
            runs = self._run_on_clients(point, server, max(1, math.ceil(s.warmup_s)), tag, "warmup",
                                        stop_after_s=s.warmup_s)
            record["logs"]["warmup"] = os.path.relpath(runs[0].out_path, self.run_dir)
            record["commands"]["warmup"] = runs[0].proc.argv
            if server.proc.poll() is not None:
                raise PointFailed(f"server exited with status {server.proc.returncode} during the warm-up")
        elif s.warmup_s > 0:
            path = os.path.join(self.logs_dir, f"{tag}-warmup.txt")
            record["logs"]["warmup"] = os.path.relpath(path, self.run_dir)
            proc, _, _ = self._run_wrk(point, server, max(1, math.ceil(s.warmup_s)), path,
                                       stop_after_s=s.warmup_s)
            record["commands"]["warmup"] = proc.argv
            if server.proc.poll() is not None:
                raise PointFailed(f"server exited with status {server.proc.returncode} during the warm-up")

        out_path = os.path.join(self.logs_dir, f"{tag}-wrk.txt")
        record["logs"]["wrk"] = os.path.relpath(out_path, self.run_dir)
        counter = None
        if syscount.available():
            counter = syscount.Counter(self.host, s.server_cpus, os.path.join(self.logs_dir, f"{tag}-perf.txt"),
                                       s.client_cpus)
            counter.start()
        try:
            stat_text_before = self.host.read_system_stat()
            softirqs_before = procstat.read_softirqs()  # issue 12: per-CPU softirq and steal
            machine_before = procstat.parse_system_stat(stat_text_before)
            before = procstat.sample(self.host, server.pid)
            counters_before = self._counters_snapshot(point, server)
            cluster_before = (kernelnet.sample(self.host, server.pid, server.port), workers.sample(self.host, server.pid))
        except OSError:
            if counter:
                counter.stop()
            raise PointFailed(f"server exited with status {server.proc.poll()} before the measured run")
        if multi:
            try:
                runs = self._run_on_clients(point, server, s.duration_s, tag, "wrk")
            except PointFailed:
                if counter:
                    counter.stop()
                raise
            record["logs"]["wrk"] = os.path.relpath(runs[0].out_path, self.run_dir)
            record["logs"]["clients"] = [os.path.relpath(r.out_path, self.run_dir) for r in runs]
            record["commands"]["client"] = runs[0].proc.argv
            record["commands"]["clients"] = [r.proc.argv for r in runs]
        else:
            proc, stdout, stderr_tail = self._run_wrk(point, server, s.duration_s, out_path)
            record["commands"]["client"] = proc.argv
        server_alive = server.proc.poll() is None
        after = procstat.sample(self.host, server.pid) if server_alive else None
        counters_after = self._counters_snapshot(point, server) if server_alive else None
        cluster_after = (kernelnet.sample(self.host, server.pid, server.port), workers.sample(self.host, server.pid)) \
            if server_alive else ({}, {})
        syscalls_perf = counter.stop() if counter else None
        stat_text_after = self.host.read_system_stat()
        machine_after = procstat.parse_system_stat(stat_text_after)
        record["machine"] = procstat.machine_window(machine_before, machine_after, self.host.clock_ticks())
        # issue 12 hook (report): per-CPU busy/softirq/steal over the window; steal is disturbance.
        record["machine"].update(procstat.cpu_window(
            stat_text_before, stat_text_after, softirqs_before, procstat.read_softirqs(),
            procstat.cpu_list(s.server_cpus), procstat.cpu_list(s.client_cpus)))

        if multi:
            try:
                result, returncode, stderr_tail = self._merge_clients(point, runs, record)
            except PointFailed as exc:
                if not server_alive:
                    raise PointFailed(f"server exited with status {server.proc.returncode} during the "
                                      f"measured run; {exc.reason}")
                raise
        else:
            returncode = proc.returncode
            if proc.rusage is not None:
                cpu_user, cpu_sys = proc.rusage.ru_utime, proc.rusage.ru_stime
                wall = (proc.ended or time.monotonic()) - proc.started
                record["client"] = {"cpu_user_s": round(cpu_user, 3), "cpu_sys_s": round(cpu_sys, 3),
                                    "wall_s": round(wall, 3), "exit_status": proc.returncode}
            try:
                result = (wrk.parse(stdout, load.pipeline) if load.generator == "wrk"
                          else loadgen.parse(load.generator, stdout, load.pipeline))  # issue 17
            except (wrk.WrkOutputError, loadgen.LoadgenOutputError) as exc:
                reason = f"wrk exited with status {proc.returncode}: {exc}"
                if stderr_tail.strip():
                    reason += f"; stderr: {stderr_tail.strip()[-500:]}"
                if not server_alive:
                    reason = f"server exited with status {server.proc.returncode} during the measured run; " + reason
                raise PointFailed(reason)
        record["wrk"] = result
        if not server_alive:
            raise PointFailed(f"server exited with status {server.proc.returncode} during the measured run")
        record["server"] = procstat.window(before, after)
        record["server"]["syscalls"] = syscalls_perf
        record["server"]["syscalls_source"] = "perf" if syscalls_perf is not None else "proc-io"
        # Issue 15: per-worker figures in cluster mode, the kernel's TCP counters, kernel-bound.
        record["server"]["cluster"] = workers.window(cluster_before[1], cluster_after[1])
        record["kernel"] = kernelnet.window(cluster_before[0], cluster_after[0], kernelnet.limits(),
                                            result["requests"],
                                            result["errors"]["connect"] + result["errors"]["timeout"])
        self._derive(record)
        if point.row.processes:  # issue 15: per-worker files, summed (servercounters.py)
            record["derived"]["counters_per_req"], per_worker = servercounters.cluster_window(
                counters_before, counters_after, result["requests"])
            servercounters.attach_workers(record["server"]["cluster"], per_worker)
        else:
            record["derived"]["counters_per_req"] = servercounters.per_request(
                counters_before, counters_after, result["requests"])
        kernelnet.apply_verdict(record)
        self._mark_window(record)  # issue 18: several client hosts
        if result["requests"] == 0:
            raise PointFailed("no response in the measured window (server stopped answering?)")
        if returncode != 0:
            who = "wrk" if not multi else next(f"the load generator on {g['host']}" for g in
                                               record["clients"]["generators"] if g["exit_status"] != 0)
            raise PointFailed(f"{who} exited with status {returncode}; stderr: {stderr_tail.strip()[-500:]}")
        self._primer(server, load.path, 1, max(POST_CHECK_MIN_TIMEOUT_S, float(s.timeout_s)),
                     "post-check after the measured run")

    def _counters_snapshot(self, point: Point, server: ServerHandle) -> dict | None:
        """The server's mechanism counters now (servercounters.py); None for peers."""
        if point.row.kind == "peer" or self._counters_path is None:
            return None
        if point.row.processes:  # cluster mode: one file per worker (issue 15)
            return servercounters.snapshot_cluster(server.pid, self._counters_path, point.row.processes)
        return servercounters.snapshot(server.pid, self._counters_path)

    def _derive(self, record: dict):
        w, srv, cli = record["wrk"], record["server"], record["client"]
        req = w["requests"]
        cpu = srv["cpu_user_s"] + srv["cpu_sys_s"]
        window_s = srv["window_s"]

        def per_req(x, scale=1.0):
            return None if x is None or req == 0 else round(x * scale / req, 4)

        # Every system call when perf counted them (syscount.py); else the read/write family only.
        if srv.get("syscalls") is not None:
            syscalls = srv["syscalls"]
        else:
            syscalls = None if srv["syscr"] is None else srv["syscr"] + srv["syscw"]
        ctx = None if srv["ctx_voluntary"] is None else srv["ctx_voluntary"] + srv["ctx_involuntary"]
        server_util = round(cpu / window_s / self.server_cpu_count, 4) if window_s > 0 else None
        client_util = None
        if cli and cli.get("hosts"):  # several client hosts: the busiest host's (multiclient.py)
            client_util = cli.get("cpu_util")
        elif cli and cli["wall_s"] > 0:
            client_util = round((cli["cpu_user_s"] + cli["cpu_sys_s"]) / cli["wall_s"]
                                / self.client_cpu_count, 4)
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
            "server_user_us_per_req": per_req(srv["cpu_user_s"], 1e6),
            "server_sys_us_per_req": per_req(srv["cpu_sys_s"], 1e6),
            "syscalls_per_req": per_req(syscalls),
            "ctx_switches_per_req": per_req(ctx),
            "server_cpu_util": server_util,
            "client_cpu_util": client_util,
        }
        record["verdict"], record["verdict_evidence"] = verdict.judge(
            w, server_util, client_util, self.server_cpu_count, self.client_cpu_count,
            other_cpu_util=other_util)
        steal_note = procstat.steal_disturbance(machine)  # issue 12 hook: steal is disturbance
        if steal_note:
            record["verdict_evidence"] += f"; {steal_note}"

    # -- idle connections ---------------------------------------------------------------
    def _measure_idle(self, point: Point, server: ServerHandle, record: dict):
        import resource
        n = point.load.idle_connections
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and n + FD_HEADROOM > hard:
            raise PointFailed(f"{n} idle connections need {n + FD_HEADROOM} file descriptors, more than "
                              f"this process's hard RLIMIT_NOFILE ({hard}); raise it (ulimit -Hn) "
                              f"as root, or lower idle_connections")
        if n + FD_HEADROOM > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n + FD_HEADROOM, hard))
        before = self._settle(server)
        sock_before = sockstat.sample()  # issue 16: kernel socket memory beside RSS
        socks: list[socket.socket] = []
        try:
            held, failures = self._open_idle(server.port, n, socks)
            if server.proc.poll() is not None:
                raise PointFailed(f"server exited with status {server.proc.returncode} "
                                  f"while {held} idle connections were open")
            after = self._settle(server)
            sock_after = sockstat.sample()
        finally:
            for s in socks:
                s.close()
        rss_before, rss_after = before["rss_kb"], after["rss_kb"]
        stack_kb = None
        if held and (after["threads"] - before["threads"]) / held > 0.5:
            stack_kb = self._stack_limit_kb(server.pid)
        record["server"] = procstat.window(before, after)
        record["idle"] = {
            "connections": n, "connections_held": held, "connect_failures": failures,
            "rss_before_kb": rss_before, "rss_after_kb": rss_after,
            "threads_before": before["threads"], "threads_after": after["threads"],
            "vmsize_before_kb": before["vmsize_kb"], "vmsize_after_kb": after["vmsize_kb"],
            "bytes_per_conn": round((rss_after - rss_before) * 1024 / held, 1) if held else None,
            "virtual_bytes_per_conn": round((after["vmsize_kb"] - before["vmsize_kb"]) * 1024 / held, 1)
            if held else None,
            "threads_per_conn": round((after["threads"] - before["threads"]) / held, 4) if held else None,
            # glibc's default thread stack is RLIMIT_STACK's soft value; a model may set its own.
            "stack_size_kb": stack_kb, "stack_size_source": "RLIMIT_STACK" if stack_kb else None,
            **sockstat.idle_fields(sock_before, sock_after, held),
        }
        record["verdict"], record["verdict_evidence"] = verdict.judge_idle(n, held)
        self._primer(server, "/", 1, POST_CHECK_MIN_TIMEOUT_S, "post-check after closing the idle connections")

    def _settle(self, server: ServerHandle) -> dict:
        """A /proc sample taken once threads and RSS stop changing (bounded wait)."""
        deadline = time.monotonic() + IDLE_SETTLE_MAX_S
        last, same = None, 0
        while True:
            try:
                s = procstat.sample(self.host, server.pid)
            except OSError:
                raise PointFailed(f"server exited with status {server.proc.poll()} during the idle point")
            key = (s["threads"], s["rss_kb"])
            same = same + 1 if key == last else 0
            last = key
            if same >= IDLE_SETTLE_SAMPLES - 1 or time.monotonic() >= deadline:
                return s
            time.sleep(IDLE_SETTLE_INTERVAL_S)

    def _open_idle(self, port: int, n: int, socks: list) -> tuple[int, int]:
        """Open n TCP connections that send nothing; returns (held, failed). Bounded by a deadline."""
        deadline = time.monotonic() + 10.0 + n / 1000.0  # 1 ms per connection is generous on loopback
        sel = selectors.DefaultSelector()
        held = failed = started = 0
        try:
            while (held + failed < n) and time.monotonic() < deadline:
                while started < n and started - held - failed < IDLE_CONNECT_BATCH:
                    s = self.client_host.socket()
                    s.setblocking(False)
                    rc = s.connect_ex((self.addr, port))
                    started += 1
                    if rc == 0:
                        socks.append(s)
                        held += 1
                    elif rc in (errno.EINPROGRESS, errno.EAGAIN):
                        sel.register(s, selectors.EVENT_WRITE)
                    else:
                        s.close()
                        failed += 1
                for key, _ in sel.select(timeout=0.1):
                    s = key.fileobj
                    sel.unregister(s)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        socks.append(s)
                        held += 1
                    else:
                        s.close()
                        failed += 1
            for key in list(sel.get_map().values()):
                key.fileobj.close()
                failed += 1
            failed += n - started
        finally:
            sel.close()
        return held, failed

    def _stack_limit_kb(self, pid: int) -> int | None:
        try:
            text = self.host.read_proc(pid, "limits")
        except OSError:
            return None
        m = re.search(r"^Max stack size\s+(\d+)", text, re.M)
        return int(m.group(1)) // 1024 if m else None
