"""REPORT.md.in: no hand-typed figure, claims checked against their run, and a mutation test.

The mutation test copies the reference ever-table run, scales one row's figures by 0.5 (every
numeric field of its points' wrk, server and derived objects), renders the template again and
requires every placeholder that read that row's figures to change, and every other one to stay:
so each sentence that depends on the row changes, and the dependency record is exact. A second
mutation flips one repetition's verdict and requires every "every ... was server-bound" claim over
that cell to change. The claims test re-checks every rendered range and "every" claim against its
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

from helpers import REPO

from cbenchlib import reportgen, reporttpl, runload

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


class TemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.config = reportgen.read_config(CONFIG)
        cls.text, cls.rd = render(cls.config)
        cls.run_dir = os.path.join(REPO, cls.config[SECTION]["run"])

    def test_committed_report_is_rendered_from_the_template(self):
        new, _ = reportgen.render_template(read(TEMPLATE), self.config)
        self.assertEqual(new, read(os.path.join(REPO, "REPORT.md")),
                         "REPORT.md differs from what `make report` renders; run `make report`")

    def test_template_has_no_hand_typed_figure(self):
        text = prose_only(read(TEMPLATE))
        text = re.sub(r"\{\{[^{}]*\}\}", "", text)
        for pat, _why in NOT_MEASURED:
            text = re.sub(pat, "", text)
        left = [m.group(0) for m in re.finditer(r"[^\n]{0,30}\d[^\n]{0,30}", text)]
        self.assertEqual(left, [], "hand-typed numbers in REPORT.md.in (use a placeholder, or add a"
                                   " non-measurement to NOT_MEASURED with its reason)")

    def test_every_claim_holds_in_its_run(self):
        run = runload.load_run(self.run_dir)
        self.assertTrue(self.rd.claims, "the template makes no checked claim")
        for c in self.rd.claims:
            self.assertIsNone(c.check(run), c.text)

    def test_claims_check_can_fail(self):
        """A claim rendered from the run is re-checked against a run whose verdicts changed."""
        tmp = tempfile.mkdtemp(prefix="cbench-claims-")
        self.addCleanup(shutil.rmtree, tmp)

        def flip(p):
            p = copy.deepcopy(p)
            p["verdict"] = "client-bound" if p.get("verdict") == "server-bound" else "server-bound"
            p["verdict_evidence"] = ""
            return p
        other = runload.load_run(copy_run(self.run_dir, os.path.join(tmp, "r"), flip))
        failed = [c.text for c in self.rd.claims if c.check(other) is not None]
        self.assertTrue(failed, "no claim fails against a run with every verdict flipped")

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

    def _mutated(self, mutate):
        tmp = tempfile.mkdtemp(prefix="cbench-mutation-")
        self.addCleanup(shutil.rmtree, tmp)
        d = copy_run(self.run_dir, os.path.join(tmp, os.path.basename(self.run_dir)), mutate)
        cfg = copy.deepcopy(self.config)
        cfg[SECTION]["run"] = d
        return render(cfg)

    def test_scaling_a_row_changes_every_sentence_that_depends_on_it(self):
        rows = sorted({r for u in self.rd.uses for r, _ in u.figures})
        self.assertGreater(len(rows), 5)
        for row in rows:
            def half(p, row=row):
                if p["row"]["key"] != row:
                    return p
                p = copy.deepcopy(p)
                for k in ("wrk", "server", "derived"):
                    p[k] = scale(p.get(k), 0.5)
                return p
            _, rd2 = self._mutated(half)
            self.assertEqual(len(rd2.uses), len(self.rd.uses))
            for u, u2 in zip(self.rd.uses, rd2.uses):
                depends = any(r == row for r, _ in u.figures)
                with self.subTest(row=row, placeholder=u.source):
                    if depends and not _zero(u.text):  # half of a true zero is still zero
                        self.assertNotEqual(u.text, u2.text, f"depends on {row} but did not change")
                    elif not u.source.startswith("{{runref"):  # the copy's directory differs
                        self.assertEqual(u.text, u2.text, f"does not depend on {row} but changed")

    def test_flipping_a_verdict_changes_every_claim_over_that_cell(self):
        bound = [u for u in self.rd.uses if u.source.startswith("{{bound")]
        self.assertTrue(bound)
        for u in bound:
            row, load = sorted(u.verdicts)[0]

            def flip(p, row=row, load=load):
                if p["row"]["key"] != row or p["load"]["key"] != load:
                    return p
                p = copy.deepcopy(p)
                p["verdict"] = "unclear" if p.get("verdict") == "server-bound" else "server-bound"
                return p
            _, rd2 = self._mutated(flip)
            self.assertNotEqual(u.text, rd2.uses[u.index].text, f"{u.source} ignores {row} at {load}")

    def test_softirq_comparison_says_whether_it_changes(self):
        """With the CPU's busy time equal to the process's CPU time the comparison cannot change;
        with one row's busy time tripled it must say it changes."""
        def add_busy(factor_for):
            def mutate(p):
                p = copy.deepcopy(p)
                util = p.get("derived", {}).get("server_cpu_util") or 0.0
                f = factor_for.get(p["row"]["key"], 1.0)
                p["machine"] = dict(p.get("machine") or {}, busy_frac={"server": util * f, "client": 0.5},
                                    softirq_frac={"server": 0.05, "client": 0.02})
                p["verdict_evidence"] = ""
                return p
            return mutate
        tpl = "{{softirq ever-table | pull-loop t1 | worker-pool t1 shared | -t4 -c64}}"
        for factors, want in (({}, "does not change"), ({"pull-loop t1": 3.0}, "changes with it")):
            tmp = tempfile.mkdtemp(prefix="cbench-softirq-")
            self.addCleanup(shutil.rmtree, tmp)
            d = copy_run(self.run_dir, os.path.join(tmp, "r"), add_busy(factors))
            text = reporttpl.Renderer({SECTION: {"run": d}}, REPO).render(tpl)
            self.assertIn(want, text)
            self.assertIn("softirq time was 5.0% of the server CPU", text)

    def test_placeholder_naming_a_missing_row_fails_clearly(self):
        rd = reporttpl.Renderer(self.config, REPO)
        with self.assertRaises(reporttpl.TemplateError) as cm:
            rd.render("line one\n{{v ever-table | no-such-row t1 | -t4 -c64 | rps}}")
        self.assertIn("template line 2", str(cm.exception))
        self.assertIn("no row 'no-such-row t1'", str(cm.exception))
        with self.assertRaises(reporttpl.TemplateError) as cm:
            rd.render("{{v ever-table | pull-loop t1 | -t9 -c9 | rps}}")
        self.assertIn("no load point '-t9 -c9'", str(cm.exception))

    def test_reference_set_from_two_commits_is_refused(self):
        cfg = copy.deepcopy(self.config)
        cfg["connections"]["run"] = cfg["connections"]["kept"]
        with self.assertRaises(reporttpl.TemplateError) as cm:
            reporttpl.check_reference_set(cfg, REPO)
        self.assertIn("2 commits", str(cm.exception))

    def test_reference_set_from_two_machines_is_refused(self):
        tmp = tempfile.mkdtemp(prefix="cbench-machine-")
        self.addCleanup(shutil.rmtree, tmp)
        d = copy_run(self.run_dir, os.path.join(tmp, "other"), lambda p: p)
        meta = json.loads(read(os.path.join(d, "meta.json")))
        meta["env"]["cpu_model"] = "Intel Xeon"
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        cfg = copy.deepcopy(self.config)
        cfg["connections"]["run"] = d
        with self.assertRaises(reporttpl.TemplateError) as cm:
            reporttpl.check_reference_set(cfg, REPO)
        self.assertIn("different machines", str(cm.exception))

    def _calibration_dir(self, commit=None):
        tmp = tempfile.mkdtemp(prefix="cbench-cal-")
        self.addCleanup(shutil.rmtree, tmp)
        cal = os.path.join(tmp, "20261201T000000Z-calibrate")
        run = copy_run(self.run_dir, os.path.join(cal, "runs", "trial0"), lambda p: p)
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
        new, _ = reportgen.render_template(read(TEMPLATE), self.config)
        self.assertIn("_Not yet remade on this machine._ The run of scenario `connections` kept in"
                      " `results/runs/20261122T072357Z-connections/`", new)
        self.assertNotIn("have not been made yet", new)
        self.assertNotIn("bootstrap interval", new)
        # A section whose run is "" and that keeps no run elsewhere says "not yet run".
        empty = [name for name, sec in self.config.items()
                 if isinstance(sec, dict) and not sec.get("run") and not sec.get("kept")]
        self.assertTrue(empty, "the reference set has no section without a run to check")
        for name in empty:
            body = new.split(f"<!-- BEGIN GENERATED: {name} -->", 1)[1]
            self.assertTrue(body.startswith("\n_Not yet run._"), f"{name}: {body[:200]}")



def _zero(text):
    """True when a rendered figure is a zero (0, 0.00, 0.000 with its unit): scaling leaves it."""
    import re as _re
    m = _re.fullmatch(r"\s*([0-9.]+)\s*\S*\s*", text)
    return bool(m) and float(m.group(1) or "nan") == 0.0


if __name__ == "__main__":
    unittest.main()
