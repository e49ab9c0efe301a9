"""A published finding as its table's data declares it (results/published/<name>.json, "findings"):
the rows it compares, its primary load point, its claim on its first metric and each fallback
metric's own claim. findings.py's docstring states the rules; this module reads and checks the
declarations (DeclarationError on a malformed one) and judges nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..format import calibration, metrics
from ..format.published import STACK_RUBY, Published

HIGHER, LOWER = metrics.HIGHER, metrics.LOWER  # which side of a metric is the better one

# metric name in the JSON -> (dotted path in a point, what it is, which point verdicts let it decide,
# which side is better: a fallback's declared direction must agree with it, see declared_findings).
# A view of the registry (format/metrics.py), which says why each decides where it does.
METRICS = {m.name: (m.path, m.label, m.decide_at, m.better) for m in (
    metrics.get("wrk.req_per_s"), metrics.get("derived.server_cpu_us_per_req"),
    metrics.get("derived.syscalls_per_req"), metrics.get("derived.ctx_switches_per_req"))}

# A metric read at the run's fixed-rate load of the primary point's shape instead of at the primary
# point ("<metric>@fixed-rate", calibration.entry_key's spelling, as `cbench regress` names it):
# every compared row offered one open-loop rate below all their capacities, so the server's CPU per
# request is its own cost and not confounded with the generator's. It decides where
# loadgen.fixed_rate_refusal lets every repetition of both rows decide (FIXED_RATE_DECIDE_AT stands
# for that rule in decide_at's place).
FIXED_RATE_DECIDE_AT = (calibration.FIXED_RATE,)
_cpu = metrics.get(metrics.FIXED_RATE_CPU)
FIXED_RATE_CPU_KEY = calibration.entry_key(_cpu.name, calibration.FIXED_RATE)
METRICS[FIXED_RATE_CPU_KEY] = (
    _cpu.path, "server CPU us/request at a fixed rate", FIXED_RATE_DECIDE_AT, _cpu.better)


def at_fixed_rate(metric: str) -> bool:
    """Whether a finding's metric is read at the fixed-rate load ("<metric>@fixed-rate")."""
    return calibration.split_key(metric)[1] == calibration.FIXED_RATE


# A fallback's "when": consulted only where the metrics before it cannot decide (the default), or
# also where they could and stayed undecided (findings.consulted splits the error between them).
WHEN_CANNOT, WHEN_UNDECIDED = "cannot decide", "undecided"

# The metrics that measure a req/s claim's own quantity on one server CPU (capacity, or its
# reciprocal, CPU per request): the only fallbacks that may be declared WHEN_UNDECIDED. System calls
# and context switches per request are proxies: they never override a req/s that could decide.
CAPACITY_METRICS = frozenset({"req_per_s", "server_cpu_us_per_req", FIXED_RATE_CPU_KEY})

_OPPOSITE = {"greater": "less", "less": "greater", "equivalent": "equivalent"}
_SIGN = {"greater": ">", "less": "<", "equivalent": "≈"}


@dataclass
class MetricSpec:
    """How one metric judges a claim: a/b `direction` than `null_ratio` (the no-effect value), or
    within ±`margin` for "equivalent". `fallback`: not the first metric, so the values are its own
    (declared with `reason`), never the claim's."""
    metric: str
    direction: str
    null_ratio: float = 1.0
    margin: float | None = None
    fallback: bool = False
    reason: str = ""
    # A fallback declared "when": "undecided": consulted also where the metrics consulted before it
    # could decide but stayed undecided, not only where they cannot decide; every metric consulted
    # for a comparison is then judged at its share of the error (findings.consulted).
    when_undecided: bool = False

    def claim_text(self) -> str:
        """"a/b > 2", "a/b < 0.5", "a/b within ±10%"."""
        if self.direction == "equivalent":
            return f"a/b within ±{((self.margin or 1.0) - 1) * 100:.0f}%"
        return f"a/b {_SIGN[self.direction]} {self.null_ratio:g}"

    def no_effect_text(self) -> str:
        if self.direction == "equivalent":
            return f"no-effect band ±{((self.margin or 1.0) - 1) * 100:.0f}%"
        return f"no-effect value {self.null_ratio:g}"

    def decided_text(self) -> str:
        """What the verdict of a comparison names: the deciding metric and its no-effect value."""
        return (f"decided on {METRICS[self.metric][1]}{', a fallback' if self.fallback else ''}:"
                f" claim {self.claim_text()}, {self.no_effect_text()}")


@dataclass
class Declared:
    """A finding as declared in results/published/<name>.json (see the module docstring)."""
    fid: str
    title: str
    claim: str
    primary_path: str
    primary_load: str
    metrics: list
    comparisons: list  # dicts: a, b, gvl, published_ratio, exclude_a / exclude_b (fields of rows not meant)
    published_column: str | None = None
    note: str = ""
    ruby: "StackDecl | None" = None  # the same claim on the Ruby rows (the original stack)
    not_modelled: str = ""  # what the C++ stand-ins leave out of this effect (declared, for the scorecard)

    def on_stack(self, stack: str) -> "StackDecl":
        """The primary point and comparisons this finding is judged on for a stack's rows: the
        C++ rows use the finding's own; the Ruby rows their declared "ruby" block, or a StackDecl
        that says why they are not measured."""
        if stack != STACK_RUBY:
            return StackDecl(self.primary_path, self.primary_load, self.comparisons)
        return self.ruby or StackDecl("", "", [], "no primary point on the Ruby rows is declared for this finding")


