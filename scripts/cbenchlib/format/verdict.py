"""What bounded a point's throughput, judged from its own evidence.

Order of judgement:
1. error-bound: errors (socket errors plus responses with status >= 400) above
   ERROR_FRACTION of all attempts; a throughput made of failures means nothing. Also a point
   where more than ERROR_FRACTION of the connections never got a response (cbench-load's
   connections_unserved): the server served some connections and starved the rest, so its
   req/s and latency describe the served few, not the load asked for.
2. both-saturated: the server's and wrk's CPUs both busy. On 2 cores either may be the bound,
   so the req/s of such a point decides no throughput claim (findings.py).
3. server-bound: the server's CPUs busy (>= SATURATED of the CPUs it is pinned to), wrk's not.
4. client-bound: wrk's CPUs busy while the server's were not. A table that shows
   such a point as a server's throughput is wrong; readers mark it.
5. unclear: neither side saturated (latency-, lock- or sleep-bound, or too short
   to tell); the evidence string gives the figures.

Whatever the verdict, the evidence marks a point whose maximum latency reaches CAPPED_FRACTION of
its duration: no request can wait longer than the run, so its latency is capped by the run's
length and a longer run would report more (the verdict itself is unchanged).
"""
from __future__ import annotations

SERVER_BOUND, CLIENT_BOUND, BOTH_SATURATED = "server-bound", "client-bound", "both-saturated"
ERROR_BOUND, UNCLEAR = "error-bound", "unclear"
# Verdicts whose req/s may decide a throughput claim: only where the server was the bound.
THROUGHPUT_DECIDES = (SERVER_BOUND,)

# A CPU counts as saturated at 90% busy over the window. The window is the wall
# time between the two /proc samples, which includes wrk's start-up and exit
# (a few ms of a >= 1 s run) and the harness's 5 ms exit polling, so a fully busy
# CPU reads a little under 100%; 90% leaves room for that and for scheduler noise.
SATURATED = 0.90

# More than 1% of attempts failing (socket errors or status >= 400) makes the
# point error-bound: the published table's 2 s cells are this case.
ERROR_FRACTION = 0.01


# A maximum latency at 90% of the run's duration or more: the run, not the server, set it.
CAPPED_FRACTION = 0.90


# Other processes using more than a fifth of a CPU during the window disturb a
# 2-core benchmark visibly (the server and wrk each have one CPU); say so.
DISTURBED_CPU = 0.20


