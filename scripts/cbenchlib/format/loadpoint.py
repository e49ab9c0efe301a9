"""The identity of a load point and of a published row, shared by every writer and reader.

A point record's load (points.jsonl's `load`) is identified by its key together with what splits
tables (path, pipeline depth, idle); a row is matched to a published row by its canonical label.
Every reader that groups or matches points uses these, never its own rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadId:
    """Identity of a table column: the load key plus what splits tables (path, pipeline)."""
    path: str
    pipeline: int
    key: str
    idle: bool = False


def dig(obj: Any, path: str) -> Any:
    """Value at a dotted path in nested dicts, or None when any step is missing."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


_LABEL_SPACE = re.compile(r"\s+")


def canonical_label(label: str | None) -> str | None:
    """Label normalised for matching a published row: lower case, single spaces, "threads" -> "thread".

    The published table itself writes "nio4r 1 worker threads" but "ever 1 worker thread".
    """
    if not label:
        return None
    s = _LABEL_SPACE.sub(" ", label.strip().lower())
    s = re.sub(r"\bthreads\b", "thread", s)
    s = re.sub(r"\s*[,(]?\s*(\+|--)?gvl\)?$", "", s)  # a trailing "(gvl)" / "+gvl" marker
    return s.strip(" ,")
