"""Scenario files (scenarios/*.toml): read, write, expand into points.

A scenario is settings + rows (what runs as the server) + load sets (what wrk
does). Its points are, for every row, every load of every load set the row
runs on. The format is documented in scenarios/README.md; this module is its
only reader (parse) and writer (dump). Its types and vocabulary are in
scenario_types.py and re-exported here; its rules in scenario_rules.py. Every
problem is reported as ScenarioError naming the file, the key and the problem,
and nothing is run when a file is bad.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from typing import Any

from .scenario_rules import Validator, show_value
from .scenario_types import (  # the format's types and vocabulary, re-exported: readers name scenario.X
    BACKENDS, GENERATOR_SET_KEYS, IDLE_LOAD_KEYS, KINDS, LOAD_SET_KEYS, LOAD_VALUE_KEYS, Load,
    MAX_CONNECTIONS, MAX_DURATION_S, MAX_PIPELINE, MAX_PROCESSES, MAX_REPETITIONS, MAX_THREADS,
    MAX_WRK_THREADS, OPEN_LOOP_KEYS, ORDERS, PEERS, Point, QUEUES, QUICK_DURATION_S, QUICK_REPETITIONS,
    QUICK_WARMUP_S, ROW_KEYS, ROW_VARIANT_KEYS, Row, SETTING_DEFAULTS, Scenario, ScenarioError, Settings,
    WRK_LOAD_KEYS, cpu_list, cpu_list_count, load_selected, pin_matches, split_load_entry)

__all__ = ["BACKENDS", "GENERATOR_SET_KEYS", "IDLE_LOAD_KEYS", "KINDS", "LOAD_SET_KEYS",
           "LOAD_VALUE_KEYS", "Load", "MAX_CONNECTIONS", "MAX_DURATION_S", "MAX_PIPELINE",
           "MAX_PROCESSES", "MAX_REPETITIONS", "MAX_THREADS", "MAX_WRK_THREADS", "OPEN_LOOP_KEYS",
           "ORDERS", "PEERS", "Point", "QUEUES", "QUICK_DURATION_S", "QUICK_REPETITIONS",
           "QUICK_WARMUP_S", "ROW_KEYS", "ROW_VARIANT_KEYS", "Row", "SETTING_DEFAULTS", "Scenario",
           "ScenarioError", "Settings", "WRK_LOAD_KEYS", "cpu_list", "cpu_list_count", "load_selected",
           "pin_matches", "split_load_entry", "resolve_path", "load_file", "parse", "dump", "dump_checked"]


def resolve_path(name_or_path: str, scenarios_dir: str) -> str:
    """A scenario name ('ever-table') or a path to a .toml file -> the file's path."""
    if os.sep in name_or_path or name_or_path.endswith(".toml"):
        return name_or_path
    return os.path.join(scenarios_dir, name_or_path + ".toml")


def load_file(path: str, quick: bool = False) -> Scenario:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(raw.decode("utf-8", errors="replace"), path, quick=quick)


def parse(text: str, path: str, quick: bool = False, cpu_counts: dict | None = None) -> Scenario:
    """Parse and validate a scenario's TOML text; `path` names it in messages. cpu_counts
    ({"server": n, "client": m}, the CPU layout the plan chose) is what a CPU-relative thread
    count ("cpus", "2*cpus") counts; without it, the lengths of the file's own server_cpus and
    client_cpus (one each by default)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    v = Validator(path)
    settings = v.settings(doc)
    v.cpu_counts = cpu_counts or {"server": cpu_list_count(settings.server_cpus),
                                  "client": cpu_list_count(settings.client_cpus)}
    load_sets = v.load_sets(doc.get("loads"))
    rows = v.rows(doc.get("rows"), load_sets)
    if quick:
        settings, rows, load_sets = _quick(settings, rows, load_sets)
    return Scenario(path=path, text=text, settings=settings, rows=rows,
                    load_sets=load_sets, quick=quick)


def dump(doc: dict) -> str:
    """TOML text of a scenario document: top-level settings, then `[[loads]]` and `[[rows]]` (lists
    of tables), in the order given. The inverse of parse for what generated scenarios use: strings,
    booleans, numbers, lists and inline tables of those. Every generated scenario is written here
    and read back by parse before use (dump_checked), so a generator cannot write what the sweep
    would refuse."""
    tables = {k: doc[k] for k in ("loads", "rows") if k in doc}
    lines = [f"{k} = {_toml_value(v, k)}" for k, v in doc.items() if k not in tables]
    for name, items in tables.items():
        for item in items:
            lines += ["", f"[[{name}]]"] + [f"{k} = {_toml_value(v, f'{name}.{k}')}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def dump_checked(doc: dict, path: str) -> tuple[str, Scenario]:
    """(dump(doc), the scenario parse reads from it); raises ScenarioError naming PATH."""
    text = dump(doc)
    return text, parse(text, path)


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise ScenarioError(f"{where}: {v} cannot be written")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x, where)}" for k, x in v.items()) + " }"
    raise ScenarioError(f"{where}: {show_value(v)} cannot be written to a scenario")


def _quick(settings: Settings, rows: list[Row], load_sets: dict[str, list[Load]]):
    """Seconds per point: 1 s runs, a 0.3 s warm-up, one repetition (no extra blocks), long lists
    cut to their ends."""
    settings = dataclasses.replace(settings, duration_s=QUICK_DURATION_S,
                                   warmup_s=min(settings.warmup_s, QUICK_WARMUP_S),
                                   repetitions=QUICK_REPETITIONS, target_ci_pct=None)
    # Rows and loads were expanded from lists; keep the first and last of each group that
    # came from one list, so a sweep over 1..10000 connections still spans its range.
    # A load some row pins ("spin -t4 -c64") is kept too: it is there for a finding's primary point.
    trimmed_sets = {}
    for name, loads in load_sets.items():
        ends = _ends(loads)
        pins = {pin for r in rows for n, pin in map(split_load_entry, r.loads or ()) if n == name and pin}
        trimmed_sets[name] = [ld for ld in loads if ld in ends or any(pin_matches(ld, p) for p in pins)]
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.model, row.queues, row.gvl, row.backend,
                           row.extra_args, row.loads, row.binary), []).append(row)
    keep = set()
    for group in groups.values():
        keep.update(id(r) for r in _ends(group))
    return settings, [r for r in rows if id(r) in keep], trimmed_sets


def _ends(items: list) -> list:
    return items if len(items) <= 2 else [items[0], items[-1]]
