"""`cbench calibrate`: per metric, how often the judging rule sees a difference that is not there
(A/A) and how often it sees one that is (A/B, a known extra cost per request), over --trials trials,
and the smallest effect it detects with 80% power.

Entries (format/calibration.py: "<metric>@<load>"), each judged exactly as `cbench regress` judges
a model: B/A per metric with its 95% interval paired over --blocks blocks (a trial is one design's
worth of blocks; analysis/sensitivity.py says what counts as a false positive and a detection).

- instructions_per_req@callgrind: epoll-reactor t1 GET / (--instr-model), each value one fresh
  server under callgrind counted over 1,000 requests after 1,000 (run/costs.py, what the gate
  measures). The effect: --handicap-loops N, N iterations of the /spin loop per request, a fixed
  instruction count; N = effect x A's instructions per request / instructions per loop, both
  measured first (A, and A with 1,000 loops).
- req_per_s@saturated and server_cpu_us_per_req@saturated: pull-loop t1 GET /spin?us=10 at
  wrk -t4 -c64 (--model, --path, --wrk-threads, --connections: the gate's sweep point), one
  `cbench sweep` per trial with rows A, A2 and one B per effect, order blocked. The effect:
  --handicap-ns = effect x A's server CPU per request at that point, measured first.
- server_cpu_us_per_req@fixed-rate: the same row under cbench-load, open loop at one offered rate
  (--rate, default RATE_FRACTION of A's saturated req/s measured first: below capacity, so that
  neither the handicapped row nor the generator is saturated), --handicap-ns from A's CPU per
  request at that rate. A scenario's own fixed-rate load plugs in by giving its rate (--rate).

Which design this calibrates, and why it stands for the scenarios': each scenario's own default
design (2 s windows, up to max_repetitions blocks, every row) at 40 trials would take hours per
scenario. This one is the gate's design (3 blocks, 1 s windows; callgrind's 1,000-request window)
on one row per metric, so its rates are the gate's sensitivity exactly, and a lower bound on a
scenario's: more blocks and longer windows only narrow the blocks' part of the paired interval (the
planned 80%-power effect scales with the block spread / sqrt(blocks)); the part a trial's blocks
share (sensitivity.widened) they do not narrow.

Time: --dry-run prints the estimate and runs nothing. The default (instructions and fixed-rate CPU,
40 trials) is estimated by estimate_s below; the saturated entries add about a minute per 3
trials. The sweeps take the machine-wide benchmark lock themselves; callgrind stages take it too.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

from ..analysis import findings, gate, runload, sensitivity, stats
from ..format import calibration, scenario
from ..format import costs as costs_format
from ..format.paths import REPO_ROOT
from ..plan import estimate
from ..render import calibration_table
from ..run import benchlock, costs
from .sweep import add_cpu_arguments, choose_cpus, generated_cpus
from .common import ALTERNATE_MS, CONNECTIONS, DURATION_S, REPETITIONS, THREADS, WARMUP_S, WRK_THREADS, bounded_int

DEFAULT_OUT = os.path.join(REPO_ROOT, "results", "calibration")
CBENCH = os.path.join(REPO_ROOT, "scripts", "cbench")
INSTR, SAT_RPS, SAT_CPU, FIXED_CPU = (calibration.entry_key(*k) for k in (
    (gate.INSTRUCTIONS, gate.CALLGRIND), ("req_per_s", gate.SATURATED), ("server_cpu_us_per_req", gate.SATURATED),
    ("server_cpu_us_per_req", gate.FIXED_RATE)))
ENTRIES = (INSTR, SAT_RPS, SAT_CPU, FIXED_CPU)
# The default: the deterministic metric the gate judges on, and the CPU metric that decides where
# req/s cannot; the saturated pair doubles the time (--entries all).
DEFAULT_ENTRIES = (INSTR, FIXED_CPU)
# Effects tried (%): +1% matters for instructions (the done-when of a deterministic metric); a 1 s
# wall-clock window on a shared two-CPU machine does not resolve it, so wall-clock entries try
# +5% and +10% and state the rest through the planned 80%-power effect.
INSTR_EFFECTS_PCT = (1, 5, 10)
WALL_EFFECTS_PCT = (5, 10)
# The fixed rate as a fraction of A's saturated req/s: half, far enough below capacity that +10%
# CPU per request leaves the server unsaturated.
RATE_FRACTION = 0.5
PROBE_LOOPS = 1000          # the handicap that measures instructions per loop
# Estimates: a callgrind value takes ~1.4 s of one CPU (valgrind start-up and 1,000 warm-up
# requests uninstrumented, 1,000 counted, two callgrind_control calls; 1.37 s measured one at a
# time on this machine while other jobs ran), two run at once; a sweep's own start-up (plan, host
# checks, lock) ~3 s.
INSTR_VALUE_S = 1.5
SWEEP_START_S = 3.0
DEFAULT_TRIALS, DEFAULT_BLOCKS, DEFAULT_DURATION_S, DEFAULT_WARMUP_S = 40, 3, 1, 0.2


DESIGN_WHY = ("the regression gate's design (blocks paired by block, 1 s windows after 0.2 s of warm-up,"
              " callgrind's 1,000-request window) on one row per metric, not each scenario's own default"
              " design, which at 40 trials would take hours per scenario; a scenario's longer windows and"
              " more blocks only narrow the paired interval, so these rates bound its sensitivity from below")


def design_why(blocks: int, duration_s: float, warmup_s: float) -> str:
    """What the calibrated design is: the gate's (DESIGN_WHY) with the defaults, else the design
    the command line asked for, named against the gate's."""
    if (blocks, duration_s, warmup_s) == (DEFAULT_BLOCKS, DEFAULT_DURATION_S, DEFAULT_WARMUP_S):
        return DESIGN_WHY
    return (f"{blocks} blocks paired by block, {duration_s:g} s windows after {warmup_s:g} s of warm-up for the"
            f" wall-clock metrics (callgrind's 1,000-request window for instructions), on one row per metric:"
            f" not the regression gate's design ({DEFAULT_BLOCKS} blocks of {DEFAULT_DURATION_S:g} s windows),"
            f" so these rates are this design's sensitivity, not the gate's")


