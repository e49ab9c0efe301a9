"""`cbench regress --baseline REV`: an A/B regression gate that runs in one job on one machine.

A stored baseline from another machine cannot be compared with (compare refuses mixed
environments), so the gate measures both sides here and now:
1. Builds the candidate (the working tree's build directory, --server-bin; `cmake --build` is a
   no-op when it is current) and the baseline commit REV beside it: `git archive REV` into
   build-regress/<commit>/src, a Release build of cbench-server only, the binary kept as
   build-regress/<commit>/cbench-server for the next run. When REV is HEAD and the tree is
   clean, the candidate's binary is that build already and is copied instead of rebuilt.
2. Writes a scenario with two rows per model (`baseline <model>` with the row field `binary`,
   `candidate <model>`) and runs it with `cbench sweep` (a subprocess; it takes the machine-wide
   benchmark lock), on the loads the chosen metrics are measured at (gate_loads): the saturated
   point (closed loop, the default generator), and the fixed-rate load (cbench-load, open loop at half the lowest closed-loop
   peak of the rows, a pilot per row resolving it; every row taking turns of 500 ms in one window
   so that a baseline and its candidate see the same host, run/alternating.py). order =
   "blocked": every block runs both rows of a model at a load, and the analysis pairs them by
   block, so slow drifts of a busy machine cancel.
   The sweep runs only when a chosen metric is a sweep's (CPU per request, req/s). Instructions
   per request are measured apart: per model and block, the baseline and the candidate each as a
   fresh server under callgrind, counted over a window of 1,000 one-connection requests after
   1,000 (run/costs.py), the two sides of a block at the same time (counts, not times).
3. Judges each model by analysis/gate.py's rule on its metrics: --metrics if given, else the
   metrics a calibration given with --calibration shows catch the threshold in >= 80% of its
   trials, else gate.DEFAULT_METRICS (instructions per request: an A/A passes and +10% is caught
   there, where wall-clock metrics on a shared two-CPU machine are mostly undecided); the ratio's 95%
   paired interval wholly below 1 + threshold passes (non-inferiority established), wholly above
   fails, and anything else is undecided, which does not pass: the gate fails closed and says how
   many blocks would decide it at the observed spread. Candidate failures and error-bound
   candidate points fail. With --calibration, each metric's interval is first widened by the
   between-trial variance the calibration measured for it (gate.trial_variances).
The threshold: --threshold PCT, else DEFAULT_THRESHOLD_PCT.

Exit status (EXIT_*): 0 every model passed; 1 at least one failed; 3 none failed but at least one
is undecided (or was not measured); 2 the gate could not run or judged nothing.
Everything lands in one directory (printed; default build-regress/runs/<stamp>-regress):
the scenario, the sweep's log and run, regress.json and regress.md.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from ..run import benchlock, costs, envinfo
from ..analysis import findings, gate, runload, stats
from ..format import calibration, loadgen, scenario, serverlist
from ..format import costs as costs_format
from ..format.paths import REPO_ROOT
from .regressbuild import DEFAULT_SERVER_BIN, GateError, build_baseline, build_candidate, git as _git
from .sweep import add_cpu_arguments, choose_cpus, generated_cpus
from .common import CONNECTIONS, DURATION_S, REPETITIONS, THREADS, WARMUP_S, WRK_THREADS, bounded_int

CBENCH = os.path.join(REPO_ROOT, "scripts", "cbench")
DEFAULT_OUT = os.path.join(REPO_ROOT, "build-regress")
# A 10% regression: the larger of the two handicaps `cbench calibrate` tries (5% and 10%), and the
# size a hello-world model comparison must not hide.
DEFAULT_THRESHOLD_PCT = 10.0
PASS, FAIL, UNDECIDED = gate.PASS, gate.FAIL, gate.UNDECIDED
NO_DATA = "no data"
EXIT_PASS, EXIT_FAIL, EXIT_NOT_RUN, EXIT_UNDECIDED = 0, 1, 2, 3
EXIT_HELP = ("exit status: 0 every model passed (its candidate/baseline interval lies below 1 + threshold);"
             " 1 a model failed (its interval lies above, its candidate failed repetitions or had"
             " error-bound points); 3 no model failed but one is undecided (the blocks that would"
             " decide it are printed); 2 the gate could not run")


def add_arguments(p) -> None:
    p.epilog = EXIT_HELP
    p.add_argument("--baseline", required=True, metavar="REV",
                   help="the commit to compare against (anything git rev-parse takes: HEAD, origin/main, a sha)")
    p.add_argument("--models", metavar="LIST",
                   help="comma-separated models (default: every model both builds list, except"
                        " [instrument] and [bounded] ones)")
    p.add_argument("--threads", type=THREADS, default=1, help="server --threads of every row (default 1)")
    p.add_argument("--path", default="/spin?us=10",
                   help="request path (default /spin?us=10: server-bound here, as in cbench calibrate)")
    p.add_argument("--wrk-threads", type=WRK_THREADS, default=4, help="the load generator's -t (default 4)")
    p.add_argument("--connections", type=CONNECTIONS, default=64, help="connections, the generator's -c (default 64)")
    p.add_argument("--repetitions", type=REPETITIONS, help="blocks (default: the calibration's, else 3)")
    p.add_argument("--duration", type=DURATION_S, help="seconds per repetition (default: the calibration's, else 1)")
    p.add_argument("--warmup", type=WARMUP_S, default=0.5, help="warm-up seconds per repetition (default 0.5)")
    p.add_argument("--threshold", type=float, metavar="PCT",
                   help=f"the slowdown a model must be shown to stay under to pass, and shown to exceed to"
                        f" fail (default {DEFAULT_THRESHOLD_PCT:g})")
    p.add_argument("--calibration", metavar="DIR",
                   help="a `cbench calibrate` directory: the gate judges on the metrics its calibration.json"
                        " shows catch the threshold in >= 80%% of trials (default: instructions per request)")
    p.add_argument("--metrics", metavar="LIST",
                   help="comma-separated metrics to judge on, overriding --calibration: "
                        + ", ".join(gate.METRICS))
    p.add_argument("--candidate-args", default="", metavar="ARGS",
                   help="extra cbench-server arguments for the candidate rows only, e.g."
                        " \"--handicap-ns 20000\" (tests of the gate itself)")
    p.add_argument("--server-bin", default=os.environ.get("CBENCH_SERVER_BIN", DEFAULT_SERVER_BIN),
                   help="the candidate's cbench-server (default: $CBENCH_SERVER_BIN or build/cbench-server);"
                        " its directory is rebuilt first when it is a CMake build directory")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help="holds the baseline builds (<commit>/) and the gate's runs (runs/); default build-regress")
    p.add_argument("--jobs", type=bounded_int(1, 256), default=os.cpu_count() or 2,
                   help="parallel compile jobs (default: the number of CPUs)")
    p.add_argument("--lock-file", default=benchlock.DEFAULT_PATH,
                   help=f"machine-wide benchmark lock, held while callgrind or the sweep runs (default: {benchlock.DEFAULT_PATH})")
    add_cpu_arguments(p)


def list_models(binary: str) -> dict[str, serverlist.ModelInfo]:
    """model -> its --list entry (traits and summary)."""
    try:
        return serverlist.query(binary)
    except serverlist.ServerListError as exc:
        raise GateError(str(exc)) from None


# Models the gate leaves out unless --models names them: floors are instruments, not models, and a
# bounded model serves at most --threads connections at the gate's point, so its CPU per request
# measures queueing in the listen backlog rather than the code.
DEFAULT_EXCLUDED_TRAITS = frozenset({serverlist.INSTRUMENT, serverlist.BOUNDED})


def choose_models(args, cand: dict[str, serverlist.ModelInfo],
                  base: dict[str, serverlist.ModelInfo]) -> tuple[list[str], list[str]]:
    """(models to judge, notes on the models left out)."""
    notes = []
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        wanted = [m for m in cand if not cand[m].traits & DEFAULT_EXCLUDED_TRAITS]
        left = sorted(m for m in cand if m not in wanted)
        if left:
            notes.append(f"left out by default (traits instrument or bounded): {', '.join(left)}")
    models = []
    for m in wanted:
        if m not in cand:
            raise GateError(f"model {m!r} is not in the candidate's --list")
        if m not in base:
            notes.append(f"{m}: new in the candidate (the baseline has no such model), not judged")
            continue
        models.append(m)
    return models, notes


# -- the metrics -----------------------------------------------------------------------------
def choose_metrics(cal_dir: str | None, threshold_pct: float,
                   named: str | None = None) -> tuple[list[str], str, dict | None]:
    """(metrics to judge on, why, calibration.json or None): NAMED if given; else the metrics a
    calibration shows catch the threshold; else gate.DEFAULT_METRICS."""
    default_txt = ", ".join(gate.METRIC_NAMES[m] for m in gate.DEFAULT_METRICS)
    cal = None
    if cal_dir:
        try:
            cal = calibration.read(cal_dir)
        except calibration.CalibrationError as exc:
            raise GateError(f"--calibration {cal_dir}: calibration.json unreadable ({exc})")
    if named:
        metrics = [m.strip() for m in named.split(",") if m.strip()]
        bad = [m for m in metrics if m not in gate.METRICS]
        if bad or not metrics:
            raise GateError(f"--metrics: unknown {', '.join(bad) or 'empty list'} (known: {', '.join(gate.METRICS)})")
        return metrics, "named with --metrics", cal
    if cal is None:
        return list(gate.DEFAULT_METRICS), (f"{default_txt} (the default list; no --calibration says which"
                                            " metrics catch the threshold here)"), None
    metrics, why = gate.calibrated_metrics(cal, threshold_pct)
    if not metrics:
        return list(gate.DEFAULT_METRICS), f"{default_txt} (the default list): {why}", cal
    return metrics, why, cal


# -- the scenario and the sweep --------------------------------------------------------------
# The fixed-rate load: every row offered half the lowest closed-loop peak among the gate's rows (a
# pilot per row resolves it; meta.json records it), the rows taking turns of 500 ms in one window
# (run/alternating.py), as the scenarios' fixed-rate loads and `cbench calibrate`'s entry do.
FIXED_RATE_FRACTION = 0.5
FIXED_RATE_TURN_MS = 500


def gate_loads(args, metrics) -> list[dict]:
    """The sweep's loads for the chosen METRICS: the saturated point (closed loop, the default
    generator) when a metric is measured
    there, the fixed-rate load (cbench-load, open loop, same path and shape) when one is there."""
    where = {gate.METRICS[m].load for m in metrics}
    loads = []
    if gate.SATURATED in where:
        loads.append({"name": "regress", "path": args.path,
                      "explicit": [{"wrk_threads": args.wrk_threads, "connections": args.connections}]})
    if gate.FIXED_RATE in where:
        loads.append({"name": "fixed-rate", "path": args.path, "generator": "cbench-load",
                      "wrk_threads": args.wrk_threads, "connections": args.connections,
                      "rate_common_fraction": FIXED_RATE_FRACTION, "alternate_ms": FIXED_RATE_TURN_MS})
    return loads


def scenario_toml(args, models: list[str], baseline_bin: str, candidate_extra: list[str],
                  repetitions: int, duration_s: int, seed: int, metrics=("server_cpu_us_per_req",)) -> str:
    """The gate's scenario: per model a baseline row (BASELINE_BIN) and a candidate row (the
    sweep's --server-bin, with CANDIDATE_EXTRA), the loads METRICS are measured at (gate_loads),
    blocks in adjacent slots. Written by the scenario format's writer and read back by its parser
    (ScenarioError on anything it refuses)."""
    rows = []
    for m in models:
        rows.append({"key": f"baseline {m}", "model": m, "threads": args.threads, "binary": baseline_bin})
        cand = {"key": f"candidate {m}", "model": m, "threads": args.threads}
        if candidate_extra:
            cand["extra_args"] = list(candidate_extra)
        rows.append(cand)
    doc = {"name": "regress", "description": "generated by cbench regress", "duration_s": duration_s,
           "warmup_s": args.warmup, "repetitions": repetitions, **generated_cpus(args),
           "order": "blocked", "seed": seed, "loads": gate_loads(args, metrics), "rows": rows}
    return scenario.dump_checked(doc, "regress.toml")[0]


def measure_instructions(args, models: list[str], baseline_bin: str, server_bin: str, candidate_extra: list[str],
                         blocks: int, gate_dir: str) -> dict:
    """{model: {"baseline": {block: instructions/request}, "candidate": {...}}}, each block a fresh
    pair of servers per side under callgrind, both sides of a block side by side. Holds the
    benchmark lock: valgrind keeps a CPU busy and would disturb a timing run beside it."""
    jobs = []
    for m in models:
        for b in range(blocks):
            jobs.append((f"{m}-b{b}-baseline", costs_format.server_argv(baseline_bin, {"model": m, "threads": args.threads})))
            jobs.append((f"{m}-b{b}-candidate", costs_format.server_argv(server_bin, {"model": m, "threads": args.threads,
                                                                     "extra_args": candidate_extra})))
    print(f"regress: instructions per request, {blocks} blocks x {len(models)} model(s) under callgrind"
          f" (a window of {costs.GATE_WINDOW_REQUESTS} requests after {costs.GATE_WARM_REQUESTS})", flush=True)
    lock = benchlock.acquire(args.lock_file, None, "regress", "cbench regress (callgrind)")
    try:
        got = costs.instructions_many(jobs, os.path.join(gate_dir, "instructions"))
    except costs.CostsFailed as exc:
        raise GateError(f"instructions per request: {exc}") from None
    finally:
        lock.close()
    out = {}
    for m in models:
        out[m] = {side: {b: got[f"{m}-b{b}-{side}"] for b in range(blocks)} for side in ("baseline", "candidate")}
    return out


def run_sweep(gate_dir: str, toml: str, server_bin: str, lock_file: str) -> runload.Run:
    """The gate's sweep (a subprocess), under the gate's own --lock-file."""
    path = os.path.join(gate_dir, "regress.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(toml)
    out = os.path.join(gate_dir, "runs")
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, CBENCH, "sweep", path, "--out", out, "--server-bin", server_bin, "--lock-file", lock_file]
    print("regress: " + shlex.join(cmd), flush=True)
    log_path = os.path.join(gate_dir, "sweep.log")
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    runs = sorted(os.listdir(out))
    if proc.returncode != 0 or not runs:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-2000:]
        raise GateError(f"cbench sweep exited with status {proc.returncode}; see {log_path}:\n{tail}")
    return runload.load_run(os.path.join(out, runs[-1]))


# -- judging ---------------------------------------------------------------------------------
def judge(run: runload.Run | None, model: str, threshold_pct: float,
          metrics: tuple[str, ...] = gate.DEFAULT_METRICS, instructions: dict | None = None,
          trial_log_var: dict | None = None) -> dict:
    """The gate's verdict for one model (analysis/gate.py's rule), as regress.json records it.
    RUN is the sweep (None when no sweep metric was chosen); INSTRUCTIONS {"baseline": {block:
    value}, "candidate": {...}} when instructions per request are judged; TRIAL_LOG_VAR {metric:
    variance} from the calibration (gate.trial_variances), which widens each metric's interval."""
    trial_log_var = trial_log_var or {}
    outside, extra = [], {}
    if gate.INSTRUCTIONS in metrics:
        ins = instructions or {}
        base_i, cand_i = ins.get("baseline") or {}, ins.get("candidate") or {}
        ci = gate.paired_slowdown(base_i, cand_i) if base_i and cand_i else None
        outside.append(gate.judge_interval(gate.INSTRUCTIONS, ci, threshold_pct, trial_log_var.get(gate.INSTRUCTIONS)))
        extra = {"instructions_per_req": {"baseline": [base_i[b] for b in sorted(base_i)],
                                          "candidate": [cand_i[b] for b in sorted(cand_i)]}}
    sweep_metrics = tuple(m for m in metrics if m in gate.SWEEP_METRICS)
    pairs = model_pairs(run, model) if sweep_metrics else {}
    if any(gate.METRICS[m].load not in pairs for m in sweep_metrics) or not sweep_metrics and not outside:
        return {"model": model, "gate": UNDECIDED, "word": NO_DATA, "reason": "not measured"}
    verdict, reason, per = gate.judge_model(pairs, sweep_metrics, threshold_pct, tuple(outside), trial_log_var)
    res = {"model": model, "gate": verdict, "word": verdict, "reason": reason, **extra,
           "metrics": {v.metric: {"gate": v.gate, "reason": v.reason, "slowdown": _ci_json(v.ci),
                                  "blocks_needed": v.blocks_needed} for v in per}}
    for load, (base, cand) in pairs.items():
        cpu, offered = base.values("derived.server_cpu_us_per_req"), base.values("wrk.rate_offered")
        res.setdefault("loads", {})[load] = {
            "baseline_ok": f"{len(base.ok_points)}/{len(base.points)}",
            "candidate_ok": f"{len(cand.ok_points)}/{len(cand.points)}",
            "baseline_cpu_us_per_req": stats.median(cpu) if cpu else None,
            "rate_offered": stats.median(offered) if offered else None,
            "cpu_ratio": _ci_json(findings.effect(cand, base, "server_cpu_us_per_req")),
            "rps_ratio": _ci_json(findings.effect(cand, base, "req_per_s"))}
    if verdict == UNDECIDED:
        res["blocks_needed"] = gate.blocks_needed(per)
    return res


