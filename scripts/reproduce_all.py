#!/usr/bin/python3
"""`make reproduce-all`: the reference set in one sitting from the current clean commit: every
scenario's reference sweep, the microbenchmarks, the deterministic costs, the calibration and the
reference soak, in sequence; after each step results/reference-runs.toml points that step's
section at its new run (so an interrupted sitting keeps what it measured), and at the end
`make report` renders REPORT.md and its pages from them.

It prints its expected time first, the worst case of each step and their sum: a sweep's from its
`cbench sweep --dry-run` (the worst case where a sequential design may add blocks), the
microbenchmarks' from `cbench micro`'s defaults and the number of benchmarks the built binaries
list, the costs' from the rows it measures and its server runs per row, the soak's from its
models and its duration per model, the calibration's from its own estimate (what its --dry-run prints). `--dry-run` prints the plan
and runs nothing; `--only`/`--skip` select steps (a scenario's name, or micro, costs, calibrate,
soak, or sweeps for every sweep); `--budget-min N` refuses a sitting whose worst case exceeds N
minutes. A set made in two sittings shares one commit: `--skip soak --no-report`, then
`--only soak` (which renders the whole set); nothing but results/ may change in between. Before
rendering, a section whose run was made from another commit (not remade in this sitting) moves to
kept = and renders as not yet remade, so a sitting of some steps renders a set of one commit. Before the first step a preflight refuses a dirty tree (the sweep's own rule) and a
machine where other processes are busy (a sitting beside them would be marked disturbed).
Each measuring command takes the bench lock itself. `make reproduce` stays the ever-table run alone.

The plan is built first (plan(): one Step per command, with its estimate and where its run
directory appears), then selected (select()), checked (preflight()) and executed (execute()).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from cbenchlib.run import envinfo, hostcheck  # noqa: E402  (after the path it is found on)
from cbenchlib.cmd import calibrate  # noqa: E402
from cbenchlib.format import calibration as calibration_format, resultio  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CBENCH = [sys.executable, os.path.join(REPO, "scripts", "cbench")]
CONFIG = os.path.join(REPO, "results", "reference-runs.toml")
# Scenarios that are not reference sweeps, and why.
EXCLUDED = {"smoke": "the harness's smoke test, not a reference sweep",
            "quick": "make quick's first look at a machine, not a reference sweep"}
# cbench calibrate's default: the estimate its --dry-run prints.
CALIBRATE_ESTIMATE_S = round(calibrate.default_estimate_s())
CALIBRATE_SECTION = "calibrate"
# `cbench micro` (the [sections.micro] reference run, scenario "micro") has no dry-run either. Its
# time is per benchmark about (repetitions + 1) x min_time (Google Benchmark calibrates the
# iteration count before the first repetition; cli_micro's note); the run kept from the EPYC
# machine took 88 s for 61 benchmarks against 73 s so computed (process start-up, the machine
# sampling between binaries), hence the margin.
MICRO_SCENARIO = "micro"
MICRO_MARGIN = 1.25
# The number of benchmarks at commit 888333f (63 in 5 binaries), used when the binaries are not
# built yet (`make reproduce-all` prints the plan before `make build`).
MICRO_BENCHMARKS_ASSUMED = 63
SERVER_BIN = os.path.join(REPO, "build", "cbench-server")
# `cbench costs` (the [sections.costs] reference run, scenario "costs"): the rows are every model
# at one thread and the connections run's model and instrument rows; per row it starts the server
# twice per request count under callgrind (once more each with --repeat), under strace and plain.
# The run kept from this machine (20261204T123820Z-costs: 18 rows, --repeat, 2,000 and 4,000
# requests) took 232 s, 1.61 s per server run; COSTS_RUN_S adds half again for a slower commit.
COSTS_SCENARIO = "costs"
COSTS_RUN_S = 2.4
COSTS_ROWS_ASSUMED = 18  # that run's rows, used when the server binary is not built yet
# Its rows, its account's CPU per request (the connections run at one connection) and its prices
# (the micro run): this sitting's runs when it made them, else the ones reference-runs.toml lists.
COSTS_ARGV = ["costs", "--rows-from", "{run:connections}", "--repeat",
              "--cpu-from", "{run:connections}", "--micro", "{run:micro}"]
# `cbench soak` at its reference duration (the [sections.soak] run under results/soak/): each
# model but the instruments for --duration-s, plus up to SOAK_MODEL_OVERHEAD_S of start (10 s
# readiness bound), settle (5 s) and the load's exit (5 s) (run/soak.py's bounds).
SOAK_SCENARIO = "soak"
SOAK_MODEL_OVERHEAD_S = 20
SOAK_MODELS_ASSUMED = 15  # the non-instrument models at commit cbbda30c, when the binary is not built
SWEEPS = "sweeps"  # the selection name of every sweep at once


def scenarios(scen_dir: str = os.path.join(REPO, "scenarios")) -> list[str]:
    names = sorted(f[:-5] for f in os.listdir(scen_dir) if f.endswith(".toml"))
    # ever-table first: the run `make reproduce` makes, and the report's main section.
    names.sort(key=lambda n: n != "ever-table")
    return [n for n in names if n not in EXCLUDED]


_DUR = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(\d+)s")


def parse_duration(text: str) -> int:
    m = _DUR.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    h, mi, s = (int(x) if x else 0 for x in m.groups())
    return h * 3600 + mi * 60 + s


def estimate_from_dry_run(output: str) -> int | None:
    """Seconds from a `cbench sweep --dry-run` output: the worst case ("at most ... in all")
    when a sequential design may add blocks, else the time "with every model"."""
    m = re.search(r"at most (\S+) in all", output)
    if m:
        return parse_duration(m.group(1))
    m = re.search(r"estimated time: (\S+) with every model", output)
    return parse_duration(m.group(1)) if m else None


def fmt(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def set_run(config_text: str, scenario: str, run_dir: str) -> tuple[str, list[str]]:
    """The reference-runs.toml text with run = run_dir in every [sections.X] whose scenario is
    `scenario` (comments and kept = lines untouched), and the section names changed."""
    out, changed = [], []
    blocks = re.split(r"(?m)^(?=\[sections\.)", config_text)
    for b in blocks:
        m = re.match(r"\[sections\.([A-Za-z0-9_.-]+)\]", b)
        if m and re.search(rf'(?m)^scenario\s*=\s*"{re.escape(scenario)}"', b):
            b, n = re.subn(r'(?m)^run\s*=\s*"[^"]*"', f'run = "{run_dir}"', b, count=1)
            if n:
                changed.append(m.group(1))
        out.append(b)
    return "".join(out), changed


def micro_estimate_s(n_benchmarks: int, repetitions: int, min_time_s: float) -> int:
    """Seconds `cbench micro` takes for N_BENCHMARKS at REPETITIONS x MIN_TIME_S (see MICRO_MARGIN)."""
    # Rounded up; the guard keeps a product such as 94.50000000000001 from a float's last bit.
    return math.ceil(n_benchmarks * (repetitions + 1) * min_time_s * MICRO_MARGIN - 1e-9)


def count_micro_benchmarks() -> int | None:
    """How many benchmarks `cbench micro` would run: the built binaries' --benchmark_list_tests
    (cli_micro's own listing), or None when none is built or one fails to list."""
    from cbenchlib.cmd import micro as cli_micro
    binaries = cli_micro.find_binaries(os.path.join(REPO, cli_micro.DEFAULT_BENCH_DIR))
    lists = [cli_micro.list_benchmarks(b, None) for b in binaries]
    if not binaries or any(names is None for names in lists):
        return None
    return sum(len(names) for names in lists)


def count_costs_rows(rows_from: str | None) -> int | None:
    """The rows `cbench costs --rows-from ROWS_FROM` measures (cmd.costs.rows_to_measure), or None
    when the server binary is not built or the run cannot be read."""
    from cbenchlib.analysis import runload
    from cbenchlib.cmd import costs as cli_costs
    from cbenchlib.format import serverlist
    if rows_from and not os.path.isabs(rows_from):
        rows_from = os.path.join(REPO, rows_from)
    ns = argparse.Namespace(models=None, threads=1, rows_from=rows_from, server_bin=SERVER_BIN)
    try:
        return len(cli_costs.rows_to_measure(ns))
    except (OSError, ValueError, runload.RunError, serverlist.ServerListError):
        return None


def costs_runs_per_row(repeat: bool, requests: tuple[int, int]) -> int:
    """Server runs `cbench costs` makes per row: per request count callgrind (twice with REPEAT), strace, plain."""
    return len(requests) * (3 + int(repeat))


def costs_estimate_s(rows: int, repeat: bool, requests: tuple[int, int]) -> int:
    """Seconds `cbench costs` takes for ROWS rows: per request count one callgrind run (two with
    REPEAT), one strace run and one plain run, each COSTS_RUN_S at the default request counts and
    in proportion to the requests beyond them (a worst case: start-up does not grow with them)."""
    from cbenchlib.format import costs as costs_format
    runs = rows * costs_runs_per_row(repeat, requests)
    scale = max(1.0, sum(requests) / sum(costs_format.DEFAULT_REQUESTS))
    return math.ceil(runs * COSTS_RUN_S * scale - 1e-9)


def count_soak_models() -> int | None:
    """The models `cbench soak` runs by default (every one but the instruments), or None when the
    server binary is not built."""
    from cbenchlib.cmd import soak as cli_soak
    from cbenchlib.format import serverlist
    try:
        models, _ = cli_soak.select_models(serverlist.query(SERVER_BIN), "all")
    except (OSError, serverlist.ServerListError):
        return None
    return len(models)


def soak_estimate_s(models: int, duration_s: float) -> int:
    """Seconds the soak takes for MODELS models of DURATION_S each (SOAK_MODEL_OVERHEAD_S apart)."""
    return math.ceil(models * (duration_s + SOAK_MODEL_OVERHEAD_S))


@dataclass
class Step:
    """One command of the plan: what it runs, its expected time, and where its run appears."""
    name: str            # what the plan prints
    argv: list[str]      # the cbench arguments; "{run:SCENARIO}" is that scenario's run (resolve_argv)
    estimate_s: int
    parent: str          # the directory its run directory is created in
    suffix: str          # the run directory's name ends with this
    scenario: str        # the reference-runs.toml scenario whose sections get the new run
    note: str = ""
    key: str = ""        # the name --only and --skip select it by (default: its scenario)
    judged_exit: int | None = None  # an exit status that is a verdict on what was measured, not a failure

    def __post_init__(self):
        self.key = self.key or self.scenario


def _counted(n: int | None, assumed: int, what: str) -> tuple[int, str]:
    return (n, f"{n} {what}") if n is not None else (assumed, f"{assumed} {what} (assumed: the binaries are not built yet)")


def plan(dry_run=None, micro_count=count_micro_benchmarks, costs_rows=None, soak_models=count_soak_models,
         config_path: str = CONFIG) -> list[Step] | str:
    """The steps of a reproduce-all, or a message saying why there is no plan. dry_run(name)
    returns `cbench sweep NAME --dry-run`'s output; micro_count(), costs_rows() and soak_models()
    the number of benchmarks, costs rows and soak models (None when unknown)."""
    from cbenchlib.cmd import micro as cli_micro
    from cbenchlib.cmd import soak as cli_soak
    from cbenchlib.format import costs as costs_format
    if dry_run is None:
        def dry_run(name):
            out = subprocess.run(CBENCH + ["sweep", name, "--dry-run"], cwd=REPO, capture_output=True, text=True)
            return out.stdout + out.stderr
    if costs_rows is None:
        # Counted against the connections run listed now: this sitting's has the same rows.
        def costs_rows():
            return count_costs_rows(listed_run(_read(config_path), "connections"))
    runs_dir, cal_dir = os.path.join(REPO, "results", "runs"), os.path.join(REPO, "results", "calibration")
    steps = []
    for name in scenarios():
        text = dry_run(name)
        est = estimate_from_dry_run(text)
        if est is None:
            return f"`cbench sweep {name} --dry-run` gave no estimate:\n{text}"
        steps.append(Step(f"sweep {name}", ["sweep", name], est, runs_dir, f"-{name}", name))
    n, what = _counted(micro_count(), MICRO_BENCHMARKS_ASSUMED, "benchmarks")
    steps.append(Step("micro", ["micro"], micro_estimate_s(n, cli_micro.DEFAULT_REPETITIONS, cli_micro.DEFAULT_MIN_TIME_S),
                      runs_dir, f"-{MICRO_SCENARIO}", MICRO_SCENARIO,
                      f"{what} x {cli_micro.DEFAULT_REPETITIONS} repetitions of at least {cli_micro.DEFAULT_MIN_TIME_S:g} s"))
    n, what = _counted(costs_rows(), COSTS_ROWS_ASSUMED, "rows")
    steps.append(Step("costs", list(COSTS_ARGV), costs_estimate_s(n, True, costs_format.DEFAULT_REQUESTS),
                      runs_dir, f"-{COSTS_SCENARIO}", COSTS_SCENARIO,
                      f"{what} x {costs_runs_per_row(True, costs_format.DEFAULT_REQUESTS)} server runs"
                      f" of about {COSTS_RUN_S:g} s"))
    steps.append(Step("calibrate", ["calibrate"], CALIBRATE_ESTIMATE_S, cal_dir, "-calibrate", CALIBRATE_SECTION))
    n, what = _counted(soak_models(), SOAK_MODELS_ASSUMED, "models")
    # The soak exits 1 when a model grows, dies or stops answering: a finding its run records.
    steps.append(Step("soak", ["soak"], soak_estimate_s(n, cli_soak.REFERENCE_DURATION_S),
                      os.path.join(REPO, cli_soak.DEFAULT_OUT), f"-{SOAK_SCENARIO}", SOAK_SCENARIO,
                      f"{what} x {cli_soak.REFERENCE_DURATION_S:g} s; alone, --only soak, in a sitting of its own",
                      judged_exit=1))
    return steps


def selection_names(steps: list[Step]) -> list[str]:
    """What --only and --skip accept: every step's key, and SWEEPS for every sweep."""
    return [st.key for st in steps] + [SWEEPS]


def _expand(steps: list[Step], names: list[str]) -> set[str]:
    keys = set()
    for n in names:
        keys |= {st.key for st in steps if st.argv[0] == "sweep"} if n == SWEEPS else {n}
    return keys


def select(steps: list[Step], only: list[str] | None, skip: list[str] | None) -> list[Step] | str:
    """The steps --only (default: all) names, less those --skip names, in plan order; or a message
    naming an unknown name."""
    known = selection_names(steps)
    for n in (only or []) + (skip or []):
        if n not in known:
            return f"no step named {n!r}; steps: {', '.join(known)}"
    keep = _expand(steps, only) if only else {st.key for st in steps}
    keep -= _expand(steps, skip or [])
    chosen = [st for st in steps if st.key in keep]
    return chosen or "--only and --skip leave no step to run"


def newest(parent: str, before: set[str], suffix: str) -> str | None:
    if not os.path.isdir(parent):
        return None
    new = sorted(d for d in os.listdir(parent) if d not in before and d.endswith(suffix))
    return os.path.join(parent, new[-1]) if new else None


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def listed_run(config_text: str, scenario: str) -> str | None:
    """The run the first [sections.X] of SCENARIO lists (run = "..." not empty), or None."""
    for b in re.split(r"(?m)^(?=\[sections\.)", config_text):
        if re.search(rf'(?m)^scenario\s*=\s*"{re.escape(scenario)}"', b):
            m = re.search(r'(?m)^run\s*=\s*"([^"]+)"', b)
            if m:
                return m.group(1)
    return None


_RUN_REF = re.compile(r"\{run:([A-Za-z0-9_.-]+)\}")


def resolve_argv(argv: list[str], made: dict[str, str], config_text: str) -> list[str] | str:
    """ARGV with each "{run:SCENARIO}" replaced by the run this sitting made of SCENARIO (MADE),
    else the one the config lists; or a message naming the scenario that has neither."""
    out = []
    for a in argv:
        m = _RUN_REF.fullmatch(a)
        if m:
            run = made.get(m.group(1)) or listed_run(config_text, m.group(1))
            if run is None:
                return f"needs a run of {m.group(1)}: none made in this sitting and none listed in reference-runs.toml"
            a = run
        out.append(a)
    return out


def record_run(config_text: str, scenario: str, run_dir: str) -> tuple[str, list[str]]:
    """set_run, or when no section lists SCENARIO, the text with a new [sections.SCENARIO] that
    lists RUN_DIR appended (a run is never measured without being listed)."""
    text, changed = set_run(config_text, scenario, run_dir)
    if changed:
        return text, changed
    text = config_text.rstrip("\n") + f'\n\n[sections.{scenario}]\nscenario = "{scenario}"\nrun = "{run_dir}"\n'
    return text, [scenario]


def run_identity(run_dir: str, root: str = REPO) -> tuple[str | None, str]:
    """(git commit, machine text) that RUN_DIR's meta.json records (a calibration directory's, its
    first trial's: calibration.env_run_dir, as the report's set check reads it). (None, "") when
    none is recorded."""
    full = calibration_format.env_run_dir(run_dir if os.path.isabs(run_dir) else os.path.join(root, run_dir))
    try:
        env = (resultio.read_meta(full).get("env") or {}) if full else {}
    except resultio.ResultsFormatError:
        return None, ""
    if not env.get("git_commit"):
        return None, ""
    machine = ", ".join(str(x) for x in (env.get("cpu_model"), f"{env.get('cpu_count')} CPUs",
                                         f"kernel {env.get('kernel')}") if x)
    return env["git_commit"], machine


def retire_other_commits(config_text: str, commit: str, identity=run_identity) -> tuple[str, list[str]]:
    """The reference-runs.toml text in which every section whose run was made from another commit
    than COMMIT lists run = "" and keeps that run as kept = (with kept_machine): REPORT.md is one
    set of one commit and one machine, so a section not remade in this sitting renders as "not yet
    remade" instead of refusing the set. Runs whose commit is not recorded are left for the
    report's own check. Returns the text and the sections retired."""
    out, retired = [], []
    for b in re.split(r"(?m)^(?=\[sections\.)", config_text):
        m = re.match(r"\[sections\.([A-Za-z0-9_.-]+)\]", b)
        run = re.search(r'(?m)^run\s*=\s*"([^"]*)"', b) if m else None
        if run and run.group(1):
            made_from, machine = identity(run.group(1))
            if made_from is not None and made_from != commit:
                b = re.sub(r'(?m)^(kept|kept_machine)\s*=.*\n?', "", b)
                b = re.sub(r'(?m)^run\s*=\s*"[^"]*".*$',
                           f'run = ""\nkept = "{run.group(1)}"\nkept_machine = "{machine} (commit {made_from[:8]})"',
                           b, count=1)
                retired.append(m.group(1))
        out.append(b)
    return "".join(out), retired


def preflight(git: dict, busy: list[tuple[int, str, float]], load1: float, allow_busy: bool = False) -> list[str]:
    """Why a sitting may not start (empty: it may): a tree that is not one clean commit (the
    sweep's rule: envinfo.git_info leaves results/ out, so an uncommitted run a minute old does not
    count), or other processes busy beside it (hostcheck.busy_processes; LOAD1 is shown with
    them), unless ALLOW_BUSY."""
    problems = []
    if git.get("git_dirty") is not False:
        why = ", ".join(git.get("git_dirty_files", [])) or git.get("git_error", "git status failed")
        problems.append(f"the tree is dirty ({why}); a reference set comes from one clean commit")
    if busy and not allow_busy:
        procs = ", ".join(f"{comm} (pid {pid}, {share:.0%} of a CPU)" for pid, comm, share in busy[:6])
        problems.append(f"other processes are busy ({procs}; load average {load1:.2f}); a sitting beside them"
                        " would be disturbed: wait for them, or --allow-busy")
    return problems


def execute(steps: list[Step], config_path: str = CONFIG, run=subprocess.run, report: bool = True,
            commit: str | None = None, identity=run_identity) -> int:
    """Run each step in order; after each, point reference-runs.toml at the run it made (written
    at once, so an interrupted sitting keeps what it measured); at the end, unless not REPORT,
    retire the sections made from another commit than COMMIT (the sitting's; retire_other_commits)
    and `make report`. RUN is subprocess.run (tests pass a fake; IDENTITY, run_identity's)."""
    made: dict[str, str] = {}
    for st in steps:
        argv = resolve_argv(st.argv, made, _read(config_path))
        if isinstance(argv, str):
            print(f"reproduce-all: {st.name} {argv}; runs made so far: {sorted(made.values())}", file=sys.stderr)
            return 1
        before = set(os.listdir(st.parent)) if os.path.isdir(st.parent) else set()
        print(f"== {st.name}", flush=True)
        rc = run(CBENCH + argv, cwd=REPO).returncode
        d = newest(st.parent, before, st.suffix)
        if rc != 0 and not (rc == st.judged_exit and d is not None):
            print(f"reproduce-all: {st.name} failed; runs made so far: {sorted(made.values())}", file=sys.stderr)
            return 1
        if rc != 0:
            print(f"reproduce-all: {st.name} exited {rc}: its verdict on what it measured (its run is kept)", flush=True)
        if d is None:
            print(f"reproduce-all: {st.name} made no run directory ending in {st.suffix} under"
                  f" {os.path.relpath(st.parent, REPO)}; reference-runs.toml not changed for it", file=sys.stderr)
            continue
        made[st.scenario] = os.path.relpath(d, REPO)
        text, changed = record_run(_read(config_path), st.scenario, made[st.scenario])
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"reference-runs.toml: {', '.join(changed)} -> {made[st.scenario]}", flush=True)
    if not report:
        print("reproduce-all: not rendered (--no-report); `make report` renders the set", flush=True)
        return 0
    if commit:
        text, retired = retire_other_commits(_read(config_path), commit, identity)
        if retired:
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"reference-runs.toml: not remade in a sitting of {commit[:8]}, kept and shown as not yet"
                  f" remade: {', '.join(retired)}", flush=True)
    print("== make report", flush=True)
    return run(["make", "report"], cwd=REPO).returncode


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its expected time; run nothing")
    ap.add_argument("--only", type=_names, metavar="LIST",
                    help=f"run only these steps (comma-separated: a scenario, micro, costs, calibrate, soak, {SWEEPS})")
    ap.add_argument("--skip", type=_names, metavar="LIST", help="run every step but these (the same names)")
    ap.add_argument("--budget-min", type=float, metavar="N",
                    help="refuse to start (with --dry-run: exit 1) when the worst case of the selected steps exceeds N minutes")
    # A set made in two sittings (the soak apart) must share one commit: rendering after the first
    # would change REPORT.md, and committing it would start the second sitting from another commit.
    ap.add_argument("--no-report", action="store_true",
                    help="do not run `make report` at the end (the first of two sittings of one commit)")
    ap.add_argument("--allow-busy", action="store_true",
                    help="start although other processes are busy (the runs will be marked disturbed)")
    args = ap.parse_args(argv)
    if args.budget_min is not None and args.budget_min <= 0:
        print("reproduce-all: --budget-min must be a positive number of minutes", file=sys.stderr)
        return 2
    known = scenarios() + [MICRO_SCENARIO, COSTS_SCENARIO, CALIBRATE_SECTION, SOAK_SCENARIO, SWEEPS]
    unknown = [n for n in (args.only or []) + (args.skip or []) if n not in known]
    if unknown:  # before the plan, which asks every sweep for its dry run
        print(f"reproduce-all: no step named {unknown[0]!r}; steps: {', '.join(known)}", file=sys.stderr)
        return 2
    steps = plan()
    if isinstance(steps, str):
        print(f"reproduce-all: {steps}", file=sys.stderr)
        return 1
    steps = select(steps, args.only, args.skip)
    if isinstance(steps, str):
        print(f"reproduce-all: {steps}", file=sys.stderr)
        return 2
    total = sum(st.estimate_s for st in steps)
    print(f"reproduce-all: expected time {fmt(total)} (sum of the estimates, worst case):")
    for st in steps:
        print(f"  {st.name:30s} {fmt(st.estimate_s)}" + (f"  ({st.note})" if st.note else ""))
    for name, why in EXCLUDED.items():
        print(f"  (not run: {name}: {why})")
    over = args.budget_min is not None and total > args.budget_min * 60
    if args.budget_min is not None:
        print(f"  budget {args.budget_min:g} min: " + (f"exceeded by {fmt(total - args.budget_min * 60)}" if over else "fits"))
    # A dry run over the budget fails too, so that `make reproduce-all` stops before its build.
    if over:
        print(f"reproduce-all: the worst case {fmt(total)} exceeds --budget-min {args.budget_min:g};"
              " select fewer steps with --only or --skip", file=sys.stderr)
        return 1
    if args.dry_run:
        return 0
    problems = preflight(envinfo.git_info(REPO), [] if args.allow_busy else hostcheck.busy_processes(),
                         os.getloadavg()[0], args.allow_busy)
    if problems:
        print(f"reproduce-all: not starting: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return execute(steps, report=not args.no_report, commit=envinfo.git_info(REPO).get("git_commit"))


if __name__ == "__main__":
    sys.exit(main())