def add_arguments(p) -> None:
    p.add_argument("--entries", default=",".join(DEFAULT_ENTRIES), metavar="LIST",
                   help=f"comma-separated metric@load entries, or all: {', '.join(ENTRIES)}"
                        " (default %(default)s)")
    p.add_argument("--trials", type=bounded_int(1, 1000), default=DEFAULT_TRIALS, help="trials per entry (default %(default)s)")
    p.add_argument("--blocks", type=REPETITIONS, default=DEFAULT_BLOCKS, help="paired blocks per trial (default %(default)s: the gate's)")
    p.add_argument("--effects", metavar="PCTS",
                   help="comma-separated effects in %% for every entry (default: 1,5,10 for instructions, 5,10 wall-clock)")
    p.add_argument("--instr-model", default="epoll-reactor", help="the instructions row's model (default epoll-reactor)")
    p.add_argument("--instr-path", default="/", help="the instructions row's request path (default /)")
    p.add_argument("--model", default="pull-loop", help="the wall-clock row's model (default: pull-loop)")
    p.add_argument("--threads", type=THREADS, default=1, help="the rows' server --threads (default 1)")
    p.add_argument("--path", default="/spin?us=10", help="the wall-clock row's path (default: /spin?us=10)")
    p.add_argument("--wrk-threads", type=WRK_THREADS, default=4, help="wrk -t of the saturated load (default 4)")
    p.add_argument("--connections", type=CONNECTIONS, default=64, help="connections of both loads (default 64)")
    p.add_argument("--rate", type=float, metavar="REQ_S",
                   help=f"the fixed offered rate (default {RATE_FRACTION:g} x A's saturated req/s, measured first)")
    p.add_argument("--alternate-ms", type=ALTERNATE_MS, default=500, metavar="MS",
                   help="fixed-rate rows take turns of MS ms in one window, as the scenarios' fixed-rate loads (0: one after the other; default %(default)s)")
    p.add_argument("--duration", type=DURATION_S, default=DEFAULT_DURATION_S, help="seconds per wall-clock repetition (default %(default)s)")
    p.add_argument("--warmup", type=WARMUP_S, default=DEFAULT_WARMUP_S, help="warm-up seconds per repetition (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the design and its time estimate; run nothing")
    p.add_argument("--rejudge", metavar="DIR",
                   help="measure nothing: judge the wall-clock trials recorded in calibration directory DIR again"
                        " with this version's rules and rewrite its calibration.json (instructions entries,"
                        " whose callgrind work files are not kept, are left as they are)")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help="parent of the calibration directory (default: results/calibration)")
    p.add_argument("--server-bin", default=os.path.join(REPO_ROOT, "build", "cbench-server"),
                   help="the cbench-server binary (default: build/cbench-server)")
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock, held while callgrind runs (default: {benchlock.DEFAULT_PATH})")
    add_cpu_arguments(p)


