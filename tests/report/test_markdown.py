"""render/markdown.py: the Markdown subset REPORT.md uses, one case per line; and htmlview inlines
images that exist and keeps the page free of network resources."""
import os
import re
import tempfile
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)

from cbenchlib.render import htmlview, markdown

CASES = [
    ("heading", "## Decision table: which model", '<h2 id="decision-table-which-model">Decision table: which model</h2>'),
    ("paragraph joins lines", "one\ntwo", "<p>one two</p>"),
    ("code span escapes", "a `x < y | z` b", "<p>a <code>x &lt; y | z</code> b</p>"),
    ("bold and italic", "**wins** and *so*", "<p><strong>wins</strong> and <em>so</em></p>"),
    ("link", "[run](results/runs/x/)", '<p><a href="results/runs/x/">run</a></p>'),
    ("html escaped", "p99 < 10 ms & <b>", "<p>p99 &lt; 10 ms &amp; &lt;b&gt;</p>"),
    ("comment dropped", "<!-- BEGIN GENERATED: x -->\ntext", "<p>text</p>"),
    ("bullet list", "- a\n- b", "<ul><li>a</li><li>b</li></ul>"),
    ("nested list", "- a\n  - b\n- c", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>"),
    ("numbered list", "1. a\n2. b", "<ol><li>a</li><li>b</li></ol>"),
    ("fenced code", "```sh\nmake <x>\n```", "<pre><code>make &lt;x&gt;</code></pre>"),
    ("quote", "> said", "<blockquote><p>said</p>\n</blockquote>"),
    ("underscore in a name stays", "server_user_us", "<p>server_user_us</p>"),
]


class TestMarkdown(unittest.TestCase):
    def test_cases(self):
        for label, md, want in CASES:
            with self.subTest(label):
                self.assertEqual(markdown.to_html(md).strip(), want)

    def test_table_with_escaped_bar_and_code(self):
        md = "| a | b |\n|---|---|\n| x \\| y | `c|d` |"
        out = markdown.to_html(md)
        self.assertIn("<th>a</th><th>b</th>", out)
        self.assertIn("<td>x | y</td><td><code>c|d</code></td>", out)

    def test_image_resolver_and_link_rewrite(self):
        out = markdown.to_html("![alt](a.png) [t](b.md)", image=lambda s: "data:x" if s == "a.png" else None,
                               link=lambda h: "../" + h)
        self.assertIn('<img class="chart" src="data:x" alt="alt">', out)
        self.assertIn('<a href="../b.md">t</a>', out)


class TestHtmlView(unittest.TestCase):
    def test_images_inlined_links_relative_no_network(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "c.png"), "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\nfake")
            md = os.path.join(d, "R.md")
            with open(md, "w", encoding="utf-8") as f:
                f.write("# T\n\n![c](c.png) ![gone](missing.png) [x](results/a.md) [w](https://example.org/)\n")
            page = htmlview.render(md, os.path.join(d, "charts"), os.path.join(d, "report", "index.html"))
        self.assertIn('src="data:image/png;base64,', page)
        self.assertIn('<a href="../missing.png">gone</a>', page)
        self.assertIn('<a href="../results/a.md">x</a>', page)
        srcs = re.findall(r'(?:src|href)="(https?:[^"]*)"', page)
        self.assertEqual(srcs, ["https://example.org/"])  # a link the text names, never a resource
        self.assertNotIn("<script", page)


if __name__ == "__main__":
    unittest.main()
