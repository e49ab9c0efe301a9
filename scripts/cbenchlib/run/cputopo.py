"""The CPU topology and frequency settings, read from sysfs.

The root is /sys unless CBENCH_SYSFS_ROOT names another tree (a copy of a machine's files, as
the tests' fixtures are); only the real /sys is narrowed to the CPUs this process may use
(os.sched_getaffinity: a container's or taskset's limit). Every file is optional: a guest
without cpufreq or NUMA files gives what it has. The warnings are pyperf's system check's:
what makes one run's timings differ from another's on the same machine."""
from __future__ import annotations

import os

from ..format import scenario
from ..plan.cpulayout import Topology, format_cpu_list

SYSFS_ROOT_ENV = "CBENCH_SYSFS_ROOT"
REAL_ROOT = "/sys"
CPU_DIR = "devices/system/cpu"
NODE_DIR = "devices/system/node"


def sysfs_root() -> str:
    return os.environ.get(SYSFS_ROOT_ENV) or REAL_ROOT


def _read(root: str, rel: str) -> str | None:
    try:
        with open(os.path.join(root, rel), encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _cpus(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return scenario.cpu_list(text)
    except ValueError:
        return []


def read(root: str | None = None) -> Topology:
    """The usable CPUs of the machine whose sysfs is at root (default: sysfs_root())."""
    root = root or sysfs_root()
    online = _cpus(_read(root, f"{CPU_DIR}/online"))
    if not online:  # no sysfs: what the process may use, without grouping
        online = sorted(os.sched_getaffinity(0)) if root == REAL_ROOT else []
    usable = online
    if root == REAL_ROOT:
        allowed = os.sched_getaffinity(0)
        usable = [c for c in online if c in allowed]
    cores: dict = {}
    for c in usable:
        pkg = _read(root, f"{CPU_DIR}/cpu{c}/topology/physical_package_id")
        siblings = _cpus(_read(root, f"{CPU_DIR}/cpu{c}/topology/thread_siblings_list")) or [c]
        key = (pkg, min(siblings))
        cores.setdefault(key, []).append(c)
    nodes = {}
    for name in sorted(_listdir(os.path.join(root, NODE_DIR))):
        if name.startswith("node") and name[4:].isdigit():
            cpus = [c for c in _cpus(_read(root, f"{NODE_DIR}/{name}/cpulist")) if c in usable]
            if cpus:
                nodes[int(name[4:])] = tuple(cpus)
    # Cores in node order, then by their first CPU: a layout takes whole cores from the front.
    order = sorted(cores.values(), key=lambda cs: (_node(nodes, cs[0]), cs[0]))
    return Topology(cpus=tuple(usable), cores=tuple(tuple(cs) for cs in order), nodes=nodes,
                    isolated=tuple(_cpus(_read(root, f"{CPU_DIR}/isolated"))), online=tuple(online))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _node(nodes: dict, cpu: int) -> int:
    return next((n for n, cpus in nodes.items() if cpu in cpus), 0)


def frequency(topo: Topology, root: str | None = None) -> dict:
    """The frequency settings that move timings: each governor with its CPUs, the driver, and
    turbo / boost (True: on; None: not reported)."""
    root = root or sysfs_root()
    governors: dict = {}
    drivers = set()
    for c in topo.cpus:
        g = _read(root, f"{CPU_DIR}/cpu{c}/cpufreq/scaling_governor")
        if g:
            governors.setdefault(g, []).append(c)
        d = _read(root, f"{CPU_DIR}/cpu{c}/cpufreq/scaling_driver")
        if d:
            drivers.add(d)
    no_turbo = _read(root, f"{CPU_DIR}/intel_pstate/no_turbo")
    boost = _read(root, f"{CPU_DIR}/cpufreq/boost")
    turbo = (no_turbo == "0") if no_turbo in ("0", "1") else (boost == "1") if boost in ("0", "1") else None
    return {"governors": {g: format_cpu_list(cs) for g, cs in sorted(governors.items())},
            "driver": ",".join(sorted(drivers)) or None,
            "turbo": turbo,
            "turbo_source": "intel_pstate/no_turbo" if no_turbo in ("0", "1")
            else "cpufreq/boost" if boost in ("0", "1") else None}


def system_warnings(topo: Topology, freq: dict, used: list[int]) -> list[str]:
    """What pyperf's system check would say about the CPUs a run uses."""
    out = []
    for g, cs in freq["governors"].items():
        slow = sorted(set(scenario.cpu_list(cs)) & set(used)) if g != "performance" else []
        if slow:
                out.append(f"CPU {format_cpu_list(slow)}: frequency governor {g!r}, not 'performance': timings "
                       "follow the load (cpupower frequency-set -g performance)")
    if freq["turbo"]:
        out.append(f"turbo / boost is on ({freq['turbo_source']}): the clock depends on temperature and "
                   "on how many cores are busy")
    if topo.isolated and not set(used) <= set(topo.isolated):
        out.append(f"CPUs {format_cpu_list(topo.isolated)} are isolated (isolcpus) but the run also uses "
                   f"{format_cpu_list(sorted(set(used) - set(topo.isolated)))}")
    return out


def describe(used: list[int], root: str | None = None) -> dict:
    """meta.json's env.cpu (results/SCHEMA.md): topology, frequency settings, warnings."""
    root = root or sysfs_root()
    topo = read(root)
    freq = frequency(topo, root)
    return {"sysfs_root": root, "topology": topo.to_json(), "frequency": freq,
            "warnings": system_warnings(topo, freq, used)}