class CalibrationFailed(Exception):
    """A stage could not be measured; the message says which and why."""


def parse_entries(text: str) -> list[str]:
    """The entries asked for, in ENTRIES order; ValueError names an unknown one."""
    if text.strip() == "all":
        return list(ENTRIES)
    asked = [e.strip() for e in text.split(",") if e.strip()]
    bad = [e for e in asked if e not in ENTRIES]
    if bad or not asked:
        raise ValueError(f"unknown entry {', '.join(bad) or '(none)'}; known: {', '.join(ENTRIES)}")
    return [e for e in ENTRIES if e in asked]


def effects_for(entry: str, override: list[int] | None) -> list[int]:
    if override:
        return override
    return list(INSTR_EFFECTS_PCT if entry == INSTR else WALL_EFFECTS_PCT)


def row_keys(effects: list[int]) -> list[str]:
    return ["A", "A2"] + [f"B{pct}" for pct in effects]


def estimate_s(entries: list[str], trials: int, blocks: int, effects: dict, duration_s: int, warmup_s: float) -> dict:
    """{entry or stage: seconds}: the time each part is expected to take (sweep points at
    plan.estimate's per-point cost, callgrind values at INSTR_VALUE_S two at a time)."""
    point_s = duration_s + warmup_s + estimate.OVERHEAD_S
    out = {}
    if INSTR in entries:
        out["stage 1 (callgrind)"] = 2 * INSTR_VALUE_S
        out[INSTR] = trials * blocks * len(row_keys(effects[INSTR])) * INSTR_VALUE_S / costs.PARALLEL_RUNS
    wall = [e for e in entries if e != INSTR]
    if wall:
        out["stage 1 (sweeps)"] = 2 * (SWEEP_START_S + 3 * point_s)
    sat = [e for e in (SAT_RPS, SAT_CPU) if e in entries]
    if sat:  # one sweep per trial serves both saturated entries; their effects are one list
        n_rows = len(row_keys(sorted({p for e in sat for p in effects[e]})))
        out["saturated"] = trials * (SWEEP_START_S + n_rows * blocks * point_s)
    if FIXED_CPU in entries:
        out[FIXED_CPU] = trials * (SWEEP_START_S + len(row_keys(effects[FIXED_CPU])) * blocks * point_s)
    return out


def default_estimate_s() -> float:
    """The estimate of `cbench calibrate` with every default (what --dry-run prints)."""
    entries = list(DEFAULT_ENTRIES)
    return sum(estimate_s(entries, DEFAULT_TRIALS, DEFAULT_BLOCKS, {e: effects_for(e, None) for e in entries},
                          DEFAULT_DURATION_S, DEFAULT_WARMUP_S).values())


# -- wall-clock sweeps -------------------------------------------------------------------------
def saturated_load(args) -> dict:
    return {"name": "saturated", "path": args.path,
            "explicit": [{"wrk_threads": args.wrk_threads, "connections": args.connections}]}


def fixed_rate_load(args, rate: float) -> dict:
    alt = {"alternate_ms": args.alternate_ms} if args.alternate_ms else {}  # the rows take turns (run/alternating.py)
    return {"name": "fixed-rate", "path": args.path, "generator": "cbench-load", "wrk_threads": 1,
            "connections": args.connections, "rate": [round(rate, 1)], **alt}


