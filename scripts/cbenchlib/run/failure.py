"""A point that failed: PointFailed carries the reason, the server output's tail and any fields
measured before the failure; every step of a repetition raises it, and Runner.run turns it into
a record with status "failed". Nothing here exits the sweep."""
from __future__ import annotations

import os

OUTPUT_TAIL_CHARS = 3000


class PointFailed(Exception):
    def __init__(self, reason: str, tail: str | None = None, **partial):
        super().__init__(reason)
        self.reason = reason
        self.tail = tail
        self.partial = partial


def tail(path: str, chars: int = OUTPUT_TAIL_CHARS) -> str:
    """The last `chars` characters of a file ("" if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
