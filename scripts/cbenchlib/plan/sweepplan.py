"""A sweep's plan: the scenario and the command line (or a resumed run's meta.json) resolved,
before anything runs, into what to run and in which order, with every path made absolute once,
so a relative run directory, scenario or binary means the same to the harness, the server and
every peer (nginx resolves relative paths against its own prefix). Nothing runs if the
scenario is bad: build_plan raises PlanError.

plan imports only format: what planning must ask of the machine (the tree's commit, how a
load splits between client hosts, the profile pass's length) comes in as a `Machine`."""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import sys
from typing import Callable

from ..format import resultio, scenario, serverlist
from ..format.paths import SCENARIOS_DIR
from .cpulayout import Layout, LayoutError, Topology, automatic, check, check_list, explicit_cpus, resolve
from .estimate import Overheads, estimate_s, extra_blocks_estimate_s, fmt_duration, learned_overheads
from .pilots import PilotPlan, plan_pilots
from .schedule import schedule

# The flags that override a scenario setting: (settings key, flag, least value).
OVERRIDES = (("duration_s", "--duration", 1), ("warmup_s", "--warmup", 0),
             ("repetitions", "--repetitions", 1), ("target_ci_pct", "--target-ci", 0),
             ("max_repetitions", "--max-repetitions", 1))


class PlanError(Exception):
    """The command line or scenario cannot be planned; nothing has run. str() is the message."""


@dataclasses.dataclass(frozen=True)
class Machine:
    """What planning asks of the layers above format, supplied by the caller."""
    git_commit: Callable[[], str | None]                # the tree's commit now (asked on --resume)
    split_connections: Callable[[int, int], list]       # raises ValueError if a load cannot split
    profile_estimate_s: Callable[[list, scenario.Settings], float]  # the --profile pass
    log: Callable[[str], None] = lambda text: print(text, flush=True)
    # This machine's CPUs (None: unknown; the scenario's lists are then used unchecked).
    topology: Callable[[], Topology | None] = lambda: None


