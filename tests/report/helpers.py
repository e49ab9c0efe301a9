"""Shared helpers for the reader tests (tests/report): run cbench in-process, fixtures, goldens.

Golden files: tests/report/golden/*.md hold the exact text of a table or comparison. A test
fails on any difference. Rewriting the goldens is a separate command, not a test:
`/usr/bin/python3 tests/report/update_golden.py` (then review `git diff tests/report/golden`).
A test run with UPDATE_GOLDEN set fails, so that no test can pass by rewriting its own answer.
"""
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "scripts")
FIXTURES = os.path.join(HERE, "fixtures", "runs")
GOLDEN = os.path.join(HERE, "golden")
RUN_A = os.path.join(FIXTURES, "20260101T000000Z-ever-table-synthetic")
RUN_B = os.path.join(FIXTURES, "20260102T000000Z-ever-table-synthetic")
RUN_OTHER_KERNEL = os.path.join(FIXTURES, "20260103T000000Z-other-kernel-synthetic")

if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)


def _load_cbench():
    loader = importlib.machinery.SourceFileLoader("cbench_entry", os.path.join(SCRIPTS, "cbench"))
    spec = importlib.util.spec_from_loader("cbench_entry", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


CBENCH = _load_cbench()


def cbench(*argv):
    """(exit code, stdout, stderr) of `cbench ARGV...` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = CBENCH.main(list(argv))
        except SystemExit as exc:  # argparse errors
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def golden_path(name):
    return os.path.join(GOLDEN, name)


def check_golden(testcase, name, text):
    """Compare text with golden/NAME; fail on any difference (never rewrites the file)."""
    if os.environ.get("UPDATE_GOLDEN"):
        testcase.fail("UPDATE_GOLDEN is not honoured by the tests (a test that rewrites its golden"
                      " passes unconditionally); run /usr/bin/python3 tests/report/update_golden.py")
    path = golden_path(name)
    if not os.path.exists(path):
        testcase.fail(f"golden file {path} is missing; create it with tests/report/update_golden.py and review it")
    with open(path, encoding="utf-8") as f:
        want = f.read()
    if text != want:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            f"golden/{name}", "actual", n=1))
        testcase.fail(f"output differs from golden/{name} (tests/report/update_golden.py to accept):\n{diff[:6000]}")


def write_run(dir_path, points, meta_extra=None, torn_tail=None):
    """A minimal synthetic run directory for a test case."""
    os.makedirs(dir_path, exist_ok=True)
    meta = {"schema": 1, "run_id": os.path.basename(dir_path), "synthetic": True,
            "scenario_name": "unit", "scenario_text": "", "quick": False,
            "started_utc": "2026-01-01T00:00:00Z", "ended_utc": "2026-01-01T00:01:00Z",
            "env": {"cpu_model": "Synthetic CPU", "cpu_count": 2, "kernel": "6.1.0-synthetic",
                    "compiler": "g++ 12.2.0", "server_cpus": "0", "client_cpus": "1"}}
    meta.update(meta_extra or {})
    with open(os.path.join(dir_path, "meta.json"), "w") as f:
        json.dump(meta, f)
    with open(os.path.join(dir_path, "points.jsonl"), "w") as f:
        for p in points:
            f.write(json.dumps(p) + "\n")
        if torn_tail:
            f.write(torn_tail)
    return dir_path


def point(row_key, rps, load_key="-t2 -c10", connections=10, label=None, gvl=False, threads=1,
          model="m", queues=None, rep=0, verdict="server-bound", status="ok", path="/", kind="model",
          max_us=4270.0):
    """One points.jsonl line with the fields the readers use."""
    p = {"point_id": f"{row_key} / {load_key}", "rep": rep,
         "row": {"key": row_key, "label": label, "kind": kind, "model": model, "threads": threads,
                 "queues": queues, "gvl": gvl, "backend": None, "extra_args": []},
         "load": {"key": load_key, "wrk_threads": 2, "connections": connections, "pipeline": 1, "path": path},
         "status": status, "verdict": verdict}
    if status == "ok":
        p["wrk"] = {"req_per_s": rps, "latency_us": {"max": max_us, "p50": 100.0, "p99": 900.0, "mean": 120.0}}
    else:
        p["failure"] = {"reason": "server exited with status 1"}
    return p


def generator_point(row_key, generator, connections, rps, rep, **kw):
    """point() at `-t1 -cN`, driven by GENERATOR: the load key names a generator other than wrk
    (`-t1 -c16 [cbench-load]`), as a sweep's keys do, and load.generator records it."""
    key = f"-t1 -c{connections}" + ("" if generator == "wrk" else f" [{generator}]")
    p = point(row_key, rps, load_key=key, connections=connections, rep=rep, **kw)
    if generator != "wrk":
        p["load"]["generator"] = generator
    return p
