"""A server session for one repetition: build the command of a model (cbench-server) or a peer
(nginx, h2o), start it pinned to the server CPUs, wait until it is ready (its readiness line; a
peer's first accepted connection), prime it (a few requests must answer 200), stop it (SIGTERM
its group, SIGKILL after a grace).

A fresh server per repetition keeps repetitions independent (no heap, thread or connection
state carried over from an earlier point; VmHWM is a lifetime peak, so a reused server would
report an earlier point's peak), and a crash costs one point only. The price is ~0.1 s of
start-up per repetition.
"""
from __future__ import annotations

import http.client
import os
import pwd
import re
import string
import time

from . import servercounters
from .context import RunContext
from .failure import PointFailed, tail
from ..format.scenario import Point
from ..format.scenario_types import PEERS

READY_RE = re.compile(r"^cbench-server ready (.*)$", re.M)
PRIMER_REQUESTS = 3          # enough to see a keep-alive connection answer more than once
PRIMER_TIMEOUT_S = 5.0
POST_CHECK_MIN_TIMEOUT_S = 5.0
STOP_GRACE_S = 5.0           # SIGTERM -> SIGKILL; models must exit within this on SIGTERM
READY_POLL_S = 0.01          # between reads of a model's log for its readiness line
PEER_CONNECT_RETRY_S = 0.05  # between connection attempts to a peer that is not accepting yet


class ServerHandle:
    """A started, ready server: its process, port, log, readiness fields and the path of its
    mechanism counters (servercounters.py; None for builds without --counters-out and for peers
    but the replicas that declare `counters` in PEERS)."""

    def __init__(self, proc, port: int, log_path: str, ready: dict, counters_path: str | None = None):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.ready = ready
        self.counters_path = counters_path

    @property
    def pid(self) -> int:
        return self.proc.pid


def model_command(server_bin: str, point: Point, host_addr: str, server_args) -> list[str]:
    """cbench-server's argv for a model row (port 0: it reports the port it took)."""
    row = point.row
    argv = [server_bin, "--model", row.model, "--host", host_addr, "--port", "0",
            "--threads", str(row.threads)]
    if row.queues:
        argv += ["--queues", row.queues]
    if row.gvl:
        argv.append("--gvl")
    if row.backend:
        argv += ["--backend", row.backend]
    if row.processes:  # cluster mode and keep-alive policy
        argv += ["--processes", str(row.processes)]
    if not row.keepalive:
        argv += ["--keepalive", "off"]
    return argv + list(row.extra_args) + list(server_args)


def peer_counts(point: Point) -> bool:
    """Whether a peer row's server takes --counters-out PATH (a built-in peer declaring `counters`,
    run with its own command: another command may not take the flag)."""
    spec = PEERS.get(point.row.model, {})
    return bool(spec.get("counters")) and tuple(point.row.command or ()) in ((), tuple(spec["command"]))


def peer_dir(run_dir: str, model: str) -> str:
    """The run's scratch directory of a peer (pid file, temp paths): <run_dir>/peers/<model>."""
    return os.path.join(run_dir, "peers", model)


def ruby_ext_dir(server_bin: str) -> str:
    """<directory of the real cbench-server>/ruby: where the build puts the Ever extension, ever.so
    (backends/ever/ruby/CMakeLists.txt)."""
    return os.path.join(os.path.dirname(os.path.realpath(server_bin)), "ruby")


def render_peer(point: Point, addr: str, port: int, run_dir: str, repo: str, tag: str,
                server_bin: str | None = None) -> tuple[list[str], str | None]:
    """(argv, config path) of a peer row, with the row's extra_args appended to its command.
    ValueError (one line) when the command needs the Ever extension and it is not built.

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
      $ruby_ext_dir     ruby_ext_dir(server_bin): the directory holding ever.so, for `ruby -I`
                        (the Ever replicas); a command naming it fails unless ever.so is there
    """
    row = point.row
    run_dir, repo = os.path.abspath(run_dir), os.path.abspath(repo)
    config_path = None
    scratch = peer_dir(run_dir, row.model)
    os.makedirs(scratch, exist_ok=True)
    values = {"port": str(port), "host": addr, "threads": str(row.threads), "run_dir": run_dir,
              "peer_dir": scratch, "repo": repo, "user": _user_name(),
              "root_only": "" if os.geteuid() == 0 else "# "}
    if any("ruby_ext_dir" in a for a in row.command + row.extra_args):
        if server_bin is None:
            raise ValueError("$ruby_ext_dir needs the sweep's server binary")
        values["ruby_ext_dir"] = ruby_ext_dir(server_bin)
        extension = os.path.join(values["ruby_ext_dir"], "ever.so")
        if not os.path.isfile(extension):
            raise ValueError(f"the Ever extension is not built: {extension}")
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


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


