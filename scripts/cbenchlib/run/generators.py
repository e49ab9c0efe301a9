"""Load generators as the runner drives them: the argv of wrk, cbench-load or h2load against a
server, one generator run on the client host (with its deadline), the same load split over
several client hosts (each generator behind the start gate, released together, their outputs
merged into one "wrk" object: the arithmetic is multiclient.py's), and the closed-loop peak a
rate_fraction point's rate is a fraction of (Peaks, measured once per sweep and peak_key).

The generators' vocabulary, scenario keys and output parsers are format/loadgen.py's and
run/wrk.py's; nothing here decides a verdict.
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import time

from . import multiclient, wrk
from .context import RunContext
from .failure import PointFailed, tail
from .host import GATE_ARMED, GATE_GO_RE, HostError, same_machine, wait_all
from ..format import loadgen
from ..format.scenario import Point

WRK_GRACE_S = 15.0           # beyond duration + timeout, before a hung generator is killed
# How long every generator's start gate may take to say it is armed (python3 -S starts in
# ~10 ms here; an ssh host adds its connection's round trips).
GATE_ARM_TIMEOUT_S = 15.0
ERR_TAIL_CHARS = 2000        # of a generator's stderr, kept for a failure's reason


def binary(host, server_bin: str, generator: str) -> str | None:
    """The generator's executable on host, or None: cbench-load is built beside cbench-server."""
    if generator == "cbench-load":
        path = os.path.join(os.path.dirname(os.path.realpath(server_bin)), "cbench-load")
        return path if os.access(path, os.X_OK) else None
    return host.which(generator)


def command(binary_path: str, load, url: str, duration_s: float) -> list[str]:
    """argv of one run of a non-wrk generator."""
    if load.generator == "h2load":
        # --h1: HTTP/1.1; -m is then the pipelining depth; -D the duration in whole seconds.
        return [binary_path, "--h1", "-c", str(load.connections), "-t", str(load.wrk_threads),
                "-m", str(load.pipeline), "-D", str(max(1, math.ceil(duration_s))), url]
    argv = [binary_path, "--connections", str(load.connections), "--threads", str(load.wrk_threads),
            "--pipeline", str(load.pipeline), "--duration", f"{duration_s:g}", "--json",
            # generator-bound points are recorded (generator_bound: true), not failed: the
            # reader decides; the machine in CI is often busier than the lag bound allows.
            "--carry-on"]
    if load.rate is not None:
        argv += ["--rate", f"{load.rate:.3f}", "--arrivals", load.arrivals]
    if getattr(load, "read_rate", None) is not None:
        argv += ["--read-rate", f"{load.read_rate:g}"]
    return argv + [url]


def err_path_of(out_path: str) -> str:
    """Where a generator's stderr goes beside its stdout file (NAME.txt -> NAME.err)."""
    return out_path[:-4] + ".err" if out_path.endswith(".txt") else out_path + ".err"


def warmup_window(load, warmup_s: float) -> tuple[float, float | None]:
    """(the duration to ask the generator for, the time after which to cut it with SIGINT, or
    None) of a warm-up of warmup_s: wrk's -d and h2load's -D take whole seconds, so they run the
    next whole second and are cut; cbench-load takes fractions, so it runs exactly warmup_s and
    exits by itself (it does not catch SIGINT: cut, it would die without its summary)."""
    if load.generator == "cbench-load":
        return warmup_s, None
    return float(max(1, math.ceil(warmup_s))), warmup_s


def parse_output(load, stdout: str) -> dict:
    """SCHEMA.md's "wrk" object from the load's generator's stdout; raises wrk.WrkOutputError or
    loadgen.LoadgenOutputError."""
    return (wrk.parse(stdout, load.pipeline) if load.generator == "wrk"
            else loadgen.parse(load.generator, stdout, load.pipeline))


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


