#!/usr/bin/python3
"""The regression gate's own error rates on one metric, from real gates: --trials runs of
`cbench regress --baseline HEAD` per handicap, the candidate handicapped by a share of the
baseline's cost per request (`--handicap-ns`, calibrated CPU time burnt in every request), the
handicaps interleaved trial by trial so that each sees the same stretch of the host.

A benchmark, not a test: its rates depend on the machine (tests/harness/regress_gate.py is the
test of the gate on instructions per request, a count). For a wall-clock metric it says how often
an unchanged candidate passes (A/A, handicap 0) and how often a slower one is caught (exit status
non-zero: FAIL or undecided), with exact (Clopper-Pearson) 95% intervals from scipy.stats.

The handicap in ns is PCT% of the baseline's CPU per request at the metric's load, measured by the
first A/A gate (its regress.json). Output in OUT/<stamp>-regress-trials/: trials.jsonl (one line
per gate: handicap, exit status, verdict, slowdown interval, the gate's directory), each gate's
regress.json and regress.md under gates/, summary.json and summary.md.

Contract: the gates are `scripts/cbench regress` itself (each takes the machine-wide benchmark lock
for its sweep), on the tree's HEAD with a clean tree (the candidate's build is copied as the
baseline); nothing else may run beside it.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

from scipy import stats as sstats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CBENCH = os.path.join(REPO, "scripts", "cbench")
EXIT_WORD = {0: "pass", 1: "FAIL", 3: "undecided"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metric", default="server_cpu_us_per_req@fixed-rate", help="the gate's --metrics (one)")
    p.add_argument("--model", default="epoll-reactor")
    p.add_argument("--trials", type=int, default=10, help="gates per handicap (default 10)")
    p.add_argument("--handicaps-pct", default="0,5,10,20",
                   help="candidate handicaps as %% of the baseline's CPU per request (0: A/A; default 0,5,10,20)")
    p.add_argument("--repetitions", type=int, default=3, help="the gate's blocks (default 3)")
    p.add_argument("--threshold", type=float, default=10.0, help="the gate's threshold %% (default 10)")
    p.add_argument("--out", default=os.path.join(REPO, "results", "diagnostics"))
    a = p.parse_args(argv)
    try:
        a.handicaps = [float(x) for x in a.handicaps_pct.split(",") if x.strip()]
    except ValueError:
        p.error(f"--handicaps-pct: expected numbers separated by commas, got {a.handicaps_pct!r}")
    if not a.handicaps or a.handicaps[0] != 0 or any(h < 0 for h in a.handicaps):
        p.error("--handicaps-pct must start with 0 (the A/A that measures the cost) and hold no negative value")
    if a.trials < 1 or a.repetitions < 1:
        p.error("--trials and --repetitions must be at least 1")
    return a


def cpu_of(res: dict) -> float | None:
    """The baseline's CPU per request at the metric's load, from a gate's regress.json model entry."""
    loads = res.get("loads") or {}
    for load in ("fixed-rate", "saturated"):
        v = (loads.get(load) or {}).get("baseline_cpu_us_per_req")
        if v:
            return float(v)
    return None


def one_gate(a, handicap_ns: int, gates_dir: str, label: str) -> dict:
    argv = [sys.executable, CBENCH, "regress", "--baseline", "HEAD", "--models", a.model, "--metrics", a.metric,
            "--repetitions", str(a.repetitions), "--threshold", f"{a.threshold:g}"]
    if handicap_ns:
        argv += ["--candidate-args", f"--handicap-ns {handicap_ns}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    m = re.search(r"everything in (\S+)\)", proc.stdout)
    if not m or proc.returncode not in EXIT_WORD:
        raise SystemExit(f"regress_trials: the gate could not run (exit {proc.returncode}):\n"
                         + proc.stdout[-2000:] + proc.stderr[-2000:])
    src = m.group(1)
    dst = os.path.join(gates_dir, label)
    os.makedirs(dst)
    for name in ("regress.json", "regress.md"):
        shutil.copy2(os.path.join(src, name), dst)
    for run in glob.glob(os.path.join(src, "runs", "*")):  # the sweep's raw points, beside the verdict
        for name in ("points.jsonl", "meta.json"):
            if os.path.exists(os.path.join(run, name)):
                shutil.copy2(os.path.join(run, name), os.path.join(dst, f"sweep-{name}"))
    with open(os.path.join(src, "regress.json"), encoding="utf-8") as f:
        (res,) = json.load(f)["models"]
    slow = ((res.get("metrics") or {}).get(a.metric) or {}).get("slowdown")
    return {"label": label, "exit": proc.returncode, "gate": res["gate"], "slowdown": slow,
            "baseline_cpu_us_per_req": cpu_of(res), "gate_dir": os.path.relpath(src, REPO)}


