"""Latency against offered load: reads a run's open-loop cbench-load points (only
reads; runs nothing), draws p50/p99/p99.9 per model against the offered rate on a log scale,
and derives each model's capacity at a p99 target.

Capacity at a target: a rate passes when its median (over repetitions) p99 is under the target
and it was not overloaded. The curve ends at the first breach (a rate that does not pass) that the
next rates confirm: a breach followed by two passing rates is discounted (named in the text), a
breach followed by a failing rate, by one passing rate only, or by nothing ends it. The capacity is
the rate just below that breach, and the true capacity lies in [capacity, breach): that bracket is
its interval (the grid's resolution, which more fractions narrow); "< lowest" when the curve ends
at the lowest rate, ">= highest" when it never ends.
"""
from __future__ import annotations

import os
import statistics

from ..format import resultio
from ..format.loadpoint import LoadId, load_id, measured

DEFAULT_TARGET_US = 10_000.0
PERCENTILES = (("p50", "-", "o"), ("p99", "--", "s"), ("p99.9", ":", "^"))


def curve_points(points: list[dict]) -> dict[str, list[dict]]:
    """Per row key, one entry per open-loop load (loadpoint.load_id, sorted by its offered rate):
    rate, fraction, the median of each percentile over the measured repetitions
    (loadpoint.measured), and flags (overloaded, generator_bound) if any rep had them. A fixed-rate
    load (rate_common_fraction: one rate below every row's capacity, for CPU per request) is no
    point of a curve: alone it would bound no capacity."""
    by_row: dict[str, dict[LoadId, list[dict]]] = {}
    for p in points:
        lid = load_id(p)
        if not measured(p) or (p.get("wrk") or {}).get("mode") != "open" or lid.rate_per_s is None \
                or lid.rate_common_fraction is not None:
            continue
        by_row.setdefault(p["row"]["key"], {}).setdefault(lid, []).append(p)
    out = {}
    for key, loads in by_row.items():
        entries = []
        for lid in sorted(loads, key=lambda lid: lid.rate_per_s):
            reps = loads[lid]
            e = {"rate": lid.rate_per_s, "fraction": reps[0]["load"].get("rate_fraction"), "reps": len(reps),
                 "overloaded": any(r["wrk"]["overloaded"] for r in reps),
                 "generator_bound": any(r["wrk"].get("generator_bound") for r in reps),
                 "achieved": statistics.median(r["wrk"]["req_per_s"] for r in reps)}
            for name, _, _ in PERCENTILES:
                vals = [(r["wrk"].get("latency_us_overloaded") or r["wrk"]["latency_us"]).get(name) for r in reps]
                vals = [v for v in vals if v is not None]
                e[name] = statistics.median(vals) if vals else None
            entries.append(e)
        out[key] = entries
    return out


def _passes(e: dict, target_us: float) -> bool:
    return not e["overloaded"] and e["p99"] is not None and e["p99"] < target_us


def capacity(entries: list[dict], target_us: float) -> dict:
    """The capacity bracket of one model's curve (see the module's docstring)."""
    ok = [_passes(e, target_us) for e in entries]
    if not entries:
        return {"capacity": None, "low": None, "high": None, "text": "no open-loop points"}
    # The first breach the next rates confirm: a breach is discounted only when the next two
    # rates both pass (one breach against two later passes is the noise of one repetition).
    end = next((i for i in range(len(ok)) if not ok[i] and not (ok[i + 1:i + 3] == [True, True])), None)
    skipped = [entries[i]["rate"] for i in range(end if end is not None else len(ok)) if not ok[i]]
    note = (f"; a single breach at {', '.join(f'{r:.0f}' for r in skipped)} req/s discounted: the next two rates"
            " passed") if skipped else ""
    if end == 0:
        return {"capacity": None, "low": 0.0, "high": entries[0]["rate"],
                "text": f"< {entries[0]['rate']:.0f} req/s (lowest tested rate failed)"}
    last = entries[(end if end is not None else len(ok)) - 1]["rate"]
    if end is None:
        return {"capacity": last, "low": last, "high": None,
                "text": f">= {last:.0f} req/s ({'no breach confirmed' + note if skipped else 'every tested rate passed'})"}
    high = entries[end]["rate"]
    return {"capacity": last, "low": last, "high": high, "text": f"{last:.0f} req/s (in [{last:.0f}, {high:.0f}){note})"}


