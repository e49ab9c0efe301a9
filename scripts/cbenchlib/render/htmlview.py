"""report/index.html: REPORT.md as one self-contained HTML page, for CI's artefacts and for
sharing. The generated text is converted by render/markdown.py; every image the Markdown embeds
and that exists on disk is inlined as a base64 PNG (or SVG) data URI, and the overview charts
(render/overview.py, report/charts/) that the Markdown does not embed are shown after the title,
so the page needs no other file and no network. Links to other files (a run's tables, a chart's
SVG) stay links, rewritten to be relative to the page's folder. No script runs in the page.
"""
from __future__ import annotations

import base64
import html
import os

from . import markdown
from .overview import OVERVIEW

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1040px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1, h2, h3 { line-height: 1.25; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
code { font: 13px ui-monospace, monospace; background: #f2f2f2; padding: 0 .2em; }
pre { background: #f2f2f2; padding: .8em; overflow-x: auto; } pre code { padding: 0; }
div.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
img.chart { display: block; max-width: 100%; height: auto; margin: .5em 0; }
figure { margin: 1.5em 0; } figcaption { font-size: 13px; color: #555; }
blockquote { border-left: 3px solid #ccc; margin-left: 0; padding-left: 1em; color: #444; }
"""


def data_uri(path: str) -> str | None:
    """PATH's bytes as a data: URI, or None when it is not an image file that exists."""
    mime = MIME.get(os.path.splitext(path)[1].lower())
    if mime is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f"data:{mime};base64,{base64.b64encode(f.read()).decode('ascii')}"


def _is_external(target: str) -> bool:
    return "://" in target or target.startswith(("#", "mailto:", "data:"))


class Page:
    """The resolvers markdown.to_html needs for a Markdown file at MD_DIR written as OUT_DIR's page."""

    def __init__(self, md_dir: str, out_dir: str):
        self.md_dir, self.out_dir = md_dir, out_dir
        self.inlined: set[str] = set()

    def image(self, src: str) -> str | None:
        if _is_external(src):
            return None
        path = os.path.normpath(os.path.join(self.md_dir, src))
        uri = data_uri(path)
        if uri is not None:
            self.inlined.add(os.path.abspath(path))
        return uri

    def link(self, target: str) -> str:
        if _is_external(target):
            return target
        path, _, frag = target.partition("#")
        rel = os.path.relpath(os.path.join(self.md_dir, path), self.out_dir) if path else ""
        return rel + (f"#{frag}" if frag else "")


def overview_figures(charts_dir: str, skip: set[str]) -> str:
    """The overview charts found in CHARTS_DIR that are not in SKIP (absolute paths), as figures."""
    out = []
    for name, title, _draw, alt in OVERVIEW:
        path = os.path.abspath(os.path.join(charts_dir, f"{name}.png"))
        uri = None if path in skip else data_uri(path)
        if uri is not None:
            out.append(f'<figure><img class="chart" src="{uri}" alt="{html.escape(alt)}">'
                       f"<figcaption>{html.escape(title)}</figcaption></figure>")
    return ("<h2 id=\"overview-charts\">Overview charts</h2>\n" + "\n".join(out) + "\n") if out else ""


def render(md_path: str, charts_dir: str, out_path: str) -> str:
    """The page's HTML for the Markdown file MD_PATH, written as OUT_PATH (links are made
    relative to its folder), with the overview charts of CHARTS_DIR it does not already embed."""
    with open(md_path, encoding="utf-8") as f:
        text = f.read()
    page = Page(os.path.dirname(os.path.abspath(md_path)), os.path.dirname(os.path.abspath(out_path)))
    body = markdown.to_html(text, page.image, page.link)
    extra = overview_figures(charts_dir, page.inlined)
    cut = body.find("</h1>")
    if extra:
        if cut >= 0:
            nxt = body.find("<h2", cut)
            at = nxt if nxt >= 0 else len(body)
            body = body[:at] + extra + body[at:]
        else:
            body = extra + body
    title = text.lstrip().splitlines()[0].lstrip("# ").strip() if text.strip() else "report"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
            f"{body}</main>\n</body>\n</html>\n")


def write(md_path: str, charts_dir: str, out_path: str) -> str:
    """Write render()'s page to OUT_PATH; returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    page = render(md_path, charts_dir, out_path)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page)
    return out_path
