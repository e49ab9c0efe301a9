"""Which CPUs the server and the load generator run on: the machine's topology (read by
run/cputopo.py) turned into a layout, and a given layout checked against it.

The automatic layout gives the server and wrk disjoint sets of whole physical cores (SMT
siblings stay together, so neither shares a core's caches and pipeline with the other), one
NUMA node each where there are two or more; on a two-CPU machine it is the historical "0" and
"1", so scenarios and committed results keep their meaning. A flag beats the scenario's
setting, which beats the automatic choice, one key at a time."""
from __future__ import annotations

import dataclasses
import tomllib

from ..format import scenario

SOURCES = ("flag", "scenario", "recorded", "automatic")  # where a layout's CPU lists came from


@dataclasses.dataclass(frozen=True)
class Topology:
    """The CPUs this process may use, grouped. Every CPU list is sorted."""
    cpus: tuple[int, ...]                       # online and allowed
    cores: tuple[tuple[int, ...], ...]          # each physical core's usable CPUs (SMT siblings)
    nodes: dict                                 # NUMA node -> its usable CPUs; {} if unknown
    isolated: tuple[int, ...] = ()              # the kernel's isolcpus=
    online: tuple[int, ...] = ()                # online, allowed or not

    @property
    def smt_threads(self) -> int:
        """Hardware threads per core (the most any core has)."""
        return max((len(c) for c in self.cores), default=1)

    def node_of(self, cpu: int) -> int | None:
        return next((n for n, cpus in self.nodes.items() if cpu in cpus), None)

    def to_json(self) -> dict:
        return {"cpus": format_cpu_list(self.cpus), "cpu_count": len(self.cpus),
                "online": format_cpu_list(self.online or self.cpus),
                "cores": len(self.cores), "smt_threads_per_core": self.smt_threads,
                "numa_nodes": {str(n): format_cpu_list(c) for n, c in sorted(self.nodes.items())},
                "isolated": format_cpu_list(self.isolated)}


@dataclasses.dataclass(frozen=True)
class Layout:
    server_cpus: str
    client_cpus: str
    source: str      # SOURCES; "flag" if either list came from a flag, and so on down the order
    reason: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def format_cpu_list(cpus) -> str:
    """[0, 1, 2, 5, 8, 9] -> "0-2,5,8-9" (the taskset and sysfs form)."""
    out, run = [], []
    for c in sorted(set(cpus)):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(_span(run))
        run = [c]
    if run:
        out.append(_span(run))
    return ",".join(out)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def automatic(topo: Topology) -> Layout:
    """The layout a machine gets when neither the scenario nor a flag names the CPUs."""
    n = len(topo.cpus)
    if n == 0:
        return Layout("0", "1", "automatic", "no CPU topology: the two-CPU default")
    if n == 1:
        c = str(topo.cpus[0])
        return Layout(c, c, "automatic", f"one usable CPU ({c}): the server and wrk share it")
    if n == 2:
        a, b = topo.cpus
        shared = len(topo.cores) == 1
        return Layout(str(a), str(b), "automatic",
                      f"2 CPUs: server on CPU {a}, wrk on CPU {b}"
                      + (" (SMT siblings of one core: they share it)" if shared else ""))
    nodes = [cpus for _, cpus in sorted(topo.nodes.items()) if cpus]
    smt = f", {topo.smt_threads} SMT threads per core" if topo.smt_threads > 1 else ""
    if len(nodes) >= 2:
        return Layout(format_cpu_list(nodes[0]), format_cpu_list(nodes[1]), "automatic",
                      f"{n} CPUs, {len(topo.cores)} cores{smt}, {len(nodes)} NUMA nodes: the server on "
                      f"node {_node_name(topo, nodes[0])}, wrk on node {_node_name(topo, nodes[1])}")
    if len(topo.cores) < 2:
        half = (n + 1) // 2
        return Layout(format_cpu_list(topo.cpus[:half]), format_cpu_list(topo.cpus[half:]), "automatic",
                      f"{n} CPUs on one core: split by hardware thread (they share the core)")
    half = (len(topo.cores) + 1) // 2
    server = [c for core in topo.cores[:half] for c in core]
    client = [c for core in topo.cores[half:] for c in core]
    return Layout(format_cpu_list(server), format_cpu_list(client), "automatic",
                  f"{n} CPUs, {len(topo.cores)} cores{smt}, one NUMA node: the server on {half} whole "
                  f"cores, wrk on the other {len(topo.cores) - half}"
                  + (" (SMT siblings kept together)" if smt else ""))


