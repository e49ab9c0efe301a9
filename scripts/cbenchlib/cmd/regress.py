"""`cbench regress --baseline REV`: an A/B regression gate that runs in one job on one machine.

A stored baseline from another machine cannot be compared with (compare refuses mixed
environments), so the gate measures both sides here and now:
1. Builds the candidate (the working tree's build directory, --server-bin; `cmake --build` is a
   no-op when it is current) and the baseline commit REV beside it: `git archive REV` into
   build-regress/<commit>/src, a Release build of cbench-server only, the binary kept as
   build-regress/<commit>/cbench-server for the next run. When REV is HEAD and the tree is
   clean, the candidate's binary is that build already and is copied instead of rebuilt.
2. Writes a scenario with two rows per model (`baseline <model>` with the row field `binary`,
   `candidate <model>`) on one load point and runs it with `cbench sweep` (a subprocess; it takes
   the machine-wide benchmark lock). order = "blocked": every block runs both rows of a model at
   the point in adjacent slots, so the analysis pairs them by block and slow drifts of a busy
   machine cancel.
3. Judges each model on the server's CPU per request (what a slower request path costs
   whatever bounds the point), candidate over baseline, with the project's ratio interval
   (findings.effect) and verdict words (findings.decide): a model FAILS only when the claim
   "candidate/baseline > 1 + threshold" is supported, i.e. the whole 95% interval lies above
   the threshold. Undecided never fails: noise cannot fail the gate, it can only let a small
   regression through (the calibration says how small a one it catches).
The threshold: --threshold PCT, else the smallest handicap that the calibration run given with
--calibration detected in at least 80% of its trials (the rule REPORT.md's calibration section
states), else DEFAULT_THRESHOLD_PCT.

Exit status: 0 no model slower by more than the threshold; 1 at least one model is (or its
candidate failed points its baseline did not); 2 the gate could not run or judged nothing.
Everything lands in one directory (printed; default build-regress/runs/<stamp>-regress):
the scenario, the sweep's log and run, regress.json and regress.md.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

from ..run import envinfo
from ..analysis import findings, runload, stats
from ..format import calibration, scenario, serverlist
from ..format.paths import REPO_ROOT
from .sweep import add_cpu_arguments, choose_cpus, generated_cpus
from .common import CONNECTIONS, DURATION_S, REPETITIONS, THREADS, WARMUP_S, WRK_THREADS, bounded_int

CBENCH = os.path.join(REPO_ROOT, "scripts", "cbench")
DEFAULT_OUT = os.path.join(REPO_ROOT, "build-regress")
DEFAULT_SERVER_BIN = os.path.join(REPO_ROOT, "build", "cbench-server")
# Without a calibration run: a 10% CPU-per-request regression, the larger of the two handicaps
# `cbench calibrate` tries (5% and 10%), and the size a hello-world model comparison must not hide.
DEFAULT_THRESHOLD_PCT = 10.0
DETECTION_RATE = calibration.ESTABLISHED_RATE  # a handicap "established" by the calibration: detected in >= 80% of trials
METRIC = "server_cpu_us_per_req"
# Point verdicts at which CPU per request means the server's cost (not error handling).
JUDGEABLE = ("server-bound", "client-bound", "both-saturated", "unclear")
PASS, FAIL = "pass", "FAIL"


def add_arguments(p) -> None:
    p.add_argument("--baseline", required=True, metavar="REV",
                   help="the commit to compare against (anything git rev-parse takes: HEAD, origin/main, a sha)")
    p.add_argument("--models", metavar="LIST",
                   help="comma-separated models (default: every model both builds list, except"
                        " [instrument] and [bounded] ones)")
    p.add_argument("--threads", type=THREADS, default=1, help="server --threads of every row (default 1)")
    p.add_argument("--path", default="/spin?us=10",
                   help="request path (default /spin?us=10: server-bound here, as in cbench calibrate)")
    p.add_argument("--wrk-threads", type=WRK_THREADS, default=4, help="wrk -t (default 4)")
    p.add_argument("--connections", type=CONNECTIONS, default=64, help="wrk -c (default 64)")
    p.add_argument("--repetitions", type=REPETITIONS, help="blocks (default: the calibration's, else 3)")
    p.add_argument("--duration", type=DURATION_S, help="seconds per repetition (default: the calibration's, else 1)")
    p.add_argument("--warmup", type=WARMUP_S, default=0.5, help="warm-up seconds per repetition (default 0.5)")
    p.add_argument("--threshold", type=float, metavar="PCT",
                   help=f"fail above this CPU-per-request increase (default: from --calibration, else"
                        f" {DEFAULT_THRESHOLD_PCT:g})")
    p.add_argument("--calibration", metavar="DIR",
                   help="a `cbench calibrate` directory (its calibration.json sets the threshold)")
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
    add_cpu_arguments(p)


class GateError(Exception):
    """The gate cannot run (git, build or sweep failure): exit status 2."""


# -- builds ----------------------------------------------------------------------------------
def _git(argv: list[str]) -> str:
    proc = subprocess.run(["git", "-C", REPO_ROOT] + argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GateError(f"git {' '.join(argv)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout.strip()


def _logged(argv: list[str], log_path: str, **kw) -> None:
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, **kw)
    if proc.returncode != 0:
        raise GateError(f"{shlex.join(argv)} exited with status {proc.returncode}; see {log_path}")


def build_candidate(server_bin: str, jobs: int, log_path: str) -> bool:
    """Brings the candidate's build directory up to date when it is one (True), else leaves the
    binary as given (False: nothing says which source it was built from)."""
    build_dir = os.path.dirname(server_bin)
    built = False
    if os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        _logged(["cmake", "--build", build_dir, "-j", str(jobs), "--target", "cbench-server"], log_path)
        built = True
    elif server_bin == DEFAULT_SERVER_BIN:
        _logged(["cmake", "-S", REPO_ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"], log_path)
        _logged(["cmake", "--build", build_dir, "-j", str(jobs), "--target", "cbench-server"], log_path)
        built = True
    if not os.access(server_bin, os.X_OK):
        raise GateError(f"candidate server not found: {server_bin}")
    return built


def build_baseline(sha: str, out: str, candidate_bin: str, candidate_built: bool, jobs: int) -> tuple[str, str]:
    """(binary, how it was obtained) of the baseline commit SHA, kept in OUT/<sha[:12]>/."""
    d = os.path.join(out, sha[:12])
    binary, stamp = os.path.join(d, "cbench-server"), os.path.join(d, "baseline.json")
    if os.path.exists(stamp) and os.access(binary, os.X_OK):
        with open(stamp, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("commit") == sha:
            return binary, meta.get("how", "built") + " (kept from an earlier run)"
    os.makedirs(d, exist_ok=True)
    log_path = os.path.join(d, "build.log")
    git = envinfo.git_info(REPO_ROOT)
    if candidate_built and git.get("git_commit") == sha and git.get("git_dirty") is False:
        # The candidate was just built from this clean tree: it is the baseline's build.
        shutil.copy2(candidate_bin, binary)
        how = f"copied from {os.path.relpath(candidate_bin, REPO_ROOT)} (REV is HEAD and the tree is clean)"
    else:
        src, build = os.path.join(d, "src"), os.path.join(d, "build")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        print(f"regress: building the baseline {sha[:12]} in {os.path.relpath(d, REPO_ROOT)}"
              f" (log: {os.path.relpath(log_path, REPO_ROOT)})", flush=True)
        archive = subprocess.Popen(["git", "-C", REPO_ROOT, "archive", "--format=tar", sha], stdout=subprocess.PIPE)
        untar = subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout)
        archive.stdout.close()
        if archive.wait() != 0 or untar.returncode != 0:
            raise GateError(f"git archive {sha} | tar -x -C {src} failed")
        _logged(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release"], log_path)
        _logged(["cmake", "--build", build, "-j", str(jobs), "--target", "cbench-server"], log_path)
        shutil.copy2(os.path.join(build, "cbench-server"), binary)
        how = "built from git archive (Release, cbench-server only)"
    with open(stamp, "w", encoding="utf-8") as f:
        json.dump({"commit": sha, "how": how, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
    return binary, how


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


# -- the threshold ---------------------------------------------------------------------------
def calibrated_threshold(cal_dir: str) -> tuple[float | None, dict]:
    """(threshold %, calibration.json) from a `cbench calibrate` directory: the smallest handicap
    detected in at least DETECTION_RATE of its trials; None if none was."""
    try:
        cal = calibration.read(cal_dir)
    except calibration.CalibrationError as exc:
        raise GateError(f"--calibration {cal_dir}: calibration.json unreadable ({exc})")
    pct = calibration.smallest_detected(cal, DETECTION_RATE)
    return (float(pct) if pct is not None else None), cal


# -- the scenario and the sweep --------------------------------------------------------------
def scenario_toml(args, models: list[str], baseline_bin: str, candidate_extra: list[str],
                  repetitions: int, duration_s: int, seed: int) -> str:
    """The gate's scenario: per model a baseline row (BASELINE_BIN) and a candidate row (the
    sweep's --server-bin, with CANDIDATE_EXTRA), one load, blocks in adjacent slots. Written by the
    scenario format's writer and read back by its parser (ScenarioError on anything it refuses)."""
    rows = []
    for m in models:
        rows.append({"key": f"baseline {m}", "model": m, "threads": args.threads, "binary": baseline_bin})
        cand = {"key": f"candidate {m}", "model": m, "threads": args.threads}
        if candidate_extra:
            cand["extra_args"] = list(candidate_extra)
        rows.append(cand)
    doc = {"name": "regress", "description": "generated by cbench regress", "duration_s": duration_s,
           "warmup_s": args.warmup, "repetitions": repetitions, **generated_cpus(args),
           "order": "blocked", "seed": seed,
           "loads": [{"name": "regress", "path": args.path,
                      "explicit": [{"wrk_threads": args.wrk_threads, "connections": args.connections}]}],
           "rows": rows}
    return scenario.dump_checked(doc, "regress.toml")[0]