def judge(wrk: dict, server_cpu_util: float | None, client_cpu_util: float | None,
          server_cpus: int, client_cpus: int, other_cpu_util: float | None = None) -> tuple[str, str]:
    """(verdict, evidence) for one measured repetition.

    other_cpu_util: CPU the rest of the machine used in the window, in CPUs; above
    DISTURBED_CPU the evidence says the point was disturbed (the verdict is unchanged).
    """
    errors = wrk["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    failed = socket_errors + errors["status"]
    attempts = wrk["requests"] + socket_errors
    fraction = failed / attempts if attempts else 1.0

    parts = [
        f"server CPU {_pct(server_cpu_util)} of {server_cpus} CPU{'s' if server_cpus != 1 else ''}",
        f"client CPU {_pct(client_cpu_util)} of {client_cpus} CPU{'s' if client_cpus != 1 else ''}",
        f"errors {failed} of {attempts} ({fraction * 100:.2f}%"
        + (f": connect {errors['connect']}, read {errors['read']}, write {errors['write']}, "
           f"timeout {errors['timeout']}, status>=400 {errors['status']}" if failed else "") + ")",
    ]
    unserved, conns = wrk.get("connections_unserved"), wrk.get("connections")
    starved = bool(unserved) and bool(conns) and unserved / conns > ERROR_FRACTION
    if unserved:
        parts.append(f"{unserved} of {conns if conns else '?'} connections never answered")
    capped = _capped_note(wrk)
    if capped:
        parts.append(capped)
    if other_cpu_util is not None and other_cpu_util > DISTURBED_CPU:
        parts.append(f"DISTURBED: other processes used {other_cpu_util * 100:.0f}% of a CPU")
    evidence = "; ".join(parts)
    server_busy = server_cpu_util is not None and server_cpu_util >= SATURATED
    client_busy = client_cpu_util is not None and client_cpu_util >= SATURATED

    if fraction > ERROR_FRACTION:
        return "error-bound", evidence + f" > {ERROR_FRACTION * 100:g}% threshold"
    if starved:
        return "error-bound", evidence + f" > {ERROR_FRACTION * 100:g}% of connections threshold"
    if server_busy and client_busy:
        return "both-saturated", evidence + "; server and client CPUs both saturated"
    if server_busy:
        return "server-bound", evidence
    if client_busy:
        return "client-bound", evidence + "; server CPU below saturation"
    if server_cpu_util is None or client_cpu_util is None:
        return "unclear", evidence + "; CPU figures missing"
    return "unclear", evidence + f"; neither side's CPU reached {SATURATED * 100:g}%"


def _capped_note(wrk: dict) -> str | None:
    """"latency capped by the run's duration ..." when the maximum latency reaches CAPPED_FRACTION
    of the run's duration, else None."""
    max_us = (wrk.get("latency_us") or {}).get("max")
    duration_us = wrk.get("duration_us")
    if not isinstance(max_us, (int, float)) or not duration_us or max_us < CAPPED_FRACTION * duration_us:
        return None
    return (f"latency capped by the run's duration (max {max_us / 1e6:.2f} s of a {duration_us / 1e6:.2f} s run: "
            "a longer run would report more)")


def judge_idle(requested: int, held: int) -> tuple[str, str]:
    """(verdict, evidence) for an idle-connections point (no load generator)."""
    evidence = f"idle point, no load generator: {held} of {requested} connections held"
    if held < requested:
        return "error-bound", evidence
    return "unclear", evidence + "; no throughput verdict applies"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def disturbed_by(point: dict) -> float | None:
    """The share of a CPU other processes used during a recorded repetition's window when it is
    above DISTURBED_CPU (the repetition was disturbed), else None. Reads machine.other_cpu_util,
    or, for a record that kept only its evidence, the DISTURBED note judge() wrote (read as a whole
    CPU: the share is unknown)."""
    machine = point.get("machine") if isinstance(point.get("machine"), dict) else {}
    other = machine.get("other_cpu_util")
    if isinstance(other, (int, float)) and not isinstance(other, bool):
        return float(other) if other > DISTURBED_CPU else None
    return 1.0 if "DISTURBED" in (point.get("verdict_evidence") or "") else None


def repetition_problem(point: dict, decide_at: tuple | None = None) -> str | None:
    """Why one recorded repetition may not enter a comparison, judged from its own record alone,
    or None when it may: "failed" (no measurement), "disturbed (...)" (other processes used more
    than DISTURBED_CPU of a CPU in its window: its figures include their work, so it is excluded and
    re-run, never averaged in), or its verdict when DECIDE_AT (verdicts allowed to decide) does not
    list it. A bad repetition is excluded on its own: it never disqualifies the other repetitions
    of its point."""
    if point.get("status", "ok") != "ok":
        return "failed"
    other = disturbed_by(point)
    if other is not None:
        return f"disturbed (other processes used {other * 100:.0f}% of a CPU)"
    if decide_at is not None:
        v = point_verdict(point)
        if v not in decide_at:
            return v
    return None


def point_verdict(point: dict) -> str:
    """A recorded point's verdict, re-read with today's rules: runs made before `both-saturated`
    existed wrote "server-bound" where wrk's CPUs were saturated too; their figures say so."""
    v = point.get("verdict") or UNCLEAR
    if v == SERVER_BOUND:
        d = point.get("derived") if isinstance(point.get("derived"), dict) else {}
        cu = d.get("client_cpu_util")
        if isinstance(cu, (int, float)) and cu >= SATURATED:
            return BOTH_SATURATED
    return v
