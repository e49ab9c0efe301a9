"""The identity of a load point and of a published row, shared by every writer and reader.

A point record's load (points.jsonl's `load`) is identified by its key together with what splits
tables (path, pipeline depth, idle): `load_id` derives it, with the fields the key encodes
(generator, open-loop offered rate, connections, wrk threads, read rate) spelled out beside it. A
point is measured when its status is "ok" (`measured`). A row is matched to a published row by
its canonical label. Every reader that groups or matches points uses these, never its own rule.
"""
from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from typing import Any

from . import loadgen

RATE_DECIMALS = 3  # offered rates are compared to a thousandth of a request per second


@dataclass(frozen=True)
class LoadId:
    """Identity of one load: the sweep's load key plus what splits tables (path, pipeline, idle).
    Equal ids are one load: one table column, one cell per row, one point of a row's latency
    curve. The key encodes the generator, the open-loop rate (or fraction of the peak), arrivals
    and read rate (format/loadgen.key_suffix), so the fields after `idle` only spell out what it
    says and take no part in equality; rate_per_s is the rate the point was offered, which for a
    rate_fraction load is that fraction of its own row's peak (one rate per row and load)."""
    path: str
    pipeline: int
    key: str
    idle: bool = False
    generator: str = field(default=loadgen.UNNAMED_GENERATOR, compare=False)
    open_loop: bool = field(default=False, compare=False)  # rate, rate_fraction or rate_common_fraction given
    rate_per_s: float | None = field(default=None, compare=False)  # rounded to RATE_DECIMALS
    connections: int | None = field(default=None, compare=False)  # wrk -c (None when idle)
    wrk_threads: int | None = field(default=None, compare=False)
    idle_connections: int | None = field(default=None, compare=False)
    read_rate_bps: float | None = field(default=None, compare=False)  # slow readers, bytes/s per connection
    # A fixed-rate load's declared fraction of the lowest peak among its rows (loadgen.py), else None.
    rate_common_fraction: float | None = field(default=None, compare=False)

    def apart_from_generator(self) -> tuple:
        """What the load is whichever generator drove it: loads equal here and closed-loop are
        the same point measured by different generators."""
        return (self.path, self.pipeline, self.wrk_threads, self.connections)


def load_id(point: dict) -> LoadId:
    """The identity of a point record's load. A record without a key (hand-made fixtures, old
    records) is named as the sweep names it (`-tT -cC` and loadgen's suffix), with its offered
    rate rather than a fraction of a peak the reader does not know."""
    ld = point.get("load") if isinstance(point.get("load"), dict) else {}
    idle_n = as_int(ld.get("idle_connections"))
    if idle_n is None and isinstance(point.get("idle"), dict):
        idle_n = as_int(point["idle"].get("connections"))
    idle = idle_n is not None
    rate = ld.get("rate")
    rate = round(float(rate), RATE_DECIMALS) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None
    generator = str(ld.get("generator") or loadgen.UNNAMED_GENERATOR)
    read_rate = ld.get("read_rate")
    common = ld.get("rate_common_fraction")
    common = float(common) if isinstance(common, (int, float)) and not isinstance(common, bool) else None
    key = ld.get("key")
    if not key:
        named = types.SimpleNamespace(generator=generator, rate=rate, rate_fraction=None,
                                      arrivals=ld.get("arrivals") or "constant", read_rate=read_rate)
        key = (f"idle {idle_n}" if idle
               else f"-t{ld.get('wrk_threads')} -c{ld.get('connections')}" + loadgen.key_suffix(named))
    return LoadId(path="" if idle else str(ld.get("path") or "/"),
                  pipeline=1 if idle else (as_int(ld.get("pipeline")) or 1), key=str(key), idle=idle,
                  generator=generator,
                  open_loop=rate is not None or ld.get("rate_fraction") is not None or common is not None,
                  rate_per_s=rate, connections=as_int(ld.get("connections")),
                  wrk_threads=as_int(ld.get("wrk_threads")), idle_connections=idle_n,
                  read_rate_bps=read_rate, rate_common_fraction=common)


def measured(point: dict) -> bool:
    """Whether a point record holds a measurement: status "ok" (a record without a status
    predates failed points and is ok)."""
    return point.get("status", "ok") == "ok"


def as_int(v) -> int | None:
    """An integer field of a record, or None (booleans and fractional numbers are not integers)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


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
