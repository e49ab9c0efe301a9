"""Where the repository's own files are: the one place that turns this package's location into
paths, so that moving a module never changes what it reads."""
from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPTS_DIR = os.path.join(REPO_ROOT, "scripts")
RESULTS_DIR = os.path.join(REPO_ROOT, "results")
RUNS_DIR = os.path.join(RESULTS_DIR, "runs")
PUBLISHED_DIR = os.path.join(RESULTS_DIR, "published")
FINDINGS_DIR = os.path.join(RESULTS_DIR, "findings")
SCENARIOS_DIR = os.path.join(REPO_ROOT, "scenarios")


def repo_relative(path: str) -> str:
    """path as results record it: relative to the repository when inside it, else absolute."""
    ap = os.path.abspath(path)
    return os.path.relpath(ap, REPO_ROOT) if ap.startswith(REPO_ROOT + os.sep) else ap