@dataclass
class StackDecl:
    """Where and on which rows a finding is judged for one stack; `why_not` (with no comparisons)
    when the finding cannot be judged on that stack at all (e.g. a GVL-off row Ruby cannot have)."""
    primary_path: str
    primary_load: str
    comparisons: list
    why_not: str = ""


class DeclarationError(Exception):
    pass


def registry_margin(metric: str) -> float | None:
    """A metric name's registered equivalence margin (format/metrics.py) as a ratio > 1, or None
    (a name outside METRICS, e.g. a design finding's memory per connection, or no margin)."""
    pct = metrics.get(METRICS[metric][0]).margin_pct if metric in METRICS else None
    return 1.0 + pct / 100.0 if pct is not None else None


def design_claim(decl: dict, comp: dict | None = None) -> tuple[str, float, float | None]:
    """(direction, null ratio, margin) a design finding's comparison (results/findings/design.json)
    is judged on: an equivalence sub-claim's (comparison "direction": "equivalent", its "margin" or
    the metric's registered one), else the finding's, whose margin defaults to the metric's
    registered one when its null ratio is 1 (a tie within it is then an answer, not "undecided")."""
    if comp is not None and comp.get("direction") == "equivalent":
        return "equivalent", 1.0, float(comp.get("margin") or registry_margin(decl["metric"]) or 0) or None
    direction, null = decl.get("direction", "greater"), float(decl.get("null_ratio", 1.0))
    margin = decl.get("margin")
    if margin is None and null == 1.0:
        margin = registry_margin(decl["metric"])
    return direction, null, margin


def with_margin(spec: MetricSpec) -> MetricSpec:
    """A directional claim against no difference (null ratio 1) that declares no margin takes its
    metric's registered one, so that a tie within it is an answer ("equivalent"), not "undecided";
    a claim against another null (e.g. "below 0.85x") keeps none, as a tie at 1 is no answer to it."""
    if spec.margin is not None or spec.direction == "equivalent" or spec.null_ratio != 1.0:
        return spec
    return replace(spec, margin=registry_margin(spec.metric))


def is_tie(comp: dict) -> bool:
    """Whether a declared comparison is an equivalence sub-claim: its expected answer is a tie
    (declared "direction": "equivalent" beside it, with its reason), whatever the finding claims."""
    return comp.get("direction") == "equivalent"


def comparison_specs(d: "Declared", comp: dict) -> list[MetricSpec]:
    """The claims one comparison is judged on: the finding's metrics with their margins
    (with_margin), or, for an equivalence sub-claim (is_tie), the same metrics each claiming a
    tie within the comparison's "margin" or, without one, the metric's registered margin."""
    if not is_tie(comp):
        return [with_margin(m) for m in d.metrics]
    out = []
    for m in d.metrics:
        margin = float(comp["margin"]) if comp.get("margin") else registry_margin(m.metric)
        if margin is None:
            continue  # a metric without a margin cannot judge a tie
        out.append(replace(m, direction="equivalent", null_ratio=1.0, margin=margin, reason=str(comp.get("reason", ""))))
    return out


def _check_comparison(comp: dict, metric_names: list[str], where: str) -> None:
    """DeclarationError for a comparison whose own claim is malformed: only "equivalent" may be
    declared beside a comparison, with its reason and a margin > 1 (declared, or registered for
    one of the finding's metrics)."""
    if "direction" not in comp:
        return
    if comp["direction"] != "equivalent":
        raise DeclarationError(f"{where}: a comparison may declare only \"direction\": \"equivalent\""
                               f" (a tie expected), not {comp['direction']!r}")
    if not comp.get("reason"):
        raise DeclarationError(f"{where}: an equivalence sub-claim needs its \"reason\" (why a tie is expected)")
    if comp.get("margin") is not None:
        try:
            ok = float(comp["margin"]) > 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DeclarationError(f"{where}: an equivalence sub-claim's margin must be a number > 1")
    elif all(registry_margin(n) is None for n in metric_names):
        raise DeclarationError(f"{where}: an equivalence sub-claim needs a \"margin\": none of the finding's"
                               " metrics registers one (format/metrics.py)")


