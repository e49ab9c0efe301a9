"""The share of server-bound points (analysis/boundshare.py) as one line of Markdown, for a run's
report.md and for `cbench compare`'s two runs."""
from __future__ import annotations

from ..analysis.boundshare import Count, Share

DEFINITION = ("closed-loop points whose every repetition was server-bound, of all closed-loop points;"
              " idle and open-loop points, which have no throughput bound, are not counted")


def fmt_count(c: Count) -> str:
    """"12 of 40 (30%)", or "no point" when nothing was counted."""
    if not c.points:
        return "no point"
    return f"{c.server_bound} of {c.points} ({c.fraction:.0%})"


def share_text(s: Share) -> str:
    """"12 of 40 (30%); by generator: cbench-load 10 of 20 (50%), wrk 2 of 20 (10%)"; the split
    is left out when one generator drove every point."""
    text = fmt_count(s.total)
    if len(s.by_generator) > 1:
        text += "; by generator: " + ", ".join(f"{g} {fmt_count(c)}" for g, c in s.by_generator.items())
    elif len(s.by_generator) == 1:
        text += f", all driven by {next(iter(s.by_generator))}"
    return text


def run_line(s: Share) -> str:
    """The report.md line."""
    return f"Server-bound points: {share_text(s)}. Counted: {DEFINITION}."


def comparison_lines(a: Share, b: Share) -> list[str]:
    """`cbench compare`'s lines: each run's share, and the change in points."""
    out = [f"Server-bound points, {DEFINITION}:", "", f"- A: {share_text(a)}", f"- B: {share_text(b)}"]
    if a.total.points and b.total.points:
        out.append(f"- B − A: {(b.total.fraction - a.total.fraction) * 100:+.0f} percentage points")
    return out + [""]
