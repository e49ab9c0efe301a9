"""REPORT.md and its pages under report/: the summary's size and charts, and prose that cannot
contradict the verdict or interval it cites.

A comparative clause in generated text ends with its citation: the families' form
"(wins; 1.12, 95% CI 1.004–1.26)" (analysis/families.cite) or the template's `{{cmp}}` form
"(rps ratio 1.52, 95% paired interval 0.26 to 8.70, n=2+2)". The clause is the text from the last
sentence or clause boundary (". ", ";", ":", a table pipe, a line start) up to the citation; the
rules below say which words a citation allows. Every rule is tested on lines that must pass and
lines that must fail, then applied to every committed page.
"""
from __future__ import annotations

import glob
import os
import re
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path for cbenchlib)
from cbenchlib.analysis import decision, families
from cbenchlib.format import reportrefs
from cbenchlib.render import reportgen

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUMMARY_MAX_LINES = 250
LINE_MAX_CHARS = 400
CHARTS = ("report/charts/decision.png", "report/charts/reproduction.png",
          "report/charts/cost-account.png", "report/charts/latency-load.png")

_FAMILY_CITE = re.compile(r"\((supported|contradicted|equivalent|undecided|wins)"
                          r"(?:; ([0-9.]+), (\d+)% CI ([0-9.]+)–([0-9.]+))?\)")
_CMP_CITE = re.compile(r"\(([a-z_0-9]+) ratio ([0-9.]+), 95% [a-z]+ interval ([0-9.]+) to ([0-9.]+), n=[0-9+]+\)")
_BOUNDARY = re.compile(r"(?:\.\s|;|:|\||^)", re.M)
SAME = re.compile(r"no measurable difference|not measurably different|do not measurably differ|"
                  r"no difference this run can show|makes no difference", re.I)
LOWER = re.compile(r"\b(slower|fewer|less|saves)\b", re.I)
HIGHER = re.compile(r"\b(faster|more|adds|higher)\b", re.I)


def _clause(text: str, end: int) -> str:
    start = max((m.end() for m in _BOUNDARY.finditer(text, 0, end)), default=0)
    return text[start:end]


def citations(text: str):
    """(clause, word, lo, hi) for every citation in TEXT; word is None for a `{{cmp}}` citation."""
    for m in _FAMILY_CITE.finditer(text):
        lo = float(m.group(4)) if m.group(4) else None
        hi = float(m.group(5)) if m.group(5) else None
        yield _clause(text, m.start()), m.group(1), lo, hi
    for m in _CMP_CITE.finditer(text):
        yield _clause(text, m.start()), None, float(m.group(3)), float(m.group(4))


def problems(text: str) -> list[str]:
    """Each clause whose words disagree with the verdict or interval it cites."""
    out = []
    for clause, word, lo, hi in citations(text):
        decided_interval = lo is not None and (lo > 1 or hi < 1)
        said = clause.strip()[-160:]
        if SAME.search(clause) and (decided_interval or word in ("supported", "contradicted", "wins")):
            out.append(f"'no difference' beside a decided comparison: {said!r} ({word}, {lo}–{hi})")
        if word == "wins" and (lo is None or lo <= 1):
            out.append(f"'wins' with an interval not above 1: {said!r} ({lo}–{hi})")
        if word is not None and re.search(r"\bwins\b", clause) and word != "wins":
            out.append(f"'wins' beside a {word} verdict: {said!r}")
        if word is not None and re.search(r"equivalent within", clause) and word != "equivalent":
            out.append(f"'equivalent' beside a {word} verdict: {said!r}")
        if word == "contradicted" and re.search(r"\bsupport(s|ed)?\b", clause) and "overall" not in clause:
            out.append(f"'supports' beside a contradicted verdict: {said!r}")
        if word == "supported" and re.search(r"\bcontradict(s|ed)?\b", clause) and "overall" not in clause:
            out.append(f"'contradicts' beside a supported verdict: {said!r}")
        if word is None and not SAME.search(clause):
            low, high = LOWER.search(clause), HIGHER.search(clause)
            first = min((m for m in (low, high) if m), key=lambda m: m.start(), default=None)
            if first is low and first is not None and not hi < 1:
                out.append(f"a lower-side word with an interval not below 1: {said!r} ({lo}–{hi})")
            if first is high and first is not None and not lo > 1:
                out.append(f"a higher-side word with an interval not above 1: {said!r} ({lo}–{hi})")
    return out