def run_sweep(gate_dir: str, toml: str, server_bin: str) -> runload.Run:
    path = os.path.join(gate_dir, "regress.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(toml)
    out = os.path.join(gate_dir, "runs")
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, CBENCH, "sweep", path, "--out", out, "--server-bin", server_bin]
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
def judge(run: runload.Run, model: str, threshold_pct: float) -> dict:
    """The gate's verdict for one model: candidate/baseline server CPU per request."""
    cells = {k: c for (k, _lid), c in run.cells.items()}
    base, cand = cells.get(f"baseline {model}"), cells.get(f"candidate {model}")
    res = {"model": model, "gate": PASS, "word": findings.UNDECIDED, "reason": ""}
    if base is None or cand is None:
        return dict(res, word=findings.NO_DATA, reason="not measured")
    nb, nc = len(base.ok_points), len(cand.ok_points)
    tb, tc = len(base.points), len(cand.points)
    res.update(baseline_ok=f"{nb}/{tb}", candidate_ok=f"{nc}/{tc}")
    if nc < tc and nb == tb:
        return dict(res, gate=FAIL, word="failed",
                    reason=f"the candidate failed {tc - nc} of {tc} repetitions, the baseline none")
    bad = sorted({v for c in (base, cand) for v in findings.cell_verdicts(c) if v not in JUDGEABLE})
    ci = findings.effect(cand, base, METRIC)
    rps = findings.effect(cand, base, "req_per_s")
    res.update(cpu_ratio=_ci_json(ci), rps_ratio=_ci_json(rps),
               verdicts=sorted({v for c in (base, cand) for v in findings.cell_verdicts(c)}))
    if bad:
        return dict(res, word=findings.UNDECIDED, reason=f"CPU per request not judged: points were {', '.join(bad)}")
    d = findings.decide(ci, "greater", null_ratio=1 + threshold_pct / 100)
    res.update(word=d.word, reason=d.reason)
    if d.word == findings.SUPPORTED:
        res["gate"] = FAIL
    return res


