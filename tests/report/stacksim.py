"""Simulated runs with rows of both stacks (the Ruby replicas and the C++ models) carrying the
published labels, for the tests of the stack-aware findings, the scorecard and the fidelity
judgement. Deterministic (seeded); 3% CV per repetition unless told otherwise."""
import math
import os
import random

from helpers import point, write_run
from cbenchlib.analysis import runload

COLUMNS = (("-t2 -c10", 10), ("-t4 -c64", 64), ("-t8 -c256", 256), ("-t8 -c1024", 1024))
RUBY_MODEL = {"nio4r": ("ruby-nio4r", "ruby-nio4r-workers"), "ever": ("ruby-ever", "ruby-ever-workers")}
CPP_MODEL = {"nio4r": ("selector", "selector-pool"), "ever": ("pull-loop", "worker-pool")}


def row_fields(label, stack, gvl=False):
    """(key, kind, model, threads, queues) of a row carrying a published label on a stack."""
    fam = label.split()[0]
    single = "single" in label
    threads = 1 if single else int(label.split()[1])
    sep = "separate" in label
    if stack == "ruby":
        model = RUBY_MODEL[fam][0 if single else 1]
        if sep:
            model = "ruby-ever-queues"
        kind = "peer"
    else:
        model, kind = CPP_MODEL[fam][0 if single else 1], "model"
    queues = None if single else ("per-worker" if sep else "shared")
    key = f"{model} t{threads}" + (f" {queues}" if queues else "") + (" gvl" if gvl else "")
    return key, kind, model, threads, queues


def stack_run(dir_path, rows, reps=6, cv=0.03, seed=1, columns=COLUMNS, path="/", verdicts=None,
              user_us=None, extra_paths=(), counters=None):
    """rows: {(label, stack[, gvl]): req/s or [req/s per column]}; user_us: {(label, stack): us/request};
    counters: {(label, stack): [{counter: per request} per column]} (derived.counters_per_req);
    verdicts: {(label, stack): verdict}; extra_paths: [(path, {(label, stack[, gvl]): req/s per column})]."""
    rng = random.Random(seed)
    pts = []
    for p_path, p_rows in [(path, rows)] + list(extra_paths):
        for spec, rps in p_rows.items():
            label, stack = spec[0], spec[1]
            gvl = bool(spec[2]) if len(spec) > 2 else False
            key, kind, model, threads, queues = row_fields(label, stack, gvl)
            per_col = rps if isinstance(rps, (list, tuple)) else [rps] * len(columns)
            for (lk, conns), value in zip(columns, per_col):
                if value is None:
                    continue
                load_key = lk if p_path == "/" else f"{lk} {p_path}"
                for rep in range(reps):
                    p = point(key, value * math.exp(rng.gauss(0, cv)), load_key=load_key, connections=conns,
                              label=label, gvl=gvl, threads=threads, model=model, queues=queues, rep=rep,
                              path=p_path, kind=kind,
                              verdict=(verdicts or {}).get((label, stack), "server-bound"))
                    p["block"] = rep
                    u = (user_us or {}).get((label, stack))
                    p["derived"] = {"server_user_us_per_req": u * math.exp(rng.gauss(0, 0.02)) if u else None}
                    per_col_counters = (counters or {}).get((label, stack))
                    if per_col_counters:
                        p["derived"]["counters_per_req"] = per_col_counters[[c for c, _n in columns].index(lk)]
                        p["wrk"]["requests"] = round(p["wrk"]["req_per_s"] * 2)  # a 2 s window
                        p["load"]["duration_s"] = 2.0
                    pts.append(p)
    return runload.load_run(write_run(dir_path, pts))


def tmp_run(case, name, rows, **kw):
    """A stack_run under the test case's temporary directory (case.tmp: a TemporaryDirectory)."""
    return stack_run(os.path.join(case.tmp.name, name), rows, **kw)