# label, text, how many problems it must have
CASES = [
    ("faster with interval above 1", "the single thread is faster than one worker (rps ratio 1.40, 95% paired"
     " interval 1.20 to 1.60, n=2+2).", 0),
    ("faster with interval below 1", "the single thread is faster than one worker (rps ratio 0.70, 95% paired"
     " interval 0.60 to 0.80, n=2+2).", 1),
    ("slower with interval including 1", "per-worker queues are slower (rps ratio 0.90, 95% welch interval 0.70"
     " to 1.20, n=3+3).", 1),
    ("no difference with interval including 1", "on system calls, the hand-off makes no measurable difference"
     " (syscalls ratio 1.51, 95% paired interval 0.61 to 3.72, n=2+2).", 0),
    ("no difference with a decided interval", "on system calls, the hand-off makes no measurable difference"
     " (syscalls ratio 1.51, 95% paired interval 1.10 to 1.72, n=2+2).", 1),
    ("no difference beside a decided verdict", "the lock makes no difference this run can show (contradicted;"
     " 0.73, 95% CI 0.66–0.80)", 1),
    ("supports beside contradicted", "this run supports the published explanation (contradicted; 0.73, 95% CI"
     " 0.66–0.80)", 1),
    ("supported beside supported", "finding 1 is **supported** in this run (supported; 1.49, 95% CI 1.29–1.72)", 0),
    ("wins above 1", "**completion wins** (`io-uring t1`) over event loop (wins; 1.12, 95% CI 1.004–1.26)", 0),
    ("wins including 1", "**completion wins** (`io-uring t1`) over event loop (wins; 1.03, 95% CI 0.98–1.08)", 1),
    ("wins beside undecided", "**completion wins** over event loop (undecided; 1.03, 95% CI 0.98–1.08)", 1),
    ("equivalent beside undecided", "event loop and completion equivalent within 5% (undecided; 1.03, 95% CI"
     " 0.98–1.08)", 1),
    ("overall differs from one comparison", "| **undecided** overall; one comparison (supported; 1.77, 95% CI"
     " 1.70–1.84) |", 0),
]


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def pages() -> dict[str, str]:
    paths = [os.path.join(REPO, "REPORT.md")] + sorted(glob.glob(os.path.join(REPO, "report", "*.md")))
    return {os.path.relpath(p, REPO): _read(p) for p in paths}


def summary_part(text: str) -> str:
    """REPORT.md up to its first link (not an image) into report/."""
    m = re.search(r"(?<!!)\[[^\]]*\]\(report/", text)
    return text[:m.start()] if m else text


class ProseRulesTest(unittest.TestCase):
    def test_each_rule_catches_its_case(self):
        for label, text, n in CASES:
            with self.subTest(label):
                got = problems(text)
                self.assertEqual(len(got), n, f"{label}: {text!r} -> {got}")