def load_of(c: runload.Cell) -> str:
    """The gate load a sweep cell was measured at (gate.FIXED_RATE or gate.SATURATED)."""
    return gate.FIXED_RATE if c.load is not None and loadgen.is_fixed_rate(c.load.raw) else gate.SATURATED


def model_pairs(run: runload.Run | None, model: str) -> dict:
    """{gate load: (baseline cell, candidate cell)} of MODEL in the gate's sweep, for each load
    where both rows were measured."""
    by = {}
    for (key, _lid), c in (run.cells.items() if run is not None else ()):
        for i, side in enumerate(("baseline", "candidate")):
            if key == f"{side} {model}":
                by.setdefault(load_of(c), [None, None])[i] = c
    return {load: (b, c) for load, (b, c) in by.items() if b is not None and c is not None}


def _ci_json(ci: stats.RatioCI | None) -> dict | None:
    if ci is None:
        return None
    return {"ratio": ci.ratio, "lo": ci.lo, "hi": ci.hi, "n": [ci.n_num, ci.n_den], "method": ci.method,
            "trial_log_var": ci.trial_log_var}


def render(results: list[dict], meta: dict) -> str:
    out = [f"# cbench regress: candidate (working tree) against baseline {meta['baseline_commit'][:12]}", "",
           f"- baseline: `{meta['baseline_rev']}` = {meta['baseline_commit']}, {meta['baseline_how']}",
           f"- candidate: {meta['candidate_commit']}{' + uncommitted changes' if meta['candidate_dirty'] else ''}"
           + (f", extra arguments `{meta['candidate_args']}`" if meta["candidate_args"] else ""),
           *([f"- instructions: {meta['repetitions']} blocks, each one server per side under callgrind counted over"
              f" {meta['instructions_requests']['window']} one-connection requests to / after"
              f" {meta['instructions_requests']['warm']}, --threads {meta['threads']} (paired by block)"]
             if gate.INSTRUCTIONS in meta["metrics"] else []),
           *([f"- sweep: GET {meta['path']}, --threads {meta['threads']}, {meta['repetitions']} blocks of"
              f" {meta['duration_s']} s per row (order blocked, paired by block); "
              + "; ".join(_load_text(meta, load) for load in (gate.SATURATED, gate.FIXED_RATE)
                          if any(gate.METRICS[m].load == load for m in meta["metrics"]))]
             if meta.get("run") else []),
           f"- threshold: +{meta['threshold_pct']:g}% ({meta['threshold_source']}); a model passes when the whole"
           " 95% interval of its slowdown lies below 1 + threshold, fails when it lies above, and is"
           " undecided (not passed) otherwise",
           f"- judged on: {', '.join(meta['metrics'])} ({meta['metrics_source']})",
           *(["- intervals widened by the calibration's between-trial variance (what one sitting's blocks share):"
              + ", ".join(f" {gate.METRIC_NAMES[m]} {v:.3g}" for m, v in meta["trial_log_var"].items())
              + " (on the log scale)"] if meta.get("trial_log_var") else []),
           "", "| model | gate | slowdown per metric (95% interval) | why |",
           "|---|---|---|---|"]
    for r in results:
        slow = "; ".join(f"{gate.METRIC_NAMES[m]} {_fmt(v.get('slowdown'))}" for m, v in r.get("metrics", {}).items())
        out.append(f"| {r['model']} | {r['gate']} | {slow or '—'} | {r['reason']} |")
    out += [""] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(out) + "\n"


