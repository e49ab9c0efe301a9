"""Published findings judged on server CPU per request at a fixed rate ("<metric>@fixed-rate",
findingdecl.at_fixed_rate): the metric is read at the run's fixed-rate load of the primary point's
shape (same path, connections and generator threads; every row offered one open-loop rate), never
at the primary point itself, and decides only where every repetition of both rows kept the offered
rate (loadgen.fixed_rate_refusal). Constructed runs with known answers, on the declarations of the
`ever` table: finding 7 (fiber against the pull loop, first metric at a fixed rate) and finding 4
(pull loop against the selector: req/s first, the fixed rate its first fallback)."""
import math
import os
import random
import tempfile
import unittest

from helpers import point, write_run

from cbenchlib.analysis import findings, runload, sequential
from cbenchlib.format import published

EVER = published.load_published("ever")
PRIMARY_KEY, PATH = "-t4 -c64 /spin?us=10", "/spin?us=10"
FIXED_KEY = "-t4 -c64 /spin?us=10 [cbench-load] @0.5xmin-peak alt500ms"
RATE = 20000.0
ROWS = {  # row key -> (label, model)
    "pull-loop t1": ("ever single thread", "pull-loop"),
    "fiber t1": (None, "fiber"),
    "selector t1": ("nio4r single thread", "selector"),
}
CLIENT_CPU = {"server-bound": 0.5, "client-bound": 0.99}


def saturated(key, rep, rps, cpu, verdict):
    label, model = ROWS[key]
    p = point(key, rps, load_key=PRIMARY_KEY, connections=64, label=label, model=model, rep=rep, path=PATH,
              verdict=verdict)
    p["load"]["wrk_threads"] = 4
    p["block"] = rep
    p["derived"] = {"server_cpu_us_per_req": cpu, "client_cpu_util": CLIENT_CPU[verdict]}
    return p


def fixed(key, rep, cpu, overloaded=False):
    label, model = ROWS[key]
    p = point(key, RATE * (0.6 if overloaded else 1.0), load_key=FIXED_KEY, connections=64, label=label,
              model=model, rep=rep, path=PATH, verdict="unclear")
    p["load"].update(wrk_threads=4, generator="cbench-load", rate=RATE, rate_common_fraction=0.5)
    p["wrk"].update(mode="open", overloaded=overloaded, rate_offered=RATE)
    p["block"] = rep
    p["derived"] = {"server_cpu_us_per_req": cpu}
    return p


def build(rows, reps=6, with_fixed=True, overloaded=None, sat_cv=0.15, fixed_cv=0.01, seed=5):
    """ROWS: {key: (saturated req/s, saturated verdict, saturated CPU us, fixed-rate CPU us)}; the
    saturated figures as noisy as a generator-bound point (SAT_CV), the fixed-rate ones quiet;
    OVERLOADED: (row key, repetition) whose fixed-rate repetition did not keep the rate."""
    rng = random.Random(seed)
    pts = []
    for key, (rps, verdict, cpu, fcpu) in rows.items():
        for rep in range(reps):
            pts.append(saturated(key, rep, rps * math.exp(rng.gauss(0, sat_cv)), cpu * math.exp(rng.gauss(0, sat_cv)),
                                 verdict))
            if with_fixed:
                pts.append(fixed(key, rep, fcpu * math.exp(rng.gauss(0, fixed_cv)), overloaded == (key, rep)))
    return pts


def judge(pts, fid):
    with tempfile.TemporaryDirectory() as tmp:
        run = runload.load_run(write_run(os.path.join(tmp, "20260101T000000Z-ever-table"), pts))
        an = findings.Analysis(run, EVER)
        comps, _notes = sequential.published_comparisons(run, "ever")
    f = next(f for f in an.findings if f.fid == fid)
    return f, comps


