"""What a sweep writes besides each point's measurement: a new run's meta.json, where each role
ran (the topology, measured once before the first point), the per-record network and host
fields away from loopback, and the progress line printed after each point."""
from __future__ import annotations

import os

from ..format import resultio, verdict
from ..format.paths import REPO_ROOT
from ..plan.estimate import OVERHEAD_S, fmt_duration
from ..format.paths import repo_relative
from ..plan.sweepplan import SweepPlan
from . import envinfo, hostcheck


def topology_kind(server: dict, clients: list[dict]) -> str:
    """loopback | same-namespace | across-namespaces | across-hosts, from the hosts' describe()."""
    kinds = {server["kind"]} | {c["kind"] for c in clients}
    if kinds == {"local"}:
        return "loopback"
    if all(server.get("spec") == c.get("spec") for c in clients):
        return "same-namespace"
    return "across-hosts" if "ssh" in kinds else "across-namespaces"


def measure_topology(host, client_hosts: list, run_dir: str) -> dict:
    """Where each role runs: each host's entry carries its own environment, fingerprinted on it
    (`env`); away from loopback, `network` records the addresses, each link's MTU and the
    round-trip time from each client host to the server's address, measured now
    (hostcheck.measure_rtt)."""
    server = host.describe()
    clients = [server if h is host else h.describe() for h in client_hosts]
    kind = topology_kind(server, clients)
    topo = {"kind": kind, "server": server, "clients": clients}
    if kind == "loopback":
        return topo
    pairs = [(server, host)] + [(c, h) for c, h in zip(clients, client_hosts) if h is not host]
    for entry, h in pairs:
        entry["env"] = dict(entry.get("env") or {}, **hostcheck.environment(h))
    work = os.path.join(run_dir, resultio.LOGS_DIR)
    os.makedirs(work, exist_ok=True)
    rtts = []
    for h in client_hosts:  # one after the other: each probe alone on the path
        rtt = hostcheck.measure_rtt(host, h, host.client_address, work)
        rtts.append(rtt)
        if "error" in rtt:
            print(f"sweep: warning: round-trip time from {h.name} not measured: {rtt['error']}", flush=True)
        else:
            print(f"sweep: round trip {h.name} -> {host.client_address}: "
                  f"{rtt['echo_us']['median']:.0f} us (median of {rtt['samples']} TCP echoes)", flush=True)
    topo["network"] = {"server_address": host.client_address,
                       "client_addresses": [h.client_address for h in client_hosts],
                       "mtu": {h.name: e["env"].get("links_mtu") for e, h in pairs},
                       "rtt": rtts}
    return topo


def new_meta(p: SweepPlan, run_dir: str, host, client_hosts: list, wrk_bin, topology) -> dict:
    """meta.json of a new run (results/SCHEMA.md). topology() is called after the environment is
    collected, so the round-trip probes run last."""
    s = p.settings
    build_dir = os.path.dirname(os.path.realpath(p.server_bin))
    started_utc = resultio.utc_now()
    env = envinfo.collect(REPO_ROOT, build_dir, s.server_cpus, s.client_cpus, wrk_bin)
    topo = topology()
    return {
        "schema": resultio.SCHEMA_VERSION,
        "run_id": os.path.basename(run_dir),
        "scenario_name": s.name,
        "scenario_file": repo_relative(p.sc.path),
        "scenario_text": p.sc.text,
        "quick": p.sc.quick,
        "started_utc": started_utc,
        "ended_utc": None,
        "env": dict(env, topology=topo["kind"]),
        "order": resultio.order_meta([r.key for r in p.sc.rows],
                                     list(dict.fromkeys(ld.key for lds in p.sc.load_sets.values()
                                                        for ld in lds))),
        # Where each role ran: a run across namespaces is not a loopback run, and compare
        # refuses to mix them (env.topology).
        "topology": topo,
        "harness": _harness_meta(p, host, client_hosts),
        "sequential": None,
        "resumed_utc": [],
        "interrupted": None,
    }