def _fallback_spec(m: dict, first: MetricSpec, where: str) -> MetricSpec:
    """A fallback metric's own claim, as declared beside it; DeclarationError when it leans on the
    first metric's values or points the other way than its metric's sense says."""
    name = m["metric"]
    what = f"{where}: fallback metric {name!r} ({METRICS[name][1]})"
    sense, first_sense = METRICS[name][3], METRICS[first.metric][3]
    expected = first.direction if sense == first_sense else _OPPOSITE[first.direction]
    missing = [k for k in ("direction", "reason") if not m.get(k)]
    d = m.get("direction")
    if d == "equivalent" and not m.get("margin"):
        missing.append("margin")
    elif d != "equivalent" and m.get("null_ratio") is None:
        missing.append("null_ratio")
    if missing:
        raise DeclarationError(
            f"{what} declares no {', '.join(missing)} of its own: a fallback never inherits the claim's"
            f" direction or no-effect value ({first.claim_text()} on {METRICS[first.metric][1]}); declare"
            f" \"direction\" ({expected!r}: {sense} is better), \"null_ratio\" (or \"margin\" for an"
            f" equivalence claim) and \"reason\" beside the metric")
    if d not in _OPPOSITE:
        raise DeclarationError(f"{what}: direction {d!r} (greater, less or equivalent)")
    if d != expected:
        raise DeclarationError(
            f"{what}: direction {d!r} contradicts the claim: {first.claim_text()} on"
            f" {METRICS[first.metric][1]} ({first_sense} is better) reads {expected!r} on a metric where"
            f" {sense} is better")
    try:
        null = float(m["null_ratio"]) if d != "equivalent" else 1.0
        margin = float(m["margin"]) if m.get("margin") else None
    except (TypeError, ValueError):
        raise DeclarationError(f"{what}: null_ratio and margin must be numbers")
    if not null > 0 or (margin is not None and not margin > 1.0):
        raise DeclarationError(f"{what}: null_ratio must be > 0 and margin > 1")
    when = m.get("when", WHEN_CANNOT)
    if when not in (WHEN_CANNOT, WHEN_UNDECIDED):
        raise DeclarationError(f"{what}: \"when\" is {WHEN_CANNOT!r} (the default: consulted only where the"
                               f" metrics before it cannot decide) or {WHEN_UNDECIDED!r}, not {when!r}")
    if when == WHEN_UNDECIDED and name not in CAPACITY_METRICS:
        raise DeclarationError(f"{what}: only a metric of the claim's own quantity ({', '.join(sorted(CAPACITY_METRICS))})"
                               f" may be consulted where the metrics before it stay undecided; a proxy such as"
                               f" {METRICS[name][1]} is consulted only where they cannot decide")
    return MetricSpec(name, d, null, margin, fallback=True, reason=str(m["reason"]),
                      when_undecided=when == WHEN_UNDECIDED)


def declared_findings(pub: Published) -> list[Declared]:
    """The findings a published table declares; raises DeclarationError on a malformed one."""
    out = []
    for i, f in enumerate(pub.doc.get("findings") or []):
        where = f"{pub.path}: finding {i} ({f.get('id')!r})"
        try:
            prim = f["primary"]
            direction = f["direction"]
            metrics = []
            for m in f["metrics"]:
                m = {"metric": m} if isinstance(m, str) else dict(m)
                if m["metric"] not in METRICS:
                    raise DeclarationError(f"{where}: unknown metric {m['metric']!r}")
                if metrics:
                    metrics.append(_fallback_spec(m, metrics[0], where))
                    continue
                d = m.get("direction", direction)
                if d not in ("greater", "less", "equivalent"):
                    raise DeclarationError(f"{where}: direction {d!r}")
                margin = m.get("margin", f.get("margin"))
                if d == "equivalent" and not margin:
                    raise DeclarationError(f"{where}: an equivalence claim needs a margin")
                metrics.append(MetricSpec(m["metric"], d, float(m.get("null_ratio", f.get("null_ratio", 1.0))),
                                          float(margin) if margin else None))
            for c in list(f["comparisons"]) + list((f.get("ruby") or {}).get("comparisons") or []):
                _check_comparison(c, [m.metric for m in metrics], where)
            out.append(Declared(str(f["id"]), f["title"], f["claim"], prim["path"], prim["load"], metrics,
                                list(f["comparisons"]), f.get("published_column"), f.get("note", ""),
                                _ruby_decl(f.get("ruby"), where), str(f.get("not_modelled") or "")))
        except KeyError as exc:
            raise DeclarationError(f"{where}: missing field {exc}")
    return out


def _ruby_decl(r, where: str) -> StackDecl | None:
    """A finding's "ruby" block: {"primary": {"path", "load"}, "comparisons": [...]} (rows chosen by
    label on the Ruby stack, whatever their gvl flag: Ruby always holds its GVL), or
    {"not_measurable": "why"}; None when absent. DeclarationError on anything else."""
    if r is None:
        return None
    if not isinstance(r, dict):
        raise DeclarationError(f"{where}: \"ruby\" must be an object")
    if r.get("not_measurable"):
        return StackDecl("", "", [], str(r["not_measurable"]))
    prim, comps = r.get("primary"), r.get("comparisons")
    if not isinstance(prim, dict) or not prim.get("path") or not prim.get("load") or not comps:
        raise DeclarationError(f"{where}: \"ruby\" declares neither \"not_measurable\" nor a \"primary\""
                               " point (path, load) with \"comparisons\"")
    return StackDecl(str(prim["path"]), str(prim["load"]), list(comps))