class Generators:
    """Runs a point's load generator against a started server: on the first client host alone
    (run_one), or split over every client host (run_on_clients, then merge_clients)."""

    def __init__(self, ctx: RunContext, wrk_bins: list, wrk_bin: str | None, client_cpu_count: int):
        self.ctx = ctx
        self.settings, self.client_hosts, self.client_host = ctx.settings, ctx.client_hosts, ctx.client_host
        self.wrk_bins, self.wrk_bin = wrk_bins, wrk_bin  # wrk's path on each client host; on the first
        self.client_cpu_count = client_cpu_count

    @property
    def multi(self) -> bool:
        """True when the load is split over several client hosts."""
        return len(self.client_hosts) > 1

    def missing(self, point: Point) -> str | None:
        """Why the point's generator cannot run (not found on a client host), or None."""
        load = point.load
        if load.is_idle:
            return None
        if load.generator != "wrk":
            for h in self.client_hosts:
                if not binary(h, self.ctx.server_bin, load.generator):
                    return (f"{load.generator} not found on {h.name} (cbench-load: built "
                            "beside cbench-server; h2load: Debian nghttp2-client)")
        elif not self.wrk_bin:
            return "wrk not found"
        return None

    def argv(self, host, load, server, duration_s: int, wrk_bin: str | None) -> list[str]:
        """The load generator's argv on host: wrk, or the row's other generator."""
        url = f"http://{self.ctx.addr}:{server.port}{load.path}"
        if load.generator != "wrk":
            return command(binary(host, self.ctx.server_bin, load.generator), load, url, duration_s)
        return wrk.command(wrk_bin, url, load.wrk_threads, load.connections, duration_s,
                           self.settings.timeout_s, load.pipeline)

    def run_one(self, point: Point, server, duration_s: int, out_path: str,
                stop_after_s: float | None = None):
        """One generator run on the first client host, pinned to the client CPUs, output to
        out_path -> (its Process, its stdout, its stderr's tail). PointFailed if it outlives
        duration + timeout + WRK_GRACE_S (it is killed)."""
        argv = self.argv(self.client_host, point.load, server, duration_s, self.wrk_bin)
        err_path = err_path_of(out_path)
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
                self.client_host.forget(proc)
        with open(out_path, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        return proc, stdout, tail(err_path, ERR_TAIL_CHARS)

    # -- several client hosts -------------------------------------------------------------------
    def run_on_clients(self, point: Point, server, duration_s: int, tag: str, what: str,
                       stop_after_s: float | None = None) -> list[ClientRun]:
        """One generator per client host, each with its share of the load (multiclient.py),
        started behind a gate, released together once every one is armed (so neither process
        start-up nor an ssh round trip skews the start), and waited for together (each one's
        exit time is its own). Raises PointFailed naming the host; stops whatever still runs."""
        runs = self._shares(point.load, tag, what)
        try:
            for r in runs:
                argv = self.argv(r.host, r.load, server, duration_s, r.wrk_bin)
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
                for r in runs:  # a warm-up shorter than -d: cut as in run_one
                    if r.proc.poll() is None:
                        r.proc.signal_group(signal.SIGINT)
            limit = duration_s + self.settings.timeout_s + WRK_GRACE_S
            if not wait_all(procs, max(0.0, limit - (time.monotonic() - runs[0].released_s))):
                late = ", ".join(r.host.name for r in runs if r.proc.poll() is None)
                raise PointFailed(f"the load generator on {late} did not exit within {limit:g} s; killed")
        finally:
            _finish(runs)
        return runs

    def _shares(self, load, tag: str, what: str) -> list[ClientRun]:
        """One ClientRun per client host: connections split evenly, each host the point's -t (at
        most its connections), an open-loop rate split as the connections."""
        shares = multiclient.split_connections(load.connections, len(self.client_hosts))
        runs = []
        for i, (host, conns) in enumerate(zip(self.client_hosts, shares)):
            sub = dataclasses.replace(load, connections=conns, wrk_threads=min(load.wrk_threads, conns),
                                      rate=None if load.rate is None else load.rate * conns / load.connections)
            out = os.path.join(self.ctx.logs_dir, f"{tag}-{what}-c{i}.txt")
            runs.append(ClientRun(host, sub, self.wrk_bins[i], out_path=out, err_path=out[:-4] + ".err"))
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

    def merge_clients(self, runs: list[ClientRun], record: dict) -> tuple[dict, int, str]:
        """(the merged "wrk" object, the first non-zero exit status or 0, that generator's stderr
        tail) of a multi-client run; fills record["clients"] (per host, the window and its bound)
        and record["client"] (summed CPU, the busiest host's utilisation). PointFailed naming the
        host whose output cannot be read."""
        results, gens, extra = [], [], []
        for r in runs:
            result, gen, more = self._read_run(r)
            results.append(result)
            gens.append(gen)
            extra.append(more)
        merged = multiclient.merge(gens)
        for g, x in zip(merged["generators"], extra):
            g.update(x)
        record["clients"] = _clients_object(runs, gens, merged)
        result = multiclient.merge_results(results, merged)
        record["clients"]["latency_merged"] = result["latency_merged"]
        record["client"] = _client_object(record["clients"]["generators"])
        bad = next((r for r in runs if r.proc.returncode != 0), None)
        return result, (bad.proc.returncode if bad else 0), (tail(bad.err_path, ERR_TAIL_CHARS) if bad else "")

    def _read_run(self, r: ClientRun) -> tuple[dict, dict, dict]:
        """(its "wrk" object, its multiclient.merge entry, its extra per-host fields) of one
        generator: its window starts at its gate's release on its own clock when the host shares
        the harness's, else at the harness's release; its CPU time excludes the gate's."""
        with open(r.out_path, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        err_text = tail(r.err_path, 1 << 16)
        try:
            result = parse_output(r.load, stdout)
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
        gen = {"host": r.host.name, "started_s": started, "ended_s": ended,
               "requests": result["requests"], "errors": sum(result["errors"].values()),
               "cpu_util": util, "latency_us": result["latency_us"], "duration_s": duration_s or None}
        more = {"connections": r.load.connections, "threads": r.load.wrk_threads,
                "rate": r.load.rate, "req_per_s": result["req_per_s"],
                "duration_s": round(duration_s, 6), "errors_by_kind": result["errors"],
                "cpu_user_s": None if user is None else round(user, 3),
                "cpu_sys_s": None if sys_ is None else round(sys_, 3),
                "cpu_s": None if user is None else round(user + sys_, 3),
                "exit_status": r.proc.returncode,
                "start_clock": "host" if on_host_clock else "harness release",
                "same_machine_as_server": same_machine(r.host, self.ctx.host),
                "log": os.path.relpath(r.out_path, self.ctx.run_dir)}
        return result, gen, more


def _finish(runs: list[ClientRun]) -> None:
    """Stops every generator still running and forgets the ones that exited."""
    for r in runs:
        if r.proc is None:
            continue
        if r.proc.poll() is None:
            r.proc.stop(1.0)
        else:
            if hasattr(r.proc, "close_session"):
                r.proc.close_session()  # an ssh generator: end its connection's session too
            r.host.forget(r.proc)


def _clients_object(runs: list[ClientRun], gens: list[dict], merged: dict) -> dict:
    """The record's "clients" object: the shared window, its bound, and each generator with its
    start and end relative to the first release."""
    t0 = min(r.released_s for r in runs)
    releases = [r.released_s for r in runs]
    return {
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


def _client_object(per: list[dict]) -> dict:
    """The record's "client" object of a multi-client run: summed CPU, the busiest host's
    utilisation (client-bound is judged per host: multiclient.py)."""
    have_cpu = all(g["cpu_s"] is not None for g in per)
    utils = [g["cpu_util"] for g in per if g["cpu_util"] is not None]
    return {
        "cpu_user_s": round(sum(g["cpu_user_s"] for g in per), 3) if have_cpu else None,
        "cpu_sys_s": round(sum(g["cpu_sys_s"] for g in per), 3) if have_cpu else None,
        "wall_s": round(max(g["wall_s"] for g in per), 3),
        "exit_status": next((g["exit_status"] for g in per if g["exit_status"] != 0), 0),
        "cpu_util": max(utils) if len(utils) == len(per) else None,
        # what the server's machine spent on generators (its /proc/stat counts only those)
        "cpu_same_machine_s": round(sum(g["cpu_s"] for g in per if g["same_machine_as_server"]), 3)
        if have_cpu else None,
        "hosts": len(per)}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def mark_window(record: dict) -> None:
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


class Peaks:
    """Closed-loop peaks measured in one sweep, one per loadgen.peak_key (the same server row,
    path, connections and threads), so the open-loop points of a rate_fraction sweep share it;
    and the common rates of the fixed-rate loads (rate_common_fraction), resolved from their
    pilots before the first block (run/sweepexec.py) and handed in with set_common."""

    def __init__(self):
        self._by_key: dict[str, dict] = {}
        self._common: dict[str, dict] = {}  # loadgen.common_rate_key -> loadgen.resolve_common_rate's

    def set_common(self, key: str, resolution: dict) -> None:
        self._common[key] = resolution

    def resolve(self, generators: Generators, point: Point, server, tag: str, record: dict) -> Point:
        """The point to run: itself; for rate_fraction a copy whose rate is fraction x peak,
        the peak being a closed-loop cbench-load run at the same connections on this server,
        measured the first time its key is asked for (fills record["peak"]); for
        rate_common_fraction a copy at its load's common rate (fills record["common_rate"]).
        Fills record["load"]["rate"]. Raises loadgen.LoadgenOutputError if the peak run answered
        nothing, PointFailed if a fixed-rate load has no resolved rate (every pilot failed)."""
        load = point.load
        if load.rate_common_fraction is not None:
            common = self._common.get(loadgen.common_rate_key(point))
            if common is None:
                raise PointFailed("fixed-rate load without a common rate: no pilot of its rows measured a "
                                  "peak (meta.json common_rates)", tail="")
            record["common_rate"] = {k: v for k, v in common.items() if k != "pilots"}
            record["common_rate"]["own_pilot"] = common["pilots"].get(point.row.key)
            resolved = dataclasses.replace(point, load=dataclasses.replace(load, rate=common["rate_per_s"]))
            record["load"]["rate"] = resolved.load.rate
            return resolved
        if load.rate_fraction is None:
            return point
        key = loadgen.peak_key(point)
        if key not in self._by_key:
            self._by_key[key] = self.measure(generators, point, server, tag)
        peak = self._by_key[key]
        record["peak"] = dict(peak)
        resolved = dataclasses.replace(point, load=dataclasses.replace(load, rate=load.rate_fraction * peak["req_per_s"]))
        record["load"]["rate"] = resolved.load.rate
        return resolved

    @staticmethod
    def measure(generators: Generators, point: Point, server, tag: str) -> dict:
        """The closed-loop peak of POINT's row and load shape on SERVER (a cbench-load run of
        duration_s, its output in logs/TAG-peak.txt): {"req_per_s", "log", "measured_in"}.
        Raises loadgen.LoadgenOutputError if the run answered nothing."""
        load = point.load
        closed = dataclasses.replace(load, rate=None, rate_fraction=None, rate_common_fraction=None)
        out_path = os.path.join(generators.ctx.logs_dir, f"{tag}-peak.txt")
        proc, stdout, err = generators.run_one(dataclasses.replace(point, load=closed), server,
                                               generators.settings.duration_s, out_path)
        result = loadgen.parse("cbench-load", stdout, load.pipeline)
        if result["requests"] == 0:
            raise loadgen.LoadgenOutputError(f"peak run answered nothing (exit {proc.returncode}): "
                                             f"{err.strip()[-300:]}")
        return {"req_per_s": result["req_per_s"], "log": os.path.relpath(out_path, generators.ctx.run_dir),
                "measured_in": tag}
