"""Markdown to HTML for the subset the generated report uses, and no more: ATX headings, paragraphs,
bullet and numbered lists (nested by indentation), pipe tables with alignment, block quotes, fenced
code, horizontal rules, HTML comments (dropped), and inline code, links, images, bold and italic.

Everything else is text: raw HTML in the Markdown is escaped, never passed through, so a page made
from it cannot carry a script or a network resource it did not mean to. The caller decides what a
link or an image becomes (`Hooks`): the report's HTML view (htmlview.py) turns links between its
pages into anchors and images into inline data.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Callable

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +|$)(.*)$")
TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"([^\"]*)\")?\s*\)")
LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"([^\"]*)\")?\s*\)")
AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])|(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
ESCAPABLE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
COMMENT = re.compile(r"<!--.*?-->", re.S)
TOKEN = re.compile(r"\x00(\d+)\x00")


def _default_link(href: str) -> str:
    return href


def _default_image(src: str, alt: str, title: str) -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'


@dataclass
class Hooks:
    """What links and images become. link(href) returns the href to write; image(src, alt, title)
    returns the HTML of the image (already escaped); heading_id(text) the id of a heading."""
    link: Callable[[str], str] = _default_link
    image: Callable[[str, str, str], str] = _default_image
    id_prefix: str = ""
    seen_ids: dict = field(default_factory=dict)

    def heading_id(self, text: str) -> str:
        """GitHub's rule (lower case; letters, digits, spaces, hyphens kept; spaces to hyphens),
        with -1, -2 ... for a repeat, under this page's prefix."""
        base = self.id_prefix + slug(text)
        n = self.seen_ids.get(base, 0)
        self.seen_ids[base] = n + 1
        return base if n == 0 else f"{base}-{n}"


