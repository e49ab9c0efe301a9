"""The report as one self-contained HTML page: REPORT.md and every generated page under report/
(report/*.md), each converted by mdhtml.py into a section of report/index.html, with every image
the Markdown embeds inlined as data (PNG, or SVG where only an SVG exists) and every chart of
report/charts/ that no page embeds appended under "Charts". Nothing is fetched: the page's
Content-Security-Policy allows images from data: URLs and its own inline style only, so a resource
that was not inlined is refused by the browser and shows as a console error
(tests/report/browser_check.py fails on it).

Links between the pages become anchors in the page (`report/x.md#y` -> `#x--y`); other relative
links (a run's charts, its tables) are rewritten relative to the HTML file, so they still open
from a checkout; links to the web stay as they are.
"""
from __future__ import annotations

import base64
import glob
import html
import os
import struct
from dataclasses import dataclass, field

from . import mdhtml

REPORT_NAME = "REPORT.md"
PAGES_DIR = "report"  # report/*.md: the generated detail pages, linked from REPORT.md
CHARTS_DIR = os.path.join(PAGES_DIR, "charts")  # the overview charts (cbench plot --overview)
DEFAULT_OUTPUT = os.path.join(PAGES_DIR, "index.html")
IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 1.2em 4em; color: #1a1a1a; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ddd; padding: .4em 0; font-size: 13px; }
nav a { margin-right: 1em; }
section.page { border-top: 3px solid #444; margin-top: 2.5em; }
h1, h2, h3 { line-height: 1.25; }
code { font: 13px/1.4 ui-monospace, monospace; background: #f3f3f3; padding: 0 .2em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
pre code { background: none; padding: 0; }
div.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: .2em .5em; vertical-align: top; }
th { background: #f0f0f0; }
figure.chart { margin: 1.2em 0; }
figure.chart img { max-width: 100%; height: auto; display: block; border: 1px solid #e4e4e4; }
figcaption { font-size: 13px; color: #444; }
p.missing { color: #a00; font-weight: bold; }
blockquote { border-left: 4px solid #ccc; margin-left: 0; padding-left: 1em; color: #333; }
"""


@dataclass
class Page:
    """One Markdown file of the report: its path, the anchor its section gets, and its title."""
    path: str
    anchor: str
    title: str


@dataclass
class View:
    """What `build` made: the HTML, the charts it inlined (repo-relative paths), and the images it
    could not find (each one a missing chart; the page shows the gap and the verb fails)."""
    html: str
    charts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def pages(root: str) -> list[Page]:
    """REPORT.md first, then report/*.md by name; an anchor per page (`report/x.md` -> `x`)."""
    found = []
    report = os.path.join(root, REPORT_NAME)
    if os.path.exists(report):
        found.append(Page(report, "report", "Report"))
    for path in sorted(glob.glob(os.path.join(root, PAGES_DIR, "*.md"))):
        name = os.path.splitext(os.path.basename(path))[0]
        found.append(Page(path, mdhtml.slug(name) or "page", name))
    return found


def png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height from its IHDR chunk, or None when the bytes are not a PNG."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def data_url(path: str) -> tuple[str, tuple[int, int] | None]:
    """The file as a data: URL, with its pixel size when it is a PNG."""
    with open(path, "rb") as f:
        data = f.read()
    kind = IMAGE_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}", png_size(data)


class Builder:
    """Converts the pages of one root into one HTML document (see the module's docstring)."""

    def __init__(self, root: str, out_path: str):
        self.root = os.path.abspath(root)
        self.out_dir = os.path.dirname(os.path.abspath(out_path))
        self.pages = pages(self.root)
        self.by_path = {os.path.abspath(p.path): p for p in self.pages}
        self.view = View("")
        self.current: Page | None = None

    def link(self, href: str) -> str:
        """Where a link of the current page points in the one-page view."""
        if not href or "://" in href or href.startswith(("mailto:", "data:")):
            return href
        target, _, frag = href.partition("#")
        if not target:
            return f"#{self.current.anchor}--{mdhtml.slug(frag)}" if frag else "#"
        path = os.path.normpath(os.path.join(os.path.dirname(self.current.path), target))
        page = self.by_path.get(path)
        if page:
            return f"#{page.anchor}--{mdhtml.slug(frag)}" if frag else f"#{page.anchor}"
        rel = os.path.relpath(path, self.out_dir)
        return rel + (f"#{frag}" if frag else "")

    def image(self, src: str, alt: str, title: str) -> str:
        """A figure with the image inlined; an SVG stands in for a missing PNG of the same name.
        A missing image leaves a visible gap, a refused <img> and an entry in View.missing."""
        path = os.path.normpath(os.path.join(os.path.dirname(self.current.path), src))
        stem, ext = os.path.splitext(path)
        candidates = [path] + ([stem + ".svg"] if ext.lower() == ".png" else [])
        found = next((c for c in candidates if os.path.isfile(c)), None)
        rel = os.path.relpath(path, self.root)
        caption = f"<figcaption>{html.escape(title or alt)}</figcaption>" if (title or alt) else ""
        if found is None:
            self.view.missing.append(rel)
            return (f'<figure class="chart" data-chart="{html.escape(rel)}">'
                    f'<img src="{html.escape(os.path.relpath(path, self.out_dir))}" alt="{html.escape(alt)}">'
                    f'<p class="missing">missing chart: {html.escape(rel)}</p>{caption}</figure>')
        self.view.charts.append(os.path.relpath(found, self.root))
        url, size = data_url(found)
        dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
        return (f'<figure class="chart" data-chart="{html.escape(rel)}">'
                f'<img src="{url}" alt="{html.escape(alt)}"{dims}>{caption}</figure>')

    def section(self, page: Page) -> str:
        self.current = page
        with open(page.path, encoding="utf-8") as f:
            text = f.read()
        hooks = mdhtml.Hooks(link=self.link, image=self.image, id_prefix=f"{page.anchor}--")
        body = mdhtml.to_html(text, hooks)
        return f'<section class="page" id="{page.anchor}">\n{body}\n</section>'

    def unembedded_charts(self) -> str:
        """Every chart of report/charts/ that no page embeds, so the view shows them all."""
        shown = {os.path.splitext(c)[0] for c in self.view.charts}
        extra = [p for p in sorted(glob.glob(os.path.join(self.root, CHARTS_DIR, "*.png")))
                 if os.path.splitext(os.path.relpath(p, self.root))[0] not in shown]
        if not extra:
            return ""
        self.current = Page(os.path.join(self.root, PAGES_DIR, "charts.md"), "charts", "Charts")
        figures = [self.image(os.path.relpath(p, os.path.join(self.root, PAGES_DIR)),
                              os.path.splitext(os.path.basename(p))[0], "") for p in extra]
        return ('<section class="page" id="charts">\n<h2 id="charts--charts">Charts</h2>\n'
                '<p>The overview charts of <code>report/charts/</code> that no page above embeds.</p>\n'
                + "\n".join(figures) + "\n</section>")

    def build(self) -> View:
        sections = [self.section(p) for p in self.pages]
        charts = self.unembedded_charts()
        nav_pages = self.pages + ([Page("", "charts", "Charts")] if charts else [])
        nav = " ".join(f'<a href="#{p.anchor}">{html.escape(p.title)}</a>' for p in nav_pages)
        self.view.html = "\n".join([
            "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>concurrency-bench: report</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
            f"<nav>{nav}</nav>", *sections, charts, "</body>", "</html>", ""])
        return self.view


def build(root: str, out_path: str) -> View:
    """The one-page view of the report under ROOT (REPORT.md and report/*.md), for writing to
    OUT_PATH (relative links are made relative to it). Reads files only."""
    return Builder(root, out_path).build()
