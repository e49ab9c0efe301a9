"""results/published/ever.json holds the published table exactly as published (empty stays empty)."""
import os
import unittest

from helpers import REPO
from cbenchlib import published

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


if __name__ == "__main__":
    unittest.main()
