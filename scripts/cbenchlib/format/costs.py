"""The costs run format (`cbench costs`), both directions: the one owner of costs.jsonl.

A costs run is a directory results/runs/<UTC time>-costs/ with

- meta.json: {"schema", "kind": "costs", "run_id", "started_utc", "ended_utc", "env" (as a
  sweep records it), "costs": {"requests": [N1, N2], "connections": C, "cpus", "rows_from",
  "valgrind", "strace"}, "harness": {"command"}};
- costs.jsonl: one record per server row, in the order measured:

    {"row": {row as points.jsonl writes it: key, model, threads, queues, gvl, backend, extra_args, kind},
     "server_argv": [...],           # cbench-server's arguments (port 0), without wrappers
     "requests": [N1, N2], "connections": C,
     "instructions": [I(N1), I(N2)] or null,          # callgrind Ir of the whole process
     "instructions_repeat": [I(N1), I(N2)] or absent, # a second pair, the repeatability check
     "syscalls": [{name: calls}, {name: calls}] or null,  # strace -f -c, every thread
     "ctx_switches": [S(N1), S(N2)] or null,          # wait4 rusage nvcsw + nivcsw
     "failures": {"instructions"|"syscalls"|"ctx_switches": reason},
     "derived": {"instructions_per_req", "instructions_per_req_repeat", "repeat_diff_pct",
                 "syscalls_per_req", "syscalls_by_type_per_req": {name: per request},
                 "ctx_switches_per_req"}}

Every per-request figure is the difference of the two runs over the difference of their
request counts (`per_request`), so start-up and shutdown cancel (run/costs.py says what does
not). Readers take the raw pairs and may derive again; `derive` is the only writer of "derived".
"""
from __future__ import annotations

import json
import os
import re

KIND = "costs"
FILE = "costs.jsonl"
DEFAULT_REQUESTS = (2000, 4000)


def per_request(counts: tuple[int, int], values: tuple[float, float]) -> float:
    """(values[1] - values[0]) / (counts[1] - counts[0]); ValueError unless counts[1] > counts[0]."""
    n1, n2 = counts
    if not n2 > n1:
        raise ValueError(f"request counts must increase, got {n1} then {n2}")
    return (values[1] - values[0]) / (n2 - n1)


def row_key(row: dict) -> str:
    """The row's key as a scenario names it ('worker-pool t1 shared gvl'), unless the row has one."""
    if row.get("key"):
        return row["key"]
    parts = [f"{row['model']} t{row.get('threads', 1)}"]
    parts += [v for v in (row.get("queues"), "gvl" if row.get("gvl") else None, row.get("backend")) if v]
    return " ".join(parts + list(row.get("extra_args") or []))


def server_argv(server_bin: str, row: dict) -> list[str]:
    """cbench-server's argv for a model or instrument row, on 127.0.0.1 port 0."""
    argv = [server_bin, "--model", row["model"], "--host", "127.0.0.1", "--port", "0",
            "--threads", str(row.get("threads") or 1)]
    if row.get("queues"):
        argv += ["--queues", row["queues"]]
    if row.get("gvl"):
        argv.append("--gvl")
    if row.get("backend"):
        argv += ["--backend", row["backend"]]
    return argv + list(row.get("extra_args") or [])


def new_record(row: dict, argv: list[str], counts: tuple[int, int], connections: int) -> dict:
    """A record with nothing measured yet."""
    row = dict(row, key=row_key(row))
    return {"row": row, "server_argv": list(argv), "requests": list(counts), "connections": connections,
            "instructions": None, "syscalls": None, "ctx_switches": None, "failures": {}}


def _round(x: float) -> float:
    return round(x, 4)


def derive(rec: dict) -> dict:
    """REC with "derived" computed from its raw pairs (a missing pair leaves its figures None)."""
    counts = tuple(rec["requests"])
    d = {"instructions_per_req": None, "instructions_per_req_repeat": None, "repeat_diff_pct": None,
         "syscalls_per_req": None, "syscalls_by_type_per_req": None, "ctx_switches_per_req": None}
    if rec.get("instructions"):
        d["instructions_per_req"] = _round(per_request(counts, rec["instructions"]))
    if rec.get("instructions_repeat"):
        d["instructions_per_req_repeat"] = _round(per_request(counts, rec["instructions_repeat"]))
        if d["instructions_per_req"]:
            d["repeat_diff_pct"] = _round(100.0 * abs(d["instructions_per_req_repeat"] - d["instructions_per_req"])
                                          / abs(d["instructions_per_req"]))
    if rec.get("syscalls"):
        a, b = rec["syscalls"]
        by = {name: _round(per_request(counts, (a.get(name, 0), b.get(name, 0)))) for name in sorted(set(a) | set(b))}
        d["syscalls_by_type_per_req"] = {k: v for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v != 0}
        d["syscalls_per_req"] = _round(per_request(counts, (sum(a.values()), sum(b.values()))))
    if rec.get("ctx_switches"):
        d["ctx_switches_per_req"] = _round(per_request(counts, rec["ctx_switches"]))
    return dict(rec, derived=d)


def parse_callgrind_totals(text: str) -> int | None:
    """The Ir total of a callgrind output file ("summary: N" or "totals: N"), or None."""
    m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def parse_strace_summary(text: str) -> dict[str, int]:
    """{name: calls} from `strace -c` output (the table under '% time ... syscall'; the total line dropped)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 5 or not f[0].replace(".", "", 1).isdigit() or f[-1] == "total":
            continue
        # columns: % time, seconds, usecs/call, calls, [errors,] syscall
        calls = f[3]
        if calls.isdigit():
            out[f[-1]] = out.get(f[-1], 0) + int(calls)
    return out


def dump(records: list[dict]) -> str:
    """costs.jsonl's text: one JSON object per line."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def load(text: str) -> list[dict]:
    """The records of a costs.jsonl text, each derived again from its raw pairs (so a reader
    never trusts a stale "derived")."""
    return [derive(json.loads(line)) for line in text.splitlines() if line.strip()]


def read_run(run_dir: str) -> tuple[dict, list[dict]]:
    """(meta, records) of a costs run directory; ValueError if it is not one."""
    with open(os.path.join(run_dir, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("kind") != KIND:
        raise ValueError(f"{run_dir} is not a costs run (meta.json kind {meta.get('kind')!r})")
    with open(os.path.join(run_dir, FILE), encoding="utf-8") as f:
        return meta, load(f.read())


def by_key(records: list[dict]) -> dict[str, dict]:
    """{row key: record}."""
    return {r["row"]["key"]: r for r in records}
