"""Markdown of a costs run (`cbench costs`): the deterministic counts per row, and the cost
account of each row's measured CPU per request with its residual (analysis/costaccount.py).
Reads objects, writes text; runs nothing."""
from __future__ import annotations

from ..analysis import costaccount

TOP_TYPES = 4  # system call types named per row; the rest are in costs.jsonl


def _f(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def _types(by_type: dict | None) -> str:
    if not by_type:
        return "n/a"
    items = list(by_type.items())
    text = ", ".join(f"{name} {n:.2f}" for name, n in items[:TOP_TYPES])
    return text + (f", {len(items) - TOP_TYPES} more" if len(items) > TOP_TYPES else "")


def counts_table(records: list[dict]) -> str:
    """One line per record: instructions, system calls (total and by type) and switches per request."""
    out = ["| Row | instructions/request | repeat diff | syscalls/request | by type (per request) "
           "| switches/request | not measured |",
           "|---|---|---|---|---|---|---|"]
    for r in records:
        d = r["derived"]
        fails = "; ".join(f"{k}: {v[:80]}" for k, v in sorted(r.get("failures", {}).items())) or ""
        rep = "" if d.get("repeat_diff_pct") is None else f"{d['repeat_diff_pct']:.3f}%"
        out.append(f"| {r['row']['key']} | {_f(d['instructions_per_req'], ',.0f')} | {rep} "
                   f"| {_f(d['syscalls_per_req'], '.2f')} | {_types(d['syscalls_by_type_per_req'])} "
                   f"| {_f(d['ctx_switches_per_req'], '.3f')} | {fails} |")
    return "\n".join(out) + "\n"


def prices_text(prices: costaccount.Prices) -> str:
    """The prices and where each came from, one bullet each."""
    instr_ns = None if prices.instr_us is None else prices.instr_us * 1000
    out = [f"- instruction: {_f(instr_ns, '.4f')} ns ({prices.sources.get('instruction', 'given')})"
           + (": at its bound; the rows' CPU does not rise with their instruction counts at this load, so"
              " instructions explain none of it here" if instr_ns == 0 else "")]
    for name, us in sorted(prices.syscall_us.items()):
        label = "any other system call" if name == costaccount.DEFAULT_PRICE else name
        out.append(f"- {label}: {us:.3f} us ({prices.sources.get(name, 'given')})")
    out.append(f"- context switch: {prices.switch_us:.3f} us ({prices.sources.get('switch', 'given')})")
    if prices.base_us:
        out.append(f"- base, every request of every row: {prices.base_us:.3f} us ({prices.sources.get('base', 'given')}):"
                   " the kernel work of a request over TCP loopback that a socket pair's system calls do not price")
    return "\n".join(out) + "\n"


def account_table(rows: list[costaccount.Line]) -> str:
    """measured = instructions + system calls + switches + residual, in us per request, per row."""
    out = ["| Row | measured CPU us/req | instructions | system calls | switches | base | account | residual "
           "| residual % |", "|---|---|---|---|---|---|---|---|---|"]
    for ln in rows:
        res_pct = (None if ln.residual_us is None or not ln.measured_us
                   else 100.0 * ln.residual_us / ln.measured_us)
        out.append(f"| {ln.key} | {_f(ln.measured_us, '.2f')} | {_f(ln.instr_part_us, '.2f')} "
                   f"| {_f(ln.syscall_part_us, '.2f')} | {_f(ln.switch_part_us, '.2f')} | {ln.base_part_us:.2f} "
                   f"| {_f(ln.account_us, '.2f')} "
                   f"| {_f(ln.residual_us, '+.2f')} | {_f(res_pct, '+.0f')} |")
    return "\n".join(out) + "\n"


def free_fit_text(rows: list[costaccount.Line]) -> str:
    """One sentence: the three prices fitted together, beside the micro ones."""
    try:
        instr, sysc, sw = costaccount.free_fit(rows)
    except ValueError as exc:
        return f"Three-price fit: not possible ({exc}).\n"
    return (f"Check, all three prices fitted together (non-negative least squares): instruction "
            f"{instr * 1000:.4f} ns, system call {sysc:.3f} us, switch {sw:.3f} us.\n")


def report(records: list[dict], rows: list[costaccount.Line] | None, prices: costaccount.Prices | None,
           source: str = "") -> str:
    """The whole text: counts, then (when a CPU run and prices are given) the account."""
    text = "## Deterministic costs per request\n\n" + counts_table(records)
    if rows is None or prices is None:
        return text
    text += (f"\n## Cost account{(' of ' + source) if source else ''}\n\n"
             "Each row's measured server CPU per request (the median over its repetitions) as instructions, "
             "system calls (by type) and context switches, each count per request times its price below, plus "
             "the base; the residual is what they do not explain. Every figure is in us per request.\n\n"
             + prices_text(prices) + "\n" + account_table(rows) + "\n" + free_fit_text(rows))
    return text
