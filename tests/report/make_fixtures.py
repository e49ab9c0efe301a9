#!/usr/bin/python3
"""Write the synthetic fixture runs under tests/report/fixtures/runs/ (test inputs only).

Every number here is invented to exercise the readers (reps, a client-bound point, failed
points, a torn last line, idle points, labelled ever/nio4r rows with --gvl and per-worker
queues); each meta.json says "synthetic": true. Re-run after changing this file:
    /usr/bin/python3 tests/report/make_fixtures.py
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "fixtures", "runs")

ENV = {
    "cpu_model": "Synthetic CPU @ 2.00GHz", "cpu_count": 2, "kernel": "6.1.0-synthetic-amd64",
    "compiler": "g++ 12.2.0", "cxx_flags": "-O2", "build_type": "Release",
    "server_cpus": "0", "client_cpus": "1",
    "versions": {"libev": "4.33", "libuv": "1.44.2", "boost": "1.74", "http_parser": "2.9.4",
                 "wrk": "4.1.0", "python": "3.11.2"},
    "git_commit": "0000000000000000000000000000000000000000", "git_dirty": False,
    "hostname": "synthetic",
}

PUBLISHED_LOADS = [("-t2 -c10", 2, 10), ("-t4 -c64", 4, 64), ("-t8 -c256", 8, 256), ("-t8 -c1024", 8, 1024)]
SPIN_LOADS = [("-t2 -c10", 2, 10), ("-t8 -c256", 8, 256)]
COLUMN_FACTOR = {10: 1.0, 64: 0.97, 256: 0.93, 1024: 0.88}


def row_key(model, threads, queues=None, gvl=False):
    """The sweep's default row key (scenario._row_key): "worker-pool t4 shared gvl"."""
    return f"{model} t{threads}" + (f" {queues}" if queues else "") + (" gvl" if gvl else "")


def row(label, model, threads, queues=None, gvl=False, kind="model"):
    return {"key": row_key(model, threads, queues, gvl), "label": label, "kind": kind, "model": model,
            "threads": threads, "queues": queues, "gvl": gvl, "backend": None, "extra_args": []}


SPIN = "/spin?us=10"
# (row, req/s on "/" at -c10, req/s on SPIN at -c10 or None)
EVER_ROWS = [
    (row("ever single thread", "pull-loop", 1), 100000, 20000),
    (row("ever single thread", "pull-loop", 1, gvl=True), 98000, 19600),
    (row("ever 1 worker thread", "worker-pool", 1, "shared"), 80000, 19000),
    (row("ever 1 worker thread", "worker-pool", 1, "shared", True), 76000, 18500),
    (row("ever 4 worker threads", "worker-pool", 4, "shared"), 72000, 35000),
    (row("ever 4 worker threads", "worker-pool", 4, "shared", True), 60000, 18000),
    (row("ever 8 worker threads", "worker-pool", 8, "shared"), 66000, 34000),
    (row("ever 8 worker threads", "worker-pool", 8, "shared", True), 52000, 17000),
    (row("ever 4 worker threads, separate queues", "worker-pool", 4, "per-worker"), 74000, 35500),
    (row("ever 4 worker threads, separate queues", "worker-pool", 4, "per-worker", True), 61000, 18200),
    (row("ever 8 worker threads, separate queues", "worker-pool", 8, "per-worker"), 67000, 34500),
]
NIO_ROWS = [
    (row("nio4r single thread", "epoll-reactor", 1), 90000, None),
    (row("nio4r 1 worker threads", "reactor-workers", 1, "shared"), 60000, None),
    (row("nio4r 4 worker threads", "reactor-workers", 4, "shared"), 56000, None),
    (row("nio4r 8 worker threads", "reactor-workers", 8, "shared"), 52000, None),
    (row("nio4r 4 worker threads", "reactor-workers", 4, "shared", True), 45000, None),
]
CONTEXT_ROWS = [
    (row(None, "nginx", 1, kind="peer"), 120000, None),
    (row(None, "raw-writer", 1, kind="instrument"), 150000, None),
]
IDLE_ROWS = [
    (EVER_ROWS[0][0], 2100.0, 0.0),
    (row(None, "thread-per-connection", 1), 10400.0, 1.0),
]