def scenario_toml(name: str, args, rows: list[tuple[str, int | None]], repetitions: int, seed: int,
                  load: dict | None = None) -> str:
    """A scenario with one load (default: the saturated one) and one row per (key, handicap ns;
    None: no --handicap-ns at all). The sweep refuses two rows with the same command, so A/A's second
    row says --handicap-ns 0. order blocked: every block runs every row once in adjacent slots, as
    the gate's sweep does. Written by the scenario format's writer and read back by its parser."""
    out_rows = []
    for key, ns in rows:
        row = {"key": key, "model": args.model, "threads": args.threads}
        if ns is not None:
            row["extra_args"] = ["--handicap-ns", str(ns)]
        out_rows.append(row)
    doc = {"name": name, "description": "generated by cbench calibrate", "duration_s": args.duration,
           "warmup_s": args.warmup, "repetitions": repetitions, **generated_cpus(args),
           "order": "blocked", "seed": seed, "loads": [load or saturated_load(args)], "rows": out_rows}
    return scenario.dump_checked(doc, f"{name}.toml")[0]


def run_sweep(args, cal_dir: str, name: str, toml: str) -> runload.Run:
    """Writes the scenario into cal_dir and runs `cbench sweep` on it; returns the run."""
    path = os.path.join(cal_dir, f"{name}.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(toml)
    out = os.path.join(cal_dir, calibration.RUNS_DIR)
    os.makedirs(out, exist_ok=True)
    before = set(os.listdir(out))
    cmd = [sys.executable, CBENCH, "sweep", path, "--out", out, "--server-bin", args.server_bin]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(cal_dir, f"{name}.log"), "w", encoding="utf-8") as f:
        f.write(proc.stdout)
    new = sorted(set(os.listdir(out)) - before)
    if proc.returncode != 0 or not new:
        raise CalibrationFailed(f"cbench sweep {path} failed (exit {proc.returncode}); see {name}.log:\n"
                                + proc.stdout[-2000:])
    return runload.load_run(os.path.join(out, new[-1]))


def fmt_ci(ci: stats.RatioCI | None) -> str:
    """An interval as the trial lines print it; "not judged" where the gate would not judge."""
    return findings.fmt_ci(ci) if ci is not None else "not judged"


def only_cell(run: runload.Run, key: str) -> runload.Cell | None:
    return next((c for (k, _lid), c in run.cells.items() if k == key), None)


def wall_slowdown(run: runload.Run, key: str, metric: str) -> stats.RatioCI | None:
    """B/A slowdown of row KEY against A on a sweep metric, paired by block; None where the
    gate would not judge it (req/s at a point that was not server-bound, an error-bound point)."""
    a, b = only_cell(run, "A"), only_cell(run, key)
    if a is None or b is None:
        return None
    if gate.refusals(a, b, metric):  # the gate's own rule for which points may judge
        return None
    return gate.slowdown(a, b, metric)


def stage1_wall(args, cal_dir: str, entries: list[str]) -> dict:
    """A's saturated req/s and CPU per request, and (fixed-rate entry) its CPU per request at the rate."""
    out = {}
    r = run_sweep(args, cal_dir, "stage1-saturated",
                  scenario_toml("calibrate-stage1-saturated", args, [("A", None)], 3, 1))
    c = only_cell(r, "A")
    cpu, rps = (c.values("derived.server_cpu_us_per_req"), c.rps()) if c else ([], [])
    if not cpu or not rps:
        raise CalibrationFailed("stage 1 measured no CPU per request at the saturated point")
    out["saturated"] = {"cpu_us_per_req": stats.median(cpu), "req_per_s": stats.median(rps),
                        "verdicts": c.verdicts()}
    print(f"stage 1: {args.model} t{args.threads} GET {args.path} -t{args.wrk_threads} -c{args.connections}:"
          f" {out['saturated']['req_per_s']:.0f} req/s, server CPU {out['saturated']['cpu_us_per_req']:.2f}"
          f" us/request (median of {len(cpu)}; verdicts {', '.join(c.verdicts())})", flush=True)
    if FIXED_CPU in entries:
        rate = args.rate or RATE_FRACTION * out["saturated"]["req_per_s"]
        r = run_sweep(args, cal_dir, "stage1-fixed-rate", scenario_toml(
            "calibrate-stage1-fixed-rate", args, [("A", None)], 3, 2, fixed_rate_load(args, rate)))
        c = only_cell(r, "A")
        cpu = c.values("derived.server_cpu_us_per_req") if c else []
        if not cpu:
            raise CalibrationFailed(f"stage 1 measured no CPU per request at {rate:.0f} req/s")
        out["fixed-rate"] = {"rate_req_s": round(rate, 1), "cpu_us_per_req": stats.median(cpu)}
        print(f"stage 1: the same row open loop at {rate:.0f} req/s (cbench-load, -c{args.connections}):"
              f" server CPU {stats.median(cpu):.2f} us/request", flush=True)
    return out


