#!/usr/bin/env python3
"""Every file in backends/ includes only headers of its own folder or of a lower layer.

The layers, bottom first (a folder may include its own headers and those of lower layers):
  stats      per-thread event counters, below everything so that every layer may count
  http       the codec, the pump, the handler: knows no sockets
  net        sockets, the acceptor, sessions, the reactor: knows no event-loop library
  loop, queue, ring  the pull loop, the job queues and the io_uring ring (submission, completion,
             provided buffers; shared by the io-uring models and cbench-load's uring engine):
             know no sessions
  server     the model seam, main, cluster mode, threads
  families   helpers of a single family of models (asio, fiber, selector, uring) and the load
             generator (loadgen), between the model seam (server) and the models (servers/):
             each may use every layer below, but not another family
Exits 1 listing each include that goes up or sideways, else 0.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

RANK = {"stats": 0, "http": 1, "net": 2, "loop": 3, "queue": 3, "ring": 3, "server": 4}
FAMILY_RANK = 5  # any other folder of backends/
INCLUDE = re.compile(r'^\s*#\s*include\s+"backends/([^/"]+)/[^"]+"', re.M)


def rank(folder: str) -> int:
    return RANK.get(folder, FAMILY_RANK)


def violations(root: Path) -> list[str]:
    out = []
    for path in sorted((root / "backends").rglob("*")):
        if path.suffix not in (".h", ".cpp") or not path.is_file():
            continue
        folder = path.relative_to(root / "backends").parts[0]
        for m in INCLUDE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            target = m.group(1)
            if target == folder or rank(target) < rank(folder):
                continue
            line = path.read_text(encoding="utf-8", errors="replace").count("\n", 0, m.start()) + 1
            why = "a higher layer" if rank(target) > rank(folder) else "another family"
            out.append(f"{path.relative_to(root)}:{line}: includes backends/{target}/ ({why})")
    return out


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    found = violations(root)
    for v in found:
        print(v)
    print(f"backend layers: {len(found)} include(s) against the layer order")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
