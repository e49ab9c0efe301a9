"""Profiles of a sweep's points: `cbench sweep --profile` records, `cbench profile RUN` prints.

Recording (the sweep, after its measured blocks): for every wrk point one extra repetition that
is never measured: the server started as for a measured repetition, primed, then over one wrk
run of the scenario's duration `perf record -e cpu-clock --call-graph dwarf -C SERVER_CPUS`
(cpu-clock: hardware counters are not available on this machine). Its records go to
profile/index.jsonl and never to points.jsonl, so no statistic, table or finding sees them.
perf.data is reduced at once to folded stacks of the server's own samples
(profile/<tag>.folded.gz: "comm;root;...;leaf N" per distinct stack, kernel frames suffixed
"_[k]"; `zcat` gives what flame-graph tools read) and deleted: a few KiB per point instead of
megabytes.

Why DWARF unwinding and not frame pointers: DWARF is needed for the profile repetition only, so
the measured binary stays the one every table measures (no -fno-omit-frame-pointer in any
model, nothing to re-measure), and it unwinds through Debian's libev, libuv, Boost.Context and
glibc, which are built without frame pointers, where a frame-pointer walk would lose the caller
of exactly the shared helpers (memcpy, the mutex wrappers) that need one to be classified. Its
cost (perf copies DWARF_STACK_BYTES of stack per sample; perf script unwinds afterwards) falls
on the unmeasured repetition and on the time after it.

Printing (`cbench profile RUN`): per point, the share of the server's samples in each group of
cpubreakdown.GROUPS (codec and handler, loop and queue, kernel TCP, epoll or libev, futex and
scheduler, ...) and the top leaf symbols of each group. The classifier is cpubreakdown's, the
same one `cbench breakdown` uses. One job each: record (run things) or print (read files only).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import subprocess
import time

from . import cpubreakdown
from . import runner as runnermod
from .failure import PointFailed
from .server import PRIMER_REQUESTS, PRIMER_TIMEOUT_S
from ..format import resultio
from ..format import runlogs

PROFILE_DIR = "profile"
INDEX_NAME = "index.jsonl"
SAMPLE_HZ = 999            # ~2000 samples in a 2 s run: enough for shares of a few percent; off 1000 Hz ticks
DWARF_STACK_BYTES = 8192   # stack copied per sample: the server's call depth (loop, pump, codec) fits
PERF_SETTLE_S = 0.3        # perf opens its per-CPU buffers before wrk starts
PERF_STOP_TIMEOUT_S = 30.0
PERF_SCRIPT_TIMEOUT_S = 600.0


def perf_available() -> tuple[bool, str]:
    """Whether `perf record -e cpu-clock -C 0` works here, and why not."""
    if os.environ.get("CBENCH_NO_PERF") == "1":
        return False, "CBENCH_NO_PERF=1"
    try:
        r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-C", "0", "-o", "/dev/null", "--", "true"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"perf cannot run: {exc}"
    if r.returncode != 0:
        return False, f"perf record refused (perf_event_paranoid, or not root): {r.stderr.strip()[-200:]}"
    return True, ""


# -- perf script -> folded stacks --------------------------------------------------------------
# `perf script -F comm,pid,tid,ip,sym,dso` prints per sample a header "comm PID/TID" (the comm
# may hold spaces), then one frame per line, leaf first: "\t    7f12ab sym (dso)", blank line between.
_HEADER = re.compile(r"^(?P<comm>\S.*?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s*$")
_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(?P<sym>.*?)\s+\((?P<dso>[^()]*)\)\s*$")


def _resolve_inlined(frames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """perf prints a frame inlined into its caller with the DSO "(inlined)": it belongs to the
    DSO of the next real frame out (a kernel inline frame must classify as kernel)."""
    out, dso = [], None
    for d, s in reversed(frames):
        if d == "inlined":
            d = dso or "inlined"
        else:
            dso = d
        out.append((d, s))
    return list(reversed(out))


def parse_script(text: str, pids: set[int] | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """(comm, frames leaf first as (dso, symbol)) per sample; only processes in `pids` if given."""
    return [(comm, _resolve_inlined(frames)) for comm, frames in _parse_script(text, pids)]


def _parse_script(text: str, pids: set[int] | None):
    out, cur = [], None
    for line in text.splitlines():
        if not line.strip():
            if cur is not None:
                out.append(cur)
            cur = None
            continue
        if not line[0].isspace():
            if cur is not None:
                out.append(cur)
            m = _HEADER.match(line)
            cur = (m.group("comm"), []) if m and (pids is None or int(m.group("pid")) in pids) else None
            continue
        if cur is not None:
            m = _FRAME.match(line)
            if m:
                sym = m.group("sym")
                sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
                cur[1].append((m.group("dso").rsplit("/", 1)[-1] if not m.group("dso").startswith("[") else m.group("dso"), sym))
    if cur is not None:
        out.append(cur)
    return out


def _frame_name(dso: str, sym: str) -> str:
    name = sym if sym and sym != "[unknown]" else f"[{dso}]"
    name = name.replace(";", ",")
    return name + "_[k]" if dso == cpubreakdown.KERNEL_DSO else name


def fold(samples) -> dict[str, int]:
    """Folded stacks ("comm;root;...;leaf" -> samples), as flame-graph tools read them."""
    out: dict[str, int] = {}
    for comm, frames in samples:
        key = ";".join([comm.replace(";", ",")] + [_frame_name(d, s) for d, s in reversed(frames)])
        out[key] = out.get(key, 0) + 1
    return out


def unfold(line: str) -> tuple[str, list[tuple[str, str]], int] | None:
    """One folded line -> (comm, frames leaf first as (dso, symbol), count); None if malformed."""
    stack, _, n = line.rstrip("\n").rpartition(" ")
    if not stack or not n.isdigit():
        return None
    parts = stack.split(";")
    frames = [(cpubreakdown.KERNEL_DSO, p[:-4]) if p.endswith("_[k]") else ("user", p) for p in parts[1:]]
    return parts[0], list(reversed(frames)), int(n)


def summarize(folded_lines, top: int = 5) -> dict:
    """Samples per group, and the top leaf symbols of each group, of one point's folded stacks."""
    groups: dict[str, int] = {g: 0 for g, _ in cpubreakdown.GROUPS}
    syms: dict[str, dict[str, int]] = {g: {} for g, _ in cpubreakdown.GROUPS}
    total = 0
    for line in folded_lines:
        u = unfold(line)
        if u is None:
            continue
        _comm, frames, n = u
        g = cpubreakdown.GROUP_OF[cpubreakdown.classify_stack(frames)]
        groups[g] += n
        leaf = frames[0][1] if frames else "[no stack]"
        syms[g][leaf] = syms[g].get(leaf, 0) + n
        total += n
    return {"samples": total, "groups": groups,
            "top": {g: sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:top] for g, d in syms.items()}}


