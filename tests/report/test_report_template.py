"""REPORT.md.in: no hand-typed figure, claims checked against their run, and a mutation test.

The sections of one report come from different runs (results/reference-runs.toml maps each
section to its own run), so every check here takes a placeholder's or a claim's run from its
section as the renderer mapped it (reporttpl.Renderer.run, the map the rendering used), never from
one run for the whole template.

The mutation test copies one section's reference run, scales one row's figures by 0.5 (every
numeric field of its points' wrk, server and derived objects), renders the template again and
requires every placeholder of that section that read that row's figures to change, and every
other one to stay: so each sentence that depends on the row changes, and the dependency record is
exact. A figure printed at one unit of its last digit (0.001 at three decimals) can round back to
itself when halved, so such placeholders are checked again with the row scaled by 0.1 (which moves
it by more than a unit); a figure printed as zero cannot change under any scaling and is skipped
with that reason (reported as a skipped subtest, never a silent pass). A second mutation flips one
repetition's verdict and requires every "every ... was server-bound" claim over that cell to
change. The claims test re-checks every rendered range and "every" claim against its section's
run, and requires that the hand-written prose (placeholder outputs removed) holds no range and no
quantifier over rows or points.
"""
import copy
import json
import os
import re
import shutil
import tempfile
import unittest

from helpers import REPO, point, write_run

from cbenchlib.render import reportgen, reporttpl, tplsoftirq
from cbenchlib.format import reportrefs
from cbenchlib.analysis import runload

TEMPLATE = os.path.join(REPO, "REPORT.md.in")
CONFIG = os.path.join(REPO, "results", "reference-runs.toml")
SECTION = "ever-table"

# Numbers in the template's hand-written text that are not measurements: each names what it is.
NOT_MEASURED = [
    (r"issue \d+", "issue numbers"),
    (r"95%", "the confidence level of every interval"),
    (r"2-core|2 cores|one CPU|2 s timeout|default 2 s", "the machine's design and wrk's default timeout"),
    (r"10 µs of CPU per request|/spin\?us=10", "the handler's configured cost"),
    (r"64 threads|1024\s+connections|-t\d+ -c\d+|-c\d+", "load parameters of the scenario"),
    (r"depth 16|batch of 16|1 to 16 server threads|from 1 to 10000", "scenario parameters"),
    (r"x86-64|HTTP/1\.1|IRQ_TIME_ACCOUNTING|config-\*|h2o|nio4r|p99", "names"),
    (r"interval includes 1\b", "no difference is a ratio of 1"),
    (r"at least 90% busy|more than 20% of a CPU", "the verdict's thresholds (verdict.py)"),
    (r"\b[148] (shared-queue |per-worker )?(workers|worker|queues)\b|and 8 workers|4 workers'", "rows' thread counts"),
    (r"10 µs of work", "the handler's configured cost"),
    (r"5% and 10% of it", "calibrate's designed handicaps"),
]
DATA_QUANTIFIER = re.compile(r"\b(every|all|no)\s+(\w+\s+){0,2}(rows?|points?|repetitions?|connection counts?|models?)\b", re.I)
RANGE = re.compile(r"\d[\d.,]*\s*(?:k|M|µs|%|ms|s)?\s*(?:-|–|to)\s*\d")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def prose_only(text):
    """Text outside generated sections and code spans."""
    text = re.sub(r"^<!-- BEGIN GENERATED: (\S+) -->\n.*?^<!-- END GENERATED: \1 -->$", "", text, flags=re.S | re.M)
    text = re.sub(r"<!--.*?-->", "", text)
    return re.sub(r"`[^`]*`", "`…`", text)


def render(config, root=REPO):
    rd = reporttpl.Renderer(config, root)
    return rd.render(read(TEMPLATE)), rd


def copy_run(src, dst, mutate):
    os.makedirs(dst)
    shutil.copy(os.path.join(src, "meta.json"), dst)
    with open(os.path.join(src, "points.jsonl"), encoding="utf-8") as f, \
            open(os.path.join(dst, "points.jsonl"), "w", encoding="utf-8") as g:
        for line in f:
            if line.strip():
                g.write(json.dumps(mutate(json.loads(line))) + "\n")
    return dst


