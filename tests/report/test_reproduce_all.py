"""scripts/reproduce_all.py: the time it prints first (from dry-run outputs, the microbenchmarks'
count, the costs' rows and the soak's models), the plan (every scenario, the microbenchmarks, the
costs, the calibration, the soak), --only/--skip, the budget, the preflight (a clean tree, no
other busy process), the rewrite of results/reference-runs.toml after each step (on a temporary
copy, with a fake command runner: nothing is measured), and the report's costs and soak sections."""
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import unittest
from unittest import mock

from helpers import REPO

_spec = importlib.util.spec_from_file_location("reproduce_all", os.path.join(REPO, "scripts", "reproduce_all.py"))
ra = importlib.util.module_from_spec(_spec)
sys.modules["reproduce_all"] = ra  # its dataclass looks its module up while the module executes
_spec.loader.exec_module(ra)

CONFIG = '''# comment run = "x"
[sections.ever-table]
scenario = "ever-table"
run = "results/runs/old-ever-table"
kept = "results/runs/older"

[sections.handler-blocking]
scenario = "handler-blocking"
run = ""

[sections.micro]
scenario = "micro"
run = ""
kept = "results/runs/20261122T074820Z-micro"
'''


def _plan(est="estimated time: 1m00s with every model"):
    """The plan with every count given: 63 benchmarks, 18 costs rows, 13 soak models."""
    return ra.plan(dry_run=lambda name: est, micro_count=lambda: 63, costs_rows=lambda: 18, soak_models=lambda: 13)


