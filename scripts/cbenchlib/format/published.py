"""Published tables kept as data (results/published/<name>.json), read exactly as published.

A cell is the published text ("63775 (4.27ms)") or null where the original is empty; this
module parses it into req/s and latency without ever filling an empty cell.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from .paths import REPO_ROOT

from .loadpoint import canonical_label
from .units import parse_latency

PUBLISHED_DIR = os.path.join(REPO_ROOT, "results", "published")
_CELL = re.compile(r"^\s*(\d+)\s*\(\s*([0-9.]+\s*(?:us|ms|s|m|h))\s*\)\s*$")
_BARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")  # req/s only (a table that published no latency)


# The stack a row runs on. Published tables were measured on the ORIGINAL STACK (Ruby 3.1, its
# GVL, nio4r / Ever / the Ruby servers): the "ruby" rows replicate it; the "cpp" rows are
# cbench-server's models (kind "model" or "instrument"), stand-ins built to explain it; "peer" is
# any other server (nginx, h2o). Findings judge each stack on its own rows, never mixed.
STACK_RUBY, STACK_CPP, STACK_PEER = "ruby", "cpp", "peer"
STACKS = (STACK_RUBY, STACK_CPP, STACK_PEER)
RUBY_MODEL_PREFIX = "ruby-"  # the Ruby replicas of the published examples (ruby-nio4r, ruby-ever, ...)
RUBY_SERVERS = ("puma", "unicorn", "async-http", "thin")  # real Ruby servers (Tipi's table)


def row_stack(kind: str | None, model: str | None) -> str:
    """"ruby" for a peer row whose model starts with "ruby-" or is a Ruby server, "cpp" for a
    cbench-server row (kind "model" or "instrument", also when the kind is unrecorded), "peer"
    for every other peer."""
    if kind == "peer":
        m = model or ""
        return STACK_RUBY if m.startswith(RUBY_MODEL_PREFIX) or m in RUBY_SERVERS else STACK_PEER
    return STACK_CPP


class PublishedError(Exception):
    """A published table that is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class PubCell:
    text: str
    req_per_s: float
    latency_text: str | None
    latency_us: float | None


@dataclass
class PubRow:
    label: str
    family: str
    cells: list  # PubCell | None, one per column

    @property
    def canonical(self) -> str:
        return canonical_label(self.label)


@dataclass
class Published:
    name: str
    path: str
    doc: dict
    columns: list[str]
    rows: list[PubRow]

    @property
    def provenance(self) -> dict:
        return self.doc.get("provenance") or {}

    def families(self) -> dict[str, str]:
        """family -> label of its single-thread row (the normalisation base)."""
        fams = self.doc.get("families") or {}
        return {f: v.get("single_thread_label") for f, v in fams.items()}

    def row(self, label: str) -> PubRow | None:
        c = canonical_label(label)
        return next((r for r in self.rows if r.canonical == c), None)


def parse_cell(text: str | None, where: str) -> PubCell | None:
    if text is None or text == "":
        return None
    text = str(text)
    bare = _BARE.match(text)
    if bare:
        return PubCell(text=text, req_per_s=float(bare.group(1)), latency_text=None, latency_us=None)
    m = _CELL.match(text)
    if not m:
        raise PublishedError(f"{where}: cell {text!r} is neither 'REQS (LATENCY)' nor 'REQS'")
    return PubCell(text=text, req_per_s=float(m.group(1)), latency_text=m.group(2).replace(" ", ""),
                   latency_us=parse_latency(m.group(2).replace(" ", "")))


def load_published(name: str) -> Published:
    """Read results/published/<name>.json (or a path to a .json); raises PublishedError."""
    path = name if name.endswith(".json") else os.path.join(PUBLISHED_DIR, f"{name}.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        avail = sorted(n[:-5] for n in os.listdir(PUBLISHED_DIR) if n.endswith(".json")) \
            if os.path.isdir(PUBLISHED_DIR) else []
        raise PublishedError(f"{path}: cannot read ({exc.strerror}); available: {', '.join(avail) or 'none'}")
    except ValueError as exc:
        raise PublishedError(f"{path}: not valid JSON ({exc})")
    cols = [c["key"] if isinstance(c, dict) else str(c) for c in doc.get("columns") or []]
    if not cols:
        raise PublishedError(f"{path}: no columns")
    rows = []
    for i, r in enumerate(doc.get("rows") or []):
        cells = r.get("cells") or []
        if len(cells) != len(cols):
            raise PublishedError(f"{path}: row {i} ({r.get('label')!r}) has {len(cells)} cells for {len(cols)} columns")
        rows.append(PubRow(label=r["label"], family=r.get("family") or r["label"].split()[0],
                           cells=[parse_cell(c, f"{path}: row {r['label']!r} column {cols[j]!r}")
                                  for j, c in enumerate(cells)]))
    return Published(name=doc.get("name") or os.path.basename(path)[:-5], path=path, doc=doc,
                     columns=cols, rows=rows)


def matching(labels) -> list[Published]:
    """Published tables (results/published/*.json) with at least one of these row labels
    (compared by canonical label); tables that do not load are left out."""
    out = []
    if not os.path.isdir(PUBLISHED_DIR):
        return out
    wanted = {canonical_label(x) for x in labels if x}
    for name in sorted(os.listdir(PUBLISHED_DIR)):
        if not name.endswith(".json"):
            continue
        try:
            pub = load_published(name[:-5])
        except PublishedError:
            continue
        if wanted & {r.canonical for r in pub.rows}:
            out.append(pub)
    return out