def table(curves: dict[str, list[dict]], target_us: float) -> str:
    """Markdown: each model's curve and its capacity at the target."""
    lines = [f"Capacity at p99 < {target_us / 1000:g} ms (open loop, cbench-load, latency from the intended send time):", "",
             "| model | capacity | interval |", "|---|---|---|"]
    for key, entries in curves.items():
        c = capacity(entries, target_us)
        lines.append(f"| {key} | {c['capacity']:.0f} req/s | {c['text']} |" if c["capacity"] is not None
                     else f"| {key} | none | {c['text']} |")
    lines += ["", "| model | offered req/s | fraction of peak | achieved req/s | p50 | p99 | p99.9 | flags |",
              "|---|---|---|---|---|---|---|---|"]
    for key, entries in curves.items():
        for e in entries:
            flags = ", ".join(f for f in ("overloaded", "generator_bound") if e[f])
            frac = f"{e['fraction']:g}" if e["fraction"] is not None else ""
            cells = [_ms(e[n]) if not e["overloaded"] else f"({_ms(e[n])})" for n, _, _ in PERCENTILES]
            lines.append(f"| {key} | {e['rate']:.0f} | {frac} | {e['achieved']:.0f} | " + " | ".join(cells) + f" | {flags} |")
    lines += ["", "Overloaded points (offered more than served) have no steady state: their percentiles, in "
              "parentheses, measure the run's length, not the server; they are drawn hollow."]
    return "\n".join(lines) + "\n"


def _ms(us):
    return "" if us is None else f"{us / 1000:.2f} ms"


def draw(curves: dict[str, list[dict]], target_us: float, out_base: str) -> list[str]:
    """Writes out_base.png and out_base.svg; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "concurrency-bench"  # fixed SVG ids: a redraw changes no byte
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (key, entries) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        for name, style, marker in PERCENTILES:
            xs = [e["rate"] for e in entries if e[name] is not None]
            ys = [e[name] / 1000 for e in entries if e[name] is not None]
            ax.plot(xs, ys, linestyle=style, color=color, label=f"{key} {name}")
            for e in entries:
                if e[name] is None:
                    continue
                ax.plot([e["rate"]], [e[name] / 1000], marker=marker, color=color,
                        markerfacecolor="none" if e["overloaded"] else color, linestyle="none")
    ax.axhline(target_us / 1000, color="grey", linewidth=0.8)
    ax.text(ax.get_xlim()[0], target_us / 1000, f" p99 target {target_us / 1000:g} ms", va="bottom", fontsize=8, color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (requests/s, open loop)")
    ax.set_ylabel("latency from intended send time (ms, log)")
    n_all = sum(len(e) for e in curves.values())
    n_bound = sum(1 for es in curves.values() for e in es if e["generator_bound"])
    title = "Latency against offered load (hollow: overloaded, no steady state)"
    if n_bound:
        # A generator-bound point measured the client's lateness too: say so where it is seen.
        title += f"\n{n_bound} of {n_all} points generator-bound (send lag over its bound): not trustworthy"
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    paths = []
    for ext in ("png", "svg"):
        path = f"{out_base}.{ext}"
        fig.savefig(path, dpi=120, metadata={"Date": None} if ext == "svg" else {"Software": None})
        paths.append(path)
    plt.close(fig)
    return paths


def write_run(run_dir: str, target_us: float = DEFAULT_TARGET_US) -> tuple[list[str], str]:
    """Reads run_dir's points (resultio), writes run_dir/latency-curve.{png,svg,md}; returns (paths, table)."""
    points = resultio.read_points(os.path.join(run_dir, resultio.POINTS_FILE)).points
    curves = curve_points(points)
    if not curves:
        raise ValueError(f"{run_dir}: no ok open-loop cbench-load points (a latency-curve run?)")
    text = table(curves, target_us)
    md = os.path.join(run_dir, "latency-curve.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write(text)
    return draw(curves, target_us, os.path.join(run_dir, "latency-curve")) + [md], text