# label, finding, rows (see build), overloaded repetition, with a fixed-rate load,
# expected (finding verdict, deciding metric, the deciding result's load key)
CASES = [
    ("7: equal cost at the fixed rate is equivalence, whatever the noisy saturated figure says", "7",
     {"fiber t1": (80000, "client-bound", 16.0, 20.4), "pull-loop t1": (80000, "client-bound", 12.0, 20.0)},
     None, True, (findings.EQUIVALENT, "server_cpu_us_per_req@fixed-rate", FIXED_KEY)),
    ("7: 30% dearer at the fixed rate contradicts the tie", "7",
     {"fiber t1": (80000, "client-bound", 12.0, 26.0), "pull-loop t1": (80000, "client-bound", 12.0, 20.0)},
     None, True, (findings.CONTRADICTED, "server_cpu_us_per_req@fixed-rate", FIXED_KEY)),
    ("7: a row overloaded once at the fixed rate: the saturated CPU figure decides instead", "7",
     {"fiber t1": (80000, "client-bound", 12.1, 20.0), "pull-loop t1": (80000, "client-bound", 12.0, 20.0)},
     ("fiber t1", 2), True, (None, "server_cpu_us_per_req", PRIMARY_KEY)),
    ("7: no fixed-rate load in the run: the saturated CPU figure decides", "7",
     {"fiber t1": (80000, "client-bound", 12.1, 20.0), "pull-loop t1": (80000, "client-bound", 12.0, 20.0)},
     None, False, (None, "server_cpu_us_per_req", PRIMARY_KEY)),
    ("4: req/s cannot decide (generator-bound): the fixed rate decides, lower CPU supports", "4",
     {"pull-loop t1": (80000, "client-bound", 10.0, 16.0), "selector t1": (80000, "client-bound", 10.0, 20.0)},
     None, True, (findings.SUPPORTED, "server_cpu_us_per_req@fixed-rate", FIXED_KEY)),
    ("4: req/s decides where it can: the fixed rate is not consulted", "4",
     {"pull-loop t1": (90000, "server-bound", 10.0, 20.0), "selector t1": (60000, "server-bound", 10.0, 20.0)},
     None, True, (findings.SUPPORTED, "req_per_s", PRIMARY_KEY)),
]


class FixedRateFindings(unittest.TestCase):
    def test_cases(self):
        for label, fid, rows, overloaded, with_fixed, (word, metric, key) in CASES:
            with self.subTest(label):
                f, comps = judge(build(rows, with_fixed=with_fixed, overloaded=overloaded, sat_cv=0.02
                                       if metric == "req_per_s" else 0.15), fid)
                self.assertEqual(len(f.lines), 1, f.missing)
                ln = f.lines[0]
                self.assertEqual(ln.decided_by, metric, ln.decision.text())
                deciding = next(r for r in ln.results if r.spec.metric == metric)
                self.assertEqual(deciding.primary.load.lid.key, key)
                if word is not None:
                    self.assertEqual(ln.decision.word, word, ln.decision.text())
                first = ln.results[0] if fid == "7" else None
                if first is not None and metric != first.spec.metric:
                    # why the fixed rate could not decide is said, never silently skipped
                    why = first.primary.why_not if first.primary is not None else first.decision.reason
                    self.assertRegex(why, "kept the offered rate|overloaded|no fixed-rate load", why)
                # the sequential design sizes the comparison at the deciding metric's own point
                cmp = next(c for c in comps if c.name.startswith(f"finding {fid} ") and "Ruby" not in c.name)
                self.assertEqual(cmp.a.load.lid.key, key, cmp.name)

    def test_the_fixed_rate_load_is_no_secondary_point_of_the_other_metrics(self):
        # An open-loop point's req/s is the offered rate: it says nothing of capacity.
        f, _ = judge(build({"pull-loop t1": (90000, "server-bound", 10.0, 20.0),
                            "selector t1": (60000, "server-bound", 10.0, 20.0)}, sat_cv=0.02), "4")
        for r in f.lines[0].results:
            if r.spec.metric != "server_cpu_us_per_req@fixed-rate":
                self.assertNotIn(FIXED_KEY, [pe.load.lid.key for pe in r.secondary])


if __name__ == "__main__":
    unittest.main()
