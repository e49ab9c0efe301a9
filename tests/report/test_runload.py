"""Reading run directories: torn lines, grouping, medians, ordering, run ids (results/SCHEMA.md)."""
import os
import tempfile
import unittest

from helpers import RUN_A, point, write_run  # noqa: F401 (sets sys.path)
from cbenchlib.analysis import runload
from cbenchlib.format import loadpoint


class ReadRunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_torn_last_line_is_ignored(self):
        d = write_run(os.path.join(self.tmp.name, "r1"), [point("a", 100.0), point("a", 110.0, rep=1)],
                      torn_tail='{"point_id": "a / -t2 -c10", "rep": 2, "wr')
        run = runload.load_run(d)
        self.assertTrue(run.torn_line)
        self.assertEqual(len(run.points), 2)

    def test_malformed_middle_line_is_an_error_naming_the_line(self):
        d = write_run(os.path.join(self.tmp.name, "r2"), [point("a", 100.0)])
        with open(os.path.join(d, "points.jsonl"), "a") as f:
            f.write("not json\n")
            f.write('{"point_id": "x", "row": {"key": "a"}, "load": {"key": "k"}}\n')
        with self.assertRaises(runload.RunError) as cm:
            runload.load_run(d)
        self.assertIn("points.jsonl:2", str(cm.exception))

    def test_repetitions_group_by_row_and_load_and_take_medians(self):
        pts = [point("a", v, rep=i) for i, v in enumerate([100.0, 300.0, 200.0])]
        pts += [point("a", 50.0, load_key="-t4 -c64", connections=64)]
        pts += [point("b", 0.0, status="failed")]
        run = runload.load_run(write_run(os.path.join(self.tmp.name, "r3"), pts))
        self.assertEqual(len(run.cells), 3)
        lid = next(l for l in run.loads if l.key == "-t2 -c10")
        cell = run.cell("a", lid)
        self.assertEqual(cell.rps(), [100.0, 300.0, 200.0])
        self.assertEqual(cell.median("wrk.req_per_s"), 200.0)
        failed = run.cell("b", lid)
        self.assertEqual(len(failed.failed_points), 1)
        self.assertIsNone(failed.median("wrk.req_per_s"))

    def test_unknown_fields_and_missing_optional_fields_are_accepted(self):
        p = point("a", 100.0)
        p["something_new"] = {"x": 1}
        del p["verdict"]
        run = runload.load_run(write_run(os.path.join(self.tmp.name, "r4"), [p]))
        cell = next(iter(run.cells.values()))
        self.assertEqual(cell.verdicts(), ["unclear"])
        self.assertIsNone(cell.median("derived.server_cpu_us_per_req"))

    def test_run_id_or_path(self):
        with self.assertRaises(runload.RunError) as cm:
            runload.load_run("no-such-run-id")
        self.assertIn("no-such-run-id", str(cm.exception))
        self.assertEqual(runload.load_run(RUN_A).run_id, "20260101T000000Z-ever-table-synthetic")

    def test_fixture_rows_follow_the_scenario_order_and_loads_group_by_path(self):
        run = runload.load_run(RUN_A)
        keys = list(run.rows)
        self.assertEqual(keys[:3], ["pull-loop t1", "pull-loop t1 gvl", "worker-pool t1 shared"])
        self.assertLess(keys.index("epoll-reactor t1"), keys.index("nginx t1"))
        groups = [g for g, _ in run.load_groups()]
        self.assertEqual(groups, [("/", 1, False), ("/spin?us=10", 1, False), ("", 1, True)])
        loads = dict(run.load_groups())[("/", 1, False)]
        self.assertEqual([l.lid.key for l in loads], ["-t2 -c10", "-t4 -c64", "-t8 -c256", "-t8 -c1024"])
        spin = dict(run.load_groups())[("/spin?us=10", 1, False)]
        self.assertEqual(runload.column_label(spin[0]), "-t2 -c10")

    def test_canonical_label(self):
        cases = [
            ("nio4r 1 worker threads", "nio4r 1 worker thread"),
            ("ever 1 worker thread", "ever 1 worker thread"),
            ("Ever  4 worker threads, separate queues", "ever 4 worker thread, separate queues"),
            ("ever 4 worker threads (gvl)", "ever 4 worker thread"),
            ("ever single thread", "ever single thread"),
            # Intended: case and spacing never tell two published rows apart (the Ever table
            # writes "nio4r" and "ever" in lower case, scenarios may not); Tipi's rows likewise.
            ("Tipi", "tipi"),
            (" TIPI ", "tipi"),
            ("Unicorn", "unicorn"),
        ]
        for given, want in cases:
            with self.subTest(given=given):
                self.assertEqual(loadpoint.canonical_label(given), want)


if __name__ == "__main__":
    unittest.main()