@dataclasses.dataclass
class SweepPlan:
    """Everything the executor needs, resolved once. Every path is absolute."""
    sc: scenario.Scenario
    points: list                     # scenario.Point, in file order
    slots: list                      # schedule.Slot: the initial blocks, in run order
    server_bin: str
    wrk_name: str                    # as given; the executor finds it on the host
    out_parent: str
    resume_dir: str | None           # an existing run directory to continue
    overrides: dict                  # duration_s / warmup_s / repetitions / target_ci_pct / max_repetitions
    models_filter: str | None
    available: set | None            # `cbench-server --list`, None if unknown
    list_error: str | None
    skipped_models: list
    lock_file: str
    lock_timeout_s: float | None
    command: list
    server_host: str = "local"       # host specs (host.parse_host)
    client_host: str = "local"       # the first of client_hosts
    client_hosts: tuple = ()         # every --client-host, in order (several load hosts)
    estimate_s: float = 0.0          # the initial blocks, models not built excluded
    estimate_full_s: float = 0.0     # the initial blocks, every model
    estimate_extra_s: float = 0.0    # the most the extra blocks can add
    allow_dirty: bool = False        # --allow-dirty (reference runs need a clean tree)
    profile: bool = False            # --profile: one unmeasured repetition per wrk point under perf
    profile_estimate_s: float = 0.0  # how long that pass takes
    cpu_layout: Layout | None = None  # where the server and wrk run, and why (settings hold the lists)
    cpu_warnings: tuple = ()         # what is legal but doubtful about that layout
    # Fixed-rate loads: the closed-loop pilots that resolve their common rate before the first
    # block (plan/pilots.py); their time is in estimate_s and estimate_full_s.
    pilots: PilotPlan = dataclasses.field(default_factory=lambda: PilotPlan([], {}))
    # Each row's time beyond duration and warm-up, from the newest recorded run of the scenario
    # (plan/estimate.py): every estimate above and the executor's ETA use it.
    overheads: Overheads = dataclasses.field(default_factory=Overheads)

    @property
    def settings(self) -> scenario.Settings:
        return self.sc.settings

    @property
    def sequential(self) -> bool:
        return self.settings.target_ci_pct is not None

    @property
    def has_wrk(self) -> bool:
        """Whether any point runs a load generator (any of them, not only wrk)."""
        return any(not p.load.is_idle for p in self.points)

    @property
    def needs_wrk(self) -> bool:
        """Whether any point runs wrk itself (the binary must then be installed)."""
        return any(not p.load.is_idle and p.load.generator == "wrk" for p in self.points)

    @property
    def clients(self) -> list[str]:
        return list(self.client_hosts) or [self.client_host]

    def summary(self) -> str:
        """What the sweep will do and how long it may take; printed before it starts."""
        s = self.settings
        reps = s.repetitions
        text = (f"{s.name}{' (quick)' if self.sc.quick else ''}: {len(self.points)} points x "
                f"{reps} repetition{'s' if reps != 1 else ''} = {len(self.slots)} runs; "
                + (f"duration {s.duration_s} s, warm-up {s.warmup_s:g} s, " if self.has_wrk else "")
                + f"order {s.order} (seed {s.seed}); server on CPU {s.server_cpus}"
                + (f", wrk on CPU {s.client_cpus}" if self.has_wrk else ""))
        if self.cpu_layout is not None:
            text += (f"\nCPU layout: server {self.cpu_layout.server_cpus}, wrk {self.cpu_layout.client_cpus} "
                     f"({self.cpu_layout.source}: {self.cpu_layout.reason})")
        text += "".join(f"\n{w}" for w in self.cpu_warnings)
        if len(self.clients) > 1 and self.has_wrk:
            text += (f"\nload from {len(self.clients)} client hosts ({', '.join(self.clients)}), released "
                     "together: each point's connections split evenly between them, each runs its -t")
        if self.pilots:
            text += "\n" + self.pilots.summary(s, None, fmt_duration, self.overheads)
        text += f"\nestimated time: {fmt_duration(self.estimate_full_s)} with every model"
        if self.skipped_models:
            text += (f", {fmt_duration(self.estimate_s)} now ({len(self.skipped_models)} models not "
                     "built: their points are recorded as skipped)")
        if self.sequential:
            text += "\n" + self.budget_line()
        if self.profile:
            text += (f"\nthen --profile: one unmeasured repetition per wrk point under perf, about "
                     f"{fmt_duration(self.profile_estimate_s)} more")
        return text

    def budget_line(self) -> str:
        """The sequential design's budget, worst case: every extra block at its cap of points,
        each as long as the longest point, until every point has max_repetitions records (failed
        and disturbed repetitions re-run count against it)."""
        s = self.settings
        trend = " and the steps of its published trend" if s.published and s.sequential_trends else ""
        of = f"the findings of '{s.published}'{trend} and " if s.published else ""
        return (f"sequential budget: extra blocks until every declared comparison ({of}the scenario's"
                f" design findings and decision cells; scripts/cbenchlib/analysis/sequential.py) is decided"
                f" or narrower than ±{s.target_ci_pct:g}%, bad repetitions re-run: at most"
                f" {s.repetitions_cap - s.repetitions} blocks of at most {s.sequential_points} points (no point"
                f" beyond {s.repetitions_cap} repetitions), up to {fmt_duration(self.estimate_extra_s)} more"
                f" (worst case: at most {fmt_duration(self.estimate_full_s + self.estimate_extra_s)} in all)")

    def dry_run_lines(self) -> list[str]:
        """What `cbench sweep --dry-run` prints: the summary, then one line per point."""
        lines = [self.summary()]
        if self.skipped_models:
            lines.append(f"  not in `cbench-server --list` (would be recorded as skipped): "
                         f"{', '.join(self.skipped_models)}")
        if self.list_error:
            lines.append(f"  note: {self.list_error}")
        lines.append(f"  ({self.overheads.note()}; scripts/cbenchlib/plan/estimate.py)")
        for p in self.points:
            label = (f"  [{p.row.label}]" if p.row.label else "") + \
                (f"  ({p.row.hardening})" if p.row.hardening else "")
            lines.append(f"  {p.row.kind:10s} {p.row.key:40s} {p.load.key:28s} "
                         f"~{estimate_s(p, self.settings, self.available, self.overheads):.1f} s/rep{label}")
        for p in self.pilots.pilots.values():
            lines.append(f"  {'pilot':10s} {p.row.key:40s} {p.load.key:28s} "
                         f"~{estimate_s(p, self.settings, self.available, self.overheads):.1f} s once (closed-loop peak)")
        return lines


