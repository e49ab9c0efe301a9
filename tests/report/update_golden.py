#!/usr/bin/python3
"""Rewrite tests/report/golden/*.md from the commands in test_golden.GOLDEN_COMMANDS.

A command, not a test: the golden tests only compare. Review `git diff tests/report/golden`
after running it; a changed golden is a changed output that someone must have meant.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import GOLDEN, cbench, golden_path  # noqa: E402
from test_golden import GOLDEN_COMMANDS  # noqa: E402


def main() -> int:
    os.makedirs(GOLDEN, exist_ok=True)
    for name, argv in GOLDEN_COMMANDS.items():
        rc, out, err = cbench(*argv)
        if rc != 0:
            print(f"update_golden: cbench {' '.join(argv)} exited {rc}: {err}", file=sys.stderr)
            return 1
        with open(golden_path(name), "w", encoding="utf-8") as f:
            f.write(out)
        print(f"wrote {golden_path(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
