#!/usr/bin/python3
"""`make reproduce-all`: every scenario's reference sweep, the microbenchmarks and the
calibration, in sequence, from the current clean commit; then results/reference-runs.toml points
each section at its new run and `make report` renders REPORT.md from them.

It prints its expected total time first: the sum of each sweep's `cbench sweep --dry-run`
estimate (the worst case where a sweep has a sequential design), the microbenchmarks' (from
`cbench micro`'s defaults and the number of benchmarks the built binaries list) and the
calibration's. `--dry-run` prints the plan and the time and runs nothing. Each sweep takes the
bench lock itself and refuses a dirty tree (its own rule), so a reference set made here shares one
commit. `make reproduce` stays the ever-table run alone.

The plan is built first (plan(): one Step per command, with its estimate and where its run
directory appears), then executed in order (execute()).
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
from cbenchlib.run import envinfo  # noqa: E402  (after the path it is found on)
from cbenchlib.cmd import calibrate  # noqa: E402

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


@dataclass
class Step:
    """One command of the plan: what it runs, its expected time, and where its run appears."""
    name: str            # what the plan prints
    argv: list[str]      # the cbench arguments
    estimate_s: int
    parent: str          # the directory its run directory is created in
    suffix: str          # the run directory's name ends with this
    scenario: str        # the reference-runs.toml scenario whose sections get the new run
    note: str = ""


def plan(dry_run=None, micro_count=count_micro_benchmarks) -> list[Step] | str:
    """The steps of a reproduce-all, or a message saying why there is no plan. dry_run(name)
    returns `cbench sweep NAME --dry-run`'s output; micro_count() the number of benchmarks (None
    when unknown)."""
    from cbenchlib.cmd import micro as cli_micro
    if dry_run is None:
        def dry_run(name):
            out = subprocess.run(CBENCH + ["sweep", name, "--dry-run"], cwd=REPO, capture_output=True, text=True)
            return out.stdout + out.stderr
    runs_dir, cal_dir = os.path.join(REPO, "results", "runs"), os.path.join(REPO, "results", "calibration")
    steps = []
    for name in scenarios():
        text = dry_run(name)
        est = estimate_from_dry_run(text)
        if est is None:
            return f"`cbench sweep {name} --dry-run` gave no estimate:\n{text}"
        steps.append(Step(f"sweep {name}", ["sweep", name], est, runs_dir, f"-{name}", name))
    n = micro_count()
    counted = n is not None
    n = n if counted else MICRO_BENCHMARKS_ASSUMED
    steps.append(Step("micro", ["micro"], micro_estimate_s(n, cli_micro.DEFAULT_REPETITIONS, cli_micro.DEFAULT_MIN_TIME_S),
                      runs_dir, f"-{MICRO_SCENARIO}", MICRO_SCENARIO,
                      f"{n} benchmarks{'' if counted else ' (assumed: the binaries are not built yet)'} x"
                      f" {cli_micro.DEFAULT_REPETITIONS} repetitions of at least {cli_micro.DEFAULT_MIN_TIME_S:g} s"))
    steps.append(Step("calibrate", ["calibrate"], CALIBRATE_ESTIMATE_S, cal_dir, "-calibrate", CALIBRATE_SECTION))
    return steps


def newest(parent: str, before: set[str], suffix: str) -> str | None:
    if not os.path.isdir(parent):
        return None
    new = sorted(d for d in os.listdir(parent) if d not in before and d.endswith(suffix))
    return os.path.join(parent, new[-1]) if new else None


def execute(steps: list[Step]) -> int:
    """Run each step in order, point reference-runs.toml at the runs made, then `make report`."""
    made = []
    for st in steps:
        before = set(os.listdir(st.parent)) if os.path.isdir(st.parent) else set()
        print(f"== {st.name}", flush=True)
        if subprocess.run(CBENCH + st.argv, cwd=REPO).returncode != 0:
            print(f"reproduce-all: {st.name} failed; runs made so far: {made}", file=sys.stderr)
            return 1
        d = newest(st.parent, before, st.suffix)
        if d:
            made.append((st.scenario, os.path.relpath(d, REPO)))
    with open(CONFIG, encoding="utf-8") as f:
        text = f.read()
    for scen, d in made:
        text, changed = set_run(text, scen, d)
        print(f"reference-runs.toml: {', '.join(changed) or '(no section lists scenario ' + scen + ')'} -> {d}")
    with open(CONFIG, "w", encoding="utf-8") as f:
        f.write(text)
    print("== make report", flush=True)
    return subprocess.run(["make", "report"], cwd=REPO).returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its expected time; run nothing")
    args = ap.parse_args(argv)
    steps = plan()
    if isinstance(steps, str):
        print(f"reproduce-all: {steps}", file=sys.stderr)
        return 1
    total = sum(st.estimate_s for st in steps)
    print(f"reproduce-all: expected time {fmt(total)} (sum of the estimates, worst case):")
    for st in steps:
        print(f"  {st.name:30s} {fmt(st.estimate_s)}" + (f"  ({st.note})" if st.note else ""))
    for name, why in EXCLUDED.items():
        print(f"  (not run: {name}: {why})")
    if args.dry_run:
        return 0
    # The sweep's own rule (envinfo.git_info: results/ is not code, so a run made a minute ago
    # and not yet committed does not make the tree dirty); one rule for both, not a second one.
    git = envinfo.git_info(REPO)
    if git["git_dirty"] is not False:
        why = ", ".join(git.get("git_dirty_files", [])) or git.get("git_error", "git status failed")
        print(f"reproduce-all: the tree is dirty ({why}); a reference set comes from one clean commit",
              file=sys.stderr)
        return 1
    return execute(steps)


if __name__ == "__main__":
    sys.exit(main())
