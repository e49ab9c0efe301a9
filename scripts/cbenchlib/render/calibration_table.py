"""The table `cbench calibrate` prints (and `--rejudge` prints again): one row per calibration
entry (format/calibration.py's per-metric record)."""
from __future__ import annotations

from ..analysis import sensitivity, stats


def blocks_needed(e: dict) -> str:
    """Per tried effect of a calibration entry, the blocks per trial 80% power needs at its A/A
    block spread (sensitivity.blocks_for_power), with this design's: "+5%: 27 (this design: 6)"."""
    sd = e.get("block_log_sd")
    if sd is None or not e.get("detection"):
        return ""
    def one(p: str) -> str:
        n = sensitivity.blocks_for_power(sd, float(p))
        return f"+{p}%: {n}" if n is not None else f"+{p}%: over {stats.MAX_REPS_SEARCH:,}"
    return "; ".join(one(p) for p in e["detection"]) + f" (this design: {e['blocks']})"


def blocks_sentence(e: dict) -> str:
    """The report's sentence of blocks_needed, or "" when the entry has no spread or effect."""
    got = blocks_needed(e)
    return f" Blocks per trial for 80% power at that spread: {got}." if got else ""


def lines(metrics: dict) -> list[str]:
    """The printed result: per entry, the A/A rate, each detection rate, the 80%-power effects, the
    blocks per trial each tried effect would need for 80% power at the A/A spread, the A/A trials'
    check of independent blocks, and the rates with intervals widened by the trial component
    (sensitivity.widened, leave one out)."""
    def rate(r: dict) -> str:
        return f"{r['k']}/{r['n']} ({r['ci'][0]:.0%}-{r['ci'][1]:.0%})"
    def between(b: dict | None) -> str:
        if not b:
            return "not judged"
        lag = f"; consecutive trials r {b['trial_lag1_corr']:+.2f}" if "trial_lag1_corr" in b else ""
        return (f"{b['variance_ratio']:.2f}x (F p {b['p']:.2g}; intervals {b['interval_scale']:.2f}x too narrow{lag})"
                if b["p"] < 0.05 else f"{b['variance_ratio']:.2f}x (F p {b['p']:.2g}{lag})")
    def wide(w: dict | None) -> str:
        return "not judged" if not w else (f"A/A {rate(w['aa_false_positive'])}; "
                                           + "; ".join(f"+{p}%: {rate(v)}" for p, v in w["detection"].items()))
    out = ["", "| metric@load | A/A false positives (95% Clopper-Pearson) | detected: effect k/n (95% CP) |"
           " smallest detected in >= 80% | planned 80% power | blocks for 80% power | A/A trial means: variance / blocks' prediction |"
           " widened by the trial component (leave one out) |", "|---|---|---|---|---|---|---|---|"]
    for key, e in metrics.items():
        det = "; ".join(f"+{p}%: {rate(v)}" for p, v in e["detection"].items())
        sm, plan = e["smallest_detected_pct"], e["planned_80pct_power_pct"]
        out.append(f"| {key} | {rate(e['aa_false_positive'])} | {det} | {'+%s%%' % sm if sm is not None else 'none of those tried'}"
                   f" | {'+%.2f%%' % plan if plan is not None else 'unknown'} | {blocks_needed(e) or 'unknown'} | {between(e.get('aa_between_trial'))}"
                   f" | {wide(e.get('widened'))} |")
    return out