class CommittedPagesTest(unittest.TestCase):
    def test_no_generated_sentence_contradicts_its_citation(self):
        for path, text in pages().items():
            with self.subTest(page=path):
                self.assertEqual(problems(text), [], f"{path}: prose disagrees with the verdict it cites")

    def test_citations_are_found(self):
        """The parser sees the citations it is meant to check (a format change would silence it)."""
        n = sum(1 for text in pages().values() for _ in citations(text))
        self.assertGreater(n, 20, "too few citations found in REPORT.md and report/*.md")

    def test_summary_is_a_screenful_with_four_charts(self):
        text = _read(os.path.join(REPO, "REPORT.md"))
        head = summary_part(text)
        self.assertLessEqual(head.count("\n"), SUMMARY_MAX_LINES, "REPORT.md's summary is too long")
        self.assertLessEqual(text.count("\n"), SUMMARY_MAX_LINES, "REPORT.md is too long")
        long = [(i + 1, len(ln)) for i, ln in enumerate(text.split("\n")) if len(ln) > LINE_MAX_CHARS]
        self.assertEqual(long, [], f"REPORT.md lines over {LINE_MAX_CHARS} characters (line, length)")
        for c in CHARTS:
            self.assertRegex(head, r"!\[[^\]]*\]\(" + re.escape(c) + r"\)", f"{c} is not shown inline")
        self.assertIn("](report/", text, "REPORT.md links none of its pages")

    def test_the_run_count_is_every_listed_run(self):
        """The summary counts every run reference-runs.toml lists, micro's as well as the sweeps'."""
        config = reportgen.read_config(reportgen.DEFAULT_CONFIG)
        listed = [name for name, sec in config.items() if reportrefs.resolve(sec, REPO) is not None]
        m = re.search(r"The reference set: (\d+) runs listed", _read(os.path.join(REPO, "REPORT.md")))
        self.assertIsNotNone(m, "REPORT.md does not say how many runs the set holds")
        self.assertEqual(int(m.group(1)), len(listed))

    def test_mechanism_only_where_the_comparison_decided(self):
        """report/decision.md: a mechanism is given only beside a cell that decided (a win or an
        equivalence; memory for idle connections, else throughput), and every such row gives one.
        Whether a cell decided is read from decision.rows() (the verdict words the page is rendered
        from), not from the page's prose; the page must then show that row's mechanism, and a
        decided cell's text must say its verdict."""
        config = reportgen.read_config(reportgen.DEFAULT_CONFIG)
        table = decision.rows(config, REPO)
        shapes = {sh.name: sh for sh in decision.SHAPES}
        page = {ln.split(" | ")[0][2:]: ln.split(" | ")
                for ln in _read(os.path.join(REPO, "report", "decision.md")).split("\n")
                if ln.startswith("| ") and ln.count(" | ") >= 6}
        decided_rows = 0
        for row in table:
            with self.subTest(shape=row["shape"]):
                self.assertIn(row["shape"], page, "decision.md has no row for the shape")
                cols = page[row["shape"]]
                thr_word, mem_word = row.get("words", (None, None))
                word = mem_word if shapes[row["shape"]].idle else thr_word
                decided = word in (families.WINS, families.EQUIVALENT)
                decided_rows += decided
                mech = cols[5]
                self.assertEqual(not mech.startswith("—"), decided, f"mechanism {mech!r} beside verdict {word!r}")
                self.assertEqual(mech, row["mechanism"])
                if decided:
                    cell = cols[3] if shapes[row["shape"]].idle else cols[2]
                    said = "wins**" in cell or "equivalent within" in cell
                    self.assertTrue(said, f"decided ({word}) but the cell does not say so: {cell[:160]!r}")
        self.assertGreater(len(table), 0, "no decision table rows")

    def test_every_linked_page_exists(self):
        text = _read(os.path.join(REPO, "REPORT.md"))
        for target in re.findall(r"(?<!!)\[[^\]]*\]\((report/[^)#]+)", text):
            self.assertTrue(os.path.exists(os.path.join(REPO, target)), f"REPORT.md links {target}, which is missing")

    def test_every_relative_link_of_every_page_resolves(self):
        # Pages under report/ are written with links relative to the repository and relinked
        # (reportpages.relink): a link that is already relative to the page would gain a second
        # "../" and point outside the repository.
        pages = ["REPORT.md"] + sorted(os.path.join("report", f) for f in os.listdir(os.path.join(REPO, "report"))
                                       if f.endswith(".md"))
        for page in pages:
            text = _read(os.path.join(REPO, page))
            for target in re.findall(r"\]\(((?![a-z][a-z0-9+.-]*:|#|/)[^)#\s]+)", text):
                resolved = os.path.normpath(os.path.join(REPO, os.path.dirname(page), target))
                with self.subTest(page=page, link=target):
                    self.assertTrue(resolved.startswith(REPO + os.sep) and os.path.exists(resolved),
                                    f"{page} links {target}, which does not resolve")


if __name__ == "__main__":
    unittest.main()
