"""The Markdown-to-HTML converter (render/mdhtml.py), one line per case, and the report's one-page
view (render/htmlview.py): links between pages become anchors, images become data, a missing image
is named, raw HTML never passes through. The browser test (report_browser.py) opens the result."""
import glob
import os
import shutil
import tempfile
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.render import htmlview, mdhtml

# (label, Markdown, HTML)
CASES = [
    ("heading", "## A b: c", '<h2 id="a-b-c">A b: c</h2>'),
    ("paragraph joins lines", "one\ntwo", "<p>one\ntwo</p>"),
    ("code span keeps a comment", "`<!-- x -->` y", "<p><code>&lt;!-- x --&gt;</code> y</p>"),
    ("comment dropped", "a <!-- gone --> b", "<p>a  b</p>"),
    ("comment block dropped", "<!-- BEGIN\nx -->\ntext", "<p>text</p>"),
    ("raw html escaped", "<script>x</script>", "<p>&lt;script&gt;x&lt;/script&gt;</p>"),
    ("bold and italic", "**b** and *i*", "<p><strong>b</strong> and <em>i</em></p>"),
    ("no italic inside words", "snake_case 2*3*4", "<p>snake_case 2*3*4</p>"),
    ("link with code", "[`x`](a.md)", '<p><a href="a.md"><code>x</code></a></p>'),
    ("image", "![alt](c.png)", '<p><img src="c.png" alt="alt"></p>'),
    ("autolink", "<https://e.org/a>", '<p><a href="https://e.org/a">https://e.org/a</a></p>'),
    ("escaped pipe", "a \\| b", "<p>a | b</p>"),
    ("bullets", "- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
    ("list after a paragraph line", "p:\n- a", "<p>p:</p>\n<ul>\n<li>a</li>\n</ul>"),
    ("nested list", "- a\n  - b", "<ul>\n<li>a\n<ul>\n<li>b</li>\n</ul></li>\n</ul>"),
    ("lazy continuation", "- a\nmore", "<ul>\n<li>a\nmore</li>\n</ul>"),
    ("numbered", "1. a\n2. b", "<ol>\n<li>a</li>\n<li>b</li>\n</ol>"),
    ("numbered from 3", "3. a", '<ol start="3">\n<li>a</li>\n</ol>'),
    ("a year is not an item", "in\n2023. was", "<p>in\n2023. was</p>"),
    ("table", "| a | b |\n|:--|--:|\n| `x|y` | 2 |",
     '<div class="table"><table>\n<thead><tr><th style="text-align:left">a</th><th style="text-align:right">b</th>'
     '</tr></thead>\n<tbody>\n<tr><td style="text-align:left"><code>x|y</code></td><td style="text-align:right">2</td>'
     '</tr>\n</tbody></table></div>'),
    ("fence", "```sh\na < b\n```", '<pre><code class="language-sh">a &lt; b</code></pre>'),
    ("quote", "> q", "<blockquote>\n<p>q</p>\n</blockquote>"),
    ("rule", "---", "<hr>"),
]


class Converter(unittest.TestCase):
    def test_cases(self):
        for label, md, want in CASES:
            with self.subTest(label):
                self.assertEqual(mdhtml.to_html(md), want, f"\n{md!r}\ngot  {mdhtml.to_html(md)!r}\nwant {want!r}")

    def test_repeated_headings_get_distinct_ids(self):
        out = mdhtml.to_html("# A\n# A", mdhtml.Hooks(id_prefix="p--"))
        self.assertEqual(out, '<h1 id="p--a">A</h1>\n<h1 id="p--a-1">A</h1>')

    def test_the_report_converts(self):
        """REPORT.md and every page under report/ convert without leaving Markdown table syntax or
        a raw tag behind, and the tables they hold come out as tables."""
        paths = [os.path.join(helpers.REPO, "REPORT.md")]
        paths += sorted(glob.glob(os.path.join(helpers.REPO, "report", "*.md")))
        tables_md = tables_html = 0
        for path in paths:
            with self.subTest(os.path.basename(path)):
                with open(path, encoding="utf-8") as f:
                    md = f.read()
                out = mdhtml.to_html(md)
                self.assertNotIn("\n|---", out)
                self.assertNotIn("<script", out)
                tables_md += sum(1 for line in md.splitlines() if line.startswith("|---") or line.startswith("| ---"))
                tables_html += out.count("<table>")
        self.assertGreater(tables_md, 10)
        self.assertEqual(tables_html, tables_md)


class View(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="cbench-htmlview-")
        os.makedirs(os.path.join(self.root, "report", "charts"))

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, rel, text):
        with open(os.path.join(self.root, rel), "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)

    def test_links_images_and_gaps(self):
        self.write("REPORT.md", "# R\n[d](report/detail.md#why-it-is) [top](#r) [run](results/runs/x/tables.md)\n\n"
                                "![c](report/charts/a.png)\n\n![gone](report/charts/gone.png)\n")
        self.write("report/detail.md", "# Detail\n## Why it is\n[back](../REPORT.md)\n")
        self.write("report/charts/a.svg", "<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>")
        self.write("report/charts/extra.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x07\x00\x00\x00\x05")
        view = htmlview.build(self.root, os.path.join(self.root, "report", "index.html"))
        self.assertIn('href="#detail--why-it-is"', view.html)
        self.assertIn('href="#report--r"', view.html)
        self.assertIn('href="#report"', view.html)  # detail's link back to REPORT.md
        self.assertIn('href="../results/runs/x/tables.md"', view.html)  # relative to report/index.html
        self.assertIn("data:image/svg+xml;base64,", view.html)  # a.png missing, its SVG stands in
        self.assertIn('width="7" height="5"', view.html)  # the unembedded chart, sized from its PNG header
        self.assertEqual(view.charts, ["report/charts/a.svg", "report/charts/extra.png"])
        self.assertEqual(view.missing, ["report/charts/gone.png"])
        self.assertIn("missing chart: report/charts/gone.png", view.html)
        self.assertIn("default-src 'none'; img-src data:", view.html)


if __name__ == "__main__":
    unittest.main()
