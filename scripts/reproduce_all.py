#!/usr/bin/python3
"""`make reproduce-all` (issue 19): every scenario's reference sweep and the calibration, in
sequence, from the current clean commit; then results/reference-runs.toml points each section at
its new run and `make report` renders REPORT.md from them.

It prints its expected total time first: the sum of each sweep's `cbench sweep --dry-run`
estimate (the worst case where a sweep has a sequential design) and the calibration's.
`--dry-run` prints the plan and the time and runs nothing. Each sweep takes the bench lock itself
and refuses a dirty tree (its own rule), so a reference set made here shares one commit.
`make reproduce` stays the ever-table run alone.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CBENCH = [sys.executable, os.path.join(REPO, "scripts", "cbench")]
CONFIG = os.path.join(REPO, "results", "reference-runs.toml")
# Scenarios that are not reference sweeps, and why.
EXCLUDED = {"smoke": "the harness's smoke test, not a reference sweep"}
# cbench calibrate's default (10 A/A and A/B trials): its help says about 6-7 minutes; no dry-run.
CALIBRATE_ESTIMATE_S = 7 * 60
CALIBRATE_SECTION = "calibrate"


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


def newest(parent: str, before: set[str], suffix: str) -> str | None:
    if not os.path.isdir(parent):
        return None
    new = sorted(d for d in os.listdir(parent) if d not in before and d.endswith(suffix))
    return os.path.join(parent, new[-1]) if new else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its expected time; run nothing")
    args = ap.parse_args(argv)
    plan, total = [], CALIBRATE_ESTIMATE_S
    for name in scenarios():
        out = subprocess.run(CBENCH + ["sweep", name, "--dry-run"], cwd=REPO, capture_output=True, text=True)
        est = estimate_from_dry_run(out.stdout + out.stderr)
        if est is None:
            print(f"reproduce-all: `cbench sweep {name} --dry-run` gave no estimate:\n{out.stderr}", file=sys.stderr)
            return 1
        plan.append((name, est))
        total += est
    print(f"reproduce-all: expected time {fmt(total)} (sum of the dry-run estimates, worst case):")
    for name, est in plan:
        print(f"  sweep {name:24s} {fmt(est)}")
    print(f"  calibrate {'':20s} {fmt(CALIBRATE_ESTIMATE_S)}")
    for name, why in EXCLUDED.items():
        print(f"  (not run: {name}: {why})")
    if args.dry_run:
        return 0
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    if dirty.strip():
        print("reproduce-all: the tree is dirty; a reference set comes from one clean commit", file=sys.stderr)
        return 1
    runs_dir, cal_dir = os.path.join(REPO, "results", "runs"), os.path.join(REPO, "results", "calibration")
    made = []
    for name, _est in plan:
        before = set(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else set()
        print(f"== sweep {name}", flush=True)
        if subprocess.run(CBENCH + ["sweep", name], cwd=REPO).returncode != 0:
            print(f"reproduce-all: sweep {name} failed; runs made so far: {made}", file=sys.stderr)
            return 1
        d = newest(runs_dir, before, f"-{name}")
        if d:
            made.append((name, os.path.relpath(d, REPO)))
    before = set(os.listdir(cal_dir)) if os.path.isdir(cal_dir) else set()
    print("== calibrate", flush=True)
    if subprocess.run(CBENCH + ["calibrate"], cwd=REPO).returncode != 0:
        print(f"reproduce-all: calibrate failed; runs made: {made}", file=sys.stderr)
        return 1
    d = newest(cal_dir, before, "-calibrate")
    if d:
        made.append((CALIBRATE_SECTION, os.path.relpath(d, REPO)))
    with open(CONFIG, encoding="utf-8") as f:
        text = f.read()
    for scen, d in made:
        text, changed = set_run(text, scen, d)
        print(f"reference-runs.toml: {', '.join(changed) or '(no section lists scenario ' + scen + ')'} -> {d}")
    with open(CONFIG, "w", encoding="utf-8") as f:
        f.write(text)
    print("== make report", flush=True)
    return subprocess.run(["make", "report"], cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
