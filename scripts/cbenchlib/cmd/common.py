"""What several `cbench` verbs share: how a verb reports an error, how results record a path,
and how a verb that reads a run opens it."""
from __future__ import annotations

import sys

from ..analysis import runload
from ..plan.sweepplan import repo_relative

__all__ = ["err", "load_run", "repo_relative"]


def err(verb: str, msg: str) -> int:
    """Print `verb: msg` on stderr; returns 2, the status of a command that could not start."""
    print(f"{verb}: {msg}", file=sys.stderr, flush=True)
    return 2


def load_run(verb: str, run: str):
    """runload.load_run(run), or None after printing `cbench verb: why` on stderr."""
    try:
        return runload.load_run(run)
    except runload.RunError as exc:
        print(f"cbench {verb}: {exc}", file=sys.stderr)
        return None