class TestReproduceAll(unittest.TestCase):
    def test_estimates(self):
        cases = [
            ("estimated time: 6m11s with every model\n", 371),
            ("estimated time: 25m49s with every model, 22m35s now (2 models not built)", 1549),
            ("estimated time: 18m10s with every model, 17m24s now; then extra blocks ... up to 6m58s more"
             " (at most 25m08s in all)", 1508),
            ("estimated time: 9s with every model", 9),
            ("no estimate here", None),
        ]
        for text, want in cases:
            with self.subTest(text):
                self.assertEqual(ra.estimate_from_dry_run(text), want)

    def test_set_run_changes_only_the_sections_of_that_scenario(self):
        text, changed = ra.set_run(CONFIG, "handler-blocking", "results/runs/new-handler-blocking")
        self.assertEqual(changed, ["handler-blocking"])
        self.assertIn('run = "results/runs/new-handler-blocking"', text)
        self.assertIn('run = "results/runs/old-ever-table"', text)
        self.assertIn('# comment run = "x"', text)
        text2, changed2 = ra.set_run(CONFIG, "tipi-table", "results/runs/t")
        self.assertEqual((text2, changed2), (CONFIG, []))

    def test_set_run_points_the_micro_section_at_the_micro_run(self):
        text, changed = ra.set_run(CONFIG, ra.MICRO_SCENARIO, "results/runs/20261201T150000Z-micro")
        self.assertEqual(changed, ["micro"])
        self.assertIn('run = "results/runs/20261201T150000Z-micro"\nkept = "results/runs/20261122T074820Z-micro"', text)

    def test_every_reference_scenario_is_planned(self):
        names = ra.scenarios()
        self.assertEqual(names[0], "ever-table")
        self.assertNotIn("smoke", names)
        self.assertNotIn("quick", names)
        self.assertIn("handler-blocking", names)

    def test_plan_runs_every_sweep_then_micro_costs_calibrate_soak(self):
        steps = _plan()
        self.assertEqual([st.name for st in steps],
                         [f"sweep {n}" for n in ra.scenarios()] + ["micro", "costs", "calibrate", "soak"])
        by_key = {st.key: st for st in steps}
        # Each step: its command, where its run appears, the section scenario it updates, its estimate.
        cases = [
            ("micro", ["micro"], "runs", "-micro", "micro", ra.micro_estimate_s(63, 3, 0.3)),
            ("costs", ra.COSTS_ARGV, "runs", "-costs", "costs", ra.costs_estimate_s(18, True, (2000, 4000))),
            ("calibrate", ["calibrate"], "calibration", "-calibrate", "calibrate", ra.CALIBRATE_ESTIMATE_S),
            ("soak", ["soak"], "soak", "-soak", "soak", ra.soak_estimate_s(13, 600)),
            ("floor-costs", ["sweep", "floor-costs"], "runs", "-floor-costs", "floor-costs", 60),
            ("nio4r-collapse", ["sweep", "nio4r-collapse"], "runs", "-nio4r-collapse", "nio4r-collapse", 60),
        ]
        for key, argv, parent, suffix, scenario, est in cases:
            with self.subTest(key):
                st = by_key[key]
                self.assertEqual((st.argv, os.path.basename(st.parent), st.suffix, st.scenario, st.estimate_s),
                                 (argv, parent, suffix, scenario, est))
        self.assertIn("63 benchmarks x 3 repetitions of at least 0.3 s", by_key["micro"].note)
        self.assertIn("13 models x 600 s", by_key["soak"].note)
        self.assertEqual(sum(st.estimate_s for st in steps),
                         60 * len(ra.scenarios()) + sum(by_key[k].estimate_s for k in ("micro", "costs", "calibrate", "soak")))
        # Every step has a section in the committed config, and REPORT.md.in renders it.
        with open(ra.CONFIG, encoding="utf-8") as f:
            config = f.read()
        with open(os.path.join(REPO, "REPORT.md.in"), encoding="utf-8") as f:
            template = f.read()
        for st in steps:
            with self.subTest(section=st.scenario):
                _, changed = ra.set_run(config, st.scenario, "results/runs/x")
                self.assertEqual(len(changed), 1, st.scenario)
                self.assertIn(f"<!-- BEGIN GENERATED: {changed[0]} -->", template)

    def test_estimates_of_costs_and_soak(self):
        cases = [  # (rows, repeat, requests) -> seconds: runs x COSTS_RUN_S, scaled up past the defaults
            ("costs", (18, True, (2000, 4000)), 346),     # 18 x 2 x 4 runs x 2.4 s = 345.6
            ("costs", (18, False, (2000, 4000)), 260),    # 3 runs per count
            ("costs", (1, False, (4000, 8000)), 29),      # 6 runs x 2.4 x 2 = 28.8
            ("costs", (1, False, (100, 200)), 15),        # never scaled below the default counts
            ("soak", (13, 600.0), 8060),                  # 13 x (600 + 20)
            ("soak", (2, 12.0), 64),
        ]
        for what, args, want in cases:
            with self.subTest(what=what, args=args):
                fn = ra.costs_estimate_s if what == "costs" else ra.soak_estimate_s
                self.assertEqual(fn(*args), want)
        steps = ra.plan(dry_run=lambda name: "estimated time: 9s with every model", micro_count=lambda: 63,
                        costs_rows=lambda: None, soak_models=lambda: None)
        by_key = {st.key: st for st in steps}
        self.assertIn(f"{ra.COSTS_ROWS_ASSUMED} rows (assumed", by_key["costs"].note)
        self.assertIn(f"{ra.SOAK_MODELS_ASSUMED} models (assumed", by_key["soak"].note)

    def test_only_and_skip(self):
        steps = _plan()
        sweeps = [f"sweep {n}" for n in ra.scenarios()]
        cases = [  # (only, skip) -> step names, or the error's words
            ((None, None), sweeps + ["micro", "costs", "calibrate", "soak"]),
            ((None, ["soak"]), sweeps + ["micro", "costs", "calibrate"]),
            ((["soak"], None), ["soak"]),
            ((["costs", "micro"], None), ["micro", "costs"]),  # plan order, not the order given
            ((["sweeps"], ["ever-table", "connections"]), [n for n in sweeps if n not in ("sweep ever-table", "sweep connections")]),
            ((None, ["sweeps", "soak"]), ["micro", "costs", "calibrate"]),
            ((["floor-costs", "nio4r-collapse"], None), ["sweep floor-costs", "sweep nio4r-collapse"]),
            ((["soak"], ["soak"]), "leave no step"),
            ((["sok"], None), "no step named 'sok'"),
            ((None, ["smoke"]), "no step named 'smoke'"),
        ]
        for (only, skip), want in cases:
            with self.subTest(only=only, skip=skip):
                got = ra.select(steps, only, skip)
                if isinstance(want, str):
                    self.assertIsInstance(got, str)
                    self.assertIn(want, got)
                else:
                    self.assertEqual([st.name for st in got], want)

    def test_main_refuses_unknown_names_before_planning(self):
        for argv in (["--only", "sok"], ["--skip", "micro,bogus"], ["--dry-run", "--only", "smoke"]):
            with self.subTest(argv=argv), mock.patch.object(ra, "plan") as plan, \
                    mock.patch("sys.stdout"), mock.patch("sys.stderr") as err:
                self.assertEqual(ra.main(argv), 2)
                plan.assert_not_called()
                written = "".join(c.args[0] for c in err.write.call_args_list)
                self.assertEqual(written.count("\n"), 1, written)
                self.assertIn("no step named", written)

    def test_budget(self):
        """The dry run prints the budget's verdict and runs nothing; a worst case over the budget
        is refused before the preflight (one line, exit 1), by the dry run too (so that `make
        reproduce-all` stops before it builds)."""
        steps = _plan(est="estimated time: 10m00s with every model")  # 15 sweeps of 10 min and the rest
        total_min = sum(st.estimate_s for st in steps) / 60
        only_soak = [st for st in steps if st.key == "soak"][0].estimate_s / 60
        cases = [  # (argv, exit status, preflight reached, words printed)
            (["--dry-run", "--budget-min", "60"], 1, False, "exceeded by"),
            (["--dry-run", "--budget-min", str(total_min + 1)], 0, False, "fits"),
            (["--budget-min", "60"], 1, False, "exceeds --budget-min 60"),
            (["--budget-min", str(total_min + 1)], 0, True, "fits"),
            (["--only", "soak", "--budget-min", str(only_soak - 1)], 1, False, "exceeds --budget-min"),
            (["--only", "soak", "--budget-min", str(only_soak)], 0, True, "fits"),
            (["--budget-min", "0"], 2, False, "positive number"),
        ]
        for argv, rc, reached, words in cases:
            with self.subTest(argv=argv), mock.patch.object(ra, "plan", return_value=steps), \
                    mock.patch.object(ra, "preflight", return_value=[]) as preflight, \
                    mock.patch.object(ra.hostcheck, "busy_processes", return_value=[]), \
                    mock.patch.object(ra, "execute", return_value=0) as execute, \
                    mock.patch("sys.stdout") as out, mock.patch("sys.stderr") as err:
                self.assertEqual(ra.main(argv), rc)
                self.assertEqual((preflight.called, execute.called), (reached, reached))
                printed = "".join(c.args[0] for c in out.write.call_args_list + err.write.call_args_list)
                self.assertIn(words, printed)
                if rc:
                    self.assertEqual("".join(c.args[0] for c in err.write.call_args_list).count("\n"), 1)

    def test_the_tree_check_is_the_sweeps_rule(self):
        """A run made a minute ago and not yet committed (an untracked results/ directory) does
        not stop reproduce-all, as it does not stop a sweep (envinfo.git_info excludes results/);
        a change to code does, and names the file. (The first reference sitting of 2026-12-01's
        third session was refused by the old `git status --porcelain` check for exactly that.)"""
        steps = _plan()
        cases = [({"git_dirty": False}, 0, True),
                 ({"git_dirty": True, "git_dirty_files": ["servers/floor.cpp"]}, 1, False),
                 ({"git_dirty": None, "git_error": "git: not a repository"}, 1, False)]
        for git, rc, executed in cases:
            with self.subTest(git=git), mock.patch.object(ra, "plan", return_value=steps), \
                    mock.patch.object(ra.envinfo, "git_info", return_value=git), \
                    mock.patch.object(ra.hostcheck, "busy_processes", return_value=[]), \
                    mock.patch.object(ra, "execute", return_value=0) as execute, \
                    mock.patch("sys.stdout"), mock.patch("sys.stderr") as err:
                self.assertEqual(ra.main([]), rc)
                self.assertEqual(execute.called, executed)
                if not executed:
                    written = "".join(c.args[0] for c in err.write.call_args_list)
                    self.assertIn((git.get("git_dirty_files") or [git.get("git_error")])[0], written)

    def test_no_report_reaches_execute(self):
        for argv, report in (([], True), (["--no-report"], False)):
            with self.subTest(argv=argv), mock.patch.object(ra, "plan", return_value=_plan()), \
                    mock.patch.object(ra, "preflight", return_value=[]), \
                    mock.patch.object(ra.hostcheck, "busy_processes", return_value=[]), \
                    mock.patch.object(ra, "execute", return_value=0) as execute, mock.patch("sys.stdout"):
                self.assertEqual(ra.main(argv), 0)
                kwargs = execute.call_args.kwargs
                self.assertEqual(kwargs["report"], report)
                self.assertRegex(kwargs["commit"], r"^[0-9a-f]{40}$")  # the sitting's commit, for retiring

    def test_micro_estimate(self):
        # 63 benchmarks x (3 + 1) x 0.3 s x 1.25 = 94.5 s, rounded up: about a minute and a half.
        self.assertEqual(ra.micro_estimate_s(63, 3, 0.3), 95)
        self.assertEqual(ra.micro_estimate_s(10, 1, 0.5), 13)  # 12.5
        self.assertEqual(ra.micro_estimate_s(10, 1, 0.4), 10)  # exactly 10: not rounded up to 11
        steps = ra.plan(dry_run=lambda name: "estimated time: 9s with every model", micro_count=lambda: None,
                        costs_rows=lambda: 18, soak_models=lambda: 13)
        self.assertIn(f"{ra.MICRO_BENCHMARKS_ASSUMED} benchmarks (assumed", [st for st in steps if st.key == "micro"][0].note)

    def test_a_sweep_without_an_estimate_stops_the_plan(self):
        msg = ra.plan(dry_run=lambda name: "error: no such model", micro_count=lambda: 63,
                      costs_rows=lambda: 18, soak_models=lambda: 13)
        self.assertIsInstance(msg, str)
        self.assertIn("gave no estimate", msg)
        self.assertIn("no such model", msg)


