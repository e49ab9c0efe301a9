"""results/defects.toml (format/defects.py) and the marks it puts on verdicts: which runs carry a
declared defect (git ancestry, in a throw-away repository), and which verdicts of a simulated run
are marked, in the scorecard, REPORT.md's summary and the findings page."""
import os
import subprocess
import tempfile
import unittest

from stacksim import tmp_run
from cbenchlib.analysis import findings, scorecard
from cbenchlib.format import defects, published
from cbenchlib.render import findingstext, scoretext

EVER = published.load_published("ever")
DEFECT = defects.Defect("x", ("ruby-ever", "ruby-ever-workers"), "0" * 40, "a made-up cost")


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout.strip()


class LoadTest(unittest.TestCase):
    CASES = [
        ("two fields missing", '[[defect]]\nid = "a"\nmodels = ["m"]\n', "lacks fixed_in, what"),
        ("not TOML", "[[defect]\n", "defects.toml"),
    ]

    def test_bad_files_are_named(self):
        for label, text, want in self.CASES:
            with self.subTest(label), tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "defects.toml")
                with open(path, "w") as f:
                    f.write(text)
                with self.assertRaisesRegex(defects.DefectsError, want):
                    defects.load(path)

    def test_no_file_no_defects(self):
        self.assertEqual(defects.load("/nonexistent/defects.toml"), [])

    def test_the_committed_file_loads(self):
        for d in defects.load():
            self.assertEqual(len(d.fixed_in), 40, d)


class ForCommitTest(unittest.TestCase):
    """A repository with three commits: before, fix, after. A defect fixed in `fix` applies to
    runs made from `before`, not to runs made from `fix` or `after`; a commit git does not know,
    or none, counts as carrying it."""

    def test_ancestry_table(self):
        with tempfile.TemporaryDirectory() as repo:
            git(repo, "init", "-q")
            shas = {}
            for name in ("before", "fix", "after"):
                git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", name)
                shas[name] = git(repo, "rev-parse", "HEAD")
            d = defects.Defect("x", ("m",), shas["fix"], "w")
            for commit, applies in [(shas["before"], True), (shas["fix"], False), (shas["after"], False),
                                    ("f" * 40, True), (None, True)]:
                with self.subTest(commit=commit):
                    self.assertEqual(defects.for_commit(commit, [d], repo) == [d], applies)


class MarksTest(unittest.TestCase):
    """A run with Ruby Ever and nio4r rows: findings whose Ruby comparisons hold an affected
    model (ruby-ever, ruby-ever-workers) are marked on the Ruby rows, nio4r's (6, C) and every
    C++ verdict are not."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        rows = {("ever single thread", "ruby"): 30000, ("ever 1 worker thread", "ruby"): 25000,
                ("nio4r single thread", "ruby"): 28000, ("nio4r 4 worker threads", "ruby"): 9000,
                ("ever single thread", "cpp"): 80000, ("ever 1 worker thread", "cpp"): 60000}
        self.run = tmp_run(self, "run", rows, reps=3)
        self.scores = {es.eid: es for es in scorecard.scorecard(self.run, EVER, run_defects=[DEFECT])}

    def tearDown(self):
        self.tmp.cleanup()

    def test_marked_where_a_comparison_holds_an_affected_row(self):
        self.assertEqual(self.scores["1"].defects["ruby"], [DEFECT])
        self.assertEqual(self.scores["6"].defects["ruby"], [])
        self.assertEqual(self.scores["C"].defects["ruby"], [])
        self.assertTrue(all(not es.defects["cpp"] for es in self.scores.values()))

    def test_every_page_marks_and_explains(self):
        notes = scoretext.defect_notes(list(self.scores.values()), "ruby", scoretext.STACK_TITLE["ruby"])
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("measured before `00000000` fixed a defect: a made-up cost", notes[0])
        self.assertTrue(notes[0].startswith(scoretext.DEFECT_MARK + " 1, "), notes[0])
        self.assertNotIn(" 6,", notes[0])
        card = scoretext.render_scorecard(list(self.scores.values()), "##")
        self.assertIn(notes[0], card)
        self.assertTrue(any(ln.startswith("| 1. ") and "Ruby rows" in ln and scoretext.DEFECT_MARK in ln for ln in card))
        self.assertFalse(any(ln.startswith("| 6. ") and scoretext.DEFECT_MARK in ln for ln in card))

    def test_the_findings_page_marks_the_ruby_verdicts(self):
        """findingstext takes the run's defects from scorecard.defects_of (none for a synthetic
        run: patched here to the made-up one): the line comes after finding 1's Ruby verdict, not
        after finding 6's."""
        real = scorecard.defects_of
        scorecard.defects_of = lambda run: [DEFECT]
        try:
            text = findingstext.render_findings(findings.Analysis(self.run, EVER), 3,
                                                findings.Analysis(self.run, EVER, stack="ruby"))
        finally:
            scorecard.defects_of = real
        parts = text.split("#### Finding ")
        one = next(p for p in parts if p.startswith("1:"))
        six = next(p for p in parts if p.startswith("6:"))
        self.assertIn(scoretext.DEFECT_MARK + " Rows of these comparisons (ruby-ever, ruby-ever-workers)", one)
        self.assertIn("**Verdict on the Ruby rows: ", one)
        self.assertNotIn(scoretext.DEFECT_MARK, six)

    def test_no_defect_no_mark(self):
        scores = scorecard.scorecard(self.run, EVER, run_defects=[])
        self.assertEqual(scoretext.defect_notes(scores, "ruby", "Ruby rows"), [])
        self.assertFalse(any(scoretext.DEFECT_MARK in ln for ln in scoretext.render_scorecard(scores, "##")))


if __name__ == "__main__":
    unittest.main()
