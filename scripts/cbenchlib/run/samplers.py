"""The samplers around one measured window, as one object: the server's /proc (procstat), every
system call it makes (syscount, when perf can count them), its mechanism counters
(servercounters), the kernel's TCP counters (kernelnet), per-worker figures in cluster mode
(workers), and the machine's CPU time per CPU (procstat's /proc/stat and softirqs; steal is
disturbance).

start() just before the measured run, stop() just after it, then fill_server() and, once the
record's derived figures exist, fill_counters(): each writes the record fields it owns.
"""
from __future__ import annotations

import os

from . import kernelnet, procstat, servercounters, syscount, workers
from .failure import PointFailed
from ..format.scenario import Point, Settings


class WindowSamplers:
    """Every sample of one measured window of one server."""

    def __init__(self, host, settings: Settings, logs_dir: str, tag: str, point: Point, server,
                 count_syscalls: bool = True):
        # count_syscalls False: /proc/PID/io's read/write family instead of perf's count by CPU,
        # which cannot tell apart servers sharing the CPUs in one window (run/alternating.py).
        self.host = host
        self.settings = settings
        self.point = point
        self.server = server
        self.perf_path = os.path.join(logs_dir, f"{tag}-perf.txt")
        self.counter = None
        self.server_alive = False
        self.syscalls_perf = None
        self.count_syscalls = count_syscalls

    def start(self) -> None:
        """Starts the system-call counter and takes the before samples; PointFailed (the counter
        stopped) if the server is gone."""
        s = self.settings
        if self.count_syscalls and syscount.available():
            self.counter = syscount.Counter(self.host, s.server_cpus, self.perf_path, s.client_cpus)
            self.counter.start()
        try:
            self.stat_text_before = self.host.read_system_stat()
            self.softirqs_before = procstat.read_softirqs()
            self.machine_before = procstat.parse_system_stat(self.stat_text_before)
            self.before = procstat.sample(self.host, self.server.pid)
            self.counters_before = self._counters_snapshot()
            self.cluster_before = (kernelnet.sample(self.host, self.server.pid, self.server.port),
                                   workers.sample(self.host, self.server.pid))
        except OSError:
            self.abort()
            raise PointFailed(f"server exited with status {self.server.proc.poll()} before the measured run")

    def abort(self) -> None:
        """Stops the system-call counter of a window that will not be recorded."""
        if self.counter:
            self.counter.stop()
            self.counter = None

    def stop(self, record: dict) -> bool:
        """Takes the after samples (the server's only while it runs) and fills record["machine"];
        returns whether the server was still running."""
        server = self.server
        self.server_alive = server.proc.poll() is None
        self.after = procstat.sample(self.host, server.pid) if self.server_alive else None
        self.counters_after = self._counters_snapshot() if self.server_alive else None
        self.cluster_after = (kernelnet.sample(self.host, server.pid, server.port),
                              workers.sample(self.host, server.pid)) if self.server_alive else ({}, {})
        self.syscalls_perf = self.counter.stop() if self.counter else None
        self.counter = None
        stat_text_after = self.host.read_system_stat()
        machine_after = procstat.parse_system_stat(stat_text_after)
        record["machine"] = procstat.machine_window(self.machine_before, machine_after, self.host.clock_ticks())
        # Per-CPU busy/softirq/steal over the window; steal is disturbance.
        record["machine"].update(procstat.cpu_window(
            self.stat_text_before, stat_text_after, self.softirqs_before, procstat.read_softirqs(),
            procstat.cpu_list(self.settings.server_cpus), procstat.cpu_list(self.settings.client_cpus)))
        return self.server_alive

    def fill_server(self, record: dict, result: dict) -> None:
        """record["server"] (the process window, system calls, per-worker figures) and
        record["kernel"] (the TCP counters, kernel-bound or not) of a window with `result`."""
        record["server"] = procstat.window(self.before, self.after)
        record["server"]["syscalls"] = self.syscalls_perf
        record["server"]["syscalls_source"] = "perf" if self.syscalls_perf is not None else "proc-io"
        record["server"]["cluster"] = workers.window(self.cluster_before[1], self.cluster_after[1])
        record["server"]["rusage"] = servercounters.rusage_window(self.counters_before, self.counters_after)
        record["kernel"] = kernelnet.window(self.cluster_before[0], self.cluster_after[0], kernelnet.limits(),
                                            result["requests"],
                                            result["errors"]["connect"] + result["errors"]["timeout"])

    def fill_counters(self, record: dict, result: dict) -> None:
        """record["derived"]["counters_per_req"]; in cluster mode also each worker's, attached to
        record["server"]["cluster"] (per-worker files, summed: servercounters.py)."""
        if self.point.row.processes:
            record["derived"]["counters_per_req"], per_worker = servercounters.cluster_window(
                self.counters_before, self.counters_after, result["requests"])
            servercounters.attach_workers(record["server"]["cluster"], per_worker)
        else:
            record["derived"]["counters_per_req"] = servercounters.per_request(
                self.counters_before, self.counters_after, result["requests"])

    def _counters_snapshot(self) -> dict | list | None:
        """The server's mechanism counters now (servercounters.py); None for a server without a
        counters file (peers but the counting replicas)."""
        point, server = self.point, self.server
        if server.counters_path is None:
            return None
        if point.row.processes:  # cluster mode: one file per worker
            return servercounters.snapshot_cluster(server.pid, server.counters_path, point.row.processes)
        return servercounters.snapshot(server.pid, server.counters_path)