class ServerSession:
    """Starts, primes and stops the server of one repetition on `host`; the harness's own probes
    (primer, a peer's readiness) connect from `client_host` to the server host's client address."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.host, self.client_host, self.settings = ctx.host, ctx.client_host, ctx.settings
        self.addr = ctx.addr

    def start(self, point: Point, tag: str, record: dict) -> ServerHandle:
        """The row's server started and ready; fills record["logs"]["server"] and
        record["commands"]["server"]. PointFailed (with the output's tail) if it is not ready."""
        log_path = os.path.join(self.ctx.logs_dir, f"{tag}-server.log")
        record["logs"]["server"] = os.path.relpath(log_path, self.ctx.run_dir)
        if point.row.kind == "peer":
            return self._start_peer(point, tag, log_path, record)
        return self._start_model(point, tag, log_path, record)

    def stop(self, server: ServerHandle) -> int:
        """Stops the server's process group; returns its exit status."""
        return server.proc.stop(STOP_GRACE_S)

    def _start_model(self, point: Point, tag: str, log_path: str, record: dict) -> ServerHandle:
        # A row may name its own build (cbench regress: baseline beside candidate); a relative
        # path is relative to the repository.
        server_bin = os.path.join(self.ctx.repo, point.row.binary) if point.row.binary else self.ctx.server_bin
        argv = model_command(server_bin, point, self.addr, self.settings.server_args)
        counters_args, counters_path = servercounters.server_args(self.ctx.logs_dir, tag)
        extra = servercounters.supported_args(server_bin, counters_args + servercounters.response_args(self.settings))
        if "--counters-out" not in extra:
            counters_path = None  # an older build: SIGUSR1 would kill it
        argv += extra
        proc = self.host.spawn(argv, cpus=self.settings.server_cpus, stdout=log_path, stderr="stdout")
        record["commands"]["server"] = proc.argv
        handle = self._await_ready_line(proc, log_path)
        handle.counters_path = counters_path
        return handle

    def _await_ready_line(self, proc, log_path: str) -> ServerHandle:
        """Polls the log for the readiness line until the ready deadline; stops the server and
        raises PointFailed if it exits first, prints no port, or the deadline passes."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while True:
            m = READY_RE.search(tail(log_path, 1 << 16))
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
            time.sleep(READY_POLL_S)

    def _start_peer(self, point: Point, tag: str, log_path: str, record: dict) -> ServerHandle:
        """Peers (nginx, h2o) print no readiness line: they are ready when they accept."""
        port = self.host.free_port(self.addr)
        try:
            argv, config = render_peer(point, self.addr, port, self.ctx.run_dir, self.ctx.repo, tag,
                                       self.ctx.server_bin)
        except (OSError, KeyError, ValueError) as exc:
            raise PointFailed(f"cannot prepare peer {point.row.model!r}: {exc}", tail="")
        if os.sep not in argv[0]:
            argv[0] = self.host.which(argv[0]) or argv[0]
        counters_path = None
        if peer_counts(point):  # a replica that writes cbench-server's counters file
            counters_args, counters_path = servercounters.server_args(self.ctx.logs_dir, tag)
            argv += counters_args
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
                    return ServerHandle(proc, port, log_path, {"port": str(port), "config": config},
                                        counters_path)
            except OSError:
                time.sleep(PEER_CONNECT_RETRY_S)
        proc.stop(STOP_GRACE_S)
        raise PointFailed(f"peer accepted no connection within {self.settings.ready_timeout_s:g} s",
                          tail=tail(log_path))

    def primer(self, server: ServerHandle, path: str, count: int, timeout_s: float, what: str) -> float:
        """count GETs of path on one keep-alive connection; each must answer 200, else PointFailed
        naming `what` and whether the server still runs. Returns the seconds from connecting to
        the last answer."""
        started = time.monotonic()
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
            return time.monotonic() - started
        except (OSError, http.client.HTTPException) as exc:
            alive = server.proc.poll()
            state = "running" if alive is None else f"exited with status {alive}"
            raise PointFailed(f"{what}: GET {path} failed: {exc.__class__.__name__}: {exc} "
                              f"(server {state})")
        finally:
            conn.close()
