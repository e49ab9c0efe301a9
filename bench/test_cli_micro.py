#!/usr/bin/python3
"""ctest micro_cli_quick: `cbench micro --quick` writes a well-formed run, and report/plot read it.

Runs every *_bench binary of --bench-dir once, briefly (a few seconds), into a fresh run under
--scratch (removed first), with a lock file of its own. Checks: exit status 0; exactly one run
directory; meta.json ("kind": "micro", an end time, the environment, one entry per binary with
exit status 0); each binary's Google Benchmark JSON has every benchmark its --benchmark_list_tests
names, none skipped with an error; `cbench report RUN` writes report.md with a table per
subject; `cbench plot RUN` writes the PNG and SVG charts. Asserts no timings.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CBENCH = [sys.executable, os.path.join(REPO, "scripts", "cbench")]


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(argv, timeout_s=90):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    if out.returncode != 0:
        fail(f"{' '.join(argv)} exited with {out.returncode}\nstdout:\n{out.stdout[-3000:]}\n"
             f"stderr:\n{out.stderr[-3000:]}")
    return out.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--scratch", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    os.makedirs(args.scratch)
    out_parent = os.path.join(args.scratch, "runs")

    binaries = sorted(n for n in os.listdir(args.bench_dir)
                      if n.endswith("_bench") and os.access(os.path.join(args.bench_dir, n), os.X_OK))
    if not binaries:
        fail(f"no *_bench binaries in {args.bench_dir}")
    expected = {}
    for b in binaries:
        listing = run([os.path.join(args.bench_dir, b), "--benchmark_list_tests=true"])
        expected[b] = [ln.strip() for ln in listing.splitlines() if ln.strip()]

    run(CBENCH + ["micro", "--quick", "--bench-dir", args.bench_dir, "--out", out_parent,
                  "--lock-file", os.path.join(args.scratch, "bench.lock"), "--lock-timeout", "5"])
    runs = os.listdir(out_parent)
    if len(runs) != 1 or not runs[0].endswith("-micro"):
        fail(f"expected one <UTC time>-micro directory under {out_parent}, found {runs}")
    run_dir = os.path.join(out_parent, runs[0])

    with open(os.path.join(run_dir, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    for key, want in (("kind", "micro"), ("run_id", runs[0]), ("quick", True), ("interrupted", None)):
        if meta.get(key) != want:
            fail(f"meta.json {key} = {meta.get(key)!r}, expected {want!r}")
    if not meta.get("ended_utc") or not meta.get("started_utc"):
        fail("meta.json lacks started_utc or ended_utc")
    env = meta.get("env") or {}
    for key in ("cpu_model", "kernel", "compiler", "server_cpus", "versions", "git_commit"):
        if key not in env:
            fail(f"meta.json env lacks {key}")
    listed = {b["name"]: b for b in meta["micro"]["binaries"]}
    if sorted(listed) != binaries:
        fail(f"meta.json lists {sorted(listed)}, the bench directory has {binaries}")

    for b in binaries:
        entry = listed[b]
        if entry.get("exit_status") != 0:
            fail(f"{b} exited with {entry.get('exit_status')}; see {run_dir}/{entry.get('log')}")
        with open(os.path.join(run_dir, entry["file"]), encoding="utf-8") as f:
            doc = json.load(f)
        got = [x for x in doc.get("benchmarks", []) if x.get("run_type") == "iteration"]
        errors = [f"{x['name']}: {x.get('error_message')}" for x in got if x.get("error_occurred")]
        if errors:
            fail(f"{b}: benchmarks skipped with an error: {errors}")
        names = [x["name"] for x in got]
        if names != expected[b]:
            fail(f"{b}: JSON has {names}, --benchmark_list_tests says {expected[b]}")
        for x in got:
            if not (x.get("iterations", 0) > 0 and x.get("real_time", 0) > 0):
                fail(f"{b}: {x['name']} has no iterations or no time: {x}")

    run(CBENCH + ["report", run_dir])
    with open(os.path.join(run_dir, "report.md"), encoding="utf-8") as f:
        report = f.read()
    for b in binaries:
        if f"(`bench/{b}.cpp`)" not in report:
            fail(f"report.md has no section for {b}")
    for name in expected.values():
        for n in name:
            shown = n.replace("/real_time", "").split("/iterations:")[0]
            if f"`{shown}" not in report:
                fail(f"report.md does not show {n}")
    for chart in ("micro-time-per-op", "micro-thread-memory"):
        png = os.path.join(run_dir, "charts", f"{chart}.png")
        svg = os.path.join(run_dir, "charts", f"{chart}.svg")
        with open(png, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                fail(f"{png} is not a PNG")
        with open(svg, encoding="utf-8") as f:
            if "<svg" not in f.read():
                fail(f"{svg} is not an SVG")
        if f"charts/{chart}.png" not in report:
            fail(f"report.md does not link {chart}.png")
    run(CBENCH + ["plot", run_dir])  # drawing again over existing charts works too
    print(f"ok: {run_dir}: {sum(len(v) for v in expected.values())} benchmarks in {len(binaries)} binaries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
