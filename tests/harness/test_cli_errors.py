"""Every `cbench` verb's bad arguments and unwritable outputs: a one-line `cbench VERB: ...`
error (or argparse's usage error), the documented exit status (scripts/cbench's docstring: 2
could not start, 1 ran and failed), never a traceback. Also: every flag of every verb has help
text. None of these rows starts a measurement: each fails before any work."""
import argparse
import importlib.machinery
import importlib.util
import os
import sys
import unittest

from common import CBENCH, REPO, run_cbench

RUN = "results/runs/20261201T133537Z-ever-table"  # a committed run
NO_RUN = "results/runs/no-such-run"

# (verb, arguments after the verb, expected exit status, a fragment of stderr)
CASES = [
    ("list", ["nonsense"], 2, "invalid choice"),
    ("sweep", [], 2, "cbench list"),
    ("sweep", ["smoke", "--duration", "999999"], 2, "outside 1..3600"),
    ("sweep", ["smoke", "--repetitions", "0"], 2, "outside 1..100"),
    ("sweep", ["smoke", "--warmup", "soon"], 2, "not a number"),
    ("sweep", ["no-such-scenario", "--dry-run"], 2, "no-such-scenario"),
    ("sweep", ["--resume", NO_RUN, "--dry-run"], 2, NO_RUN),
    ("table", [NO_RUN], 1, "no such run directory"),
    ("table", [RUN, "-o", "/nonexistent/x.md"], 1, "cannot write /nonexistent/x.md"),
    ("table", [RUN, "--format", "xml"], 2, "invalid choice"),
    ("compare", [RUN], 2, "give two runs"),
    ("compare", [RUN, "--published", "tipi"], 1, "the table has Tipi"),
    ("compare", [RUN, "--published", "no-such-table"], 1, "no-such-table"),
    ("compare", [RUN, "--published", "ever", "-o", "/nonexistent/x.md"], 1, "cannot write /nonexistent/x.md"),
    ("compare", [RUN, RUN, "--replication", "--format", "json"], 2, "Markdown only"),
    ("plot", [NO_RUN], 1, "no such run directory"),
    ("plot", [RUN, "--out", "/proc/nope"], 1, "cannot write /proc/nope"),
    ("plot", [RUN, "--overview"], 2, "give no RUN"),
    ("report", [], 2, "give RUN, or --root"),
    ("report", [NO_RUN], 1, "no such run directory"),
    ("report", ["--root", "--report", "/nonexistent/R.md"], 1, "/nonexistent/R.md"),
    ("html", ["--root", "/nonexistent"], 1, "no REPORT.md"),
    ("html", ["--output", "/nonexistent/index.html"], 1, "cannot write /nonexistent/index.html"),
    ("micro", ["--repetitions", "0"], 2, "outside 1..100"),
    ("micro", ["--bench-dir", "/nonexistent"], 2, "no *_bench binaries"),
    ("costs", ["--requests", "4000,2000"], 2, "must increase"),
    ("costs", ["--connections", "0"], 2, "outside 1..100000"),
    ("costs", ["--account", NO_RUN], 2, "needs --cpu-from"),
    ("costs", ["--account", NO_RUN, "--cpu-from", RUN, "--micro", RUN], 1, NO_RUN),
    ("breakdown", ["--duration", "0"], 2, "outside 1..3600"),
    ("breakdown", ["--pipeline", "5000"], 2, "outside 1..1024"),
    ("calibrate", ["--trials", "0"], 2, "outside 1..1000"),
    ("calibrate", ["--duration", "999999"], 2, "outside 1..3600"),
    ("regress", [], 2, "--baseline"),
    ("regress", ["--baseline", "HEAD", "--connections", "0"], 2, "outside 1..100000"),
    ("profile", [NO_RUN], 1, NO_RUN),
    ("profile", [RUN, "--top", "0"], 2, "outside 1..1000"),
    ("curve", [NO_RUN], 1, NO_RUN),
    ("curve", [RUN, "--target-ms", "soon"], 2, "invalid float"),
    ("soak", ["--models", "no-such-model", "--server-bin", "/nonexistent/cbench-server"], 2, "/nonexistent/cbench-server"),
    ("soak", ["--duration-s", "soon"], 2, "invalid float"),
]


def load_cbench():
    """scripts/cbench as a module (its SUBCOMMANDS and main)."""
    sys.path.insert(0, os.path.dirname(CBENCH))
    loader = importlib.machinery.SourceFileLoader("cbench_entry", CBENCH)
    spec = importlib.util.spec_from_loader("cbench_entry", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class BadArgumentsTest(unittest.TestCase):
    def test_every_verb_has_a_row(self):
        verbs = {name for name, _summary in load_cbench().SUBCOMMANDS}
        self.assertEqual(verbs - {v for v, *_ in CASES}, set())

    def test_bad_arguments_give_one_line_and_the_status(self):
        for verb, argv, status, fragment in CASES:
            with self.subTest(verb=verb, argv=argv):
                r = run_cbench([verb] + argv, timeout=120)
                self.assertNotIn("Traceback", r.stderr)
                self.assertEqual(r.returncode, status, r.stderr)
                self.assertIn(fragment, r.stderr)
                self.assertNotIn("results/runs/results/runs", r.stderr)  # paths taken as given
                last = r.stderr.strip().splitlines()[-1]
                self.assertTrue(last.startswith(f"cbench {verb}:"), last)

    def test_unknown_verb(self):
        r = run_cbench(["no-such-verb"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("invalid choice", r.stderr)

    def test_deprecated_spellings_still_parse(self):
        entry = load_cbench()
        for verb, argv, dest, value in [
                ("breakdown", ["--server", "/x", "--wrk", "/y", "--lock", "/z", "--json", "o.json"],
                 ("server_bin", "wrk_bin", "lock_file", "output"), ("/x", "/y", "/z", "o.json")),
                ("report", ["--root", "--out", "o.md"], ("out",), ("o.md",))]:
            with self.subTest(verb=verb):
                p = argparse.ArgumentParser()
                importlib.import_module(f"cbenchlib.cmd.{verb}").add_arguments(p)
                args = p.parse_args(argv)
                self.assertEqual(tuple(getattr(args, d) for d in dest), value)
        self.assertTrue(entry.SUBCOMMANDS)


class HelpTextTest(unittest.TestCase):
    def test_every_flag_has_help(self):
        for name, _summary in load_cbench().SUBCOMMANDS:
            p = argparse.ArgumentParser()
            importlib.import_module(f"cbenchlib.cmd.{name}").add_arguments(p)
            for action in p._actions:
                if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                    continue
                with self.subTest(verb=name, option=action.option_strings or action.dest):
                    self.assertTrue(action.help, f"cbench {name} {action.option_strings or action.dest}: no help")


if __name__ == "__main__":
    os.chdir(REPO)
    unittest.main()