def slug(text: str) -> str:
    """A heading's anchor as GitHub writes it: `## Decision table: which model` -> decision-table-which-model."""
    text = re.sub(r"[`*_]|<[^>]*>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


# --- inline ------------------------------------------------------------------------------------

def inline(text: str, hooks: Hooks) -> str:
    """One run of inline Markdown (no block structure) as HTML."""
    tokens: list[str] = []

    def keep(fragment: str) -> str:
        tokens.append(fragment)
        return f"\x00{len(tokens) - 1}\x00"

    text = CODE_SPAN.sub(lambda m: keep(f"<code>{html.escape(m.group(2).strip() or m.group(2))}</code>"), text)
    text = COMMENT.sub("", text)  # after code spans: `<!-- x -->` in backticks is shown, not dropped
    text = ESCAPABLE.sub(lambda m: keep(html.escape(m.group(1))), text)
    text = IMAGE.sub(lambda m: keep(hooks.image(m.group(2), _plain(m.group(1), tokens), m.group(3) or "")), text)
    text = LINK.sub(lambda m: keep(_anchor(m, hooks, tokens)), text)
    text = AUTOLINK.sub(lambda m: keep(f'<a href="{html.escape(m.group(1))}">{html.escape(m.group(1))}</a>'), text)
    text = html.escape(text, quote=False)
    text = BOLD.sub(r"<strong>\2</strong>", text)
    text = ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", text)
    # Tokens may hold tokens (a link's text with code in it): substitute until none is left.
    while TOKEN.search(text):
        text = TOKEN.sub(lambda m: tokens[int(m.group(1))], text)
    return text


def _plain(text: str, tokens: list[str]) -> str:
    """An image's alt text: its tokens back as text, tags removed."""
    text = TOKEN.sub(lambda m: tokens[int(m.group(1))], text)
    return html.unescape(re.sub(r"<[^>]*>", "", text))


def _anchor(m: re.Match, hooks: Hooks, tokens: list[str]) -> str:
    label = m.group(1)
    # The label is inline Markdown itself; its tokens (code spans) are kept as they are.
    inner = inline(label, Hooks(hooks.link, hooks.image)) if "\x00" not in label else \
        TOKEN.sub(lambda t: f"\x00{t.group(1)}\x00", html.escape(label, quote=False))
    title = f' title="{html.escape(m.group(3))}"' if m.group(3) else ""
    return f'<a href="{html.escape(hooks.link(m.group(2)))}"{title}>{inner}</a>'


# --- blocks ------------------------------------------------------------------------------------

def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_table_start(lines: list[str], i: int) -> bool:
    return "|" in lines[i] and i + 1 < len(lines) and "|" in lines[i + 1] and bool(TABLE_SEP.match(lines[i + 1]))


def _starts_block(lines: list[str], i: int, in_paragraph: bool) -> bool:
    """Whether line i begins a block that ends the paragraph before it. A numbered item interrupts
    a paragraph only when it is `1.` (CommonMark's rule: `2023. was` wrapped into a line is text)."""
    line = lines[i]
    if not line.strip() or HEADING.match(line) or FENCE.match(line) or RULE.match(line):
        return True
    if line.lstrip().startswith(("<!--", ">")) or _is_table_start(lines, i):
        return True
    m = ITEM.match(line)
    if m and m.group(4).strip():
        return not in_paragraph or not m.group(2)[0].isdigit() or m.group(2)[:-1] == "1"
    return False


def to_html(text: str, hooks: Hooks | None = None) -> str:
    """A Markdown document as a sequence of HTML blocks (no <html> or <body> around it)."""
    return "\n".join(_blocks(text.expandtabs(4).splitlines(), hooks or Hooks()))


def _blocks(lines: list[str], hooks: Hooks) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.lstrip().startswith("<!--"):
            i = _skip_comment(lines, i)
        elif FENCE.match(line):
            i = _fence(lines, i, out)
        elif HEADING.match(line):
            m = HEADING.match(line)
            level = len(m.group(1))
            out.append(f'<h{level} id="{hooks.heading_id(m.group(2))}">{inline(m.group(2), hooks)}</h{level}>')
            i += 1
        elif RULE.match(line):
            out.append("<hr>")
            i += 1
        elif _is_table_start(lines, i):
            i = _table(lines, i, hooks, out)
        elif ITEM.match(line) and ITEM.match(line).group(4).strip():
            i = _list(lines, i, hooks, out)
        elif line.lstrip().startswith(">"):
            i = _quote(lines, i, hooks, out)
        else:
            i = _paragraph(lines, i, hooks, out)
    return out


def _skip_comment(lines: list[str], i: int) -> int:
    """The index after an HTML comment block (which may span lines; text after --> is dropped too)."""
    while i < len(lines) and "-->" not in lines[i]:
        i += 1
    return i + 1


def _fence(lines: list[str], i: int, out: list[str]) -> int:
    marker = FENCE.match(lines[i]).group(1)
    lang = lines[i].strip()[len(marker):].strip()
    body = []
    i += 1
    while i < len(lines) and not lines[i].strip().startswith(marker):
        body.append(lines[i])
        i += 1
    cls = f' class="language-{html.escape(lang)}"' if lang else ""
    out.append(f"<pre><code{cls}>{html.escape(chr(10).join(body))}</code></pre>")
    return i + 1


def _paragraph(lines: list[str], i: int, hooks: Hooks, out: list[str]) -> int:
    body = [lines[i].strip()]
    i += 1
    while i < len(lines) and not _starts_block(lines, i, in_paragraph=True):
        body.append(lines[i].strip())
        i += 1
    # A line ending in two spaces or a backslash is a hard break; Markdown's other newlines are spaces.
    text = "\n".join(body)
    out.append("<p>" + inline(text, hooks).replace("\\\n", "<br>\n") + "</p>")
    return i


def _quote(lines: list[str], i: int, hooks: Hooks, out: list[str]) -> int:
    body = []
    while i < len(lines) and lines[i].strip() and (lines[i].lstrip().startswith(">") or body):
        stripped = lines[i].lstrip()
        body.append(re.sub(r"^> ?", "", stripped) if stripped.startswith(">") else stripped)
        i += 1
    out.append("<blockquote>\n" + "\n".join(_blocks(body, hooks)) + "\n</blockquote>")
    return i


def split_row(line: str) -> list[str]:
    """A pipe-table row's cells: `|` inside a code span or escaped as `\\|` does not split."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells, cur, ticks, k = [], [], 0, 0
    while k < len(line):
        c = line[k]
        if c == "\\" and k + 1 < len(line) and line[k + 1] == "|":
            cur.append("|" if ticks else "\\|")
            k += 2
            continue
        if c == "`":
            run = len(line[k:]) - len(line[k:].lstrip("`"))
            ticks = 0 if ticks == run else (run if not ticks else ticks)
            cur.append("`" * run)
            k += run
            continue
        if c == "|" and not ticks:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        k += 1
    cells.append("".join(cur).strip())
    return cells


def _table(lines: list[str], i: int, hooks: Hooks, out: list[str]) -> int:
    head = split_row(lines[i])
    aligns = []
    for spec in split_row(lines[i + 1]):
        spec = spec.strip()
        aligns.append("center" if spec.startswith(":") and spec.endswith(":") else
                      "right" if spec.endswith(":") else "left" if spec.startswith(":") else "")
    i += 2
    rows = []
    while i < len(lines) and lines[i].strip() and "|" in lines[i] and not lines[i].lstrip().startswith("<!--"):
        rows.append(split_row(lines[i]))
        i += 1

    def cell(tag: str, k: int, text: str) -> str:
        align = aligns[k] if k < len(aligns) and aligns[k] else ""
        style = f' style="text-align:{align}"' if align else ""
        return f"<{tag}{style}>{inline(text, hooks)}</{tag}>"

    parts = ["<div class=\"table\"><table>", "<thead><tr>" +
             "".join(cell("th", k, t) for k, t in enumerate(head)) + "</tr></thead>", "<tbody>"]
    for row in rows:
        row = (row + [""] * len(head))[:max(len(head), len(row))]
        parts.append("<tr>" + "".join(cell("td", k, t) for k, t in enumerate(row)) + "</tr>")
    parts.append("</tbody></table></div>")
    out.append("\n".join(parts))
    return i


def _list(lines: list[str], i: int, hooks: Hooks, out: list[str]) -> int:
    first = ITEM.match(lines[i])
    indent, ordered = len(first.group(1)), first.group(2)[0].isdigit()
    items: list[list[str]] = []
    while i < len(lines):
        m = ITEM.match(lines[i])
        if not m or len(m.group(1)) != indent or m.group(2)[0].isdigit() != ordered:
            break
        body, i = _item(lines, i, m)
        items.append(body)
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        nxt = ITEM.match(lines[j]) if j < len(lines) else None
        if j > i and nxt and len(nxt.group(1)) == indent:
            i = j  # a blank line between items of one list
    tag = "ol" if ordered else "ul"
    start = int(first.group(2)[:-1]) if ordered else 1
    attr = f' start="{start}"' if ordered and start != 1 else ""
    parts = [f"<{tag}{attr}>"]
    for body in items:
        blocks = _blocks(body, hooks)
        if len(blocks) >= 1 and blocks[0].startswith("<p>") and blocks[0].endswith("</p>"):
            blocks[0] = blocks[0][3:-4]  # a tight item: its first paragraph without <p>
        parts.append("<li>" + "\n".join(blocks) + "</li>")
    parts.append(f"</{tag}>")
    out.append("\n".join(parts))
    return i


def _item(lines: list[str], i: int, m: re.Match) -> tuple[list[str], int]:
    """One list item's lines, dedented to its content, and the index after it: lines indented to
    its content (nested lists among them), blank lines followed by such lines, and lazy
    continuation lines of its paragraph."""
    indent = len(m.group(1))
    content = m.start(4) if m.group(4) else m.end(2) + 1
    body = [m.group(4)]
    i += 1
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _indent(lines[j]) >= content:
                body += [""] * (j - i)
                i = j
                continue
            break
        if _indent(line) >= content:
            body.append(line[content:])
        elif ITEM.match(line):
            if _indent(line) <= indent:
                break  # the next item of this list, or of one around it
            body.append(line[_indent(line):])
        elif _starts_block(lines, i, in_paragraph=True):
            break
        else:
            body.append(line.strip())
        i += 1
    return body, i