def build_plan(args, machine: Machine) -> SweepPlan:
    """The plan of a new or resumed sweep; raises PlanError (nothing has run)."""
    out_parent = os.path.abspath(args.out)
    overrides = {"duration_s": args.duration, "warmup_s": args.warmup, "repetitions": args.repetitions,
                 "target_ci_pct": getattr(args, "target_ci", None),
                 "max_repetitions": getattr(args, "max_repetitions", None)}
    resume_dir, recorded = None, None
    clients = getattr(args, "client_host", None) or ["local"]
    hosts = (getattr(args, "server_host", None) or "local", [clients] if isinstance(clients, str) else list(clients))
    if args.resume:
        resume_dir, sc, overrides, models_filter, hosts, recorded = _plan_resume(args, out_parent, overrides, machine)
    else:
        sc = _load_scenario(args.scenario, args.quick)
        models_filter = args.models
    sc, layout, topo = plan_layout(sc, args, hosts, recorded, machine)
    for key, flag, lo in OVERRIDES:
        if overrides.get(key) is not None and overrides[key] < lo:
            raise PlanError(f"{flag} must be at least {lo}, got {overrides[key]:g}")
    apply_overrides(sc, overrides)
    select_rows(sc, models_filter)
    points = sc.points()
    if not points:
        raise PlanError(f"{sc.path}: no points to run"
                        + (f" (--models {models_filter!r} matches no row)" if models_filter else ""))
    check_client_hosts(hosts[1], points, machine.split_connections)
    cpu_warnings = layout_notes(layout, topo, sc, points)
    s = sc.settings
    server_bin = os.path.abspath(args.server_bin)
    available, list_error = _available_models(server_bin, points)
    skipped = sorted({p.row.model for p in points if available is not None
                      and p.row.kind in ("model", "instrument") and p.row.model not in available})
    slots = schedule(points, s.repetitions, s.order, s.seed)
    pilots = plan_pilots(points)
    profile = bool(getattr(args, "profile", False))
    overheads = learned_overheads(out_parent, s.name, exclude=resume_dir)
    return SweepPlan(
        sc=sc, points=points, slots=slots, server_bin=server_bin, wrk_name=args.wrk_bin,
        out_parent=out_parent, resume_dir=resume_dir, overrides=overrides,
        models_filter=models_filter, available=available, list_error=list_error,
        skipped_models=skipped, lock_file=os.path.abspath(args.lock_file),
        lock_timeout_s=args.lock_timeout,
        server_host=hosts[0], client_host=hosts[1][0], client_hosts=tuple(hosts[1]),
        allow_dirty=bool(getattr(args, "allow_dirty", False)), profile=profile,
        command=["scripts/cbench"] + sys.argv[1:] if sys.argv and sys.argv[0].endswith("cbench")
        else list(sys.argv),
        estimate_s=sum(estimate_s(x.point, s, available, overheads) for x in slots)
        + pilots.estimate_s(s, available, overheads),
        estimate_full_s=sum(estimate_s(x.point, s, None, overheads) for x in slots) + pilots.estimate_s(s, None, overheads),
        estimate_extra_s=extra_blocks_estimate_s(points, s, overheads), overheads=overheads,
        profile_estimate_s=machine.profile_estimate_s(points, s) if profile else 0.0,
        cpu_layout=layout, cpu_warnings=tuple(cpu_warnings), pilots=pilots)


def plan_layout(sc: scenario.Scenario, args, hosts: tuple, recorded: dict | None,
                machine: Machine) -> tuple[scenario.Scenario, Layout, Topology | None]:
    """(the scenario read again with CPU-relative thread counts counting the chosen CPUs, the
    CPU layout, this machine's topology or None). The layout: the flags, else the scenario's
    lists (a resumed run's recorded ones), else the topology's; raises PlanError for a CPU list
    that cannot run. A host reached over ssh is another machine: this one's topology says
    nothing about it, so its lists are taken as given."""
    remote = any(str(h).startswith("ssh://") for h in [hosts[0], *hosts[1]])
    topo = None if remote else machine.topology()
    auto = automatic(topo) if topo is not None else Layout(
        "0", "1", "automatic", "the two-CPU default" + (" (a remote host)" if remote else " (topology unknown)"))
    flags = {"server_cpus": getattr(args, "server_cpus", None), "client_cpus": getattr(args, "client_cpus", None)}
    if recorded is not None:
        flags = {}  # a resumed run keeps its own layout
    layout = resolve(auto, recorded if recorded is not None else explicit_cpus(sc.text), flags,
                     recorded=recorded is not None)
    try:
        counts = {"server": len(check_list(layout.server_cpus, "server_cpus (--server-cpus)", topo)),
                  "client": len(check_list(layout.client_cpus, "client_cpus (--client-cpus)", topo))}
        sc = scenario.parse(sc.text, sc.path, quick=sc.quick, cpu_counts=counts)
    except LayoutError as exc:
        raise PlanError(str(exc)) from None
    except scenario.ScenarioError as exc:
        raise PlanError(str(exc)) from None
    sc.settings.server_cpus, sc.settings.client_cpus = layout.server_cpus, layout.client_cpus
    return sc, layout, topo


def layout_notes(layout: Layout, topo: Topology | None, sc: scenario.Scenario, points: list) -> list[str]:
    """What is legal but doubtful about the layout for the rows and loads that will run."""
    rows = [(r.key, r.threads * (r.processes or 1)) for r in sc.rows if r.threads]
    wrk = max((p.load.wrk_threads or 0 for p in points if not p.load.is_idle), default=0)
    return check(layout, topo, rows, wrk)