def scale(obj, factor):
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, (int, float)):
        return obj * factor
    if isinstance(obj, dict):
        return {k: scale(v, factor) for k, v in obj.items()}
    return obj


def scaled(row, factor):
    """A point mutation: the row's wrk, server and derived figures times factor."""
    def mutate(p):
        if p["row"]["key"] != row:
            return p
        p = copy.deepcopy(p)
        for k in ("wrk", "server", "derived"):
            p[k] = scale(p.get(k), factor)
        return p
    return mutate


class TemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.config = reportgen.read_config(CONFIG)
        cls.text, cls.rd = render(cls.config)

    def run_dir(self, section):
        """The run a section's placeholders read: the renderer's own map (results/reference-runs.toml)."""
        return self.rd.run(section).dir

    def test_committed_report_is_rendered_from_the_template(self):
        pages = reportgen.render_pages(read(TEMPLATE), self.config)
        for path, text in pages.items():
            with self.subTest(page=path):
                self.assertEqual(text, read(os.path.join(REPO, path)),
                                 f"{path} differs from what `make report` renders; run `make report`")

    def test_template_has_no_hand_typed_figure(self):
        text = prose_only(read(TEMPLATE))
        text = re.sub(r"\{\{[^{}]*\}\}", "", text)
        for pat, _why in NOT_MEASURED:
            text = re.sub(pat, "", text)
        left = [m.group(0) for m in re.finditer(r"[^\n]{0,30}\d[^\n]{0,30}", text)]
        self.assertEqual(left, [], "hand-typed numbers in REPORT.md.in (use a placeholder, or add a"
                                   " non-measurement to NOT_MEASURED with its reason)")

    def test_every_claim_holds_in_its_run(self):
        self.assertTrue(self.rd.claims, "the template makes no checked claim")
        self.assertEqual([(c.section, c.text, why) for c, why in self.rd.check_claims()], [])

    def test_claims_check_can_fail(self):
        """Each section's verdict and range claims are re-checked against a copy of that section's
        run in which every cell's verdicts are inverted (a cell that was server-bound in every
        repetition becomes client-bound, every other cell server-bound): at least one of that
        section's claims must then fail."""
        tmp = tempfile.mkdtemp(prefix="cbench-claims-")
        self.addCleanup(shutil.rmtree, tmp)
        sections = sorted({c.section for c in self.rd.claims if c.kind in ("verdicts", "range")})
        self.assertTrue(sections, "the template makes no verdict or range claim")
        for section in sections:
            run = self.rd.run(section)
            on = {(rk, lid.key) for (rk, lid), c in run.cells.items() if c.ok_points
                  and all(v == "server-bound" for v in c.verdicts())}

            def invert(p, on=on):
                p = copy.deepcopy(p)
                p["verdict"] = "client-bound" if (p["row"]["key"], p["load"]["key"]) in on else "server-bound"
                p["verdict_evidence"] = ""
                return p
            other = runload.load_run(copy_run(run.dir, os.path.join(tmp, section), invert))
            with self.subTest(section=section):
                failed = [c.text for c in self.rd.claims if c.section == section and _fails(c, other)]
                self.assertTrue(failed, f"no claim of section {section} fails against its run with"
                                        " every verdict inverted")

    def test_hand_written_prose_makes_no_unchecked_range_or_quantifier(self):
        text = self.text
        for u in sorted(self.rd.uses, key=lambda u: -len(u.text)):
            text = text.replace(u.text, "⟨placeholder⟩")
        text = prose_only(text)
        for pat, _why in NOT_MEASURED:
            text = re.sub(pat, "", text)
        self.assertEqual([m.group(0) for m in RANGE.finditer(text)], [],
                         "a range in hand-written prose: use {{range ...}}")
        self.assertEqual([m.group(0) for m in DATA_QUANTIFIER.finditer(text)], [],
                         "a quantifier over rows/points in hand-written prose: use {{bound ...}}")

    def _mutated(self, section, mutate):
        """(text, renderer) with SECTION's run replaced by a mutated copy of it."""
        tmp = tempfile.mkdtemp(prefix="cbench-mutation-")
        self.addCleanup(shutil.rmtree, tmp)
        src = self.run_dir(section)
        d = copy_run(src, os.path.join(tmp, os.path.basename(src)), mutate)
        cfg = copy.deepcopy(self.config)
        cfg[section]["run"] = d
        text, rd2 = render(cfg)
        self.assertEqual(len(rd2.uses), len(self.rd.uses))
        return text, rd2

    def _check_unchanged_elsewhere(self, section, row, rd2, why):
        for u, u2 in zip(self.rd.uses, rd2.uses):
            if u.section == section and any(r == row for r, _ in u.figures):
                continue
            if u.section == section and u.source.startswith("{{runref"):
                continue  # the copy's directory differs
            with self.subTest(section=section, row=row, placeholder=u.source, mutation=why):
                self.assertEqual(u.text, u2.text, f"does not depend on {row} ({section}) but changed")

    def test_scaling_a_row_changes_every_sentence_that_depends_on_it(self):
        pairs = sorted({(u.section, r) for u in self.rd.uses for r, _ in u.figures})
        self.assertGreater(len(pairs), 5)
        verified = 0
        for section, row in pairs:
            _, rd2 = self._mutated(section, scaled(row, 0.5))
            self._check_unchanged_elsewhere(section, row, rd2, "x0.5")
            finer = []  # printed at one unit of their resolution: checked again at x0.1
            for u, u2 in zip(self.rd.uses, rd2.uses):
                if u.section != section or not any(r == row for r, _ in u.figures):
                    continue
                with self.subTest(section=section, row=row, placeholder=u.source):
                    if u.text != u2.text:
                        verified += 1
                    elif _zero(u.text):
                        self.skipTest(f"{u.text!r} is zero at its printed resolution: no scaling of"
                                      " the row can change it")
                    elif _at_resolution(u.text):
                        finer.append(u)
                    else:
                        self.fail(f"depends on {row} ({section}) but did not change: {u.text!r}")
            if not finer:
                continue
            _, rd3 = self._mutated(section, scaled(row, 0.1))
            self._check_unchanged_elsewhere(section, row, rd3, "x0.1")
            for u in finer:
                with self.subTest(section=section, row=row, placeholder=u.source, mutation="x0.1"):
                    self.assertNotEqual(u.text, rd3.uses[u.index].text,
                                        f"depends on {row} ({section}) but did not change at x0.1")
                    verified += 1
        self.assertGreaterEqual(verified, len(pairs), "the mutation test verified almost no dependency")

    def test_flipping_a_verdict_changes_every_claim_over_that_cell(self):
        bound = [u for u in self.rd.uses if u.source.startswith("{{bound")]
        self.assertTrue(bound)
        for u in bound:
            row, load = sorted(u.verdicts)[0]

            # Every repetition of the row set to one verdict, then to the other: a claim over "server-bound
            # in every repetition" must move with one of them (flipping each repetition alone leaves a
            # row of mixed verdicts mixed, and its claim rightly unchanged).
            def set_all(verdict, row=row, load=load):
                def mutate(p):
                    if p["row"]["key"] != row or p["load"]["key"] != load:
                        return p
                    p = copy.deepcopy(p)
                    p["verdict"] = verdict
                    return p
                return mutate
            texts = {self._mutated(u.section, set_all(v))[1].uses[u.index].text for v in ("server-bound", "unclear")}
            with self.subTest(section=u.section, placeholder=u.source):
                self.assertTrue(texts - {u.text}, f"{u.source} ignores {row} at {load}")

    def test_placeholder_naming_a_missing_row_fails_clearly(self):
        rd = reporttpl.Renderer(self.config, REPO)
        with self.assertRaises(reporttpl.TemplateError) as cm:
            rd.render("line one\n{{v ever-table | no-such-row t1 | -t4 -c64 | rps}}")
        self.assertIn("template line 2", str(cm.exception))
        self.assertIn("no row 'no-such-row t1'", str(cm.exception))
        with self.assertRaises(reporttpl.TemplateError) as cm:
            rd.render("{{v ever-table | pull-loop t1 | -t9 -c9 | rps}}")
        self.assertIn("no load point '-t9 -c9'", str(cm.exception))

    def _copy_with_env(self, **env):
        """A copy of the ever-table reference run whose meta.json env differs in ENV."""
        tmp = tempfile.mkdtemp(prefix="cbench-env-")
        self.addCleanup(shutil.rmtree, tmp)
        d = copy_run(self.run_dir(SECTION), os.path.join(tmp, "other"), lambda p: p)
        meta = json.loads(read(os.path.join(d, "meta.json")))
        meta["env"].update(env)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        return d

    def test_reference_set_from_two_commits_is_refused(self):
        cfg = copy.deepcopy(self.config)
        cfg["zz-odd-one"] = {"run": self._copy_with_env(git_commit="0" * 40)}  # beside the listed runs
        with self.assertRaises(reporttpl.TemplateError) as cm:
            reporttpl.check_reference_set(cfg, REPO)
        self.assertIn("2 commits", str(cm.exception))

    def test_reference_set_from_two_machines_is_refused(self):
        cfg = copy.deepcopy(self.config)
        cfg["zz-odd-one"] = {"run": self._copy_with_env(cpu_model="Intel Xeon")}
        with self.assertRaises(reporttpl.TemplateError) as cm:
            reporttpl.check_reference_set(cfg, REPO)
        self.assertIn("different machines", str(cm.exception))

    def _calibration_dir(self, commit=None):
        tmp = tempfile.mkdtemp(prefix="cbench-cal-")
        self.addCleanup(shutil.rmtree, tmp)
        cal = os.path.join(tmp, "20261201T000000Z-calibrate")
        run = copy_run(self.run_dir(SECTION), os.path.join(cal, "runs", "trial0"), lambda p: p)
        if commit:
            meta = json.loads(read(os.path.join(run, "meta.json")))
            meta["env"]["git_commit"] = commit
            with open(os.path.join(run, "meta.json"), "w") as f:
                json.dump(meta, f)
        with open(os.path.join(cal, "calibration.json"), "w") as f:
            json.dump({"cpu_us_per_req": 17.71, "handicaps_ns": {"5%": 886, "10%": 1771}, "trials": 10,
                       "repetitions": 3, "duration_s": 1,
                       "aa_false_positive": {"k": 1, "n": 10, "ci": [0.0025, 0.445]},
                       "ab_detection_B5": {"k": 4, "n": 10, "ci": [0.12, 0.74]},
                       "ab_detection_B10": {"k": 9, "n": 10, "ci": [0.55, 0.997]}}, f)
        return cal

    def test_calibration_section_quotes_its_file(self):
        cfg = copy.deepcopy(self.config)
        cfg["calibration"]["run"] = self._calibration_dir()
        new, _ = reportgen.render_template(read(TEMPLATE), cfg)
        self.assertIn("A/A false-positive rate (any verdict but undecided on the same server twice): 1 of 10"
                      " (10%; 95% Clopper-Pearson interval 0% to 44%)", new)
        self.assertIn("A/B detection rate at +10% CPU per request (verdict supported): 9 of 10", new)
        self.assertIn("in at least 80% of trials: +10%.", new)
        cfg["calibration"]["run"] = self._calibration_dir(commit="0" * 40)
        with self.assertRaises(reportgen.ReportError) as cm:
            reportgen.render_template(read(TEMPLATE), cfg)
        self.assertIn("2 commits", str(cm.exception))

    def test_sections_without_a_run_say_so(self):
        """Whatever the live set lists: a section set to run = "" with a kept run says "not yet
        remade" and names the kept run; one without says "not yet run"; the decision table's row
        of that shape says so too."""
        cfg = copy.deepcopy(self.config)
        cfg["connections"] = {"scenario": "connections", "run": "",
                              "kept": "results/runs/20261122T072357Z-connections", "kept_machine": "AMD EPYC"}
        cfg["large-responses"] = {"scenario": "large-responses", "run": ""}
        new, _ = reportgen.render_template(read(TEMPLATE), cfg)
        self.assertIn("_Not yet remade on this machine._ The run of scenario `connections` kept in"
                      " `results/runs/20261122T072357Z-connections/`", new)
        body = new.split("<!-- BEGIN GENERATED: large-responses -->", 1)[1]
        self.assertTrue(body.startswith("\n_Not yet run._ No reference run of scenario `large-responses`"),
                        body[:200])
        table = new.split("<!-- BEGIN GENERATED: decision-table -->", 1)[1].split("<!-- END GENERATED", 1)[0]
        self.assertRegex(table, r"\| large responses \|[^\n]*not yet run")
        self.assertNotIn("have not been made yet", new)
        self.assertNotIn("bootstrap interval", new)