def scenario_text(rows):
    """A scenario file in the sweep's format (scenarios/*.toml) whose rows are these rows."""
    lines = ['# SYNTHETIC scenario text of a reader-test fixture (tests/report/make_fixtures.py)',
             'name = "ever-table"', 'repetitions = 3', '',
             '[[loads]]', 'name = "hello"', 'path = "/"', 'explicit = [',
             '  { wrk_threads = 2, connections = 10 },', '  { wrk_threads = 4, connections = 64 },',
             '  { wrk_threads = 8, connections = 256 },', '  { wrk_threads = 8, connections = 1024 },', ']', '',
             '[[loads]]', 'name = "spin"', f'path = "{SPIN}"', 'explicit = [',
             '  { wrk_threads = 2, connections = 10 },', '  { wrk_threads = 8, connections = 256 },', ']', '',
             '[[loads]]', 'name = "idle"', 'idle_connections = [1000, 10000]', '']
    spin_keys = {r["key"] for r, _, spin in EVER_ROWS if spin is not None}
    idle_keys = {r["key"] for r, _, _ in IDLE_ROWS}
    for r in rows:
        lines.append("[[rows]]")
        if r["label"]:
            lines.append(f'label = "{r["label"]}"')
        if r["kind"] != "model":
            lines.append(f'kind = "{r["kind"]}"')
        lines += [f'model = "{r["model"]}"', f'threads = {r["threads"]}']
        if r["queues"]:
            lines.append(f'queues = "{r["queues"]}"')
        if r["gvl"]:
            lines.append("gvl = true")
        if r["kind"] == "peer":
            lines.append('command = ["synthetic-peer"]')
        sets = ["hello"] + (["spin"] if r["key"] in spin_keys else []) + (["idle"] if r["key"] in idle_keys else [])
        lines += ["loads = [" + ", ".join(f'"{x}"' for x in sets) + "]", ""]
    return "\n".join(lines)


def meta(run_id, rows, env, started, ended):
    return {"schema": 1, "run_id": run_id, "synthetic": True,
            "scenario_name": "ever-table", "scenario_file": "scenarios/ever-table.toml",
            "scenario_text": scenario_text(rows), "quick": False,
            "started_utc": started, "ended_utc": ended, "env": env}


def load(key, wt, conns, path="/", pipeline=1):
    if path != "/":
        key += f" {path}"  # the sweep's load key names a path other than "/"
    return {"key": key, "set": "hello" if path == "/" else "spin", "wrk_threads": wt, "connections": conns, "pipeline": pipeline, "path": path,
            "duration_s": 10.0, "warmup_s": 2.0, "timeout_s": 10.0}