def wall_trials(args, cal_dir: str, load_name: str, load: dict, cpu_us: float, effects: list[int],
                metrics: list[str]) -> dict:
    """{metric: (A/A intervals, {effect: A/B intervals})} of --trials sweeps at one load."""
    handicaps = {pct: max(1, int(round(cpu_us * 1000 * pct / 100))) for pct in effects}
    print(f"{load_name}: handicaps " + ", ".join(f"+{p}% = {ns} ns" for p, ns in handicaps.items()), flush=True)
    rows = [("A", None), ("A2", 0)] + [(f"B{p}", ns) for p, ns in handicaps.items()]
    got = {m: ([], {p: [] for p in effects}) for m in metrics}
    for t in range(args.trials):
        r = run_sweep(args, cal_dir, f"{load_name}-trial{t}", scenario_toml(
            trial_sweep_name(load_name, t), args, rows, args.blocks, 1000 + t, load))
        line = []
        for m in metrics:
            aa = wall_slowdown(r, "A2", m)
            got[m][0].append(aa)
            for p in effects:
                got[m][1][p].append(wall_slowdown(r, f"B{p}", m))
            line.append(f"{gate.METRIC_NAMES[m]} A2/A {fmt_ci(aa)}, "
                        + ", ".join(f"B{p}/A {fmt_ci(got[m][1][p][-1])}" for p in effects))
        print(f"{load_name} trial {t + 1}/{args.trials}: " + "; ".join(line), flush=True)
    return {"handicaps_ns": handicaps, "trials": got}


# -- instructions ------------------------------------------------------------------------------
def instr_argv(args, loops: int | None) -> list[str]:
    extra = [] if loops is None else ["--handicap-loops", str(loops)]
    return costs_format.server_argv(args.server_bin, {"model": args.instr_model, "threads": args.threads,
                                                      "extra_args": extra})


def instr_values(args, jobs: list[tuple[str, list[str]]], work: str) -> dict[str, float]:
    lock = benchlock.acquire(args.lock_file, None, "calibrate", "cbench calibrate (callgrind)")
    try:
        return costs.instructions_many(jobs, work)
    except costs.CostsFailed as exc:
        raise CalibrationFailed(f"instructions per request: {exc}") from None
    finally:
        lock.close()


def instr_trials(args, cal_dir: str, effects: list[int]) -> dict:
    """Stage 1 (A's instructions per request and the instructions of one loop), then --trials
    trials of A, A2 and one B per effect in --blocks blocks: {"stage1", "handicap_loops", "trials"}."""
    work = os.path.join(cal_dir, "instructions")
    probe = instr_values(args, [("stage1-A", instr_argv(args, None)),
                                ("stage1-probe", instr_argv(args, PROBE_LOOPS))], work)
    base = probe["stage1-A"]
    per_loop = (probe["stage1-probe"] - base) / PROBE_LOOPS
    if per_loop <= 0:
        raise CalibrationFailed(f"--handicap-loops {PROBE_LOOPS} added no instructions ({base:.1f} and"
                                f" {probe['stage1-probe']:.1f} per request): is the server built with it?")
    loops = {p: max(1, math.ceil(base * p / 100 / per_loop)) for p in effects}
    print(f"stage 1: {args.instr_model} t{args.threads} GET {args.instr_path} under callgrind: {base:.1f}"
          f" instructions/request; one handicap loop = {per_loop:.2f} instructions; handicaps "
          + ", ".join(f"+{p}% = {n} loops" for p, n in loops.items()), flush=True)
    rows = [("A", None), ("A2", 0)] + [(f"B{p}", n) for p, n in loops.items()]
    aa, ab = [], {p: [] for p in effects}
    for t in range(args.trials):
        jobs = [(f"t{t}-b{b}-{key}", instr_argv(args, n)) for b in range(args.blocks) for key, n in rows]
        v = instr_values(args, jobs, work)
        side = {key: {b: v[f"t{t}-b{b}-{key}"] for b in range(args.blocks)} for key, _n in rows}
        aa.append(gate.paired_slowdown(side["A"], side["A2"]))
        for p in effects:
            ab[p].append(gate.paired_slowdown(side["A"], side[f"B{p}"]))
        print(f"instructions trial {t + 1}/{args.trials}: A2/A {fmt_ci(aa[-1])}, "
              + ", ".join(f"B{p}/A {fmt_ci(ab[p][-1])}" for p in effects), flush=True)
        for name in os.listdir(work):  # the values are kept in the trial's line; the dumps are large
            if name.startswith(f"t{t}-"):
                os.remove(os.path.join(work, name))
    return {"stage1": {"instructions_per_req": base, "instructions_per_loop": per_loop},
            "handicap_loops": loops, "trials": {gate.INSTRUCTIONS: (aa, ab)}}


