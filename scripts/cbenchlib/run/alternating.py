"""The rows of an alternating load (load.alternate_ms set) measured together: one repetition of
every row in one shared window, the rows taking turns.

Why: rows measured one after the other, seconds apart, see different hosts: the guest's speed
drifts over seconds, and at a fixed offered rate the rows' CPU per request then differed by 4-10%
between blocks, where an effect of 5% was to be found. Loaded in turns of 0.5 s through one
window, rows see the same host (A/A spread 1-1.5% instead of 4-5% in the same sittings,
results/diagnostics/20261205T224339Z-pairing-interleaved and 20261205T225757Z-pairing-alternating;
docs/statistics.md).

Life cycle of a group of K rows (a block's adjacent slots of one alternating load): start every
row's server pinned to the server CPUs (fresh, as a point's) -> ready -> primer -> the row's rate
(Peaks.resolve) -> one warm-up window of K x warmup_s in which the rows take turns -> every row's
samplers -> one generator per row, each
`cbench-load --duty K:PHASE:ALTERNATE_MS --start-at T` over K x duration_s, so row PHASE is
loaded alone in its turn, at the full rate, over connections that stay open -> every row's
samplers -> records ->
post-check of each server -> stop them all. A row that cannot start fails alone; the others run
as a group of K - 1 (a group of one runs as a plain point).

What the record says differently (SCHEMA.md, "alternation"): `alternation` {slices, phase,
slice_ms, rows (the group's row keys in phase order), window_s, on_s, others_cpu_s}. The server's
CPU, switches and counters are its own (per process). Its system calls are /proc/PID/io's
read/write family: perf counts by CPU and cannot tell the servers apart. The machine's other CPU
excludes the group's other servers and generators (others_cpu_s), so they are not disturbance.
The kernel's TCP counters are the namespace's over the shared window (every row's traffic).
Utilisations are over the whole window: about 1/K of the on-time figures.
"""
from __future__ import annotations

import dataclasses
import os
import time
import traceback

from . import kernelnet
from .failure import OUTPUT_TAIL_CHARS, PointFailed, tail
from .generators import ERR_TAIL_CHARS, WRK_GRACE_S, err_path_of, mark_window
from .host import wait_all
from .runner import _record_failure, derive, point_tag
from .samplers import WindowSamplers
from .server import PRIMER_REQUESTS, PRIMER_TIMEOUT_S
from ..format import resultio
from ..format.resultio import utc_now

# The generators share one schedule (cbench-load --start-at): it starts START_MARGIN_S plus
# SPAWN_S per member after the first is spawned, so that every process is up with its connections
# open before the first turn, however many rows take turns (a start time already past is a usage
# error of cbench-load; 24 rows spawned on a busy two-CPU machine took more than 0.5 s).
START_MARGIN_S = 0.5
SPAWN_S = 0.1


def start_margin_s(members: int) -> float:
    """How long after the first spawn a group of MEMBERS generators starts its window."""
    return START_MARGIN_S + SPAWN_S * members
KERNEL_NOTE = "namespace-wide counters over the shared window: every row of the alternation counted"


@dataclasses.dataclass
class Member:
    slot: object
    record: dict
    tag: str
    server: object = None
    point: object = None  # the point with its resolved rate
    samplers: object = None
    proc: object = None
    out_path: str = ""


def groups(slots: list) -> list[list]:
    """Consecutive slots of one block at one alternating load form a group (in blocked order a
    load's rows are adjacent); every other slot is a group of one."""
    out: list[list] = []
    for x in slots:
        last = out[-1][-1] if out else None
        if (last is not None and x.point.load.alternate_ms is not None
                and last.block == x.block and last.point.load.id == x.point.load.id):
            out[-1].append(x)
        else:
            out.append([x])
    return out


def run_group(runner, slots: list) -> list[dict]:
    """One repetition of each slot's point, measured together; returns their records in slot
    order (status ok or failed; a harness error fails the whole group's remaining rows)."""
    members = []
    for x in slots:
        tag = point_tag(x.point, x.rep, x.seq)
        members.append(Member(x, resultio.new_point(x.point.id, x.rep, x.seq, x.block, x.point.row.to_json(),
                                                    x.point.load.to_json(runner.settings)), tag))
    live: list[Member] = []
    try:
        for m in members:
            try:
                runner.check_runnable(m.slot.point)
                if runner.generators.multi:
                    raise PointFailed("alternate_ms needs one client host (the turns share one schedule)", tail="")
                m.server = runner.server_session.start(m.slot.point, m.tag, m.record)
                m.record["server_ready"] = m.server.ready
                runner.server_session.primer(m.server, m.slot.point.load.path, PRIMER_REQUESTS, PRIMER_TIMEOUT_S, "primer")
                m.point = runner.peaks.resolve(runner.generators, m.slot.point, m.server, m.tag, m.record)
                live.append(m)
            except PointFailed as exc:
                _record_failure(m.record, exc, m.server)
        if live:
            try:
                _measure(runner, live)
            except PointFailed as exc:
                for m in live:
                    if m.record["status"] != "failed":
                        _record_failure(m.record, exc, m.server)
    except Exception as exc:  # noqa: BLE001 - a harness bug costs this group, not the sweep
        reason = f"harness error: {exc.__class__.__name__}: {exc}"
        for m in members:
            if m.record.get("status") != "failed":
                m.record["status"] = "failed"
                m.record["failure"] = {"reason": reason, "server_output_tail": tail(m.server.log_path) if m.server else None,
                                       "traceback": traceback.format_exc()[-OUTPUT_TAIL_CHARS:]}
                m.record["verdict"], m.record["verdict_evidence"] = "unclear", f"failed: {reason}"
    finally:
        for m in members:  # on interruption too: no server outlives its group
            if m.samplers is not None:
                m.samplers.abort()
            if m.proc is not None and m.proc.returncode is None:
                m.proc.stop(1.0)
            if m.server is not None:
                m.record["server_exit_status"] = runner.server_session.stop(m.server)
            m.record["ended_utc"] = utc_now()
    return [m.record for m in members]


