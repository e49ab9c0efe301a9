"""results/defects.toml: rows that runs measured with a defect a later commit fixed (the file's one
reader; the file's header states its fields).

A defect applies to a run whose commit (meta.json env.git_commit) does not contain the fix
(`git merge-base --is-ancestor FIX COMMIT` answers no). Where that cannot be told (no git, a
commit the repository does not hold, a run without a commit) it applies: a reader is warned of a
defect the run may carry rather than left unwarned of one it does."""
from __future__ import annotations

import functools
import os
import subprocess
import tomllib
from dataclasses import dataclass

from .paths import REPO_ROOT, RESULTS_DIR

DEFECTS_FILE = os.path.join(RESULTS_DIR, "defects.toml")
FIELDS = ("id", "models", "fixed_in", "what")


class DefectsError(ValueError):
    """results/defects.toml is unreadable or a [[defect]] lacks a field."""


@dataclass(frozen=True)
class Defect:
    id: str
    models: tuple[str, ...]
    fixed_in: str
    what: str
    diagnostic: str | None = None

    @property
    def short_fix(self) -> str:
        return self.fixed_in[:8]


def load(path: str = DEFECTS_FILE) -> list[Defect]:
    """Every declared defect; [] when the file does not exist."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DefectsError(f"{path}: {exc}") from exc
    out = []
    for i, d in enumerate(doc.get("defect") or []):
        missing = [k for k in FIELDS if not d.get(k)]
        if missing:
            raise DefectsError(f"{path}: defect {i + 1} lacks {', '.join(missing)}")
        out.append(Defect(str(d["id"]), tuple(str(m) for m in d["models"]), str(d["fixed_in"]), str(d["what"]),
                          d.get("diagnostic")))
    return out


@functools.lru_cache(maxsize=None)
def contains(commit: str | None, fix: str, repo: str = REPO_ROOT) -> bool | None:
    """True when COMMIT contains FIX, False when it does not, None when git cannot tell. Cached:
    ancestry between two commits never changes, and a report asks it once per finding."""
    if not commit:
        return None
    try:
        rc = subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor", fix, commit],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(rc)


def for_commit(commit: str | None, defects: list[Defect] | None = None, repo: str = REPO_ROOT) -> list[Defect]:
    """The defects that a run made from COMMIT may carry (the module docstring's rule)."""
    return [d for d in (load() if defects is None else defects) if contains(commit, d.fixed_in, repo) is not True]
