"""The generator cross-check (issue 17): the same points driven by wrk, cbench-load (closed loop)
and h2load, side by side. Reads a run's points (through resultio) only.

A point's generators agree when each one's req/s is within AGREE_FRACTION of wrk's; a point is
only evidence about the generators when the server, not the client, was the bottleneck, so
every line shows the client's CPU share beside its rate.
"""
from __future__ import annotations

import os
import statistics

from . import resultio

AGREE_FRACTION = 0.10
ORDER = ("wrk", "cbench-load", "h2load")


def rows(points: list[dict]) -> dict[tuple[str, str], dict[str, dict]]:
    """(row key, load shape) -> generator -> {req_per_s (median), client_util (median), reps}."""
    acc: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for p in points:
        if p.get("status") != "ok" or not p.get("wrk") or (p["wrk"].get("mode") == "open"):
            continue
        ld = p["load"]
        gen = ld.get("generator", "wrk")
        shape = f"-t{ld['wrk_threads']} -c{ld['connections']}" + (f" -p{ld['pipeline']}" if ld["pipeline"] != 1 else "") \
            + (f" {ld['path']}" if ld["path"] != "/" else "")
        acc.setdefault((p["row"]["key"], shape), {}).setdefault(gen, []).append(p)
    out = {}
    for k, gens in acc.items():
        out[k] = {}
        for g, reps in gens.items():
            utils = [(r.get("derived") or {}).get("client_cpu_util") for r in reps]
            utils = [u for u in utils if u is not None]
            out[k][g] = {"req_per_s": statistics.median(r["wrk"]["req_per_s"] for r in reps),
                         "client_util": statistics.median(utils) if utils else None, "reps": len(reps)}
    return out


def table(points: list[dict]) -> str:
    lines = ["| model | load | " + " | ".join(f"{g} req/s" for g in ORDER) + " | cbench-load / wrk | h2load / wrk | agree (10%) |",
             "|---|---|" + "---|" * (len(ORDER) + 3)]
    for (key, shape), gens in rows(points).items():
        cells = []
        for g in ORDER:
            e = gens.get(g)
            if e is None:
                cells.append("")
                continue
            util = f" (client {e['client_util'] * 100:.0f}%)" if e["client_util"] is not None else ""
            cells.append(f"{e['req_per_s']:.0f}{util}")
        base = gens.get("wrk", {}).get("req_per_s")
        ratios, agree = [], True
        for g in ("cbench-load", "h2load"):
            if base and g in gens:
                r = gens[g]["req_per_s"] / base
                ratios.append(f"{r:.2f}")
                agree = agree and abs(r - 1) <= AGREE_FRACTION
            else:
                ratios.append("")
                agree = False
        lines.append(f"| {key} | {shape} | " + " | ".join(cells) + " | " + " | ".join(ratios) +
                     f" | {'yes' if agree else 'no'} |")
    return "\n".join(lines) + "\n"


def write_run(run_dir: str) -> tuple[str, str]:
    points = resultio.read_points(os.path.join(run_dir, resultio.POINTS_FILE)).points
    text = table(points)
    path = os.path.join(run_dir, "generator-crosscheck.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path, text