# -- recording (called by the sweep) -------------------------------------------------------------
def _process_tree(pid: int) -> set[int]:
    """pid and its descendants now (a peer's workers), from /proc."""
    seen, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return seen


def profile_point(runner_, point, seq: int, out_dir: str) -> dict:
    """One unmeasured, profiled repetition of one point -> its profile/index.jsonl record."""
    s = runner_.settings
    tag = f"{seq:04d}-{runnermod.slug(point.row.key + ' ' + point.load.key)}"
    rec = {"point_id": point.id, "row": point.row.to_json(), "load": point.load.to_json(s),
           "started_utc": resultio.utc_now(), "status": "failed"}
    scratch = {"logs": {}, "commands": {}}
    server = perf = None
    data = os.path.join(out_dir, f"{tag}.data")
    try:
        runner_.check_runnable(point)
        server = runner_.server_session.start(point, "profile-" + tag, scratch)
        runner_.server_session.primer(server, point.load.path, PRIMER_REQUESTS, PRIMER_TIMEOUT_S, "primer")
        pids = _process_tree(server.pid)
        argv = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(SAMPLE_HZ),
                "--call-graph", f"dwarf,{DWARF_STACK_BYTES}", "-C", s.server_cpus, "-o", data]
        perf = runner_.host.spawn(argv, cpus=s.client_cpus)
        time.sleep(PERF_SETTLE_S)
        wrk_out = os.path.join(out_dir, f"{tag}-wrk.txt")
        proc, _stdout, _err = runner_.generators.run_one(point, server, s.duration_s, wrk_out)
        pids |= _process_tree(server.pid)
        perf.signal_group(signal.SIGINT)
        if perf.wait(PERF_STOP_TIMEOUT_S) is None:
            raise PointFailed("perf record did not stop")
        perf.stop(0.5)
        perf = None
        # --pid: unwind the server's samples only (-C recorded everything on its CPUs: on a busy
        # machine mostly compilers, whose DWARF unwinding took minutes per point); --no-inline:
        # no addr2line per frame, the other slow part of perf script.
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,ip,sym,dso", "--no-inline",
                                 "--pid", ",".join(str(p) for p in sorted(pids))],
                                capture_output=True, text=True, timeout=PERF_SCRIPT_TIMEOUT_S)
        folded = fold(parse_script(script.stdout, pids))
        path = os.path.join(out_dir, f"{tag}.folded.gz")
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for k, n in sorted(folded.items(), key=lambda kv: -kv[1]):
                f.write(f"{k} {n}\n")
        rec.update(status="ok", folded=os.path.relpath(path, runner_.run_dir), samples=sum(folded.values()),
                   wrk_exit_status=proc.returncode, sample_hz=SAMPLE_HZ,
                   call_graph=f"dwarf,{DWARF_STACK_BYTES}", event="cpu-clock")
    except PointFailed as exc:
        rec["failure"] = exc.reason
        if exc.partial.get("skipped"):
            rec["status"] = "skipped"
    except (OSError, subprocess.TimeoutExpired) as exc:
        rec["failure"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        if perf is not None:
            perf.stop(0.5)
        if server is not None:
            runner_.server_session.stop(server)
        if os.path.exists(data):
            os.unlink(data)  # keep the run directory small: the folded stacks are the record
    rec["ended_utc"] = resultio.utc_now()
    return rec


def record_all(runner_, points, seq0: int = 0, log=print) -> int:
    """The profile repetition of every wrk point (idle points have no load to profile); returns
    how many succeeded. Appends to profile/index.jsonl as it goes."""
    out_dir = os.path.join(runner_.run_dir, PROFILE_DIR)
    os.makedirs(out_dir, exist_ok=True)
    ok = 0
    wrk_points = [p for p in points if not p.load.is_idle]
    with open(os.path.join(out_dir, INDEX_NAME), "a") as idx:
        for i, point in enumerate(wrk_points):
            rec = profile_point(runner_, point, seq0 + i, out_dir)
            idx.write(json.dumps(rec, sort_keys=True) + "\n")
            idx.flush()
            ok += rec["status"] == "ok"
            log(f"[profile {i + 1}/{len(wrk_points)}] {point.row.key} | {point.load.key} | {rec['status']}"
                + (f": {rec.get('samples')} samples" if rec["status"] == "ok" else f": {rec.get('failure')}"),
                flush=True)
    return ok


def estimate_s(points, settings) -> float:
    """The profile pass's time: one repetition per wrk point, plus perf script's unwinding."""
    per = settings.duration_s + PERF_SETTLE_S + 0.4 + 2.0  # 2 s: perf script on ~2000 DWARF samples
    return sum(per for p in points if not p.load.is_idle)


# -- printing (reads files only) -----------------------------------------------------------------
def load_index(run_dir: str) -> list[dict]:
    out = []  # the file, or its member of the run's logs.tar.xz (runlogs)
    for line in runlogs.read_text(run_dir, f"{PROFILE_DIR}/{INDEX_NAME}").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line of an interrupted sweep
    return out


def render(run_dir: str, top: int = 5, load_filter: str | None = None) -> str:
    """The text `cbench profile RUN` prints."""
    lines = [f"Profiles of run {os.path.basename(os.path.abspath(run_dir))} (one unmeasured repetition per point,"
             " perf cpu-clock, DWARF call graphs; % of the server's samples; top leaf symbols per group)", ""]
    for rec in load_index(run_dir):
        row, load = rec.get("row", {}), rec.get("load", {})
        if load_filter and load.get("key") != load_filter:
            continue
        head = f"{row.get('label') or row.get('key')} [{row.get('key')}] | {load.get('key')}"
        if rec.get("status") != "ok":
            lines += [f"{head}: {rec.get('status')}: {rec.get('failure')}", ""]
            continue
        summ = summarize(io.StringIO(gzip.decompress(runlogs.read_bytes(run_dir, rec["folded"])).decode("utf-8")), top)
        n = summ["samples"] or 1
        lines.append(f"{head}: {summ['samples']} samples: " + ", ".join(
            f"{g} {100 * c / n:.0f}%" for g, c in summ["groups"].items() if c))
        for g, c in sorted(summ["groups"].items(), key=lambda kv: -kv[1]):
            if not c:
                continue
            syms = "; ".join(f"{s} {100 * k / n:.1f}%" for s, k in summ["top"][g])
            lines.append(f"  {g:<23} {100 * c / n:5.1f}%  {syms}")
        lines.append("")
    return "\n".join(lines)
