"""Units in text: the one parser of a latency written with its unit (published cells, wrk)."""
from __future__ import annotations


def parse_latency(text: str) -> float | None:
    """Inverse of fmt_latency_us for published cells ("4.27ms" -> 4270.0 us); None if unparseable."""
    text = text.strip()
    for suffix, mult in (("us", 1.0), ("ms", 1e3), ("s", 1e6), ("m", 60e6), ("h", 3600e6)):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * mult
            except ValueError:
                return None
    return None
