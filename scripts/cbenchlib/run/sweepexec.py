"""Executes a sweep's plan (plan.sweepplan.SweepPlan) on its hosts, one method per step: check
the tools -> take the machine-wide benchmark lock -> create (or resume) the run directory ->
resolve the fixed-rate loads' common rates from their pilots (recorded in meta.json, so a resumed
run keeps them) -> run the initial blocks (one fresh server per repetition, through
runner.Runner), appending one line per repetition -> with a target interval, extra blocks for the
points the declared
comparisons need, for as long as the stopping rule `decide` says -> finish meta.json.

The stopping rule is passed in (analysis.sequential.decide; run does not import analysis).
Errors before anything runs raise PlanError; an interruption, a lost host or an unwritable
disk stops the sweep with what it recorded kept and its exit status returned."""
from __future__ import annotations

import os
import resource
import signal
import sys
import time

from ..format import loadgen, resultio, runlogs
from ..format.paths import RESULTS_DIR, REPO_ROOT
from ..plan.estimate import Eta, fmt_duration
from ..plan.ledger import Ledger
from ..plan.schedule import extra_block
from ..format.paths import repo_relative
from ..plan.sweepplan import PlanError, SweepPlan
from . import alternating, benchlock, envinfo, generators, hostcheck, profiling, runner, sweeprecord
from .host import LocalHost


class ResultsUnwritable(Exception):
    """The run directory cannot be written (a full or read-only disk): the sweep stops, since
    nothing it measured from here on could be recorded."""
    def __init__(self, exc: OSError):
        super().__init__(str(exc))
        self.exc = exc


class HostLost(Exception):
    """A host stopped answering mid-sweep: the sweep stops, keeping what it recorded; the point
    it was measuring is not recorded, so --resume measures it again."""
    def __init__(self, host_name: str, why: str):
        super().__init__(f"{host_name}: {why}")
        self.host_name, self.why = host_name, why


# The signal the sweep's handler caught. Its raise can be swallowed: a Python signal handler runs
# wherever the main thread next executes bytecode, and inside an at-fork callback (logging's, when
# a child is started) or a finaliser an exception is printed and ignored. The point loops re-raise
# it from here, so an interrupt stops the sweep at the next point at the latest.
_caught_signal: list = [None]


def note_signal(signum: int | None) -> None:
    """Record the signal the handler caught (None: forget, at the start of a sweep)."""
    _caught_signal[0] = signum


def caught_signal() -> int | None:
    """The signal noted since the sweep started, or None."""
    return _caught_signal[0]


def raise_if_signalled() -> None:
    signum = caught_signal()
    if signum is not None:
        raise SweepInterrupted(signum)