# -- the command -------------------------------------------------------------------------------
def trial_sweep_name(load_name: str, trial: int | str) -> str:
    """A trial sweep's scenario name; `cbench sweep` names its run directory "<stamp>-<name>"."""
    return f"calibrate-{load_name}-trial{trial}"


def trial_number(run_dir: str, load_name: str) -> int | None:
    """The trial index of a trial sweep's run directory (trial_sweep_name after the stamp), else None."""
    _stamp, _, name = os.path.basename(run_dir.rstrip(os.sep)).partition("-")
    prefix = trial_sweep_name(load_name, "")
    rest = name[len(prefix):] if name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def rejudge(cal_dir: str) -> int:
    """`--rejudge DIR`: each wall-clock entry's A/A and A/B intervals recomputed from the trial runs
    under DIR/runs and summarised again (the same judgement as a calibration's own, so the stored
    rates are reproduced unless a rule changed, which the output says); calibration.json rewritten."""
    try:
        cal = calibration.read(cal_dir)
    except calibration.CalibrationError as exc:
        print(f"cbench calibrate: --rejudge: {exc}", file=sys.stderr)
        return 2
    runs_dir = os.path.join(cal_dir, calibration.RUNS_DIR)
    try:  # no runs directory: each entry then says it has no trial runs
        found = [os.path.join(runs_dir, d) for d in sorted(os.listdir(runs_dir))] if os.path.isdir(runs_dir) else []
    except OSError as exc:  # there but unreadable
        print(f"cbench calibrate: --rejudge: {exc}", file=sys.stderr)
        return 2
    if cal.get("version") != calibration.VERSION:
        print(f"cbench calibrate: --rejudge: {cal_dir}: only version {calibration.VERSION} calibrations"
              " record their trials per entry", file=sys.stderr)
        return 2
    for key, entry in cal["metrics"].items():
        metric, load_name = calibration.split_key(key)
        if key == INSTR:
            continue
        trials = sorted((n, d) for d in found if (n := trial_number(d, load_name)) is not None)
        if not trials:
            print(f"cbench calibrate: --rejudge: {key}: no trial runs under {runs_dir}", file=sys.stderr)
            return 1
        effects = sorted(int(p) for p in entry.get("detection", {}))
        aa, ab = [], {p: [] for p in effects}
        try:
            for _, d in trials:
                r = runload.load_run(d)
                aa.append(wall_slowdown(r, "A2", metric))
                for p in effects:
                    ab[p].append(wall_slowdown(r, f"B{p}", metric))
        except runload.RunError as exc:
            print(f"cbench calibrate: --rejudge: {exc}", file=sys.stderr)
            return 1
        new = sensitivity.summarize(aa, ab, entry.get("blocks") or cal.get("design", {}).get("blocks"))
        changed = [k for k in ("aa_false_positive", "detection", "smallest_detected_pct", "widened")
                   if k in entry and json.dumps(new[k], sort_keys=True) != json.dumps(entry.get(k), sort_keys=True)]
        print(f"{key}: {len(trials)} trials judged again; "
              + (f"changed by this version's rules: {', '.join(changed)}" if changed else "rates as recorded"),
              flush=True)
        cal["metrics"][key] = new
    calibration.write(cal_dir, cal)
    print("\n".join(calibration_table.lines(cal["metrics"])))
    return 0