def _ci_json(ci: stats.RatioCI | None) -> dict | None:
    if ci is None:
        return None
    return {"ratio": ci.ratio, "lo": ci.lo, "hi": ci.hi, "n": [ci.n_num, ci.n_den], "method": ci.method}


def render(results: list[dict], meta: dict) -> str:
    out = [f"# cbench regress: candidate (working tree) against baseline {meta['baseline_commit'][:12]}", "",
           f"- baseline: `{meta['baseline_rev']}` = {meta['baseline_commit']}, {meta['baseline_how']}",
           f"- candidate: {meta['candidate_commit']}{' + uncommitted changes' if meta['candidate_dirty'] else ''}"
           + (f", extra arguments `{meta['candidate_args']}`" if meta["candidate_args"] else ""),
           f"- point: GET {meta['path']} -t{meta['wrk_threads']} -c{meta['connections']}, --threads {meta['threads']};"
           f" {meta['repetitions']} blocks of {meta['duration_s']} s (order blocked, paired by block)",
           f"- threshold: +{meta['threshold_pct']:g}% server CPU per request ({meta['threshold_source']});"
           " a model fails only when the whole 95% interval of candidate/baseline lies above it",
           "", "| model | gate | CPU/request cand./base (95% interval) | req/s cand./base | verdict |",
           "|---|---|---|---|---|"]
    for r in results:
        cpu = _fmt(r.get("cpu_ratio"))
        rps = _fmt(r.get("rps_ratio"))
        out.append(f"| {r['model']} | {r['gate']} | {cpu} | {rps} | {r['word']}"
                   + (f": {r['reason']}" if r["reason"] else "") + " |")
    out += [""] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(out) + "\n"


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
    out = os.path.abspath(args.out)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    gate_dir = os.path.join(out, "runs", f"{stamp}-regress")
    os.makedirs(gate_dir, exist_ok=True)
    print(f"regress: results in {gate_dir}", flush=True)
    sha = _git(["rev-parse", "--verify", f"{args.baseline}^{{commit}}"])
    git = envinfo.git_info(REPO_ROOT)  # the candidate's source, before anything can change it
    threshold, source = args.threshold, "--threshold"
    cal = None
    if threshold is None and args.calibration:
        threshold, cal = calibrated_threshold(args.calibration)
        source = (f"the smallest handicap {args.calibration} detected in >= {DETECTION_RATE:.0%} of trials"
                  if threshold is not None else None)
        if threshold is None:
            threshold = DEFAULT_THRESHOLD_PCT
            source = f"default: {args.calibration} detected none of its handicaps in >= {DETECTION_RATE:.0%} of trials"
    if threshold is None:
        threshold, source = DEFAULT_THRESHOLD_PCT, "default"
    if threshold <= 0:
        raise GateError("--threshold must be above 0")
    repetitions = args.repetitions or (cal or {}).get("repetitions") or 3
    duration_s = args.duration or (cal or {}).get("duration_s") or 1
    server_bin = os.path.abspath(args.server_bin)
    built = build_candidate(server_bin, args.jobs, os.path.join(gate_dir, "build.log"))
    baseline_bin, how = build_baseline(sha, out, server_bin, built, args.jobs)
    print(f"regress: baseline {args.baseline} = {sha[:12]}: {os.path.relpath(baseline_bin, REPO_ROOT)}, {how}", flush=True)
    models, notes = choose_models(args, list_models(server_bin), list_models(baseline_bin))
    if not models:
        raise GateError("no model to judge (" + "; ".join(notes) + ")")
    extra = shlex.split(args.candidate_args)
    r = run_sweep(gate_dir, scenario_toml(args, models, baseline_bin, extra, repetitions, duration_s,
                                          seed=int(sha[:8], 16)), server_bin)
    results = [judge(r, m, threshold) for m in models]
    meta = {"baseline_rev": args.baseline, "baseline_commit": sha, "baseline_how": how,
            "baseline_bin": baseline_bin, "candidate_bin": server_bin,
            "candidate_commit": git.get("git_commit"), "candidate_dirty": bool(git.get("git_dirty")),
            "candidate_args": args.candidate_args, "path": args.path, "wrk_threads": args.wrk_threads,
            "connections": args.connections, "threads": args.threads, "repetitions": repetitions,
            "duration_s": duration_s, "threshold_pct": threshold, "threshold_source": source,
            "metric": METRIC, "run": os.path.relpath(r.dir, gate_dir),
            "notes": notes, "elapsed_s": round(time.monotonic() - t0, 1)}
    failed = [x["model"] for x in results if x["gate"] == FAIL]
    judged = [x for x in results if x["word"] not in (findings.NO_DATA,)]
    status = 1 if failed else (0 if judged else 2)
    meta["exit_status"] = status
    with open(os.path.join(gate_dir, "regress.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "models": results}, f, indent=2)
    text = render(results, meta)
    with open(os.path.join(gate_dir, "regress.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    verdict = (f"FAIL: slower than the baseline by more than {threshold:g}%: {', '.join(failed)}" if failed
               else "pass: no model is slower than the baseline by more than the threshold" if judged
               else "no model could be judged")
    print(f"regress: {verdict} ({meta['elapsed_s']:.0f} s; everything in {gate_dir})")
    return status
