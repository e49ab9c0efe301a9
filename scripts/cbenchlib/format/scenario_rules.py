"""The rules of a scenario file: every key's type, range and allowed values, how lists expand
into rows and loads, and the checks across entries (unique keys, no repeated points). The first
broken rule raises ScenarioError naming the file, the key and the problem; scenario.parse runs
these and nothing is run when a file is bad.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
from typing import Any

from . import loadgen
from .loadpoint import canonical_label
from .scenario_types import (
    BACKENDS, GENERATOR_SET_KEYS, KINDS, LOAD_SET_KEYS, LOAD_VALUE_KEYS, MAX_CONNECTIONS,
    MAX_DURATION_S, MAX_PIPELINE, MAX_PROCESSES, MAX_REPETITIONS, MAX_THREADS, MAX_WRK_THREADS,
    OPEN_LOOP_KEYS, ORDERS, PEERS, QUEUES, ROW_KEYS, ROW_VARIANT_KEYS, SETTING_DEFAULTS, WRK_LOAD_KEYS,
    Load, Row, ScenarioError, Settings, cpu_list_count, pin_matches, split_load_entry)


# A count relative to the CPUs a role runs on: "cpus", "2*cpus", "cpus/2" (rounded down, at
# least 1); a row's threads count the server's CPUs, a load's wrk_threads the client's.
CPU_RELATIVE = re.compile(r"(?:(\d+)\s*\*\s*)?cpus(?:\s*/\s*(\d+))?")


class Validator:
    def __init__(self, path: str, cpu_counts: dict | None = None):
        self.path = path
        # {"server": n, "client": m}: what "cpus" means; set by scenario.parse once the
        # settings (or the caller's CPU layout) say how many each role has.
        self.cpu_counts = cpu_counts or {"server": 1, "client": 1}

    def fail(self, key: str, problem: str):
        raise ScenarioError(f"{self.path}: {key}: {problem}")

    # -- scalar checks --------------------------------------------------------------
    def int_(self, key, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {show_value(value)}")
        if not lo <= value <= hi:
            self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def count(self, key, value, lo, hi, role):
        """An integer, or a string: digits, or a count of the role's CPUs (CPU_RELATIVE)."""
        if isinstance(value, str):
            m = CPU_RELATIVE.fullmatch(value.strip())
            if value.strip().isdigit():
                value = int(value)
            elif m:
                value = max(1, self.cpu_counts[role] * int(m.group(1) or 1) // int(m.group(2) or 1))
            else:
                self.fail(key, f"expected an integer, got {show_value(value)} (or a count of the {role} "
                          "CPUs: \"cpus\", \"2*cpus\", \"cpus/2\")")
        return self.int_(key, value, lo, hi)

    def number(self, key, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {show_value(value)}")
        if not (lo <= value <= hi) or math.isnan(value):
            self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return float(value)

    def str_(self, key, value, choices=None, pattern=None, what=None):
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {show_value(value)}")
        if choices is not None and value not in choices:
            self.fail(key, f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(key, f"{what or 'bad value'}, got {value!r}")
        return value

    def bool_(self, key, value):
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {show_value(value)}")
        return value

    def str_list(self, key, value):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.fail(key, f"expected a list of strings, got {show_value(value)}")
        return tuple(value)

    def one_or_list(self, key, value, check):
        """A scalar or a non-empty list of scalars, each passed to check(key, item)."""
        if isinstance(value, list):
            if not value:
                self.fail(key, "empty list")
            out = [check(f"{key}[{i}]", item) for i, item in enumerate(value)]
            if len(set(out)) != len(out):
                if len({repr(x) for x in value}) != len(value):
                    self.fail(key, f"repeated value in {value}")
                out = list(dict.fromkeys(out))  # CPU-relative counts that meet here ("1", "cpus" on one CPU)
            return out
        return [check(key, value)]

    def unknown(self, key_prefix, table, allowed):
        for k in table:
            if k not in allowed:
                where = f"{key_prefix}.{k}" if key_prefix else k
                self.fail(where, f"unknown key (allowed: {', '.join(allowed)})")

    # -- sections -------------------------------------------------------------------
    def settings(self, doc: dict) -> Settings:
        self.unknown("", doc, tuple(SETTING_DEFAULTS) + ("rows", "loads"))
        s = dict(SETTING_DEFAULTS)
        s.update({k: v for k, v in doc.items() if k in SETTING_DEFAULTS})
        stem = os.path.splitext(os.path.basename(self.path))[0]
        name = stem if s["name"] is None else self.str_(
            "name", s["name"], pattern=r"[a-z0-9][a-z0-9-]*", what="use lower case letters, digits and '-'")
        for key in ("server_cpus", "client_cpus"):
            self.str_(key, s[key])
            try:
                cpu_list_count(s[key])
            except ValueError as exc:
                self.fail(key, str(exc))
        return Settings(
            name=name,
            description=self.str_("description", s["description"]),
            duration_s=self.int_("duration_s", s["duration_s"], 1, MAX_DURATION_S),
            warmup_s=self.number("warmup_s", s["warmup_s"], 0, MAX_DURATION_S),
            repetitions=self.int_("repetitions", s["repetitions"], 1, MAX_REPETITIONS),
            timeout_s=self.int_("timeout_s", s["timeout_s"], 1, MAX_DURATION_S),
            server_cpus=s["server_cpus"], client_cpus=s["client_cpus"],
            order=self.str_("order", s["order"], ORDERS),
            seed=self.int_("seed", s["seed"], 0, 2**63 - 1),
            ready_timeout_s=self.number("ready_timeout_s", s["ready_timeout_s"], 0.1, 600),
            server_args=self.str_list("server_args", s["server_args"]),
            response=self.str_("response", s["response"], ("standard", "published")),
            target_ci_pct=None if s["target_ci_pct"] is None
            else self.number("target_ci_pct", s["target_ci_pct"], 0.1, 1000),
            max_repetitions=None if s["max_repetitions"] is None
            else self.int_("max_repetitions", s["max_repetitions"], 1, MAX_REPETITIONS),
            published=None if s["published"] is None
            else self.str_("published", s["published"], pattern=r"[a-z0-9][a-z0-9-]*",
                           what="the name of a results/published/*.json table"),
            sequential_points=self.int_("sequential_points", s["sequential_points"], 1, 100_000),
            sequential_trends=self.bool_("sequential_trends", s["sequential_trends"]),
        )

    def load_sets(self, raw) -> dict[str, list[Load]]:
        if raw is None:
            self.fail("loads", "missing: a scenario needs at least one [[loads]] set")
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            self.fail("loads", "expected an array of tables ([[loads]])")
        if not raw:
            self.fail("loads", "empty")
        sets: dict[str, list[Load]] = {}
        for i, table in enumerate(raw):
            where = f"loads[{i}]"
            self.unknown(where, table, LOAD_SET_KEYS)
            name = table.get("name", f"load{i}")
            self.str_(f"{where}.name", name, pattern=r"[A-Za-z0-9_-]+",
                      what="use letters, digits, '-' and '_'")
            if name in sets:
                self.fail(f"{where}.name", f"load set {name!r} is defined twice")
            sets[name] = self.one_load_set(where, name, table)
        return sets

    def load_value(self, key, field, value):
        if field == "wrk_threads":
            return self.count(key, value, 1, MAX_WRK_THREADS, "client")
        if field in ("connections", "idle_connections"):
            return self.int_(key, value, 1, MAX_CONNECTIONS)
        if field == "pipeline":
            return self.int_(key, value, 1, MAX_PIPELINE)
        if field == "path":
            return self.str_(key, value, pattern=r"/[\x21-\x7e]*",
                             what="must start with '/' and hold no spaces or control characters")
        raise AssertionError(field)

    def one_load_set(self, where, name, table) -> list[Load]:
        lists = {}
        for field in OPEN_LOOP_KEYS:  # checked per value by loadgen.check_load
            if field in table:
                lists[field] = table[field] if isinstance(table[field], list) else [table[field]]
        for field in LOAD_VALUE_KEYS:
            if field in table:
                lists[field] = self.one_or_list(
                    f"{where}.{field}", table[field],
                    lambda k, x, field=field: self.load_value(k, field, x))
        explicit = table.get("explicit")
        entries = [{}]
        if explicit is not None:
            if not isinstance(explicit, list) or not explicit or not all(isinstance(e, dict) for e in explicit):
                self.fail(f"{where}.explicit", "expected a non-empty list of inline tables, "
                          "e.g. [{wrk_threads = 2, connections = 10}]")
            entries = []
            for j, entry in enumerate(explicit):
                ekey = f"{where}.explicit[{j}]"
                self.unknown(ekey, entry, LOAD_VALUE_KEYS)
                for field, value in entry.items():
                    if field in lists:
                        self.fail(f"{ekey}.{field}", f"also given as {where}.{field}; give it in one place")
                entries.append({field: self.load_value(f"{ekey}.{field}", field, value)
                                for field, value in entry.items()})
        fields = list(lists)
        loads: list[Load] = []
        seen = set()
        for entry in entries:
            for combo in itertools.product(*(lists[f] for f in fields)):
                values = dict(zip(fields, combo))
                values.update(entry)
                values.update({k: table[k] for k in GENERATOR_SET_KEYS if k in table})
                load = self.make_load(where, name, values)
                if load in seen:
                    continue
                seen.add(load)
                loads.append(load)
        return loads

    def make_load(self, where, set_name, values) -> Load:
        has_wrk = [f for f in WRK_LOAD_KEYS if f in values]
        if "idle_connections" in values:
            if has_wrk:
                self.fail(where, f"idle_connections cannot be combined with {', '.join(has_wrk)} "
                          "(an idle point runs no load generator)")
            return Load(set_name=set_name, idle_connections=values["idle_connections"])
        for required in ("wrk_threads", "connections"):
            if required not in values:
                self.fail(f"{where}.{required}", "missing (needed for every wrk point; "
                          "or give idle_connections for an idle point)")
        # wrk refuses -t greater than -c ("number of connections must be >= threads").
        threads = min(values["wrk_threads"], values["connections"])
        return Load(set_name=set_name, wrk_threads=threads, connections=values["connections"],
                    pipeline=values.get("pipeline", 1), path=values.get("path", "/"),
                    **loadgen.check_load(self.fail, where, values))

    def rows(self, raw, load_sets) -> list[Row]:
        if raw is None:
            self.fail("rows", "missing: a scenario needs at least one [[rows]] entry")
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw) or not raw:
            self.fail("rows", "expected a non-empty array of tables ([[rows]])")
        rows: list[Row] = []
        explicit_keys: set[int] = set()  # rows whose key the scenario gave
        row_where: dict[int, str] = {}
        for i, table in enumerate(raw):
            where = f"rows[{i}]"
            for row in self.row_table(where, table, load_sets):
                rows.append(row)
                row_where[id(row)] = where
                if "key" in table:
                    explicit_keys.add(id(row))
        rows = self._alias_published_labels(rows, row_where, explicit_keys)
        self.distinct_rows(rows, row_where, load_sets)
        return rows

    def row_table(self, where, table, load_sets) -> list[Row]:
        """The rows one [[rows]] table expands to: one per combination of its listed variants."""
        self.unknown(where, table, ROW_KEYS)
        kind = self.str_(f"{where}.kind", table.get("kind", "model"), KINDS)
        if "model" not in table:
            self.fail(f"{where}.model", "missing (the cbench-server --model name, or the peer's name)")
        model = self.str_(f"{where}.model", table["model"], pattern=r"[a-z0-9][a-z0-9._-]*",
                          what="use lower case letters, digits, '.', '_' and '-'")
        variants = self.row_variants(where, table)
        extra = self.str_list(f"{where}.extra_args", table.get("extra_args", []))
        label = table.get("label")
        if label is not None:
            self.str_(f"{where}.label", label)
        row_loads = self.row_loads(where, table, load_sets)
        binary = None  # a row's own cbench-server build
        if "binary" in table:
            binary = self.str_(f"{where}.binary", table["binary"])
            if not binary:
                self.fail(f"{where}.binary", "empty (leave the key out to run the sweep's --server-bin)")
        command, config_template = self.row_command(where, table, kind, model)
        combos = list(itertools.product(*(variants[k] for k in ROW_VARIANT_KEYS)))
        if "key" in table:
            self.str_(f"{where}.key", table["key"])
            if len(combos) > 1:
                self.fail(f"{where}.key", "an explicit key needs a row without lists "
                          f"(this row expands to {len(combos)} variants)")
        rows = []
        for threads, queues, gvl, backend, processes, keepalive in combos:
            fmt = dict(model=model, threads=threads, queues=queues or "", gvl="gvl" if gvl else "",
                       backend=backend or "", processes=processes or 1,
                       keepalive="" if keepalive else "keepalive off")
            try:
                row_label = None if label is None else label.format(**fmt)
            except (KeyError, IndexError, ValueError) as exc:
                self.fail(f"{where}.label", f"bad placeholder {exc} (allowed: "
                          "{model} {threads} {queues} {gvl} {backend} {processes} {keepalive})")
            key = table.get("key") or _row_key(model, threads, queues, gvl, backend, extra,
                                               processes, keepalive)
            rows.append(Row(key=key, label=row_label, kind=kind, model=model, threads=threads,
                            queues=queues, gvl=gvl, backend=backend, extra_args=extra,
                            loads=row_loads, command=command, config_template=config_template,
                            processes=processes, keepalive=keepalive, binary=binary))
        return rows

    def row_variants(self, where, table) -> dict[str, list]:
        """ROW_VARIANT_KEYS -> the values the row lists (one value when it gives a scalar)."""
        return {
            "threads": self.one_or_list(f"{where}.threads", table.get("threads", 1),
                                        lambda k, x: self.count(k, x, 1, MAX_THREADS, "server")),
            "queues": self.one_or_list(f"{where}.queues", table.get("queues", None),
                                       lambda k, x: x if x is None else self.str_(k, x, QUEUES)),
            "gvl": self.one_or_list(f"{where}.gvl", table.get("gvl", False), self.bool_),
            "backend": self.one_or_list(f"{where}.backend", table.get("backend", None),
                                        lambda k, x: x if x is None else self.str_(k, x, BACKENDS)),
            "processes": self.one_or_list(f"{where}.processes", table.get("processes", None),
                                          lambda k, x: x if x is None else self.int_(k, x, 1, MAX_PROCESSES)),
            "keepalive": self.one_or_list(f"{where}.keepalive", table.get("keepalive", True), self.bool_),
        }

    def row_loads(self, where, table, load_sets) -> tuple[str, ...] | None:
        """The row's `loads` entries, each naming a defined set (and, when pinned, one of its loads)."""
        if "loads" not in table:
            return None
        row_loads = self.str_list(f"{where}.loads", table["loads"])
        if not row_loads:
            self.fail(f"{where}.loads", "empty list (leave the key out to run on every load set)")
        for entry in row_loads:
            name, pin = split_load_entry(entry)
            if name not in load_sets:
                self.fail(f"{where}.loads", f"no load set named {name!r} "
                          f"(defined: {', '.join(load_sets)})")
            if pin is not None and not any(pin_matches(ld, pin) for ld in load_sets[name]):
                self.fail(f"{where}.loads", f"load set {name!r} has no load {pin!r} "
                          f"(its loads: {', '.join(ld.key for ld in load_sets[name])})")
        return row_loads

    def row_command(self, where, table, kind, model) -> tuple:
        """(command, config_template) of a peer row; (None, None) for the others, which may not
        give them."""
        if kind != "peer":
            for k in ("command", "config_template"):
                if k in table:
                    self.fail(f"{where}.{k}", f"only for kind = \"peer\" rows, this row is {kind!r}")
            return None, None
        for k in ("queues", "gvl", "backend", "processes", "keepalive", "binary"):
            if k in table:
                self.fail(f"{where}.{k}", "a cbench-server flag; peer rows take only threads "
                          "(and extra_args, appended to the peer's command)")
        builtin = PEERS.get(model, {})
        config_template = None
        if "command" in table:
            command = self.str_list(f"{where}.command", table["command"])
            if not command:
                self.fail(f"{where}.command", "empty")
        elif builtin:
            command = builtin["command"]
        else:
            self.fail(f"{where}.command", "missing (a peer row gives the argv that starts it, "
                      f"unless it names a built-in peer: {', '.join(PEERS)})")
        if "config_template" in table:
            config_template = self.str_(f"{where}.config_template", table["config_template"])
        elif "command" not in table:
            config_template = builtin.get("config_template")
        return command, config_template

    def distinct_rows(self, rows: list[Row], row_where: dict, load_sets) -> None:
        """Row keys are unique, and two rows share a server command only if they never meet the
        same load (or carry distinct published labels: _alias_published_labels has given them
        distinct ids)."""
        keys: dict[str, str] = {}
        for row in rows:
            if row.key in keys:
                self.fail(f"{row_where[id(row)]}.key", f"row key {row.key!r} is also the key of {keys[row.key]}")
            keys[row.key] = row_where[id(row)]
        seen: dict[tuple, str] = {}
        for row in rows:
            names = (tuple(dict.fromkeys(split_load_entry(e)[0] for e in row.loads))
                     if row.loads is not None else tuple(load_sets))
            for name in names:
                if (row.id, name) in seen:
                    self.fail(row_where[id(row)], f"runs the same server command ({row.id}) on load set "
                              f"{name!r} as {seen[(row.id, name)]}: the points would repeat")
                seen[(row.id, name)] = row_where[id(row)]

    def _alias_published_labels(self, rows: list, row_where: dict, explicit_keys: set) -> list:
        """Rows that run one server command under distinct published labels (tipi-table: Tipi and
        Falcon are both the `fiber` design here) are each the nearest design of a different
        published row, so each gets its own points: `alias` (the label) joins their id and
        automatic key. Labels are told apart as published rows are matched
        (loadpoint.canonical_label: case and spacing do not count), so "Tipi" and "tipi" are one
        label and still refused as a repeat. Rows of one command without a label, or with one
        label twice, are left as they are (the load check below refuses them)."""
        groups: dict[str, list] = {}
        for row in rows:
            groups.setdefault(row.id, []).append(row)
        out = []
        for row in rows:
            group = groups[row.id]
            labels = [canonical_label(r.label) for r in group]
            if len(group) > 1 and None not in labels and len(set(labels)) == len(labels):
                key = row.key if id(row) in explicit_keys else f"{row.key} as {row.label}"
                new = dataclasses.replace(row, alias=row.label, key=key)
                row_where[id(new)] = row_where[id(row)]
                if id(row) in explicit_keys:
                    explicit_keys.add(id(new))
                row = new
            out.append(row)
        return out


def _row_key(model, threads, queues, gvl, backend, extra, processes=None, keepalive=True) -> str:
    key = f"{model} t{threads}"
    if processes:
        key += f" p{processes}"
    if not keepalive:
        key += " keepalive-off"
    if queues:
        key += f" {queues}"
    if gvl:
        key += " gvl"
    if backend:
        key += f" {backend}"
    if extra:
        key += " " + " ".join(extra)
    return key


def show_value(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"