def _spawn(runner, live: list[Member], duration_s: float, what: str) -> None:
    """One generator per member with its turn of a K-slice cycle, all on one schedule (--start-at);
    waits for them all (PointFailed if one outlives the window's limit)."""
    s, k = runner.settings, len(live)
    margin_s = start_margin_s(k)
    start_at = time.time() + margin_s
    for phase, m in enumerate(live):
        if k > 1 and time.time() > start_at - SPAWN_S:
            raise PointFailed(f"spawning {k} load generators took longer than the {margin_s:g} s before their"
                              f" shared start (start_margin_s): the machine is too busy to start them", tail="")
        m.out_path = os.path.join(runner.logs_dir, f"{m.tag}-{what}.txt")
        argv = runner.generators.argv(runner.client_host, m.point.load, m.server, k * duration_s, None)
        if k > 1:  # a group left with one row (the others failed to start) runs it alone
            argv[-1:-1] = ["--duty", f"{k}:{phase}:{m.point.load.alternate_ms}", "--start-at", f"{start_at:.3f}"]
        m.proc = runner.client_host.spawn(argv, cpus=s.client_cpus, stdout=m.out_path, stderr=err_path_of(m.out_path))
        m.record["commands"]["client" if what == "wrk" else "warmup"] = argv
        m.record["logs"][what] = os.path.relpath(m.out_path, runner.run_dir)
    limit = margin_s + k * duration_s + s.timeout_s + WRK_GRACE_S
    if not wait_all([m.proc for m in live], limit):
        raise PointFailed(f"a load generator of the alternation did not exit within {limit:g} s; killed")
    for m in live:
        runner.client_host.forget(m.proc)


def _measure(runner, live: list[Member]) -> None:
    """The warm-up window, the measured window between every member's samplers, the records."""
    s, k = runner.settings, len(live)
    for m in live:
        if m.point.row.hardening:
            raise PointFailed("alternate_ms: a replica row is measured as published, alone and without a "
                              "warm-up; leave it out of an alternating load", tail="")
    if s.warmup_s > 0:
        _spawn(runner, live, s.warmup_s, "warmup")
        for m in live:
            if m.proc.returncode != 0:
                raise PointFailed(f"the warm-up generator of row {m.point.row.key} exited with status "
                                  f"{m.proc.returncode}: {tail(err_path_of(m.out_path), 500).strip()}")
    for m in live:
        m.samplers = WindowSamplers(runner.host, s, runner.logs_dir, m.tag, m.point, m.server, count_syscalls=False)
        m.samplers.start()
    _spawn(runner, live, s.duration_s, "wrk")
    alive = [m.samplers.stop(m.record) for m in live]
    for m, ok in zip(live, alive):
        run = (m.proc, _read(m.out_path), tail(err_path_of(m.out_path), ERR_TAIL_CHARS))
        result, returncode, stderr_tail = runner._result(m.point, m.server, run, m.record, ok)
        m.record["wrk"] = result
        if not ok:
            raise PointFailed(f"the server of row {m.point.row.key} exited with status "
                              f"{m.server.proc.returncode} during the alternation's window")
        if returncode != 0:
            raise PointFailed(f"the load generator of row {m.point.row.key} exited with status {returncode}; "
                              f"stderr: {stderr_tail.strip()[-500:]}")
        m.samplers.fill_server(m.record, result)
    own = [_cpu_s(m.record) for m in live]
    for phase, m in enumerate(live):
        others = sum(own) - own[phase]
        machine = m.record.get("machine")
        if machine and machine.get("busy_cpu_s") is not None:
            machine["busy_cpu_s_all"] = machine["busy_cpu_s"]
            machine["busy_cpu_s"] = round(machine["busy_cpu_s"] - others, 3)
        duty = m.record["wrk"].get("duty") or {"active_s": s.duration_s}
        m.record["alternation"] = {"slices": k, "phase": phase, "slice_ms": m.point.load.alternate_ms,
                                   "rows": [x.point.row.key for x in live], "window_s": k * s.duration_s,
                                   "on_s": duty.get("active_s"), "others_cpu_s": round(others, 3)}
        derive(m.record, runner.server_cpu_count, runner.client_cpu_count)
        m.samplers.fill_counters(m.record, m.record["wrk"])
        if m.record.get("kernel"):
            m.record["kernel"]["note"] = KERNEL_NOTE
        kernelnet.apply_verdict(m.record)
        mark_window(m.record)
        m.samplers = None
    for m in live:  # each server still answers; a failure here fails its row alone
        try:
            if m.record["wrk"]["requests"] == 0:
                raise PointFailed("no response in the measured window (server stopped answering?)")
            runner.post_check(m.point, m.server, m.record)
        except PointFailed as exc:
            _record_failure(m.record, exc, m.server)

def _cpu_s(record: dict) -> float:
    """The server's and its generator's CPU seconds over the window (what the other rows of the
    group must not count as disturbance)."""
    srv, cli = record.get("server") or {}, record.get("client") or {}
    counts = srv.get("rusage") or srv
    total = (counts.get("cpu_user_s") or 0.0) + (counts.get("cpu_sys_s") or 0.0)
    return total + (cli.get("cpu_user_s") or 0.0) + (cli.get("cpu_sys_s") or 0.0)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
