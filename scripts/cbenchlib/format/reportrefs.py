"""The one place that maps a REPORT.md section to its reference run directory.

results/reference-runs.toml lists, per section, `run = "results/runs/<id>"` (relative to the
repo root, or absolute) or `run = ""` (not yet run, or not yet remade here). Everything that reads
a section's run resolves it here: reportgen's generated sections, reporttpl's placeholders and its
one-commit-one-machine check, decision's table, and the tests that mutate a section's run. The
sections of one report may come from different runs, so nothing may assume that one run serves
them all.
"""
from __future__ import annotations

import os


def resolve(sec: dict | None, root: str) -> str | None:
    """The run directory a section's table (`[sections.NAME]`) lists, joined to ROOT when
    relative; None when it lists none (run = "" or no section)."""
    d = (sec or {}).get("run") or ""
    if not d:
        return None
    return d if os.path.isabs(d) else os.path.join(root, d)


def run_dir(config: dict, section: str, root: str) -> str | None:
    """resolve() for SECTION of CONFIG (reportgen.read_config's dict)."""
    return resolve(config.get(section), root)