def ok_point(r, ld, rep, rps, rng, verdict="server-bound", errors=None):
    conns = ld["connections"]
    mean_us = conns / rps * 1e6
    latency = {"mean": mean_us, "stdev": mean_us * 0.8, "max": mean_us * rng.uniform(18, 24),
               "p50": mean_us * 0.9, "p75": mean_us * 1.2, "p90": mean_us * 1.8,
               "p99": mean_us * rng.uniform(2.8, 3.4), "p99.9": mean_us * 6}
    dur_us = 10_000_000
    requests = int(rps * dur_us / 1e6)
    user_per_req = 4.0 + (r["threads"] or 1) * 0.6 + (3.0 if r["gvl"] else 0.0)
    sys_per_req = 6.0 + (2.0 if r["queues"] else 0.0)
    cpu_user = user_per_req * requests / 1e6
    cpu_sys = sys_per_req * requests / 1e6
    syscalls = requests * (2.0 if r["queues"] is None else 3.5)
    ctx = requests * (0.01 if r["queues"] is None else 0.6)
    server_util = 0.99 if verdict == "server-bound" else 0.62
    client_util = 0.55 if verdict == "server-bound" else 0.99
    errs = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    errs.update(errors or {})
    return {
        "point_id": f'{r["key"]} / {ld["key"]} GET {ld["path"]} p{ld["pipeline"]}', "rep": rep,
        "row": r, "load": ld, "status": "ok", "failure": None,
        "wrk": {"requests": requests, "duration_us": dur_us, "bytes": requests * 52, "req_per_s": rps,
                "errors": errs, "latency_us": latency, "latency_is_per_batch": ld["pipeline"] > 1},
        "server": {"cpu_user_s": cpu_user, "cpu_sys_s": cpu_sys, "rss_peak_kb": 9000, "rss_final_kb": 8800,
                   "threads": (r["threads"] or 1) + 1, "ctx_voluntary": int(ctx * 0.9),
                   "ctx_involuntary": int(ctx * 0.1), "syscr": int(syscalls / 2), "syscw": int(syscalls / 2)},
        "client": {"cpu_user_s": 2.0, "cpu_sys_s": 3.0},
        "derived": {"server_cpu_us_per_req": user_per_req + sys_per_req, "server_user_us_per_req": user_per_req,
                    "server_sys_us_per_req": sys_per_req, "syscalls_per_req": syscalls / requests,
                    "ctx_switches_per_req": ctx / requests, "server_cpu_util": server_util,
                    "client_cpu_util": client_util},
        "idle": None, "verdict": verdict,
        "verdict_evidence": f"server CPU {server_util:.0%} of 1 CPU; client CPU {client_util:.0%} of 1 CPU; errors 0",
        "commands": {"server": ["taskset", "-c", "0", "build/cbench-server", "--model", r["model"] or "?"],
                     "client": ["taskset", "-c", "1", "wrk", f"-t{ld['wrk_threads']}", f"-c{conns}", "-d10s",
                                f"http://127.0.0.1:8080{ld['path']}"]},
        "started_utc": "2026-01-01T00:00:00Z", "ended_utc": "2026-01-01T00:00:12Z",
    }


def failed_point(r, ld, rep, reason):
    return {"point_id": f'{r["key"]} / {ld["key"]} GET {ld["path"]} p{ld["pipeline"]}', "rep": rep,
            "row": r, "load": ld, "status": "failed",
            "failure": {"reason": reason, "server_output_tail": "synthetic tail\n"},
            "wrk": None, "server": None, "client": None, "derived": None, "idle": None,
            "verdict": "unclear", "verdict_evidence": "no measurement", "commands": {},
            "started_utc": "2026-01-01T00:00:00Z", "ended_utc": "2026-01-01T00:00:03Z"}


def idle_point(r, n, rep, bytes_per_conn, threads_per_conn):
    rss_before = 4000
    return {"point_id": f'{r["key"]} / idle{n}', "rep": rep, "row": r,
            "load": {"key": f"idle {n}", "set": "idle", "idle_connections": n}, "status": "ok", "failure": None,
            "wrk": None, "server": {"rss_peak_kb": rss_before + int(bytes_per_conn * n / 1024)},
            "client": None, "derived": None,
            "idle": {"connections": n, "rss_before_kb": rss_before,
                     "rss_after_kb": rss_before + int(bytes_per_conn * n / 1024),
                     "threads_before": 2, "threads_after": 2 + int(threads_per_conn * n),
                     "bytes_per_conn": bytes_per_conn, "threads_per_conn": threads_per_conn,
                     "stack_size_kb": 8192 if threads_per_conn else None},
            "verdict": "unclear",
            "verdict_evidence": f"idle point, no load generator: {n} of {n} connections held;"
                                " no throughput verdict applies",
            "commands": {"server": ["taskset", "-c", "0", "build/cbench-server"]},
            "started_utc": "2026-01-01T00:00:00Z", "ended_utc": "2026-01-01T00:00:05Z"}


def write_run(run_id, m, points, torn_tail=None):
    d = os.path.join(RUNS, run_id)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(m, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "points.jsonl"), "w") as f:
        for p in points:
            f.write(json.dumps(p, sort_keys=True) + "\n")
        if torn_tail:
            f.write(torn_tail)


