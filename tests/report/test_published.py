"""results/published/ever.json holds the published table exactly as published (empty stays empty)."""
import json
import math
import os
import random
import tempfile
import unittest

from helpers import REPO, cbench, point, write_run
from cbenchlib.analysis import findings, runload
from cbenchlib.format import published
from cbenchlib.render import pubcompare

REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "reference", "ever-table.md")


def reference_rows(path):
    """label -> list of cell texts (None for "(empty)") from the markdown table in ever-table.md."""
    rows, header = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("|") or line.startswith("|---"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
                continue
            rows[cells[0]] = [None if c in ("(empty)", "") else c for c in cells[1:]]
    return header, rows


class PublishedTest(unittest.TestCase):
    def setUp(self):
        self.pub = published.load_published("ever")

    def test_matches_the_reference_transcription(self):
        if not os.path.exists(REFERENCE):
            self.skipTest(f"{REFERENCE} not present (shared/ is beside the repo in CI and on dev machines)")
        header, rows = reference_rows(REFERENCE)
        self.assertEqual(header[1:], self.pub.columns)
        self.assertEqual(list(rows), [r.label for r in self.pub.rows])
        for r in self.pub.rows:
            with self.subTest(row=r.label):
                self.assertEqual(rows[r.label], [c.text if c else None for c in r.cells])

    def test_empty_cells_are_null_and_never_filled(self):
        raw = {r["label"]: r["cells"] for r in self.pub.doc["rows"]}
        self.assertEqual(raw["ever 8 worker threads"][2:], [None, None])
        self.assertEqual(raw["ever 4 worker threads, separate queues"], [None] * 4)
        self.assertEqual(raw["ever 8 worker threads, separate queues"], [None] * 4)

    def test_cells_parse_into_numbers(self):
        r = self.pub.row("ever single thread")
        self.assertEqual(r.cells[0].req_per_s, 77994)
        self.assertAlmostEqual(r.cells[0].latency_us, 3910.0)
        self.assertAlmostEqual(self.pub.row("nio4r 1 worker threads").cells[3].latency_us, 1.99e6)
        # matching by label tolerates the table's own threads/thread inconsistency
        self.assertIs(self.pub.row("nio4r 1 worker thread"), self.pub.row("nio4r 1 worker threads"))

    def test_provenance_is_recorded(self):
        prov = self.pub.provenance
        for key in ("source", "machine", "latency_statistic", "empty_cells"):
            self.assertTrue(prov.get(key), key)
        self.assertIn("digital-fabric/ever", prov["source"])

    def test_missing_table_names_the_file(self):
        with self.assertRaises(published.PublishedError) as cm:
            published.load_published("no-such-table")
        self.assertIn("no-such-table.json", str(cm.exception))
        self.assertIn("ever", str(cm.exception))



def tipi():
    return published.load_published("tipi")


class TipiTest(unittest.TestCase):
    def test_tipi_table_is_as_published(self):
        pub = tipi()
        self.assertEqual(pub.columns, ["-t4 -c64"])
        got = {r.label: r.cells[0].req_per_s for r in pub.rows}
        self.assertEqual(got, {"Tipi": 138629, "Puma": 34573, "Falcon": 40714, "Unicorn": 7438})
        self.assertTrue(all(r.cells[0].latency_us is None for r in pub.rows))  # req/s only
        self.assertIn("i5-8350U", pub.provenance["machine"])


# ---------------------------------------------------------------- synthetic runs
def synthetic_run(dir_path, rows, reps, cv, seed, load_key="-t4 -c64", path="/", per_point=None):
    """A server-bound run, blocks recorded: ROWS are (row key, label, req/s, ...), each repeated
    REPS times with log-normal noise CV (seeded); per_point(point, row, rep) adds a row's own
    fields (the tail of its tuple) to each point."""
    rng = random.Random(seed)
    pts = []
    for row in rows:
        key, label, rps = row[:3]
        for rep in range(reps):
            p = point(key, rps * math.exp(rng.gauss(0, cv)), load_key=load_key, connections=64, label=label,
                      model=key.split()[0], rep=rep, path=path)
            p["block"] = rep
            if per_point:
                per_point(p, row, rep)
            pts.append(p)
    return runload.load_run(write_run(dir_path, pts))


def labelled_run(dir_path, rows, load_key="-t4 -c64", path="/", reps=6, cv=0.05, seed=3):
    """rows: (row key, label, req/s)."""
    return synthetic_run(dir_path, rows, reps, cv, seed, load_key, path)


# A tipi-table-like run whose points carry the counters the T1 mechanism reads:
# (row key, label, req/s, accepts/req, closes/req, TIME_WAIT on the port, syscalls/req, CPU us/req).
MECHANISM_ROWS = [("fiber t1 p4", "Tipi", 60000, 64 / 600000, 0.0, 0, 2.5, 12.0),
                  ("blocking-pool t1 p4 keepalive-off", "Unicorn", 9000, 1.0, 1.0, 27000, 9.0, 80.0),
                  ("blocking-pool t1 p4", "Unicorn", 20000, 4 / 200000, 0.0, 0, 2.0, 9.0)]


def _mechanism_fields(p, row, rep):
    key, _label, rps, acc, clo, tw, sysc, cpu = row
    req = rps * 10
    p["wrk"]["requests"] = req
    p["derived"] = {"counters_per_req": {"accepts": acc, "closes": clo, "dispatches": 1.0},
                    "syscalls_per_req": sysc, "server_cpu_us_per_req": cpu}
    p["kernel"] = {"accepts_per_req": acc, "time_wait_per_req": clo,
                   "deltas": {"PassiveOpens": round(acc * req)},
                   "levels": {"port_tw": {"before": 0, "after": tw}},
                   "bound": "TIME_WAIT table nearly full" if tw and rep == 0 else None}
    busy = [1.0, 1.0, 1.0, 1.0] if clo or "fiber" in key else [7.0, 1.0, 1.0, 1.0]
    p["server"] = {"cluster": {"workers": [{"pid": 100 + i, "cpu_user_s": c, "cpu_sys_s": 0.0}
                                           for i, c in enumerate(busy)], "restarted": 0}}


def mechanism_run(dir_path, reps=4):
    return synthetic_run(dir_path, MECHANISM_ROWS, reps, 0.03, 5, per_point=_mechanism_fields)


def without_drawing(run):
    """Give RUN an empty chart index, so that the report links charts instead of drawing them
    (test_plot_report covers the drawing)."""
    os.makedirs(os.path.join(run.dir, "charts"), exist_ok=True)
    with open(os.path.join(run.dir, "charts", "charts.json"), "w") as f:
        json.dump({"written": [], "skipped": []}, f)
    return run


class TmpDirTest(unittest.TestCase):
    """A test case with a fresh temporary directory; self.path(name) is a path inside it."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)


class SameCodeForEveryTableTest(TmpDirTest):
    """compare --published works for any table: Tipi's, and a synthetic third one."""

    def test_tipi_rows_sharing_a_label_are_each_compared(self):
        run = labelled_run(self.path("tipi"),
                           [("fiber p4", "Tipi", 60000), ("asio-coro p4", "Tipi", 58000),
                            ("blocking-pool p4 close", "Unicorn", 9000), ("worker-pool p4", "Puma", 30000)])
        rc, out, err = cbench("compare", run.dir, "--published", "tipi")
        self.assertEqual(rc, 0, err)
        self.assertIn("Normalised to the fastest row", out)
        self.assertIn("| Tipi [fiber p4] | 1.00 / 1.00 |", out)
        self.assertIn("| Unicorn [blocking-pool p4 close] | 0.05 / 0.15 |", out)
        an = findings.Analysis(run, tipi())
        t1 = next(f for f in an.findings if f.fid == "T1")
        self.assertEqual(len(t1.lines), 2)
        self.assertTrue(all(ln.decision.word == findings.SUPPORTED for ln in t1.lines))
        self.assertIn("published 18.64 lies outside", t1.lines[0].magnitude)
        t2 = next(f for f in an.findings if f.fid == "T2")
        self.assertEqual(t2.overall.word, findings.NO_DATA)  # no Falcon row

    def test_t1_leaves_out_the_keep_alive_unicorn(self):
        """T1's Unicorn closes every connection: a row of that label with keep-alive on is not judged."""
        run = labelled_run(self.path("keepalive"),
                           [("fiber p4", "Tipi", 60000), ("blocking-pool p4 close", "Unicorn", 9000),
                            ("blocking-pool p4", "Unicorn", 20000)])
        pts = os.path.join(run.dir, "points.jsonl")
        with open(pts) as f:
            lines = [json.loads(ln) for ln in f if ln.strip()]
        for p in lines:
            p["row"]["keepalive"] = p["row"]["key"] != "blocking-pool p4 close"
        with open(pts, "w") as f:
            f.write("".join(json.dumps(p) + "\n" for p in lines))
        t1 = next(f for f in findings.Analysis(runload.load_run(run.dir), tipi()).findings if f.fid == "T1")
        self.assertEqual([ln.b.key for ln in t1.lines], ["blocking-pool p4 close"])

    def test_labels_match_whatever_their_case_but_never_another_row(self):
        run = labelled_run(self.path("case"),
                           [("fiber p4", "tipi", 60000), ("blocking-pool p4", "UNICORN", 9000),
                            ("asio-coro p4", "Tipis", 50000)])
        text = pubcompare.render_published_comparison(run, tipi())
        self.assertIn("| Tipi: this run [fiber p4] |", text)
        self.assertIn("| Unicorn: this run [blocking-pool p4] |", text)
        self.assertNotIn("[asio-coro p4] |", text.split("Rows of this run with no published counterpart")[0])
        self.assertIn("`Tipis [asio-coro p4]`", text)  # listed as context, matched to nothing

    def test_a_synthetic_third_table(self):
        doc = {"name": "third", "title": "synthetic", "provenance": {"source": "test"},
               "normalise_to": "fastest",
               "columns": [{"key": "-t2 -c8", "wrk_threads": 2, "connections": 8, "path": "/x", "pipeline": 1}],
               "rows": [{"label": "Alpha", "family": "a", "cells": ["1000"]},
                        {"label": "Beta", "family": "b", "cells": ["500"]},
                        {"label": "Gamma", "family": "c", "cells": [None]}],
               "findings": [
                   {"id": "A", "title": "Alpha beats Beta", "claim": "Alpha > Beta",
                    "primary": {"path": "/x", "load": "-t2 -c8"}, "published_column": "-t2 -c8",
                    "direction": "greater", "metrics": ["req_per_s"], "comparisons": [{"a": "Alpha", "b": "Beta"}]},
                   {"id": "B", "title": "Beta equals Gamma", "claim": "Beta ≈ Gamma", "margin": 1.10,
                    "primary": {"path": "/x", "load": "-t2 -c8"}, "direction": "equivalent",
                    "metrics": ["req_per_s"], "comparisons": [{"a": "Beta", "b": "Gamma"}]},
                   {"id": "C", "title": "Gamma beats Alpha", "claim": "Gamma > Alpha",
                    "primary": {"path": "/x", "load": "-t2 -c8"}, "direction": "greater",
                    "metrics": ["req_per_s"], "comparisons": [{"a": "Gamma", "b": "Alpha"}]}]}
        pub_path = self.path("third.json")
        with open(pub_path, "w") as f:
            json.dump(doc, f)
        run = labelled_run(self.path("r"),
                           [("a t1", "Alpha", 2000), ("b t1", "Beta", 1000), ("c t1", "Gamma", 1000)],
                           load_key="-t2 -c8 /x", path="/x", reps=30, cv=0.03)
        pub = published.load_published(pub_path)
        text = pubcompare.render_published_comparison(run, pub)
        self.assertIn("| Gamma: published |  |", text)  # the empty cell stays empty
        self.assertIn("| Beta [b t1] | 0.50 / 0.50 |", text)
        an = findings.Analysis(run, pub)
        words = {f.fid: f.overall.word for f in an.findings}
        self.assertEqual(words, {"A": findings.SUPPORTED, "B": findings.EQUIVALENT, "C": findings.CONTRADICTED})
        a = next(f for f in an.findings if f.fid == "A").lines[0]
        self.assertIn("published 2.00 lies inside", a.magnitude)


class MechanismTest(TmpDirTest):
    """Finding T1's mechanism figures, printed right after its verdict (mechanism.py)."""

    def test_t1_mechanism_follows_its_verdict(self):
        run = mechanism_run(self.path("tipi"))
        rc, out, err = cbench("compare", run.dir, "--published", "tipi")
        self.assertEqual(rc, 0, err)
        verdict = out.index("**Verdict:", out.index("### Finding T1:"))
        mech = out.index("#### Mechanism of finding T1, from the counters")
        self.assertLess(verdict, mech)
        self.assertLess(mech, out.index("### Finding T2:"))
        block = out[mech:out.index("### Finding T2:")]
        header = ("| Figure | Tipi [fiber t1 p4] | Unicorn [blocking-pool t1 p4] |"
                  " Unicorn [blocking-pool t1 p4 keepalive-off] |")  # by label, then as the run lists rows
        self.assertIn(header, block)
        for line in ("| connections accepted per request (server's count) | 0.000 | 0.000 | 1.000 |",
                     "| connections closed per request (server's count) | 0.000 | 0.000 | 1.000 |",
                     "| TIME_WAIT sockets on the server's port at the end | 0 | 0 | 27000 |",
                     "| system calls per request | 2.50 | 2.00 | 9.00 |",
                     "| server CPU per request | 12.0 us | 9.0 us | 80.0 us |",
                     "| connections accepted in the window | 64 | 4 | 90000 |",
                     "| accepted per connection wrk opened | 1.00 | 0.06 | 1406.25 |",
                     "| requests per accepted connection | 9375.0 | 50000.0 | 1.0 |",
                     "| latency p99 (completed requests) | 0.90 ms | 0.90 ms | 0.90 ms |",
                     "| each worker's share of the CPU, % | 25/25/25/25 | 70/10/10/10 | 25/25/25/25 |",
                     "| repetitions bounded by a kernel limit | 0 of 4 | 0 of 4 | 1 of 4 |"):
            self.assertIn(line, block)

    def test_unrecorded_figures_are_dashes_not_estimates(self):
        run = labelled_run(self.path("bare"), [("fiber p4", "Tipi", 60000), ("blocking-pool p4", "Unicorn", 9000)])
        text = pubcompare.render_published_comparison(run, tipi())
        self.assertIn("| connections accepted per request (server's count) | — | — |", text)
        self.assertIn("| each worker's share of the CPU, % | — | — |", text)

    def test_a_model_that_counts_nothing_shows_dashes_and_the_kernel_count_stands_in(self):
        run = mechanism_run(self.path("nocount"))
        pts = [dict(p) for c in [run.cell(r.key, ld.lid) for r in run.rows.values() for ld in run.loads.values()]
               if c is not None for p in c.ok_points]
        for p in pts:
            if p["row"]["model"] == "fiber":  # as asio-coro: every counter 0
                p["derived"] = dict(p["derived"], counters_per_req={"accepts": 0.0, "closes": 0.0, "dispatches": 0.0})
        run2 = runload.load_run(write_run(self.path("nocount2"), pts))
        text = pubcompare.render_published_comparison(run2, tipi())
        self.assertIn("| connections accepted per request (server's count) | — | 0.000 | 1.000 |", text)
        self.assertIn("| connections accepted in the window | 64 | 4 | 90000 |", text)  # kernel PassiveOpens

    def test_report_section_whether_or_not_a_tipi_run_is_listed(self):
        """The tipi-table section of REPORT.md, rendered through reportgen.regenerate from a
        config that lists a (synthetic) tipi run, one that lists none, and one that keeps a run
        made elsewhere: fixtures, not the live results/reference-runs.toml."""
        from cbenchlib.render import reportgen
        run = without_drawing(mechanism_run(self.path("tipi-section")))
        skeleton = "Intro.\n<!-- BEGIN GENERATED: tipi-table -->\nold\n<!-- END GENERATED: tipi-table -->\n"
        cases = [  # label, the section's config, texts that must appear, texts that must not
            ("listed", {"scenario": "tipi-table", "run": run.dir},
             ["Published table `tipi`", "##### Mechanism of finding T1, from the counters",
              "| TIME_WAIT sockets on the server's port at the end | 0 | 0 | 27000 |",
              "Every number in this section comes from run directory `tipi-section/`"],
             ["_Not yet run._", "_Not yet remade"]),
            ("not listed", {"scenario": "tipi-table", "run": ""},
             ["_Not yet run._ No reference run of scenario `tipi-table`"],
             ["Published table `tipi`", "Mechanism of finding T1"]),
            ("kept elsewhere", {"scenario": "tipi-table", "run": "", "kept": "results/runs/old-tipi-table"},
             ["_Not yet remade on this machine._", "`results/runs/old-tipi-table/`"],
             ["Published table `tipi`", "_Not yet run._"]),
        ]
        for label, sec, want, unwanted in cases:
            with self.subTest(label):
                out = reportgen.regenerate(skeleton, {"tipi-table": sec}, allow_synthetic=True, root=self.tmp.name)
                self.assertTrue(out.startswith("Intro.\n<!-- BEGIN GENERATED: tipi-table -->\n"), out[:200])
                self.assertNotIn("\nold\n", out)
                for w in want:
                    self.assertIn(w, out)
                for w in unwanted:
                    self.assertNotIn(w, out)

    def test_an_unknown_figure_is_refused(self):
        from cbenchlib.analysis import mechanism
        with self.assertRaisesRegex(mechanism.MechanismError, "no_such"):
            mechanism.declared({"id": "X", "mechanism": {"figures": ["accepts_per_req", "no_such"]}})
        self.assertEqual(mechanism.declared({"id": "Y"}), [])


if __name__ == "__main__":
    unittest.main()