def rate(k: int, n: int) -> dict:
    ci = sstats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact") if n else None
    return {"k": k, "n": n, "ci": [ci.low, ci.high] if ci else None}


def summarize(a, rows: list[dict], handicap_ns: dict) -> dict:
    out = {}
    for h in a.handicaps:
        got = [r for r in rows if r["handicap_pct"] == h]
        words = [r["gate"] for r in got]
        out[f"{h:g}"] = {"handicap_ns": handicap_ns[h], "trials": len(got),
                         "pass": rate(words.count("pass"), len(got)),
                         "not_passed": rate(len(got) - words.count("pass"), len(got)),
                         "fail": rate(words.count("FAIL"), len(got)),
                         "ratios": [round(r["slowdown"]["ratio"], 4) if r["slowdown"] else None for r in got]}
    return out


def render(a, meta: dict, summ: dict) -> str:
    pct = lambda r: f"{r['k']}/{r['n']} ({r['ci'][0]:.0%}-{r['ci'][1]:.0%})" if r["ci"] else "-"  # noqa: E731
    lines = [f"# The gate's error rates on {a.metric}: {a.model}, {a.repetitions} blocks, threshold +{a.threshold:g}%", "",
             f"- commit {meta['commit']}, {meta['machine']}, {meta['started']} to {meta['ended']} UTC",
             f"- baseline CPU per request {meta['baseline_cpu_us_per_req']:.2f} us (the first A/A gate);"
             " a handicap of P% burns P% of it in every candidate request (--handicap-ns)",
             f"- command: `{meta['command']}`", "",
             "| handicap | ns | passed | not passed (caught) | FAIL | slowdown ratios |", "|---|---|---|---|---|---|"]
    for h, s in summ.items():
        lines.append(f"| +{h}% | {s['handicap_ns']} | {pct(s['pass'])} | {pct(s['not_passed'])} | {pct(s['fail'])} |"
                     f" {', '.join('-' if r is None else f'{r:.3f}' for r in s['ratios'])} |")
    lines += ["", "Rates with exact 95% intervals (scipy.stats.binomtest). A/A is handicap 0: it should pass;"
              " a handicap at or above the threshold should not."]
    return "\n".join(lines) + "\n"


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} CPUs, kernel {os.uname().release}"


def main(argv=None) -> int:
    a = parse_args(argv)
    if subprocess.run(["git", "-C", REPO, "status", "--porcelain"], capture_output=True, text=True).stdout.strip():
        raise SystemExit("regress_trials: the tree has uncommitted changes; the gates compare HEAD with itself")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = os.path.join(os.path.abspath(a.out), f"{stamp}-regress-trials")
    gates_dir = os.path.join(out, "gates")
    os.makedirs(gates_dir)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"commit": commit, "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "command": "bench/regress_trials.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    rows, handicap_ns = [], {0.0: 0}
    first = one_gate(a, 0, gates_dir, "t00-h0")
    base_cpu = first["baseline_cpu_us_per_req"]
    if not base_cpu:
        raise SystemExit("regress_trials: the first A/A gate measured no CPU per request")
    meta["baseline_cpu_us_per_req"] = base_cpu
    for h in a.handicaps[1:]:
        handicap_ns[h] = round(h / 100.0 * base_cpu * 1000.0)
    rows.append({**first, "trial": 0, "handicap_pct": 0.0})
    with open(os.path.join(out, "trials.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(rows[-1]) + "\n")
        for t in range(a.trials):
            for h in a.handicaps:
                if t == 0 and h == 0:
                    continue
                r = {**one_gate(a, handicap_ns[h], gates_dir, f"t{t:02d}-h{h:g}"), "trial": t, "handicap_pct": h}
                rows.append(r)
                f.write(json.dumps(r) + "\n")
                f.flush()
                print(f"trial {t} +{h:g}%: {r['gate']} {r['slowdown'] and round(r['slowdown']['ratio'], 3)}", flush=True)
    meta["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    summ = summarize(a, rows, handicap_ns)
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "args": vars(a), "rates": summ}, f, indent=2)
    text = render(a, meta, summ)
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text + f"\nregress_trials: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
