"""Markdown to HTML for the subset the generated reports use: ATX headings, paragraphs, bullet
and numbered lists (nested by indentation), pipe tables (with `\\|` inside a cell), fenced code,
block quotes, inline code, links, images, **bold** and *italic*. HTML comments are dropped and any
other `<` is escaped, so the output has no markup the text did not ask for.

`to_html(text, image=..., link=...)` returns the body HTML; IMAGE maps an image's source to the
src to write (a data: URI, or None to keep a link to it), LINK rewrites a link's target (a path
relative to the Markdown file, seen from the HTML file's folder). Stdlib only.
"""
from __future__ import annotations

import html
import re

COMMENT = re.compile(r"<!--.*?-->", re.S)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")
TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"([^\"]*)\")?\)")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
BOLD = re.compile(r"\*\*(.+?)\*\*")
ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def slug(text: str) -> str:
    """A heading's id, as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"<[^>]+>", "", text).lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.strip().replace(" ", "-")


def inline(text: str, image=None, link=None) -> str:
    """One line's inline Markdown as HTML (escaped; code spans are left as they are written)."""
    spans: list[str] = []

    def keep(m):
        spans.append(f"<code>{html.escape(m.group(2).strip())}</code>")
        return f"\x00{len(spans) - 1}\x00"

    s = CODE_SPAN.sub(keep, text)
    s = html.escape(s, quote=False)

    def img(m):
        alt, src, title = m.group(1), html.unescape(m.group(2)), m.group(3)
        data = image(src) if image else None
        t = f' title="{html.escape(title)}"' if title else ""
        if data is None:
            href = link(src) if link else src
            return f'<a href="{html.escape(href)}">{alt or html.escape(src)}</a>'
        return f'<img class="chart" src="{data}" alt="{html.escape(alt)}"{t}>'

    def lnk(m):
        href = html.unescape(m.group(2))
        href = link(href) if link else href
        return f'<a href="{html.escape(href)}">{m.group(1)}</a>'

    s = IMAGE.sub(img, s)
    s = LINK.sub(lnk, s)
    s = BOLD.sub(r"<strong>\1</strong>", s)
    s = ITALIC.sub(r"<em>\1</em>", s)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], s)


def split_row(line: str) -> list[str]:
    """A pipe-table line's cells: split on | outside code spans, `\\|` kept as a bar."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells, cur, in_code = [], [], False
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    cells.append("".join(cur).strip())
    return cells


def _table(lines: list[str], fmt) -> str:
    head = split_row(lines[0])
    out = ['<div class="table"><table>', "<thead><tr>" + "".join(f"<th>{fmt(c)}</th>" for c in head) + "</tr></thead>",
           "<tbody>"]
    for ln in lines[2:]:
        out.append("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in split_row(ln)) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _list(items: list[tuple[int, bool, str]], fmt) -> str:
    """Nested lists from (indent, ordered, text) items: a deeper indent opens a list inside the
    previous item."""
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, tag)
    for indent, ordered, text in items:
        tag = "ol" if ordered else "ul"
        while stack and indent < stack[-1][0]:
            out.append(f"</li></{stack.pop()[1]}>")
        if not stack or indent > stack[-1][0]:
            out.append(f"<{tag}>")
            stack.append((indent, tag))
        else:
            out.append("</li>")
        out.append(f"<li>{fmt(text)}")
    while stack:
        out.append(f"</li></{stack.pop()[1]}>")
    return "".join(out)


def _blocks(lines: list[str]):
    """(kind, payload) blocks: heading, code, table, list, quote, para."""
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if FENCE.match(line):
            j = i + 1
            while j < n and not FENCE.match(lines[j]):
                j += 1
            yield "code", lines[i + 1:j]
            i = j + 1
            continue
        m = HEADING.match(line)
        if m:
            yield "heading", (len(m.group(1)), m.group(2))
            i += 1
            continue
        if line.lstrip().startswith("|") and i + 1 < n and TABLE_SEP.match(lines[i + 1]):
            j = i + 2
            while j < n and lines[j].lstrip().startswith("|"):
                j += 1
            yield "table", lines[i:j]
            i = j
            continue
        if LIST_ITEM.match(line):
            items = []
            while i < n and lines[i].strip():
                m = LIST_ITEM.match(lines[i])
                if m:
                    items.append((len(m.group(1).expandtabs()), m.group(2)[0].isdigit(), m.group(3)))
                elif items:  # a continuation line of the item before
                    items[-1] = (items[-1][0], items[-1][1], items[-1][2] + " " + lines[i].strip())
                i += 1
            yield "list", items
            continue
        if line.startswith(">"):
            j = i
            while j < n and lines[j].startswith(">"):
                j += 1
            yield "quote", [ln[1:].lstrip() for ln in lines[i:j]]
            i = j
            continue
        j = i
        while j < n and lines[j].strip() and not (HEADING.match(lines[j]) or FENCE.match(lines[j])
                                                   or (lines[j].lstrip().startswith("|") and j + 1 < n
                                                       and TABLE_SEP.match(lines[j + 1]))
                                                   or (j > i and LIST_ITEM.match(lines[j]))):
            j += 1
        yield "para", lines[i:j]
        i = j


def to_html(text: str, image=None, link=None) -> str:
    """The body HTML of Markdown TEXT (see the module docstring for IMAGE and LINK)."""
    def fmt(s):
        return inline(s, image, link)

    out = []
    for kind, payload in _blocks(COMMENT.sub("", text).splitlines()):
        if kind == "heading":
            level, title = payload
            out.append(f'<h{level} id="{slug(title)}">{fmt(title)}</h{level}>')
        elif kind == "code":
            out.append("<pre><code>" + html.escape("\n".join(payload)) + "</code></pre>")
        elif kind == "table":
            out.append(_table(payload, fmt))
        elif kind == "list":
            out.append(_list(payload, fmt))
        elif kind == "quote":
            out.append("<blockquote>" + to_html("\n".join(payload), image, link) + "</blockquote>")
        else:
            out.append("<p>" + fmt(" ".join(ln.strip() for ln in payload)) + "</p>")
    return "\n".join(out) + "\n"
