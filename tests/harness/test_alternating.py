"""Alternating loads (alternate_ms, run/alternating.py): the scenario key's rules and the load's
key and record, and which slots of a run's order are measured together. Constructed data only;
the end-to-end sweep is tests/loadgen/test_loadgen_sweep.py's."""
import types
import unittest

from common import REPO  # noqa: F401 - puts scripts/ on sys.path
from cbenchlib.format import scenario
from cbenchlib.run import alternating

ROWS = '[[rows]]\nkey = "A"\nmodel = "epoll-reactor"\n[[rows]]\nkey = "B"\nmodel = "pull-loop"\n'


class Keys(unittest.TestCase):
    def test_rules(self):
        cases = [  # label, load set lines, error words (None: parses)
            ("at a fixed rate", 'rate = 1000\nalternate_ms = 500', None),
            ("at a common rate", 'rate_common_fraction = 0.5\nalternate_ms = 500', None),
            ("at a fraction of each peak", 'rate_fraction = 0.5\nalternate_ms = 50', None),
            ("closed loop", 'alternate_ms = 500', "needs an open loop"),
            ("wrk", 'generator = "wrk"\nalternate_ms = 500', "needs an open loop"),
            ("too short", 'rate = 1000\nalternate_ms = 10', "expected whole milliseconds in [50, 10000]"),
            ("too long", 'rate = 1000\nalternate_ms = 20000', "expected whole milliseconds"),
            ("not whole", 'rate = 1000\nalternate_ms = 500.5', "expected whole milliseconds"),
            ("a boolean", 'rate = 1000\nalternate_ms = true', "expected whole milliseconds"),
        ]
        for label, lines, want in cases:
            with self.subTest(label):
                text = f"[[loads]]\n{lines}\nwrk_threads = 1\nconnections = 8\n{ROWS}"
                if want is not None:
                    with self.assertRaises(scenario.ScenarioError) as cm:
                        scenario.parse(text, "x.toml")
                    self.assertIn(want, str(cm.exception))
                    continue
                sc = scenario.parse(text, "x.toml")
                load = sc.points()[0].load
                self.assertTrue(load.key.endswith(f" alt{load.alternate_ms}ms"), load.key)
                self.assertEqual(load.to_json(sc.settings)["alternate_ms"], load.alternate_ms)

    def test_without_it_the_key_and_record_are_unchanged(self):
        sc = scenario.parse(f"[[loads]]\nrate = 1000\nwrk_threads = 1\nconnections = 8\n{ROWS}", "x.toml")
        load = sc.points()[0].load
        self.assertEqual(load.key, "-t1 -c8 [cbench-load] @1000/s")
        self.assertNotIn("alternate_ms", load.to_json(sc.settings))


def slot(block: int, load_id: str, alternate: bool, row: str):
    load = types.SimpleNamespace(id=load_id, alternate_ms=500 if alternate else None)
    return types.SimpleNamespace(block=block, point=types.SimpleNamespace(load=load, row=row), row=row)


class Groups(unittest.TestCase):
    def test_table(self):
        cases = [  # label, slots (block, load, alternating, row), groups as row lists
            ("plain slots run alone", [(0, "L", False, "a"), (0, "L", False, "b")], [["a"], ["b"]]),
            ("a block's rows of an alternating load together", [(0, "L", True, "a"), (0, "L", True, "b"),
                                                                 (0, "L", True, "c")], [["a", "b", "c"]]),
            ("blocks apart", [(0, "L", True, "a"), (0, "L", True, "b"), (1, "L", True, "a"), (1, "L", True, "b")],
             [["a", "b"], ["a", "b"]]),
            ("another load between", [(0, "L", True, "a"), (0, "M", False, "x"), (0, "L", True, "b")],
             [["a"], ["x"], ["b"]]),
            ("two alternating loads", [(0, "L", True, "a"), (0, "L", True, "b"), (0, "M", True, "a"), (0, "M", True, "b")],
             [["a", "b"], ["a", "b"]]),
            ("a plain slot after an alternating one", [(0, "L", True, "a"), (0, "L", False, "b")], [["a"], ["b"]]),
            ("nothing", [], []),
        ]
        for label, spec, want in cases:
            with self.subTest(label):
                got = alternating.groups([slot(*s) for s in spec])
                self.assertEqual([[x.row for x in g] for g in got], want)


class StartMargin(unittest.TestCase):
    def test_grows_with_the_rows(self):
        # (members, seconds from the first spawn to the shared start): 0.5 s plus 0.1 s a generator,
        # so that the gate's 24 rows (12 models, baseline and candidate) all start before their turn
        for members, want in [(1, 0.6), (2, 0.7), (9, 1.4), (24, 2.9)]:
            with self.subTest(members=members):
                self.assertAlmostEqual(alternating.start_margin_s(members), want)


if __name__ == "__main__":
    unittest.main()
