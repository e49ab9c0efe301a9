"""A soak's verdicts as text: one markdown table row per model (slopes per minute with their 95%
intervals, descriptors before and after the load, requests served) and the reasons of any
failure, for the terminal and the run's summary.md."""
from __future__ import annotations

from ..analysis.soak import BOUNDS, Verdict

PER_MIN = 60.0
HEADER = ("| model | RSS KiB/min [95%] | fds/min [95%] | threads/min [95%] | fds before → after "
          "| churn ok | load requests | verdict |")


def _slope_cell(v: Verdict, metric: str, scale: float) -> str:
    s = v.slopes[metric]
    if s.n == 0:
        return "–"
    return (f"{s.per_s * PER_MIN / scale:+.3g} [{s.low * PER_MIN / scale:+.3g}, "
            f"{s.high * PER_MIN / scale:+.3g}] {s.growth.value}")


def row(v: Verdict, churn: dict, load: dict | None) -> str:
    requests = (load or {}).get("requests")
    return " | ".join(["", v.model, _slope_cell(v, "rss_bytes", 1024.0), _slope_cell(v, "fds", 1.0),
                       _slope_cell(v, "threads", 1.0),
                       f"{v.fds_baseline if v.fds_baseline is not None else '–'} → "
                       f"{v.fds_after if v.fds_after is not None else '–'}",
                       str(churn.get("requests_ok", 0)),
                       "–" if requests is None else str(requests),
                       "ok" if v.ok else "FAIL", ""]).strip()


def summary(results: list[tuple[Verdict, dict, dict | None]], duration_s: float, warmup_s: float) -> str:
    """The whole soak: the bounds it judged against, the table, each failure's reasons, then the
    slopes left undecided (not failures)."""
    lines = [f"soak: {len(results)} models, {duration_s:g} s each, slopes after a {warmup_s:g} s warm-up",
             "bounds (per minute, or a step over the judged window when that is more): " + "; ".join(
                 f"{name} {b.per_s * PER_MIN / scale:.3g}/min or {b.step / scale:.3g}"
                 for name, scale, b in (("RSS KiB", 1024.0, BOUNDS["rss_bytes"]), ("fds", 1.0, BOUNDS["fds"]),
                                        ("threads", 1.0, BOUNDS["threads"]))),
             "", HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    lines += [row(v, churn, load) for v, churn, load in results]
    failed = [v for v, _, _ in results if not v.ok]
    if failed:
        lines.append("")
        lines += [f"{v.model}: {reason}" for v in failed for reason in v.reasons]
    undecided = [(v.model, note) for v, _, _ in results for note in v.undecided]
    if undecided:
        lines.append("")
        lines += [f"{model}: {note}" for model, note in undecided]
    lines.append("")
    lines.append(f"soak: {len(results) - len(failed)} of {len(results)} models passed")
    return "\n".join(lines)
