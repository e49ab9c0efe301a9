"""`cbench list`: what there is to run and compare, in one screen: the scenarios (with their
descriptions and point counts), the models the server binary offers (with their traits), the
published tables, and the load generators. Reads files and `cbench-server --list`; runs nothing
else."""
from __future__ import annotations

import os
import sys

from ..format import loadgen, published, scenario, serverlist
from ..format.paths import PUBLISHED_DIR, REPO_ROOT, SCENARIOS_DIR

DEFAULT_SERVER_BIN = os.path.join(REPO_ROOT, "build", "cbench-server")
WHAT = ("scenarios", "models", "published", "generators")


def add_arguments(p) -> None:
    p.add_argument("what", nargs="?", choices=WHAT, help="list only this (default: all four)")
    p.add_argument("--server-bin", default=DEFAULT_SERVER_BIN,
                   help="the cbench-server whose models are listed (default: build/cbench-server)")


def scenario_lines() -> list[str]:
    out = []
    for name in sorted(f[:-5] for f in os.listdir(SCENARIOS_DIR) if f.endswith(".toml")):
        try:
            sc = scenario.load_file(os.path.join(SCENARIOS_DIR, f"{name}.toml"))
            n_loads = sum(len(v) for v in sc.load_sets.values())
            desc = (sc.settings.description or "").strip().splitlines()
            out.append(f"  {name:<22} {len(sc.rows):>3} rows, {n_loads:>3} loads  {desc[0] if desc else ''}")
        except scenario.ScenarioError as exc:
            out.append(f"  {name:<22} (unreadable: {exc})")
    return out


def model_lines(server_bin: str) -> list[str]:
    try:
        models = serverlist.query(server_bin)
    except serverlist.ServerListError as exc:
        return [f"  (none: {exc}; build it with `make build`)"]
    return [f"  {m.name:<22} {','.join(sorted(m.traits)) or '-':<11} {m.summary}" for m in models.values()]


def published_lines() -> list[str]:
    out = []
    for name in sorted(f[:-5] for f in os.listdir(PUBLISHED_DIR) if f.endswith(".json")):
        try:
            pub = published.load_published(name)
            out.append(f"  {name:<22} {len(pub.rows):>3} rows  {pub.doc.get('title', '')}")
        except published.PublishedError as exc:
            out.append(f"  {name:<22} (unreadable: {exc})")
    return out


def run(args) -> int:
    sections = {
        "scenarios": ("Scenarios (cbench sweep NAME; --dry-run prints the points and the time)", scenario_lines),
        "models": (f"Models of {os.path.relpath(args.server_bin)} (name, traits, what it is)",
                   lambda: model_lines(args.server_bin)),
        "published": ("Published tables (cbench compare RUN --published NAME)", published_lines),
        "generators": ("Load generators (a load set's `generator`)", lambda: [f"  {g}" for g in loadgen.GENERATORS]),
    }
    for key in ([args.what] if args.what else WHAT):
        title, lines = sections[key]
        sys.stdout.write(title + "\n" + "\n".join(lines()) + "\n\n")
    return 0