class ReportRefsTest(unittest.TestCase):
    """reportrefs: the one map from a section to its run directory."""

    def test_resolve(self):
        cases = [  # label, the section's table, the directory
            ("no section", None, None),
            ("not yet run", {"run": ""}, None),
            ("kept elsewhere only", {"run": "", "kept": "results/runs/old"}, None),
            ("relative to the root", {"run": "results/runs/x"}, os.path.join("/r", "results/runs/x")),
            ("absolute", {"run": "/tmp/x"}, "/tmp/x"),
        ]
        for label, sec, want in cases:
            with self.subTest(label):
                self.assertEqual(reportrefs.resolve(sec, "/r"), want)
        self.assertEqual(reportrefs.run_dir({"a": {"run": "d"}, "b": {"run": ""}}, "a", "/r"), "/r/d")
        self.assertIsNone(reportrefs.run_dir({"a": {"run": "d"}}, "b", "/r"))


def _fails(claim, run):
    """True when the claim does not hold in RUN (a selection that matches nothing fails too)."""
    try:
        return claim.check(run) is not None
    except reporttpl.TemplateError:
        return True


class SoftirqWordsTest(unittest.TestCase):
    """The softirq sentence (tplsoftirq.softirq_words): one case per relation between the two
    measures' ratios A/B, (ratio, lo, hi) by the process's CPU time and by the CPU's busy time."""

    CASES = [  # label, process, busy, words that must appear
        ("both below 1", (0.70, 0.60, 0.80), (0.75, 0.65, 0.85), "does not change with it (by both measures"),
        ("both above 1", (1.30, 1.20, 1.40), (1.20, 1.10, 1.30), "uses more server CPU per request"),
        ("opposite sides, both decided", (0.70, 0.60, 0.80), (1.30, 1.20, 1.40), "reverses with it"),
        ("only the process time decides", (0.70, 0.60, 0.80), (0.90, 0.70, 1.10),
         "changes with it (by the process's CPU time `a` uses less than `b`; by the CPU's busy time no"),
        ("only the busy time decides", (0.95, 0.80, 1.10), (1.30, 1.20, 1.40),
         "changes with it (by the CPU's busy time `a` uses more than `b`; by the process's CPU time no"),
        ("neither decides, same direction", (0.90, 0.70, 1.10), (0.95, 0.80, 1.10),
         "changes nothing this run can show"),
        # the reference run's case that read "does not change": 0.71 and 2.13, both intervals wide
        ("neither decides, either side of 1", (0.71, 0.20, 2.50), (2.13, 0.30, 15.0),
         "disagree in direction but neither shows a difference, so this run cannot tell"),
        ("one repetition, same side", (0.70, None, None), (0.80, None, None), "does not change with it"),
        ("one repetition, either side of 1", (0.70, None, None), (1.30, None, None), "reverses with it"),
    ]

    def test_each_case_has_its_words(self):
        for label, proc, busy, want in self.CASES:
            with self.subTest(label):
                text = tplsoftirq.softirq_words("a", "b", proc, busy)
                self.assertIn(want, text)
                sides = {proc[0] > 1, busy[0] > 1}
                if len(sides) == 2:  # ratios on either side of 1 are never "does not change"
                    self.assertNotIn("does not change", text)


