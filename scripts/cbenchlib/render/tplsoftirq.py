"""The {{softirq}} report placeholder: whether counting the server CPU's whole busy time (softirq
included) instead of the server process's CPU time changes a comparison, and its words.
"""
from __future__ import annotations

import statistics

from ..format import metrics as registry, resultio, verdict
from .tplbase import Use, effect


def f_softirq(rd, use: Use, section, row_a, row_b, load):
    """{{softirq SEC | A | B | LOAD}}: does counting the server CPU's whole busy time (softirq
    included) instead of the server process's CPU time change the A/B comparison?"""
    probe = Use(-1, "", "", section)
    ca, cb = rd.cell(section, row_a, load, probe), rd.cell(section, row_b, load, probe)

    def undisturbed(c):
        # The CPU's busy time includes other processes' work: only undisturbed points count.
        return [p for p in c.ok_points if verdict.disturbed_by(p) is None]

    def per_req_busy(c):
        """(values, blocks): the CPU's busy time per request of each undisturbed repetition."""
        out, blocks = [], []
        for p in undisturbed(c):
            busy = registry.dig(p, "machine.busy_frac.server")
            win, req = registry.dig(p, "server.window_s"), registry.dig(p, "wrk.requests")
            if isinstance(busy, (int, float)) and win and req:
                out.append(busy * win * 1e6 / req)
                blocks.append(resultio.point_block(p))
        return out, blocks

    def softirq(c):
        v = [x for x in (registry.dig(p, "machine.softirq_frac.server") for p in undisturbed(c)) if isinstance(x, (int, float))]
        return f"{statistics.median(v) * 100:.1f}%" if v else "not recorded"

    (ba, bka), (bb, bkb) = per_req_busy(ca), per_req_busy(cb)
    if not any(registry.dig(p, "machine.busy_frac.server") is not None for p in ca.ok_points + cb.ok_points):
        return (f"The reference run predates this record (its points have no `machine.busy_frac`), so"
                f" this report cannot yet show whether `{row_a}` against `{row_b}` at `{load}` changes with it.")
    if not ba or not bb:
        return (f"Every repetition of `{row_a}` or `{row_b}` at `{load}` was disturbed, so the CPU's busy"
                " time (which includes other processes' work) cannot be compared.")
    use.figures |= probe.figures
    cpu_a = [p["derived"]["server_cpu_us_per_req"] for p in undisturbed(ca)]
    cpu_b = [p["derived"]["server_cpu_us_per_req"] for p in undisturbed(cb)]
    r, lo, hi, _ = effect(ca, cb, cpu_a, cpu_b, [resultio.point_block(p) for p in undisturbed(ca)],
                          [resultio.point_block(p) for p in undisturbed(cb)])
    r2, lo2, hi2, _ = effect(ca, cb, ba, bb, bka, bkb)
    return (f"At `{load}`, softirq time was {softirq(ca)} of the server CPU for `{row_a}` and"
            f" {softirq(cb)} for `{row_b}`; server CPU per request `{row_a}`/`{row_b}` is"
            f" {_ratio_text(r, lo, hi)} from the server process's CPU time and {_ratio_text(r2, lo2, hi2)}"
            f" from the server CPU's busy time (softirq included), over the undisturbed repetitions: "
            + softirq_words(row_a, row_b, (r, lo, hi), (r2, lo2, hi2)) + ".")


def _ratio_text(r, lo, hi) -> str:
    if lo is None:
        return f"{r:.2f} (one repetition a side: no interval)"
    return f"{r:.2f} (95% interval {lo:.2f} to {hi:.2f})"


def _side(r, lo, hi) -> int:
    """-1 / +1 when the ratio's interval lies below / above 1, 0 when it includes 1; without an
    interval (one repetition a side), the side of the point estimate."""
    if lo is None:
        return (r > 1) - (r < 1)
    return -1 if hi < 1 else 1 if lo > 1 else 0


# The two measures of server CPU per request that f_softirq compares, in the order of its tuples.
_MEASURES = ("the process's CPU time", "the CPU's busy time")


def softirq_words(row_a: str, row_b: str, proc: tuple, busy: tuple) -> str:
    """Whether counting the server CPU's busy time (softirq included) instead of the process's CPU
    time changes the A/B comparison of CPU per request. proc and busy are (ratio A/B, lo, hi);
    lo and hi None without an interval. Five cases, each with its own words: both measures decide
    the same way (no change); they decide opposite ways (reverses); one decides and the other
    shows no difference (changes); neither decides, and their point estimates do not lie on
    opposite sides of 1 (nothing to show), or do (then this run cannot tell). Never "does not
    change" when the two ratios lie on either side of 1."""
    sides = (_side(*proc), _side(*busy))
    less_more = {-1: "less", 1: "more"}
    if sides[0] and sides[1]:
        if sides[0] == sides[1]:
            return (f"the comparison does not change with it (by both measures `{row_a}` uses"
                    f" {less_more[sides[0]]} server CPU per request than `{row_b}`)")
        return (f"the two measures disagree and the comparison reverses with it (by {_MEASURES[0]}"
                f" `{row_a}` uses {less_more[sides[0]]} than `{row_b}`, by {_MEASURES[1]}"
                f" {less_more[sides[1]]})")
    if sides[0] or sides[1]:
        i = 0 if sides[0] else 1
        return (f"the comparison changes with it (by {_MEASURES[i]} `{row_a}` uses"
                f" {less_more[sides[i]]} than `{row_b}`; by {_MEASURES[1 - i]} no difference shows)")
    points = ((proc[0] > 1) - (proc[0] < 1), (busy[0] > 1) - (busy[0] < 1))
    if points[0] * points[1] < 0:
        return ("the two measures disagree in direction but neither shows a difference, so this run"
                " cannot tell whether counting softirq changes the comparison")
    return ("neither measure shows a difference, and they do not point opposite ways: counting softirq"
            " changes nothing this run can show")