def run(args) -> int:
    if args.rejudge:
        return rejudge(args.rejudge)
    try:
        entries = parse_entries(args.entries)
        override = [int(x) for x in args.effects.split(",")] if args.effects else None
        if override is not None and (not override or any(not 1 <= p <= 1000 for p in override)):
            raise ValueError("effects must be whole percentages in 1..1000")
    except ValueError as exc:
        print(f"cbench calibrate: --entries/--effects: {exc}", file=sys.stderr)
        return 2
    effects = {e: effects_for(e, override) for e in entries}
    est = estimate_s(entries, args.trials, args.blocks, effects, args.duration, args.warmup)
    total = sum(est.values())
    print(f"calibrate: {', '.join(entries)}; {args.trials} trials of {args.blocks} paired blocks;"
          f" estimated {estimate.fmt_duration(total)} ("
          + ", ".join(f"{k} {estimate.fmt_duration(v)}" for k, v in est.items()) + ")", flush=True)
    why = design_why(args.blocks, args.duration, args.warmup)
    print(f"calibrate: design: {why}", flush=True)
    if args.dry_run:
        return 0
    bad = choose_cpus(args, "calibrate")
    if bad:
        print(f"cbench calibrate: {bad}", file=sys.stderr)
        return 2
    if not os.access(args.server_bin, os.X_OK):
        print(f"cbench calibrate: server not found: {args.server_bin}", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    cal_dir = os.path.join(os.path.abspath(args.out), f"{stamp}-calibrate")
    os.makedirs(cal_dir, exist_ok=True)
    t0 = time.monotonic()
    design = {"trials": args.trials, "blocks": args.blocks, "estimate_s": round(total), "why": why}
    metrics = {}
    try:
        if INSTR in entries:
            res = instr_trials(args, cal_dir, effects[INSTR])
            aa, ab = res["trials"][gate.INSTRUCTIONS]
            metrics[INSTR] = sensitivity.summarize(aa, ab, args.blocks)
            design[INSTR] = {"model": args.instr_model, "threads": args.threads, "path": args.instr_path,
                             "requests": {"warm": costs.GATE_WARM_REQUESTS, "window": costs.GATE_WINDOW_REQUESTS},
                             **res["stage1"], "handicap_loops": {str(p): n for p, n in res["handicap_loops"].items()}}
        wall = [e for e in entries if e != INSTR]
        if wall:
            s1 = stage1_wall(args, cal_dir, wall)
            row = {"model": args.model, "threads": args.threads, "path": args.path,
                   "duration_s": args.duration, "warmup_s": args.warmup}
            sat = [e for e in (SAT_RPS, SAT_CPU) if e in wall]
            if sat:
                eff = sorted({p for e in sat for p in effects[e]})
                res = wall_trials(args, cal_dir, "saturated", saturated_load(args), s1["saturated"]["cpu_us_per_req"],
                                  eff, [calibration.split_key(e)[0] for e in sat])
                for e in sat:
                    aa, ab = res["trials"][calibration.split_key(e)[0]]
                    metrics[e] = sensitivity.summarize(aa, ab, args.blocks)
                design["saturated"] = {**row, "load": saturated_load(args)["explicit"][0], **s1["saturated"],
                                       "handicaps_ns": {str(p): n for p, n in res["handicaps_ns"].items()}}
            if FIXED_CPU in wall:
                fr = s1["fixed-rate"]
                res = wall_trials(args, cal_dir, "fixed-rate", fixed_rate_load(args, fr["rate_req_s"]),
                                  fr["cpu_us_per_req"], effects[FIXED_CPU], ["server_cpu_us_per_req"])
                aa, ab = res["trials"]["server_cpu_us_per_req"]
                metrics[FIXED_CPU] = sensitivity.summarize(aa, ab, args.blocks)
                design["fixed-rate"] = {**row, "generator": "cbench-load", "connections": args.connections, **fr,
                                        "alternate_ms": args.alternate_ms or None,
                                        "handicaps_ns": {str(p): n for p, n in res["handicaps_ns"].items()}}
    except (CalibrationFailed, OSError, runload.RunError) as exc:
        print(f"cbench calibrate: {exc}", file=sys.stderr)
        return 1
    summary = {"version": calibration.VERSION, "design": design, "metrics": metrics,
               "elapsed_s": round(time.monotonic() - t0, 1)}
    calibration.write(cal_dir, summary)
    print("\n".join(calibration_table.lines(metrics)))
    print(f"\n({summary['elapsed_s']:.0f} s, estimated {total:.0f} s; results in {cal_dir})")
    return 0