def _load_text(meta: dict, load: str) -> str:
    if load == gate.SATURATED:
        return f"saturated: cbench-load -t{meta['wrk_threads']} -c{meta['connections']} closed loop"
    return (f"fixed rate: cbench-load -t{meta['wrk_threads']} -c{meta['connections']} open loop at"
            f" {FIXED_RATE_FRACTION:g}x the lowest closed-loop peak of the rows, the rows taking turns of"
            f" {FIXED_RATE_TURN_MS} ms in one window")


def _fmt(c: dict | None) -> str:
    return "—" if not c else f"{c['ratio']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]"


def run(args) -> int:
    try:
        return _run(args)
    except GateError as exc:
        print(f"cbench regress: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    bad = choose_cpus(args, "regress")
    if bad:
        raise GateError(bad)
    t0 = time.monotonic()
    threshold, source = (args.threshold, "--threshold") if args.threshold is not None \
        else (DEFAULT_THRESHOLD_PCT, "default")
    if threshold <= 0:
        raise GateError("--threshold must be above 0")
    metrics, metrics_source, cal = choose_metrics(args.calibration, threshold, args.metrics)
    # The calibrated design's blocks and window, whose rates the calibration vouches for.
    repetitions = args.repetitions or calibration.design_blocks(cal) or 3
    duration_s = args.duration or calibration.design_duration_s(cal) or 1
    sha = _git(["rev-parse", "--verify", f"{args.baseline}^{{commit}}"])
    git = envinfo.git_info(REPO_ROOT)  # the candidate's source, before anything can change it
    out = os.path.abspath(args.out)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    gate_dir = os.path.join(out, "runs", f"{stamp}-regress")
    os.makedirs(gate_dir, exist_ok=True)
    print(f"regress: results in {gate_dir}", flush=True)
    server_bin = os.path.abspath(args.server_bin)
    built = build_candidate(server_bin, args.jobs, os.path.join(gate_dir, "build.log"))
    baseline_bin, how = build_baseline(sha, out, server_bin, built, args.jobs)
    print(f"regress: baseline {args.baseline} = {sha[:12]}: {os.path.relpath(baseline_bin, REPO_ROOT)}, {how}", flush=True)
    models, notes = choose_models(args, list_models(server_bin), list_models(baseline_bin))
    if not models:
        raise GateError("no model to judge (" + "; ".join(notes) + ")")
    extra = shlex.split(args.candidate_args)
    r = None
    if any(m in gate.SWEEP_METRICS for m in metrics):
        r = run_sweep(gate_dir, scenario_toml(args, models, baseline_bin, extra, repetitions, duration_s,
                                              seed=int(sha[:8], 16), metrics=metrics), server_bin, args.lock_file)
    ins = {}
    if gate.INSTRUCTIONS in metrics:
        ins = measure_instructions(args, models, baseline_bin, server_bin, extra, repetitions, gate_dir)
    widen_by = gate.trial_variances(cal)
    results = [judge(r, m, threshold, tuple(metrics), ins.get(m), widen_by) for m in models]
    meta = {"baseline_rev": args.baseline, "baseline_commit": sha, "baseline_how": how,
            "baseline_bin": baseline_bin, "candidate_bin": server_bin,
            "candidate_commit": git.get("git_commit"), "candidate_dirty": bool(git.get("git_dirty")),
            "candidate_args": args.candidate_args, "path": args.path, "wrk_threads": args.wrk_threads,
            "connections": args.connections, "threads": args.threads, "repetitions": repetitions,
            "duration_s": duration_s, "instructions_requests": {"warm": costs.GATE_WARM_REQUESTS, "window": costs.GATE_WINDOW_REQUESTS}, "threshold_pct": threshold, "threshold_source": source,
            "metrics": metrics, "metrics_source": metrics_source, "trial_log_var": widen_by,
            "run": os.path.relpath(r.dir, gate_dir) if r is not None else None,
            "notes": notes, "elapsed_s": round(time.monotonic() - t0, 1)}
    status = exit_status(results)
    meta["exit_status"] = status
    with open(os.path.join(gate_dir, "regress.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "models": results}, f, indent=2)
    text = render(results, meta)
    with open(os.path.join(gate_dir, "regress.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print("\n".join(summary_lines(results, threshold)))
    print(f"regress: exit status {status} ({meta['elapsed_s']:.0f} s; everything in {gate_dir})")
    return status


def exit_status(results: list[dict]) -> int:
    """EXIT_FAIL if a model failed, else EXIT_UNDECIDED if one is undecided or not measured, else
    EXIT_PASS; EXIT_NOT_RUN when no model was measured at all."""
    gates = [r["gate"] for r in results]
    if all(r["word"] == NO_DATA for r in results):
        return EXIT_NOT_RUN
    return EXIT_FAIL if FAIL in gates else EXIT_UNDECIDED if UNDECIDED in gates else EXIT_PASS


def summary_lines(results: list[dict], threshold_pct: float) -> list[str]:
    """The verdict lines: failed models, then each undecided one with the blocks that would decide it."""
    failed = [r["model"] for r in results if r["gate"] == FAIL]
    undecided = [r for r in results if r["gate"] == UNDECIDED]
    out = []
    if failed:
        out.append(f"regress: FAIL: slower than the baseline by more than {threshold_pct:g}% (or failing):"
                   f" {', '.join(failed)}")
    for r in undecided:  # the reason names the blocks that would decide an interval that straddles
        out.append(f"regress: UNDECIDED: {r['model']}: {r['reason']}")
    if not failed and not undecided:
        out.append(f"regress: pass: every model is shown to be at most {threshold_pct:g}% slower than the baseline")
    return out