def run_a():
    rng = random.Random(1)
    points = []
    all_rows = EVER_ROWS + NIO_ROWS + CONTEXT_ROWS
    for rep in range(3):  # interleaved: every row once per repetition round
        for r, base, spin in all_rows:
            for key, wt, conns in PUBLISHED_LOADS:
                ld = load(key, wt, conns)
                noise = 0.20 if (r["key"] == "worker-pool t4 per-worker" and conns == 64) else 0.015
                rps = base * COLUMN_FACTOR[conns] * rng.uniform(1 - noise, 1 + noise)
                if r["key"] == "worker-pool t8 shared" and conns == 1024:
                    points.append(failed_point(r, ld, rep, "server exited with status -11"))
                    continue
                if r["key"] == "worker-pool t8 per-worker" and conns == 256 and rep == 1:
                    points.append(failed_point(r, ld, rep, "server not ready within 10 s"))
                    continue
                verdict, errors = "server-bound", None
                if r["kind"] == "instrument" or (r["key"] == "nginx t1" and conns == 1024):
                    verdict = "client-bound"
                if r["key"] == "reactor-workers t8 shared" and conns == 1024 and rep == 2:
                    verdict, errors = "error-bound", {"timeout": 812}
                points.append(ok_point(r, ld, rep, rps, rng, verdict, errors))
            if spin is not None:
                for key, wt, conns in SPIN_LOADS:
                    ld = load(key, wt, conns, path=SPIN)
                    rps = spin * COLUMN_FACTOR[conns] * rng.uniform(0.985, 1.015)
                    points.append(ok_point(r, ld, rep, rps, rng))
    for r, bpc, tpc in IDLE_ROWS:
        for n in (1000, 10000):
            points.append(idle_point(r, n, 0, bpc * (1.0 if n == 1000 else 0.97), tpc))
    m = meta("20260101T000000Z-ever-table-synthetic", [r for r, _, _ in all_rows + IDLE_ROWS[1:]], ENV,
             "2026-01-01T00:00:00Z", None)
    torn = json.dumps(ok_point(EVER_ROWS[0][0], load(*PUBLISHED_LOADS[0]), 3, 1.0, rng))[:180]
    write_run(m["run_id"], m, points, torn_tail=torn)


def run_b(run_id, env, started, scale_by_key, reps_by_key):
    rng = random.Random(2)
    points = []
    rows = [EVER_ROWS[0], EVER_ROWS[2], EVER_ROWS[4], CONTEXT_ROWS[0]]
    for rep in range(3):
        for r, base, _ in rows:
            if rep >= reps_by_key.get(r["key"], 3):
                continue
            for key, wt, conns in PUBLISHED_LOADS[:2]:
                ld = load(key, wt, conns)
                rps = base * scale_by_key.get(r["key"], 1.0) * COLUMN_FACTOR[conns] * rng.uniform(0.985, 1.015)
                points.append(ok_point(r, ld, rep, rps, rng))
    m = meta(run_id, [r for r, _, _ in rows], env, started, "2026-01-02T00:20:00Z")
    write_run(run_id, m, points)


def check_against_sweep_parser():
    """The fixture's scenario text must parse with the sweep's parser, giving the fixture's keys."""
    import sys
    sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
    try:
        from cbenchlib.format import scenario
    except ImportError:
        print("note: scripts/cbenchlib/scenario.py not importable; scenario text not checked")
        return
    rows = [r for r, _, _ in EVER_ROWS + NIO_ROWS + CONTEXT_ROWS + IDLE_ROWS[1:]]
    sc = scenario.parse(scenario_text(rows), "fixture")
    assert [r.key for r in sc.rows] == [r["key"] for r in rows], [r.key for r in sc.rows]


def main():
    check_against_sweep_parser()
    run_a()
    scale = {"pull-loop t1": 1.06, "worker-pool t1 shared": 1.0, "worker-pool t4 shared": 0.88, "nginx t1": 1.003}
    run_b("20260102T000000Z-ever-table-synthetic", ENV, "2026-01-02T00:00:00Z", scale,
          {"worker-pool t1 shared": 2, "nginx t1": 1})
    other = dict(ENV, kernel="6.5.0-synthetic-other")
    run_b("20260103T000000Z-other-kernel-synthetic", other, "2026-01-03T00:00:00Z", scale, {})
    print(f"wrote fixture runs under {RUNS}")


if __name__ == "__main__":
    main()
