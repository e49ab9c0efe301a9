"""Per-worker figures of a cluster-mode server (`--processes N`).

procstat.sample already sums the whole process tree (the supervisor and its workers, as for
nginx), so the record's `server` figures are the cluster's totals. This module adds one entry per
worker (each child of the server's pid present at both samples; a worker restarted during the
window is left out, and `restarted` says how many were), so a table can show whether the
workers shared the load.
"""
from __future__ import annotations

from . import procstat


def sample(host, pid: int) -> dict[int, dict]:
    """{worker pid: its own procstat sample} for the server's descendants (empty if none)."""
    out = {}
    try:
        children = host.descendants(pid)
    except (OSError, AttributeError):
        return out
    for child in children:
        try:
            out[child] = procstat.sample(host, child, include_descendants=False)
        except OSError:
            continue  # exited between the listing and the read
    return out


def window(before: dict[int, dict], after: dict[int, dict]) -> dict | None:
    """{"workers": [per-worker window], "restarted": n}, or None for a single-process server."""
    if not before and not after:
        return None
    rows = []
    for pid in sorted(set(before) & set(after)):
        w = procstat.window(before[pid], after[pid])
        rows.append({"pid": pid, "cpu_user_s": w["cpu_user_s"], "cpu_sys_s": w["cpu_sys_s"],
                     "rss_peak_kb": w["rss_peak_kb"], "rss_final_kb": w["rss_final_kb"],
                     "threads": w["threads"], "ctx_voluntary": w["ctx_voluntary"],
                     "ctx_involuntary": w["ctx_involuntary"]})
    return {"workers": rows, "restarted": len(set(before) - set(after))}