def _load_scenario(name: str, quick: bool) -> scenario.Scenario:
    path = os.path.abspath(scenario.resolve_path(name, SCENARIOS_DIR))
    try:
        return scenario.load_file(path, quick=quick)
    except scenario.ScenarioError as exc:
        raise PlanError(str(exc)) from None


def _available_models(server_bin: str, points: list) -> tuple[set[str] | None, str | None]:
    """(the models the binary has, why that is unknown); (None, None) when no point runs it."""
    if not any(p.row.kind in ("model", "instrument") for p in points):
        return None, None
    if not os.path.exists(server_bin):
        return None, (f"server binary not found: {server_bin} (build it: cmake -S . -B build "
                      "-DCMAKE_BUILD_TYPE=Release && cmake --build build)")
    return list_models(server_bin)


def check_client_hosts(clients: list[str], points: list, split_connections) -> None:
    """Several client hosts: each named once, and every point's load divisible between them
    (split_connections(connections, hosts) raises ValueError otherwise); raises PlanError."""
    twice = sorted({c for c in clients if clients.count(c) > 1})
    if twice:
        raise PlanError(f"--client-host {twice[0]} is given more than once (one generator per host)")
    if len(clients) < 2:
        return
    for p in points:
        if p.load.is_idle:
            continue
        common = getattr(p.load, "rate_common_fraction", None)
        if p.load.rate_fraction is not None or common is not None:
            key = "rate_fraction" if p.load.rate_fraction is not None else "rate_common_fraction"
            raise PlanError(f"{p.id}: {key} (an open-loop rate from a measured peak) is not supported "
                            f"with several client hosts yet; give the rate itself (rate = N)")
        try:
            split_connections(p.load.connections, len(clients))
        except ValueError as exc:
            raise PlanError(f"{p.id}: {exc}") from None


def _plan_resume(args, out_parent: str, overrides: dict, machine: Machine):
    """(absolute run dir, scenario, overrides, models filter, (server host, [client hosts])) of
    the run to continue: a resumed run keeps its own settings and hosts."""
    given = args.resume if os.path.isdir(args.resume) else os.path.join(out_parent, args.resume)
    resume_dir = os.path.abspath(given)
    try:
        meta = resultio.read_meta(resume_dir)
    except resultio.ResultsFormatError as exc:
        raise PlanError(f"--resume {args.resume}: {exc}") from None
    h = meta.get("harness", {})
    try:
        sc = scenario.parse(meta["scenario_text"], meta.get("scenario_file", "meta.json"),
                            quick=bool(meta.get("quick")))
    except (KeyError, scenario.ScenarioError) as exc:
        raise PlanError(f"--resume: the recorded scenario is unusable: {exc}") from None
    recorded_commit = meta.get("env", {}).get("git_commit")
    now_commit = machine.git_commit()
    if recorded_commit != now_commit:
        machine.log(f"sweep: warning: the run was started at commit {recorded_commit}, the tree is now "
                    f"at {now_commit}; the resumed points measure the current build")
    if any(v is not None for v in overrides.values()) or args.models or args.quick:
        machine.log("sweep: --resume uses the run's own settings; --quick/--models/--duration/--warmup/"
                    "--repetitions/--target-ci/--max-repetitions are ignored")
    env = meta.get("env", {})
    recorded = {k: env[k] for k in ("server_cpus", "client_cpus") if isinstance(env.get(k), str)}
    return (resume_dir, sc, dict(h.get("overrides", {})), h.get("models_filter"),
            (h.get("host") or "local", list(h.get("client_hosts") or [h.get("client_host") or h.get("host") or "local"])),
            recorded)


def select_rows(sc: scenario.Scenario, patterns: str | None) -> None:
    """Keep the rows whose model or key matches one of the comma-separated fnmatch patterns."""
    if not patterns:
        return
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    sc.rows = [r for r in sc.rows
               if any(fnmatch.fnmatchcase(r.model, p) or fnmatch.fnmatchcase(r.key, p) for p in pats)]


def apply_overrides(sc: scenario.Scenario, overrides: dict) -> None:
    s = sc.settings
    for key in ("duration_s", "warmup_s", "repetitions", "max_repetitions"):
        if overrides.get(key) is not None:
            setattr(s, key, overrides[key])
    if overrides.get("target_ci_pct") is not None:
        s.target_ci_pct = overrides["target_ci_pct"] or None  # 0 turns the sequential design off


def list_models(server_bin: str) -> tuple[set[str] | None, str | None]:
    """(model names from `cbench-server --list`, error message)."""
    try:
        return set(serverlist.query(server_bin)), None
    except serverlist.ServerListError as exc:
        return None, str(exc)