def softirq_run(dir_path, busy_per_req, cpu_per_req, disturbed=(), reps=6):
    """Rows `a t1` and `b t1` at -t4 -c64, REPS blocks, with the given process CPU and CPU busy
    time per request (µs) per row; 5% softirq; rows in DISTURBED carry DISTURBED evidence."""
    pts = []
    # Each row's figures vary by the same factors in another order, so a ratio of equal figures
    # is exactly 1 with an interval around it, and 10 against 14 is exactly 0.71.
    jitter = (0.99, 1.0, 1.01, 1.0, 0.995, 1.005)
    for i, row in enumerate(("a t1", "b t1")):
        for rep in range(reps):
            p = point(row, 50000.0, load_key="-t4 -c64", connections=64, model=row.split()[0], rep=rep)
            p["block"] = rep
            req, win = 100000, 2.0
            p["wrk"]["requests"] = req
            p["server"] = {"window_s": win}
            p["derived"] = {"server_cpu_us_per_req": cpu_per_req[row] * jitter[(rep + 3 * i) % len(jitter)]}
            busy = busy_per_req.get(row)
            p["machine"] = ({} if busy is None else
                            {"busy_frac": {"server": busy * jitter[(rep + 1 + 2 * i) % len(jitter)] * req / (win * 1e6)},
                             "softirq_frac": {"server": 0.05}})
            p["verdict_evidence"] = "DISTURBED: other processes" if row in disturbed else ""
            pts.append(p)
    return write_run(dir_path, pts)