class SweepInterrupted(BaseException):
    """Raised by the SIGINT/SIGTERM handler. A BaseException, like KeyboardInterrupt, so
    the runner's catch-all for harness errors lets it through."""
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_nofile(points) -> None:
    """Raise the soft RLIMIT_NOFILE (inherited by servers and wrk) to what the largest point needs."""
    need = 0
    for p in points:
        need = max(need, p.load.idle_connections or p.load.connections or 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 2 * runner.FD_HEADROOM
    if want > soft:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            print(f"sweep: warning: points with {need} connections need about {want} file descriptors; "
                  f"the hard limit is {hard} (those points may fail; raise it with ulimit -Hn)",
                  flush=True)


class Sweep:
    """Executes a SweepPlan on a host; one method per step (see the module docstring)."""

    def __init__(self, plan: SweepPlan, host, client_hosts: list, decide=None):
        self.plan = plan
        self.host = host                  # the server's host
        # every load host; the first also sends the probes and holds the idle connections
        self.client_hosts = list(client_hosts) or [host]
        self.client_host = self.client_hosts[0]
        # decide(run_dir, published_name, target_ci_pct, max_repetitions) -> Decision with
        # stop: bool, reason: str, rows: list[str] (schedule.points_for reads them)
        self.decide = decide
        self.wrk_bin: str | None = None
        self.wrk_bins: list = []          # wrk's path on each client host
        self.writer: resultio.RunWriter | None = None
        self.ledger = Ledger()            # every record of the run, read at open then appended
        self.spent_s = 0.0
        self._topology: dict | None = None

    # Step 1: tools (raises PlanError).
    def check_tools(self) -> None:
        p = self.plan
        if p.list_error:
            raise PlanError(p.list_error)
        # A reference run comes from a known, clean commit: anything written under results/
        # (runs/, calibration/) is reference material.
        if not p.resume_dir and (os.path.abspath(p.out_parent) + os.sep).startswith(RESULTS_DIR + os.sep):
            refusal = envinfo.dirty_refusal(envinfo.git_info(REPO_ROOT), p.allow_dirty)
            if refusal:
                raise PlanError(f"refusing a reference run into {repo_relative(p.out_parent)}: {refusal}")
        if p.needs_wrk:
            self.find_wrk()
        self.find_other_generators()
        if self.host.which("taskset") is None:
            raise PlanError("taskset not found: install the Debian package util-linux (scripts/deps.sh does)")
        self.check_remote_binaries()
        if p.profile:  # refuse before anything runs, not after the blocks
            ok, why = profiling.perf_available()
            if not ok:
                raise PlanError(f"--profile needs perf record on the server's CPUs: {why}")

    def find_wrk(self) -> None:
        for h in self.client_hosts:
            found = h.which(self.plan.wrk_name)
            if found is None:
                raise PlanError(f"wrk not found on {h.name} (looked for {self.plan.wrk_name!r} "
                                "on PATH): install the Debian package wrk (scripts/deps.sh does)")
            self.wrk_bins.append(os.path.abspath(found))
        self.wrk_bin = self.wrk_bins[0]

    def find_other_generators(self) -> None:
        """Refuses, before anything runs, a sweep whose loads need cbench-load (the default
        generator) or h2load where this host has none."""
        gens = sorted({x.load.generator for x in self.plan.points if not x.load.is_idle} - {"wrk"})
        for g in gens:
            if type(self.client_hosts[0]) is LocalHost and generators.binary(self.client_hosts[0], self.plan.server_bin, g) is None:
                where = ("beside the server binary " + os.path.dirname(os.path.realpath(self.plan.server_bin))
                         + " (cmake --build build --target cbench-load)" if g == "cbench-load"
                         else "on PATH (Debian package nghttp2-client)")
                raise PlanError(f"{g} not found {where}; a load set that names no generator uses cbench-load")

    def check_remote_binaries(self) -> None:
        """A remote server host runs the local build's commit at the same path, or nothing; so
        does cbench-load on every client host away from this one, when a load uses it."""
        points = self.plan.points
        if type(self.host) is not LocalHost and any(x.row.kind in ("model", "instrument") for x in points):
            refusal = hostcheck.check_server_binary(self.host, self.plan.server_bin)
            if refusal:
                raise PlanError(f"refusing the sweep: {refusal}")
        if any(not x.load.is_idle and x.load.generator == "cbench-load" for x in points):
            path = os.path.join(os.path.dirname(os.path.realpath(self.plan.server_bin)), "cbench-load")
            for h in self.client_hosts:
                if type(h) is not LocalHost:
                    refusal = hostcheck.check_binary(h, path, "cbench-load")
                    if refusal:
                        raise PlanError(f"refusing the sweep: {refusal}")

    # Step 2: the machine-wide lock; returns the open file (keep it open), or raises PlanError.
    def take_lock(self):
        p = self.plan
        lock = benchlock.acquire(p.lock_file, p.lock_timeout_s, "sweep", f"cbench sweep {p.settings.name}")
        if lock is None:
            raise PlanError(f"the benchmark lock {p.lock_file} is still held after {p.lock_timeout_s:g} s; "
                            "another benchmark is running")
        return lock

    # Step 3: the run directory (raises OSError if it cannot be created or written).
    def open_run(self) -> None:
        p = self.plan
        if p.resume_dir:
            self.writer = resultio.RunWriter(p.resume_dir)
            self.writer.load_meta()
            runlogs.unpack(self.writer.run_dir)  # a finished run's logs.tar.xz back to loose files
            if self.writer.repair_tail():
                print("sweep: cut a torn last line off points.jsonl", flush=True)
            self.ledger = Ledger(self.writer.read_points().points)
            self.writer.update_meta(ended_utc=None, interrupted=None,
                                    resumed_utc=self.writer.meta.get("resumed_utc", []) + [resultio.utc_now()])
            print(f"sweep: resuming {self.writer.run_dir}: {len(self.ledger.done)} runs already recorded "
                  f"({len(p.slots)} in the initial blocks)", flush=True)
            return
        self.writer = resultio.RunWriter(resultio.new_run_dir(p.out_parent, p.settings.name))
        self.writer.write_meta(sweeprecord.new_meta(p, self.writer.run_dir, self.host, self.client_hosts,
                                                    self.wrk_bin, self.topology))

    def topology(self) -> dict:
        """Where each role runs, measured once per sweep (sweeprecord.measure_topology)."""
        if self._topology is None:
            self._topology = sweeprecord.measure_topology(self.host, self.client_hosts, self.writer.run_dir)
        return self._topology

    def unique_hosts(self) -> list:
        """The server's host and every client host, each once."""
        out = [self.host]
        for h in self.client_hosts:
            if all(h is not x for x in out):
                out.append(h)
        return out

    def check_hosts(self) -> None:
        """Raises HostLost if a host no longer answers (asked after a failed point only)."""
        for h in self.unique_hosts():
            why = h.alive()
            if why:
                raise HostLost(h.name, why)

    # Step 3b: the fixed-rate loads' common rates, from one closed-loop pilot per row and load
    # shape, before any block (every row of a load must run at the same rate).
    def resolve_common_rates(self, runner_: runner.Runner) -> None:
        p = self.plan
        if not p.pilots:
            return
        key = loadgen.COMMON_RATES_META_KEY
        recorded = dict(self.writer.meta.get(key) or {})
        todo = [ld for ld in p.pilots.loads if (recorded.get(ld.key) or {}).get("rate_per_s") is None]
        need = [(k, pt) for k, pt in p.pilots.pilots.items() if any(k == pk for ld in todo for _r, pk in ld.rows)]
        measured = {}
        for i, (pkey, point) in enumerate(need):
            raise_if_signalled()
            t0 = time.monotonic()
            measured[pkey] = runner_.pilot(point, f"pilot{i:03d}-{runner.slug(point.row.key + ' ' + point.load.key)}")
            self.spent_s += time.monotonic() - t0
            got = measured[pkey]
            print(f"[pilot {i + 1}/{len(need)}] {point.row.key} {point.load.key}: "
                  + (f"{got['req_per_s']:.0f} req/s" if "req_per_s" in got else f"failed: {got['failed']}"), flush=True)
        for ld in todo:
            pilots = {row: measured[pk] for row, pk in ld.rows}
            try:
                recorded[ld.key] = loadgen.resolve_common_rate(ld.fraction, pilots, resultio.utc_now())
            except ValueError as exc:
                recorded[ld.key] = {"fraction": ld.fraction, "failed": str(exc), "pilots": pilots}
                print(f"sweep: fixed-rate load {ld.key}: {exc}; its points are recorded as failed", flush=True)
                continue
            r = recorded[ld.key]
            print(f"sweep: fixed rate for {ld.key}: {r['fraction']:g} x {r['lowest_req_per_s']:.0f} req/s "
                  f"(the lowest pilot peak, {r['lowest_row']}) = {r['rate_per_s']:.0f} req/s for "
                  f"{len(ld.rows)} rows", flush=True)
        try:
            self.writer.update_meta(**{key: recorded})
        except OSError as exc:
            raise ResultsUnwritable(exc) from exc
        for k, r in recorded.items():
            if r.get("rate_per_s") is not None:
                runner_.peaks.set_common(k, r)

    # Step 4: run slots, one record each.
    def run_slots(self, runner_: runner.Runner, slots: list, label: str) -> None:
        todo = self.ledger.todo(slots)
        eta = Eta(todo, self.plan.settings, self.plan.available, self.plan.overheads)
        total = len(slots)
        width = len(str(max(x.seq for x in slots) + 1)) if slots else 1
        # An alternating load's rows of one block run as one group (run/alternating.py).
        for group in alternating.groups(todo):
            raise_if_signalled()
            t0 = time.monotonic()
            records = ([runner_.run(group[0].point, group[0].rep, group[0].seq, group[0].block)]
                       if len(group) == 1 else alternating.run_group(runner_, group))
            if any(r["status"] != "ok" for r in records):
                self.check_hosts()  # a dead host: stop, and do not record this attempt
            dt = (time.monotonic() - t0) / len(group)
            for x, record in zip(group, records):
                sweeprecord.annotate(record, self.writer.meta, self.host.name, self.client_host.name)
                self.append(record)
                self.spent_s += dt
                eta_s = eta.advance(x, self.spent_s)
                print(sweeprecord.progress_line(x, label, total, width, record, dt, eta_s), flush=True)

    def append(self, record: dict) -> None:
        try:
            self.writer.append_point(record)
        except OSError as exc:
            raise ResultsUnwritable(exc) from exc
        self.ledger.add(record)

    # Step 5: extra blocks until the sequential rule stops (or the cap does).
    def run_extra_blocks(self, runner_: runner.Runner) -> None:
        p, s = self.plan, self.plan.settings
        if not p.sequential:
            return
        blocks = 0
        while True:
            if self.decide is None:
                self.record_stop("rule-unavailable", "the stopping rule (scripts/cbenchlib/sequential.py) "
                                 "is not in this tree; the fixed design's blocks were run", blocks)
                return
            # Only a scenario that sizes its published trend passes `trends` (a stand-in rule in
            # the tests takes the four positional arguments).
            trends = {"trends": True} if s.sequential_trends else {}
            decision = self.decide(self.writer.run_dir, s.published, s.target_ci_pct, s.repetitions_cap, **trends)
            if decision.stop:
                self.record_stop("rule", decision.reason, blocks)
                return
            nxt = extra_block(decision.rows, p.points, self.ledger, s)
            if nxt.stop:
                self.record_stop(nxt.stop, f"{decision.reason}; {nxt.why}", blocks)
                return
            if nxt.asked > len(nxt.slots):
                print(f"sweep: the rule asks for {nxt.asked} points; an extra block runs "
                      f"at most {s.sequential_points} (sequential_points): {nxt.asked - len(nxt.slots)} left out",
                      flush=True)
            print(f"sweep: extra block {nxt.block} ({len(nxt.slots)} points): {decision.reason}", flush=True)
            self.run_slots(runner_, nxt.slots, f"block {nxt.block}")
            blocks += 1

    def record_stop(self, why: str, reason: str, blocks: int) -> None:
        self.writer.update_meta(sequential={
            "stopped": why, "reason": reason, "extra_blocks": blocks,
            "target_ci_pct": self.plan.settings.target_ci_pct,
            "max_repetitions": self.plan.settings.repetitions_cap, "utc": resultio.utc_now()})
        print(f"sweep: sequential design stopped ({why}) after {blocks} extra blocks: {reason}", flush=True)

    # Step 6: the end.
    def finish(self) -> int:
        try:
            self.writer.update_meta(ended_utc=resultio.utc_now())
        except OSError as exc:
            print(f"sweep: warning: cannot record the end time in {self.writer.meta_path}: "
                  f"{exc.strerror or exc}", file=sys.stderr, flush=True)
        try:  # the per-repetition logs into one archive (results/SCHEMA.md, "Logs of a run")
            runlogs.pack(self.writer.run_dir)
        except (OSError, ValueError) as exc:
            print(f"sweep: warning: logs left loose, not archived: {exc}", file=sys.stderr, flush=True)
        recorded = self.ledger.records
        ok = sum(1 for x in recorded if x.get("status") == "ok")
        failed = len(recorded) - ok
        verdicts: dict = {}
        for x in recorded:
            if x.get("status") == "ok":
                verdicts[x.get("verdict")] = verdicts.get(x.get("verdict"), 0) + 1
        vtext = ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items()))
        print(f"sweep: done in {fmt_duration(self.spent_s)}: {ok} ok ({vtext or 'none'}), {failed} failed; "
              f"results in {self.writer.run_dir}", flush=True)
        return 0 if ok > 0 else 1

    # The whole sweep after the lock: returns the exit status, or raises PlanError if the run
    # directory cannot be opened (nothing was run).
    def execute(self) -> int:
        p = self.plan
        raise_nofile(p.points)
        try:
            self.open_run()
        except (OSError, resultio.ResultsFormatError) as exc:
            where = p.resume_dir or p.out_parent
            detail = str(exc) if isinstance(exc, resultio.ResultsFormatError) else \
                f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
            raise PlanError(f"cannot {'resume the run in' if p.resume_dir else 'create a run directory under'} "
                            f"{where}: {detail}; nothing was run"
                            + ("" if p.resume_dir else " (a full or read-only disk? free space, or choose another --out)"))
        print(f"run directory: {self.writer.run_dir}", flush=True)
        if p.skipped_models:
            print(f"sweep: not in `cbench-server --list`, recorded as skipped: {', '.join(p.skipped_models)}",
                  flush=True)
        r = runner.Runner(self.host, p.settings, p.server_bin, self.wrk_bin, self.writer.run_dir, REPO_ROOT,
                          p.available, client_host=self.client_host, client_hosts=self.client_hosts,
                          wrk_bins=self.wrk_bins or None)
        try:
            self.resolve_common_rates(r)
            self.run_slots(r, p.slots, "")
            self.run_extra_blocks(r)
            if p.profile:  # after every measured block, so it disturbs none of them
                profiling.record_all(r, p.points, log=print)
        except SweepInterrupted as exc:
            return self.on_interrupt(exc.signum)
        except ResultsUnwritable as exc:
            return self.on_unwritable(exc.exc)
        except HostLost as exc:
            return self.on_host_lost(exc)
        return self.finish()

    def kill_all(self) -> list:
        return [pid for h in self.unique_hosts() for pid in h.kill_all()]

    def on_interrupt(self, signum: int) -> int:
        killed = self.kill_all()
        self.writer.update_meta(interrupted={"signal": signal.Signals(signum).name, "utc": resultio.utc_now()})
        print(f"\nsweep: interrupted by {signal.Signals(signum).name}; every process the sweep started "
              f"is stopped ({len(killed)} needed killing here); {len(self.ledger)} runs recorded "
              f"in {self.writer.run_dir}\nsweep: continue with: scripts/cbench sweep --resume "
              f"{self.writer.run_dir}", file=sys.stderr, flush=True)
        return 128 + signum

    def on_host_lost(self, exc: HostLost) -> int:
        killed = self.kill_all()
        self.writer.update_meta(interrupted={"host_lost": exc.host_name, "reason": exc.why,
                                             "utc": resultio.utc_now()})
        print(f"\nsweep: host {exc.host_name} lost mid-sweep: {exc.why}; stopped. Every process the sweep "
              f"started is stopped ({len(killed)} needed killing here); {len(self.ledger)} runs are recorded "
              f"in {self.writer.run_dir} (the point in progress is not).\nsweep: once the host answers again, "
              f"continue with: scripts/cbench sweep --resume {self.writer.run_dir}", file=sys.stderr, flush=True)
        return 3

    def on_unwritable(self, err: OSError) -> int:
        killed = self.kill_all()
        print(f"\nsweep: cannot write the results in {self.writer.run_dir}: {err.strerror or err}"
              f"{f' ({err.filename})' if err.filename else ''}; stopped, since nothing measured from here on "
              f"could be recorded. Every process the sweep started is stopped ({len(killed)} needed killing "
              f"here); {len(self.ledger)} runs are recorded.\nsweep: once the disk is writable again, "
              f"continue with: scripts/cbench sweep --resume {self.writer.run_dir}", file=sys.stderr, flush=True)
        return 2

    def run(self) -> int:
        """Every step: tools, summary, lock, run directory, blocks, end. Raises PlanError when
        the sweep cannot start (nothing has run)."""
        self.check_tools()
        print(self.plan.summary(), flush=True)
        lock = self.take_lock()
        try:
            return self.execute()
        finally:
            lock.close()
