"""The one reader of `cbench-server --list`: one model a line, NAME<tab>TRAITS<tab>SUMMARY, where
TRAITS is '-' or a comma-separated list. The traits the harness acts on:
`instrument` (a floor, not a concurrency model: never judged as one) and `bounded` (serves at most
--threads connections at a time, by design)."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

INSTRUMENT = "instrument"
BOUNDED = "bounded"
LIST_TIMEOUT_S = 10.0  # --list prints a static table; longer means the binary is broken


class ServerListError(Exception):
    """The binary could not be run, or its --list output breaks the format; the message says which."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    traits: frozenset
    summary: str


def parse(text: str) -> dict[str, ModelInfo]:
    """Model name -> ModelInfo, in the binary's order. A line without three tab-separated fields
    is refused (an older binary printed NAME<tab>SUMMARY: its traits would be read as none)."""
    out: dict[str, ModelInfo] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].strip():
            raise ServerListError(f"--list line {n}: expected NAME<tab>TRAITS<tab>SUMMARY, got {line[:80]!r}")
        name = fields[0].strip()
        traits = frozenset() if fields[1].strip() in ("", "-") else frozenset(
            t.strip() for t in fields[1].split(",") if t.strip())
        out[name] = ModelInfo(name, traits, "\t".join(fields[2:]))
    return out


def query(binary: str) -> dict[str, ModelInfo]:
    """Runs BINARY --list and parses it; raises ServerListError naming the binary."""
    try:
        proc = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=LIST_TIMEOUT_S)
    except OSError as exc:
        raise ServerListError(f"cannot run {binary} --list: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ServerListError(f"{binary} --list did not finish within {LIST_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise ServerListError(f"{binary} --list exited with status {proc.returncode}: {proc.stderr.strip()[-300:]}")
    try:
        return parse(proc.stdout)
    except ServerListError as exc:
        raise ServerListError(f"{binary} {exc}") from None