def _harness_meta(p: SweepPlan, host, client_hosts: list) -> dict:
    s = p.settings
    return {
        "command": p.command,
        "host": host.name,
        "client_host": client_hosts[0].name,
        "client_hosts": [h.name for h in client_hosts],
        "server_bin": repo_relative(p.server_bin),
        "available_models": sorted(p.available) if p.available is not None else None,
        "skipped_models": p.skipped_models,
        "models_filter": p.models_filter,
        "overrides": p.overrides,
        "order": s.order, "seed": s.seed,
        "duration_s": s.duration_s, "warmup_s": s.warmup_s, "repetitions": s.repetitions,
        "timeout_s": s.timeout_s, "ready_timeout_s": s.ready_timeout_s,
        "response": s.response,  # response bytes (standard | published)
        "points": len(p.points), "runs": len(p.slots),
        "estimate_s": round(p.estimate_s, 1),
        "estimate_extra_s": round(p.estimate_extra_s, 1),
        "overhead_s": OVERHEAD_S,  # the least per-repetition overhead the estimate allows any row
        "overheads_from": os.path.basename(p.overheads.source) if p.overheads.source else None,
        "design": {"target_ci_pct": s.target_ci_pct, "max_repetitions": s.repetitions_cap,
                   "published": s.published, "sequential_points": s.sequential_points,
                   "sequential_trends": s.sequential_trends},
        "verdict_thresholds": {"saturated_cpu": verdict.SATURATED,
                               "error_fraction": verdict.ERROR_FRACTION},
    }


def _cpu_s(d) -> float | None:
    d = d or {}
    return None if d.get("cpu_user_s") is None else round(d["cpu_user_s"] + (d.get("cpu_sys_s") or 0), 3)


def annotate(record: dict, meta: dict, server_name: str, client_name: str) -> None:
    """A point measured away from loopback carries the network's round trip (as measured
    before the sweep) and the CPU time of each role on its own host."""
    if meta.get("topology", {}).get("kind", "loopback") == "loopback":
        return
    topo = meta["topology"]
    rtt = (topo.get("network") or {}).get("rtt") or [{}]
    record["network"] = {"rtt_us": (rtt[0].get("echo_us") or {}).get("median"),
                         "connect_us": (rtt[0].get("connect_us") or {}).get("median"),
                         "measured": "before the sweep"}
    server = {"host": server_name, "cpu_s": _cpu_s(record.get("server")),
              "util": (record.get("derived") or {}).get("server_cpu_util")}
    multi = record.get("clients")
    if multi:  # several client hosts: each generator's own CPU, on its own host
        rtt_of = {r.get("from"): (r.get("echo_us") or {}).get("median") for r in rtt}
        clients = [{"host": g["host"], "cpu_s": g.get("cpu_s"), "util": g.get("cpu_util"),
                    "client_bound": g.get("client_bound"), "rtt_us": rtt_of.get(g["host"])}
                   for g in multi["generators"]]
    else:
        clients = [{"host": client_name, "cpu_s": _cpu_s(record.get("client")),
                    "util": (record.get("derived") or {}).get("client_cpu_util")}]
    record["hosts"] = {"server": server, "clients": clients}


def progress_line(slot, label: str, total: int, width: int, record, dt, eta_s) -> str:
    """`[label seq/total] row | load | rep N | what happened | seconds | ETA`."""
    point, rep = slot.point, slot.rep
    where = (f"[{(label + ' ') if label else ''}{slot.seq + 1:>{width}}/{total}] {point.row.key} | "
             f"{point.load.key} | rep {rep}")
    if record["status"] != "ok":
        what = ("SKIPPED" if (record.get("failure") or {}).get("skipped") else "FAILED") \
            + f": {record['failure']['reason']}"
    elif record.get("idle"):
        idle = record["idle"]
        bpc = idle["bytes_per_conn"]
        what = (f"{idle['connections_held']} idle conns: {bpc:.0f} B/conn, "
                f"{idle['threads_per_conn']:.2f} threads/conn | {record['verdict']}")
    else:
        what = _wrk_progress(record)
    return f"{where} | {what} | {dt:.1f} s | ETA {fmt_duration(eta_s)}"


def _wrk_progress(record: dict) -> str:
    w = record["wrk"]
    mx = w["latency_us"].get("max")
    what = (f"{w['req_per_s']:.0f} req/s, max {_fmt_us(mx)} | {record['verdict']} "
            f"(server {_pct(record['derived']['server_cpu_util'])}, "
            f"client {_pct(record['derived']['client_cpu_util'])})")
    c = record.get("clients")  # several client hosts
    if c:
        what += (f" ({c['hosts']} client hosts, skew {c['skew_s'] * 1e3:.1f} ms"
                 + ("" if c["bounded"] else ", WINDOW NOT BOUNDED") + ")")
    other = (record.get("machine") or {}).get("other_cpu_util")
    if other is not None and other > verdict.DISTURBED_CPU:
        what += f" DISTURBED (other processes {_pct(other)} of a CPU)"
    return what


def _fmt_us(us) -> str:
    if us is None:
        return "n/a"
    if us >= 1e6:
        return f"{us / 1e6:.2f}s"
    if us >= 1e3:
        return f"{us / 1e3:.2f}ms"
    return f"{us:.0f}us"


def _pct(x) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"