class SoftirqPlaceholderTest(unittest.TestCase):
    """{{softirq}} on synthetic runs: the sentence follows the data."""

    TPL = "{{softirq s | a t1 | b t1 | -t4 -c64}}"

    def render(self, **kw):
        tmp = tempfile.mkdtemp(prefix="cbench-softirq-")
        self.addCleanup(shutil.rmtree, tmp)
        d = softirq_run(os.path.join(tmp, "r"), **kw)
        return reporttpl.Renderer({"s": {"run": d}}, tmp).render(self.TPL)

    def test_sentence_follows_the_data(self):
        cpu = {"a t1": 10.0, "b t1": 14.0}
        cases = [  # label, busy per request, words
            ("busy time agrees", {"a t1": 11.0, "b t1": 15.4}, "does not change with it"),
            ("busy time reverses", {"a t1": 11.0, "b t1": 4.2}, "reverses with it"),
            ("busy time shows no difference", {"a t1": 11.0, "b t1": 11.0}, "changes with it (by the process's"),
        ]
        for label, busy, want in cases:
            with self.subTest(label):
                text = self.render(busy_per_req=busy, cpu_per_req=cpu)
                self.assertIn(want, text)
                self.assertIn("softirq time was 5.0% of the server CPU for `a t1`", text)
                self.assertIn("is 0.71 (95% interval", text)

    def test_runs_without_the_record_or_undisturbed_points_say_so(self):
        cpu = {"a t1": 10.0, "b t1": 14.0}
        self.assertIn("predates this record", self.render(busy_per_req={}, cpu_per_req=cpu))
        self.assertIn("was disturbed", self.render(busy_per_req={"a t1": 11.0, "b t1": 15.4}, cpu_per_req=cpu,
                                                   disturbed=("a t1",)))


def _zero(text):
    """True when a rendered figure is a zero (0, 0.00, 0.000 with its unit): scaling leaves it."""
    m = re.fullmatch(r"\s*-?([0-9.]+)\s*\S*\s*", text)
    return bool(m) and float(m.group(1) or "nan") == 0.0


def _at_resolution(text):
    """True when a figure in the rendered text is one unit of its last printed digit or less
    (0.001 at three decimals, 1 as a whole number): halving its true value can round back to it."""
    for m in re.finditer(r"(?<![\w.])([0-9]+)(?:\.([0-9]+))?(?!\w)", text):
        unit = 10.0 ** -len(m.group(2) or "")
        if float(m.group(0)) <= unit * 1.000001:
            return True
    return False


if __name__ == "__main__":
    unittest.main()
