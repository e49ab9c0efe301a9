"""`cbench table --format json|csv` round-trips the values the Markdown table shows (on a
committed run), the comparisons export their verdicts and intervals, and SCHEMA.md's pandas
example runs (when pandas is installed)."""
import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import unittest

from helpers import REPO, cbench

from cbenchlib.analysis.runload import group_title
from cbenchlib.render import tables

RUN = os.path.join(REPO, "results", "runs", "20261201T133537Z-ever-table")


def markdown_cells(text: str) -> dict:
    """(heading, row, column) -> cell text for every table in a Markdown document; a heading is
    (its number in the document, its text), since the spread tables' headings repeat."""
    cells, heading, header, n = {}, None, None, 0
    for line in text.splitlines():
        if line.startswith("#"):
            n += 1
            heading, header = (n, line.lstrip("# ")), None
        elif line.startswith("|---"):
            continue
        elif line.startswith("| "):
            parts = [p.strip().replace("\\|", "|") for p in re.split(r"(?<!\\)\|", line)[1:-1]]
            if header is None:
                header = parts
            else:
                for col, val in zip(header[1:], parts[1:]):
                    cells[(heading, parts[0], col)] = val
        else:
            header = None if not line.strip() else header
    return cells


def shown(rec: dict) -> str:
    """The Markdown cell's text before its marks, from a record's numbers."""
    rps = tables.fmt_rps(rec["req_per_s_median"])
    lat = rec["latency_us_median"]
    return f"{rps} ({tables.fmt_latency_us(lat)})" if lat is not None else rps


class TableExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rc, cls.md, err = cbench("table", RUN)
        assert rc == 0, err
        rc, out, err = cbench("table", RUN, "--format", "json")
        assert rc == 0, err
        cls.doc = json.loads(out)
        rc, cls.csv_text, err = cbench("table", RUN, "--format", "csv")
        assert rc == 0, err

    def md_cell(self, rec: dict, spread: bool = False) -> str:
        group = group_title((rec["path"], rec["pipeline"], rec["idle"]))
        cells = markdown_cells(self.md)
        head = next(h for (h, _r, _c) in cells if h[1].startswith(f"{group}: req/s"))
        if spread:  # the spread table follows its group's table
            head = next(h for (h, _r, _c) in cells if h[0] == head[0] + 1)
        return cells[(head, rec["row_display"], rec["column"])]

    def test_identity(self):
        run = self.doc["run"]
        self.assertEqual(run["run_id"], "20261201T133537Z-ever-table")
        self.assertEqual(run["scenario"], "ever-table")
        self.assertTrue(run["git_commit"])

    def test_json_matches_the_markdown(self):
        recs = [r for r in self.doc["records"] if not r["idle"]]
        self.assertGreater(len(recs), 20)
        for rec in recs:
            with self.subTest(row=rec["row"], load=rec["column"], path=rec["path"]):
                cell = self.md_cell(rec)
                self.assertTrue(cell.startswith(shown(rec)), (cell, shown(rec)))
                spread = self.md_cell(rec, spread=True)
                self.assertTrue(spread.startswith(f"{rec['req_per_s_min']:.0f}–{rec['req_per_s_max']:.0f}"), spread)
                self.assertIn(f"n={rec['ok_repetitions']}", spread)

    def test_csv_carries_the_json_values(self):
        rows = list(csv.DictReader(io.StringIO(self.csv_text)))
        self.assertEqual(len(rows), len(self.doc["records"]))
        for row, rec in zip(rows, self.doc["records"]):
            self.assertEqual(row["run_id"], self.doc["run"]["run_id"])
            self.assertEqual(row["row"], rec["row"])
            for k in ("req_per_s_median", "latency_us_median", "req_per_s_min", "req_per_s_max"):
                self.assertEqual(float(row[k]) if row[k] else None, rec[k], k)
            self.assertEqual(row["verdicts"], ";".join(rec["verdicts"]))


class ComparisonExportTest(unittest.TestCase):
    def test_published_carries_verdicts_and_intervals(self):
        rc, out, err = cbench("compare", RUN, "--published", "ever", "--format", "json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc["kind"], doc["published"]), ("published-comparison", "ever"))
        judged = [r for r in doc["records"] if r.get("finding") and r.get("comparison")]
        self.assertTrue(judged)
        self.assertTrue(all(r["verdict"] and r["finding_verdict"] for r in judged))
        self.assertTrue(any(r["effect_ci95_low"] is not None for r in judged))
        self.assertTrue(any(r.get("published_req_per_s") is not None for r in doc["records"]))

    def test_two_runs_csv(self):
        rc, out, err = cbench("compare", RUN, RUN, "--format", "csv")
        self.assertEqual(rc, 0, err)
        rows = list(csv.DictReader(io.StringIO(out)))
        self.assertTrue(rows)
        self.assertTrue(all(r["a_req_per_s_median"] == r["b_req_per_s_median"] for r in rows))


class PandasExampleTest(unittest.TestCase):
    def test_schema_example_runs(self):
        if importlib.util.find_spec("pandas") is None:
            self.skipTest("pandas is not installed")
        with open(os.path.join(REPO, "results", "SCHEMA.md"), encoding="utf-8") as f:
            text = f.read()
        block = text.split("<!-- pandas-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
        r = subprocess.run(["/usr/bin/python3", "-c", block], cwd=REPO, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("20261201T133537Z-ever-table", r.stdout)


if __name__ == "__main__":
    unittest.main()
