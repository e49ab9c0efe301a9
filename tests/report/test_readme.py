"""README.md and docs/*.md stay true: the example output is what the command prints, the legend
is the one tables.py draws, every relative link resolves, and no page a user reads cites an
issue number.

An example is the text between `<!-- example: cbench ARGS -->` and `<!-- /example -->` (code
fences dropped): it must be a contiguous run of whole lines of `scripts/cbench ARGS`'s output.
When a check fails after a deliberate change, regenerate the excerpt from the command's output.
"""
import glob
import os
import re
import subprocess
import sys
import unittest

from helpers import REPO
from cbenchlib.render import tables

README = os.path.join(REPO, "README.md")
PAGES = [README] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))

EXAMPLE = re.compile(r"<!-- example: cbench (?P<args>[^>]*?) -->\n(?P<body>.*?)<!-- /example -->", re.S)
LEGEND = re.compile(r"<!-- legend: [^>]*-->\n(?P<body>.*?)<!-- /legend -->", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
ISSUE = re.compile(r"issues? *#?[0-9]", re.I)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def cbench_output(args):
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "cbench"), *args.split()],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout


def heading_anchors(text):
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to '-'."""
    out = set()
    for line in text.splitlines():
        m = re.match(r"#+ (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


class ReadmeExamples(unittest.TestCase):
    def test_every_example_is_a_contiguous_part_of_its_commands_output(self):
        examples = list(EXAMPLE.finditer(read(README)))
        self.assertGreaterEqual(len(examples), 2, "README.md should show `cbench list` and `cbench table` output")
        for m in examples:
            args = m.group("args")
            with self.subTest(command=f"cbench {args}"):
                want = [ln for ln in m.group("body").splitlines() if not ln.startswith("```")]
                self.assertGreater(len(want), 3, f"the example of `cbench {args}` is (nearly) empty")
                rc, out = cbench_output(args)
                self.assertEqual(rc, 0, f"`cbench {args}` exited {rc}")
                got = out.splitlines()
                found = any(got[i:i + len(want)] == want for i in range(len(got) - len(want) + 1))
                if not found:
                    first = want[0]
                    near = got.index(first) if first in got else None
                    self.fail(f"README's example of `cbench {args}` is not in its output.\nREADME:\n"
                              + "\n".join(want) + "\noutput"
                              + (f" from its first line:\n" + "\n".join(got[near:near + len(want)])
                                 if near is not None else f" (first line not found):\n" + "\n".join(got[:len(want)])))


class ReadmeLegend(unittest.TestCase):
    def test_the_legend_is_the_one_tables_draws(self):
        m = LEGEND.search(read(README))
        self.assertIsNotNone(m, "README.md has no <!-- legend: ... --> block")
        rows = {}
        for line in m.group("body").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 2 or cells[0] in ("mark", "") or set(cells[0]) <= set("-"):
                continue
            rows[cells[1].strip("`")] = cells[0]
        want = dict(tables.VERDICT_MARKS)
        got = {v: mk for v, mk in rows.items() if v in want}
        self.assertEqual(got, want, "README's legend (verdict -> mark) differs from tables.VERDICT_MARKS")
        self.assertEqual(rows.get("failed"), tables.FAILED_MARK)
        self.assertEqual(rows.get("any other verdict"), tables.OTHER_VERDICT_MARK)
        self.assertEqual(len(rows), len(want) + 2, f"README's legend has rows tables.py does not draw: {rows}")


class ReadmeContents(unittest.TestCase):
    def test_the_front_door_commands_are_documented(self):
        text = read(README)
        for cmd in ("make quick", "make test", "make reproduce"):
            self.assertIn(cmd, text)

    def test_no_page_cites_an_issue_number(self):
        for page in PAGES:
            for n, line in enumerate(read(page).splitlines(), 1):
                self.assertIsNone(ISSUE.search(line), f"{os.path.relpath(page, REPO)}:{n}: {line}")

    def test_every_relative_link_points_at_an_existing_file(self):
        for page in PAGES:
            text = read(page)
            for target in LINK.findall(text):
                if re.match(r"[a-z]+:", target):
                    continue  # http:, https:, mailto:
                with self.subTest(page=os.path.relpath(page, REPO), link=target):
                    path, _, anchor = target.partition("#")
                    dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                    self.assertTrue(os.path.exists(dest), f"{target}: no {os.path.relpath(dest, REPO)}")
                    self.assertTrue(dest.startswith(REPO + os.sep), f"{target} leaves the repository")
                    if anchor and dest.endswith(".md"):
                        self.assertIn(anchor, heading_anchors(read(dest)), f"{target}: no such heading")


if __name__ == "__main__":
    unittest.main()