def _git(repo, *args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@t"))


class TestPreflight(unittest.TestCase):
    def test_a_constructed_tree(self):
        """A real repository in a temporary directory: clean, a changed source file, an untracked
        run under results/ (not code: it does not stop a sitting, as it does not stop a sweep)."""
        cases = [  # (what is done to the committed tree, refused, words)
            ("nothing", False, None),
            ("results", False, None),
            ("source", True, "servers/floor.cpp"),
            ("untracked", True, "servers/new.cpp"),
        ]
        for change, refused, words in cases:
            with self.subTest(change), tempfile.TemporaryDirectory() as repo:
                os.makedirs(os.path.join(repo, "servers"))
                with open(os.path.join(repo, "servers", "floor.cpp"), "w") as f:
                    f.write("int main() {}\n")
                _git(repo, "init", "-q")
                _git(repo, "add", "-A")
                _git(repo, "commit", "-qm", "x")
                if change == "results":
                    os.makedirs(os.path.join(repo, "results", "runs", "20261204T000000Z-x"))
                    with open(os.path.join(repo, "results", "runs", "20261204T000000Z-x", "meta.json"), "w") as f:
                        f.write("{}")
                elif change == "source":
                    with open(os.path.join(repo, "servers", "floor.cpp"), "a") as f:
                        f.write("// changed\n")
                elif change == "untracked":
                    with open(os.path.join(repo, "servers", "new.cpp"), "w") as f:
                        f.write("")
                problems = ra.preflight(ra.envinfo.git_info(repo), [], 0.1)
                self.assertEqual(bool(problems), refused, problems)
                if refused:
                    self.assertIn("dirty", problems[0])
                    self.assertIn(words, problems[0])

    def test_busy_processes_refuse_unless_allowed(self):
        clean = {"git_commit": "abc", "git_dirty": False}
        busy = [(4242, "cc1plus", 0.97), (77, "python3", 0.35)]
        cases = [  # (busy, allow_busy, refused)
            ([], False, False),
            (busy, False, True),
            (busy, True, False),
        ]
        for procs, allow, refused in cases:
            with self.subTest(procs=procs, allow=allow):
                problems = ra.preflight(clean, procs, 1.73, allow)
                self.assertEqual(bool(problems), refused)
                if refused:
                    self.assertIn("cc1plus (pid 4242, 97% of a CPU)", problems[0])
                    self.assertIn("load average 1.73", problems[0])
                    self.assertIn("--allow-busy", problems[0])

    def test_busy_between(self):
        hz = 100.0
        before = {1: ("init", 50), 10: ("cc1plus", 1000), 11: ("bash", 7), 12: ("sleep", 0), 13: ("old", 5),
                  14: ("make", 0)}
        after = {1: ("init", 50), 10: ("cc1plus", 1190), 11: ("bash", 8), 12: ("sleep", 0), 13: ("new", 900),
                 14: ("make", 100), 15: ("born", 500)}
        cases = [  # (exclude, min_share) -> [(pid, comm, share)]
            ((set(), 0.10), [(10, "cc1plus", 0.95), (14, "make", 0.5)]),
            (({14}, 0.10), [(10, "cc1plus", 0.95)]),        # this process and its ancestors
            ((set(), 0.96), []),
            ((set(), 0.005), [(10, "cc1plus", 0.95), (14, "make", 0.5), (11, "bash", 0.01)]),
        ]
        # 2 s between the samples; pid 13 was reused by another command and pid 15 is new: neither counts.
        for (exclude, share), want in cases:
            with self.subTest(exclude=exclude, share=share):
                self.assertEqual(ra.hostcheck.busy_between(before, after, 2.0, hz, exclude, share), want)

    def test_process_ticks_and_lineage_read_proc(self):
        ticks = ra.hostcheck.process_ticks()
        self.assertIn(os.getpid(), ticks)
        self.assertTrue(all(isinstance(t, int) and t >= 0 for _c, t in ticks.values()))
        lineage = ra.hostcheck.own_lineage()
        self.assertIn(os.getpid(), lineage)
        self.assertIn(os.getppid(), lineage)


class FakeRunner:
    """subprocess.run for execute(): each cbench command makes a run directory under its step's
    parent (as the real commands do) and exits 0, unless EXITS gives it (status, makes its run
    directory); records every argv."""

    def __init__(self, parents: dict, exits: dict | None = None):
        self.parents, self.exits, self.calls = parents, exits or {}, []

    def __call__(self, argv, cwd=None):
        self.calls.append(argv)
        if argv[:2] == ["make", "report"]:
            return subprocess.CompletedProcess(argv, 0)
        verb = argv[2]
        name = argv[3] if verb == "sweep" else verb
        rc, makes_dir = self.exits.get(name, (0, True))
        if makes_dir:
            os.makedirs(os.path.join(self.parents[name], f"20261205T{len(self.calls):06d}Z-{name}"))
        return subprocess.CompletedProcess(argv, rc)


class TestExecute(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.config = os.path.join(self.tmp.name, "reference-runs.toml")
        with open(ra.CONFIG, encoding="utf-8") as f:
            text = f.read()
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(text)
        self.runs = os.path.join(ra.REPO, "results", "runs")  # execute() lists it; the fake makes nothing there
        self.parents = {}

    def _steps(self, keys):
        by_key = {st.key: st for st in _plan()}
        out = []
        for k in keys:
            st = by_key[k]
            parent = os.path.join(self.tmp.name, os.path.basename(st.parent))
            self.parents[k] = parent
            out.append(dataclasses.replace(st, parent=parent))
        return out

    def _listed(self, scenario):
        with open(self.config, encoding="utf-8") as f:
            return ra.listed_run(f.read(), scenario)

    def test_each_step_is_recorded_as_it_completes(self):
        """The config lists each run as soon as its step ends: a sitting interrupted at the third
        step keeps the first two, and `make report` is not run on a partial set."""
        cases = [  # (steps, {step: (exit status, makes its run)}, sections listing a new run, exit, make report run)
            (["connections", "micro", "costs"], {}, ["connections", "micro", "costs"], 0, True),
            (["connections", "micro", "costs", "soak"], {"costs": (1, False)}, ["connections", "micro"], 1, False),
            # a sweep that made its directory and then failed is not listed
            (["connections", "micro"], {"connections": (1, True)}, [], 1, False),
            (["soak"], {}, ["soak"], 0, True),
            # the soak's exit 1 is its verdict (a model grew): its run is listed and the sitting goes on
            (["micro", "soak"], {"soak": (1, True)}, ["micro", "soak"], 0, True),
            (["soak"], {"soak": (1, False)}, [], 1, False),
            (["fidelity"], {}, ["fidelity"], 0, True),
        ]
        for keys, exits, recorded, want_rc, reported in cases:
            with self.subTest(keys=keys, exits=exits):
                self.setUp()
                runner = FakeRunner(self.parents, exits)
                steps = self._steps(keys)
                with mock.patch("sys.stdout"), mock.patch("sys.stderr"):
                    rc = ra.execute(steps, self.config, run=runner)
                self.assertEqual(rc, want_rc)
                for k in keys:
                    scen = {st.key: st.scenario for st in steps}[k]
                    listed = self._listed(scen) or ""
                    self.assertEqual(self.tmp.name in os.path.abspath(os.path.join(ra.REPO, listed)) and
                                     listed.endswith(f"-{scen}"), k in recorded, (k, listed))
                self.assertEqual(runner.calls[-1][:2] == ["make", "report"], reported)
        # --no-report: the first of two sittings of one commit leaves REPORT.md as it is.
        self.setUp()
        runner = FakeRunner(self.parents)
        with mock.patch("sys.stdout"), mock.patch("sys.stderr"):
            self.assertEqual(ra.execute(self._steps(["micro"]), self.config, run=runner, report=False), 0)
        self.assertNotIn(["make", "report"], runner.calls)
        self.assertEqual(len(runner.calls), 1)

    def test_costs_uses_the_sittings_runs_else_the_listed_ones(self):
        runner = FakeRunner(self.parents)
        with mock.patch("sys.stdout"), mock.patch("sys.stderr"):
            self.assertEqual(ra.execute(self._steps(["connections", "micro", "costs"]), self.config, run=runner), 0)
        costs_argv = runner.calls[2][2:]
        made_conn, made_micro = runner.calls[0], runner.calls[1]
        self.assertEqual(costs_argv[0], "costs")
        self.assertTrue(costs_argv[2].endswith("-connections") and os.path.relpath(self.parents["connections"], ra.REPO)
                        in costs_argv[2], costs_argv)
        self.assertIn(os.path.relpath(self.parents["micro"], ra.REPO), costs_argv[costs_argv.index("--micro") + 1])
        self.assertTrue(made_conn and made_micro)
        # Alone (--only costs): the runs reference-runs.toml lists (a constructed one: the committed
        # set need not list a connections run).
        committed = ('[sections.connections]\nscenario = "connections"\nrun = "results/runs/c-connections"\n\n'
                     '[sections.micro]\nscenario = "micro"\nrun = "results/runs/m-micro"\n')
        argv = ra.resolve_argv(ra.COSTS_ARGV, {}, committed)
        self.assertEqual(argv[argv.index("--micro") + 1], ra.listed_run(committed, "micro"))
        self.assertEqual(argv[argv.index("--rows-from") + 1], ra.listed_run(committed, "connections"))
        msg = ra.resolve_argv(ra.COSTS_ARGV, {}, "[sections.x]\nscenario = \"x\"\nrun = \"\"\n")
        self.assertIsInstance(msg, str)
        self.assertIn("needs a run of connections", msg)

    def test_record_run(self):
        cases = [  # scenario -> (sections changed, a new section appended)
            ("handler-blocking", (["handler-blocking"], False)),
            ("soak", (["soak"], True)),
        ]
        for scen, (changed_want, appended) in cases:
            with self.subTest(scen):
                text, changed = ra.record_run(CONFIG, scen, f"results/x/new-{scen}")
                self.assertEqual(changed, changed_want)
                self.assertEqual(f"[sections.{scen}]" in text and f"[sections.{scen}]" not in CONFIG, appended)
                self.assertEqual(ra.listed_run(text, scen), f"results/x/new-{scen}")
                self.assertEqual(ra.listed_run(text, "ever-table"), "results/runs/old-ever-table")


class TestRetire(unittest.TestCase):
    """Before rendering, sections made from another commit move to kept =, so that a sitting of
    some steps renders one set of one commit."""
    TEXT = ('[sections.a]\nscenario = "a"\nrun = "results/runs/old-a"\nkept = "results/runs/older-a"\n'
            'kept_machine = "x"\n\n[sections.b]\nscenario = "b"\nrun = "results/runs/new-b"\n\n'
            '[sections.c]\nscenario = "c"\nrun = ""\n\n[sections.d]\nscenario = "d"\nrun = "results/runs/unknown-d"\n')
    IDS = {"results/runs/old-a": ("aaaa1111", "AMD EPYC, 2 CPUs"), "results/runs/new-b": ("bbbb2222", "m"),
           "results/runs/unknown-d": (None, "")}

    def test_retire(self):
        text, retired = ra.retire_other_commits(self.TEXT, "bbbb2222", lambda d: self.IDS[d])
        self.assertEqual(retired, ["a"])
        self.assertIsNone(ra.listed_run(text, "a"))  # run = ""
        self.assertIn('kept = "results/runs/old-a"', text)
        self.assertIn('kept_machine = "AMD EPYC, 2 CPUs (commit aaaa1111)"', text)
        self.assertNotIn("older-a", text)  # the older kept run is replaced, not listed twice
        self.assertEqual(ra.listed_run(text, "b"), "results/runs/new-b")
        self.assertEqual(ra.listed_run(text, "d"), "results/runs/unknown-d")  # left for the report's check
        # the result parses as the report reads it
        self.assertEqual(tomllib.loads(text)["sections"]["a"]["run"], "")

    def test_run_identity_reads_meta_and_calibration_trials(self):
        with tempfile.TemporaryDirectory() as tmp:
            sweep = os.path.join(tmp, "s")
            trial = os.path.join(tmp, "cal", "runs", "t1")
            for d, commit in ((sweep, "c1"), (trial, "c2")):
                os.makedirs(d)
                with open(os.path.join(d, "meta.json"), "w", encoding="utf-8") as f:
                    json.dump({"env": {"git_commit": commit, "cpu_model": "AMD EPYC", "cpu_count": 2,
                                       "kernel": "6.18"}}, f)
            with open(os.path.join(tmp, "cal", "calibration.json"), "w", encoding="utf-8") as f:
                f.write("{}")
            self.assertEqual(ra.run_identity(sweep), ("c1", "AMD EPYC, 2 CPUs, kernel 6.18"))
            self.assertEqual(ra.run_identity(os.path.join(tmp, "cal"))[0], "c2")
            self.assertEqual(ra.run_identity(os.path.join(tmp, "missing")), (None, ""))

    def test_execute_retires_before_the_report_only(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "reference-runs.toml")
            for report, want in ((True, None), (False, "results/runs/old-a")):
                with self.subTest(report=report):
                    with open(config, "w", encoding="utf-8") as f:
                        f.write(self.TEXT)
                    calls = []
                    with mock.patch("sys.stdout"), mock.patch("sys.stderr"):
                        rc = ra.execute([], config, run=lambda argv, cwd=None: calls.append(argv) or
                                        subprocess.CompletedProcess(argv, 0), report=report,
                                        commit="bbbb2222", identity=lambda d: self.IDS[d])
                    self.assertEqual(rc, 0)
                    with open(config, encoding="utf-8") as f:
                        self.assertEqual(ra.listed_run(f.read(), "a"), want)
                    self.assertEqual(calls == [["make", "report"]], report)


class TestSoakAndCostsSections(unittest.TestCase):
    """make report renders a soak run (results/soak/<id>) and a costs run from their own files."""

    def test_sections(self):
        from cbenchlib.render import reportgen
        with tempfile.TemporaryDirectory() as tmp:
            soak = os.path.join(tmp, "results", "soak", "20261205T000000Z-soak")
            costs = os.path.join(tmp, "results", "runs", "20261205T000000Z-costs")
            for d, kind in ((soak, "soak"), (costs, "costs")):
                os.makedirs(d)
                with open(os.path.join(d, "meta.json"), "w") as f:
                    json.dump({"kind": kind, "env": {"git_commit": "abc"}}, f)
            with open(os.path.join(costs, "costs.jsonl"), "w") as f:
                f.write("")
            rel = {"run": "results/soak/20261205T000000Z-soak"}
            with self.assertRaisesRegex(reportgen.ReportError, "summary.md is missing"):
                reportgen.section_text("soak", rel, root=tmp)
            with open(os.path.join(soak, "summary.md"), "w") as f:
                f.write("soak: 2 models, 600 s each\n\n| model | verdict |\n|---|---|\n| floor | ok |\n")
            text = reportgen.section_text("soak", rel, root=tmp)
            self.assertIn("`results/soak/20261205T000000Z-soak/summary.md`", text)
            self.assertIn("| floor | ok |", text)
            crel = {"run": "results/runs/20261205T000000Z-costs"}
            text = reportgen.section_text("costs", crel, root=tmp)
            self.assertIn("### Deterministic costs per request", text)  # demoted under the section's heading
            self.assertNotIn("\n## ", text)
            with open(os.path.join(costs, "account.md"), "w") as f:
                f.write("## Deterministic costs per request\n\naccount here\n")
            text = reportgen.section_text("costs", crel, root=tmp)
            self.assertIn("`results/runs/20261205T000000Z-costs/account.md`", text)
            self.assertIn("account here", text)
            self.assertIn("results/soak/<id>", reportgen.placeholder("soak", {"scenario": "soak", "run": ""}))


if __name__ == "__main__":
    unittest.main()