def _node_name(topo: Topology, cpus) -> str:
    return str(topo.node_of(cpus[0]))


def explicit_cpus(text: str) -> dict:
    """The server_cpus / client_cpus a scenario's text sets itself (not the format's defaults)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}
    return {k: doc[k] for k in ("server_cpus", "client_cpus") if isinstance(doc.get(k), str)}


def resolve(auto: Layout, scenario_set: dict, flags: dict, recorded: bool = False) -> Layout:
    """One key at a time: a flag, else the scenario's own setting (or a resumed run's recorded
    one), else the automatic choice. scenario_set and flags map server_cpus / client_cpus to
    CPU lists; a missing or None value defers to the next."""
    chosen, sources = {}, []
    for key in ("server_cpus", "client_cpus"):
        if flags.get(key):
            chosen[key], src = flags[key], "flag"
        elif scenario_set.get(key):
            chosen[key], src = scenario_set[key], "recorded" if recorded else "scenario"
        else:
            chosen[key], src = getattr(auto, key), "automatic"
        sources.append(src)
    source = min(sources, key=SOURCES.index)
    if source == "automatic":
        return auto
    given = {"flag": "--server-cpus/--client-cpus", "scenario": "the scenario",
             "recorded": "the resumed run's meta.json"}
    return Layout(chosen["server_cpus"], chosen["client_cpus"], source,
                  f"given by {given[source]}"
                  + ("" if set(sources) == {source} else f"; the rest automatic ({auto.reason})"))


class LayoutError(ValueError):
    """A CPU list that cannot be used; str() names it."""


def check_list(spec: str, what: str, topo: Topology | None) -> list[int]:
    """The CPUs of a taskset list; raises LayoutError naming WHAT and the list if it is not one,
    or names a CPU the topology does not have (offline, absent, or outside this process's
    allowed set)."""
    try:
        cpus = scenario.cpu_list(spec)
    except ValueError as exc:
        raise LayoutError(f"{what}: {exc}") from None
    missing = [c for c in cpus if topo is not None and topo.cpus and c not in topo.cpus]
    if missing:
        raise LayoutError(f"{what} \"{spec}\": CPU {format_cpu_list(missing)} "
                          f"{'does' if len(missing) == 1 else 'do'} not exist or may not be used here "
                          f"(usable CPUs: {format_cpu_list(topo.cpus)})")
    return cpus


def check(layout: Layout, topo: Topology | None, rows: list = (), wrk_threads: int = 0) -> list[str]:
    """Lines ("warning: ..." or "note: ...") about a usable layout; raises LayoutError for one that cannot run (a bad list,
    a CPU that does not exist or that this process may not use). rows: (row id, server
    threads); wrk_threads: the most any point's wrk runs."""
    server = check_list(layout.server_cpus, "server_cpus (--server-cpus)", topo)
    client = check_list(layout.client_cpus, "client_cpus (--client-cpus)", topo)
    warnings = []
    both = sorted(set(server) & set(client))
    if both:
        warnings.append(f"warning: the server (CPU {layout.server_cpus}) and wrk (CPU {layout.client_cpus}) share "
                        f"CPU {format_cpu_list(both)}: the load generator takes CPU time from the server")
    elif topo is not None:
        split = [core for core in topo.cores if set(core) & set(server) and set(core) & set(client)]
        if split:
            warnings.append(f"warning: the server and wrk share {len(split)} physical core"
                            f"{'s' if len(split) != 1 else ''} (SMT siblings "
                            f"{'; '.join(format_cpu_list(c) for c in split)})")
    over = [(rid, t) for rid, t in rows if t > len(server)]
    if over:
        shown = ", ".join(f"{rid} ({t})" for rid, t in over[:4]) + (", ..." if len(over) > 4 else "")
        warnings.append(f"note: {len(over)} row{'s run' if len(over) != 1 else ' runs'} more server threads than "
                        f"the {len(server)} server CPU{'s' if len(server) != 1 else ''}: {shown}")
    if wrk_threads > len(client) and not both:
        warnings.append(f"note: wrk runs up to {wrk_threads} threads on {len(client)} client "
                        f"CPU{'s' if len(client) != 1 else ''}")
    return warnings
