"""The environment a run was measured in: meta.json's "env" object (SCHEMA.md).

Every probe is best effort: a missing tool or file gives null, never an error,
because a run without a field is still a run (readers treat null as unknown).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import platform
import re
import resource
import socket
import subprocess

from ..format import scenario
from ..plan import cpulayout
from . import cputopo

# Debian package whose version stands for each component.
DEBIAN_PACKAGES = {
    "libev": "libev-dev",
    "libuv": "libuv1-dev",
    "boost": "libboost-dev",
    "http_parser": "libhttp-parser-dev",
    "wrk": "wrk",
    "nginx": "nginx-light",
    "h2o": "h2o",
}


def _run(argv: list[str], cwd: str | None = None, timeout_s: float = 10.0) -> str | None:
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def cpu_info(cpuinfo_text: str | None = None) -> tuple[str | None, int]:
    """(model name, logical CPU count) from /proc/cpuinfo."""
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo_text = f.read()
        except OSError:
            return None, os.cpu_count() or 0
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo_text, re.M)
    count = len(re.findall(r"^processor\s*:", cpuinfo_text, re.M)) or (os.cpu_count() or 0)
    return (models[0].strip() if models else None), count


def upstream_version(debian_version: str) -> str:
    """'1:4.33-1' -> '4.33'; '1.74.0.3' -> '1.74.0.3'; '4.1.0-3+b2' -> '4.1.0'."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def package_versions() -> tuple[dict, dict]:
    """({component: upstream version}, {component: full Debian version}); absent ones omitted."""
    upstream, full = {}, {}
    for name, pkg in DEBIAN_PACKAGES.items():
        out = _run(["dpkg-query", "-W", "-f=${Version}", pkg])
        if out:
            full[name] = out.strip()
            upstream[name] = upstream_version(out.strip())
    return upstream, full


# Peers: the version the binary itself reports, which is what ran (a Debian package
# version says what dpkg installed, and nginx-light's would not name a locally built nginx).
PEER_VERSION_PROBES = {
    "nginx": (["nginx", "-v"], r"nginx/(\S+)"),        # "nginx version: nginx/1.22.1" (stderr)
    "h2o": (["h2o", "--version"], r"h2o version (\S+)"),  # "h2o version 2.2.5"
    # "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]": the Ruby peers' interpreter
    "ruby": (["ruby", "-v"], r"ruby (\S+)"),
    # Ruby server peers (scenario_types.py PEERS): the server's own report where it has one; the
    # async-http library has no command, so Ruby prints its VERSION constant.
    "puma": (["puma", "--version"], r"puma version (\S+)"),        # "puma version 5.6.5"
    "unicorn": (["unicorn", "-v"], r"unicorn v(\S+)"),             # "unicorn v6.0.0"
    "thin": (["thin", "--version"], r"thin (\S+) codename"),       # "thin 1.8.1 codename Infinite Smoothie"
    "async-http": (["ruby", "-e", 'require "async/http/version"; print Async::HTTP::VERSION'],
                   r"^(\d+\.\d+\S*)"),                              # "0.59.5"
}

# Libraries the Ruby peers load (servers/ruby/ replicas: nio4r, http_parser.rb, eventmachine; the
# Rack servers: rack), each at the version RubyGems resolves, which is what `require` loads.
# http_parser.rb defines no version constant, so the gem specification is asked for all. The
# servers themselves (puma, unicorn, thin, async-http) report theirs in PEER_VERSION_PROBES.
RUBY_GEMS = ("nio4r", "http_parser.rb", "eventmachine", "rack")
# Prints "NAME VERSION" for each gem of ARGV that is installed, nothing for the others.
RUBY_GEM_SCRIPT = ('ARGV.each { |n| begin; puts "#{n} #{Gem::Specification.find_by_name(n).version}"; '
                   'rescue Gem::MissingSpecError; end }')


def parse_gem_versions(text: str) -> dict:
    """{gem: version} from RUBY_GEM_SCRIPT's "NAME VERSION" lines; other lines and gems not in
    RUBY_GEMS are ignored."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in RUBY_GEMS:
            out[parts[0]] = parts[1]
    return out


def ruby_gem_versions(ruby_path: str) -> dict:
    """{gem: version} of the RUBY_GEMS installed for this interpreter ({} if it cannot tell)."""
    out = _run([ruby_path, "-e", RUBY_GEM_SCRIPT, *RUBY_GEMS], timeout_s=20.0)
    return parse_gem_versions(out) if out else {}


def peer_versions(which=None) -> dict:
    """{peer: version} of the peer binaries found (PATH, then the sbin directories); with ruby,
    also {gem: version} of the RUBY_GEMS installed for it."""
    import shutil
    which = which or (lambda n: shutil.which(n) or shutil.which(n, path="/usr/local/sbin:/usr/sbin:/sbin"))
    out = {}
    for name, (argv, pattern) in PEER_VERSION_PROBES.items():
        path = which(argv[0])
        if not path:
            continue
        try:
            proc = subprocess.run([path] + argv[1:], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(pattern, proc.stdout + proc.stderr)
        if m:
            out[name] = m.group(1)
            if name == "ruby":
                out.update(ruby_gem_versions(path))
    return out


def cmake_cache(build_dir: str) -> dict:
    """KEY -> value from build_dir/CMakeCache.txt ({} if absent)."""
    values = {}
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt"), encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^([A-Za-z0-9_]+):[A-Z]+=(.*)$", line.rstrip("\n"))
                if m:
                    values[m.group(1)] = m.group(2)
    except OSError:
        pass
    return values


def compile_flags(build_dir: str) -> str | None:
    """The flags one server source is really compiled with (compile_commands.json), or None.

    CMakeCache's CMAKE_CXX_FLAGS* miss per-target options (target_compile_options);
    the compile database has the whole command. Output, input and -I paths are dropped.
    """
    import json
    import shlex
    try:
        with open(os.path.join(build_dir, "compile_commands.json"), encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError):
        return None
    servers = [e for e in entries if "/servers/" in e.get("file", "")] or entries
    if not servers or "command" not in servers[0]:
        return None
    argv = shlex.split(servers[0]["command"])[1:]
    keep, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a.startswith(("-I", "-D", "-isystem")) and not a.startswith("-DNDEBUG"):
            continue
        keep.append(a)
    return " ".join(keep)


def compiler_info(build_dir: str) -> dict:
    cache = cmake_cache(build_dir)
    compiler = cache.get("CMAKE_CXX_COMPILER") or "c++"
    version = _run([compiler, "--version"])
    build_type = cache.get("CMAKE_BUILD_TYPE") or None
    flags = " ".join(x for x in (cache.get("CMAKE_CXX_FLAGS", "").strip(),
                                 cache.get(f"CMAKE_CXX_FLAGS_{(build_type or 'RELEASE').upper()}", "").strip())
                     if x)
    return {
        "compiler": version.splitlines()[0].strip() if version else None,
        "cxx_compile_flags": compile_flags(build_dir),
        "compiler_path": cache.get("CMAKE_CXX_COMPILER"),
        "cxx_flags": flags if cache else None,
        "build_type": build_type,
    }


def _git(argv: list[str], repo: str) -> tuple[str | None, str | None]:
    """(stdout, None) or (None, why git failed): a failure is recorded, never silent. (A
    repository owned by another user makes git refuse with "dubious ownership", which used to
    leave git_commit null with no trace of why.)"""
    try:
        out = subprocess.run(["git"] + argv, cwd=repo, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git {' '.join(argv)}: {exc}"
    if out.returncode != 0:
        return None, f"git {' '.join(argv)}: exit {out.returncode}: {out.stderr.strip()[:300]}"
    return out.stdout, None


def git_info(repo: str) -> dict:
    """git_commit, git_dirty, and for a dirty tree the changed files and the sha256 of
    `git diff HEAD` (tracked changes; untracked files are listed with "??"). results/ is
    excluded: a run writes into it, and that is not a change to the code measured."""
    commit, err = _git(["rev-parse", "HEAD"], repo)
    status, err2 = _git(["status", "--porcelain", "--", ".", ":(exclude)results"], repo)
    info = {"git_commit": commit.strip() if commit else None,
            "git_dirty": None if status is None else bool(status.strip())}
    errors = [e for e in (err, err2) if e]
    if info["git_dirty"]:
        info["git_dirty_files"] = [ln[3:] for ln in status.splitlines() if ln.strip()]
        diff, err3 = _git(["diff", "HEAD", "--binary", "--", ".", ":(exclude)results"], repo)
        if diff is not None:
            info["git_diff_sha256"] = hashlib.sha256(diff.encode("utf-8", "surrogateescape")).hexdigest()
        else:
            errors.append(err3)
    if errors:
        info["git_error"] = "; ".join(errors)
    return info


def dirty_refusal(git: dict, allow_dirty: bool) -> str | None:
    """Why a reference run may not start from this tree, or None. --allow-dirty accepts a dirty
    tree (its files and diff hash are recorded); an unknown commit is never accepted."""
    if git.get("git_commit") is None:
        return ("cannot tell which commit is measured (" + (git.get("git_error") or "git gave no commit") +
                "); a reference run must record its commit")
    if git.get("git_dirty") is None:
        return "cannot tell whether the tree is clean (" + (git.get("git_error") or "git status failed") + ")"
    if git["git_dirty"] and not allow_dirty:
        files = git.get("git_dirty_files") or []
        return (f"the tree has uncommitted changes ({', '.join(files[:8])}{' ...' if len(files) > 8 else ''});"
                " a reference run must come from a clean commit: commit or stash them, or pass"
                " --allow-dirty (the changed files and the diff's sha256 are then recorded in meta.json)")
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_identity(cpuinfo_text: str | None = None) -> dict:
    """Vendor, family, model number, stepping and microcode of the first CPU, and whether the
    kernel runs as a guest (the "hypervisor" flag)."""
    if cpuinfo_text is None:
        cpuinfo_text = _read("/proc/cpuinfo") or ""
    first = cpuinfo_text.split("\n\n", 1)[0]

    def field(name):
        m = re.search(rf"^{name}\s*:\s*(.*)$", first, re.M)
        return m.group(1).strip() if m else None
    flags = (field("flags") or "").split()
    return {"cpu_vendor": field("vendor_id"), "cpu_family": field("cpu family"),
            "cpu_model_number": field("model"), "cpu_stepping": field("stepping"),
            "microcode": field("microcode"), "virtualized": "hypervisor" in flags}


def smt_siblings(cpus: str | None, virtualized: bool) -> dict:
    """{cpu: its thread_siblings_list} for the pinned CPUs, and what a guest cannot know."""
    out = {}
    for part in (cpus or "").split(","):
        part = part.strip()
        rng = range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1) if part else []
        for c in rng:
            out[str(c)] = _read(f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list")
    note = ("a guest sees only its vCPUs: whether two vCPUs share a host core (SMT) is not visible"
            " from inside" if virtualized else None)
    return {"siblings": out, "note": note}


def mitigations(root: str = "/sys/devices/system/cpu/vulnerabilities") -> dict:
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return {}
    return {n: _read(os.path.join(root, n)) for n in names}


SYSCTLS = ("net.core.somaxconn", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_max_tw_buckets",
           "net.ipv4.ip_local_port_range")


def sysctls() -> dict:
    out = {}
    for name in SYSCTLS:
        v = _read("/proc/sys/" + name.replace(".", "/"))
        out[name] = " ".join(v.split()) if v is not None else None
    return out


def kernel_config_option(option: str) -> str | None:
    """'y', 'm', 'not set', or None when no kernel config is readable (/boot, /proc/config.gz)."""
    text = _read(f"/boot/config-{platform.release()}")
    if text is None:
        try:
            with gzip.open("/proc/config.gz", "rt", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return None
    m = re.search(rf"^{option}=(\S+)$", text, re.M)
    if m:
        return m.group(1)
    return "not set" if re.search(rf"^# {option} is not set$", text, re.M) else None


def perf_info() -> dict:
    """perf's version and whether hardware counters exist here (a guest often has none: then
    `perf stat -e instructions` prints "<not supported>" and callgrind is the fallback for
    user-space instruction counts)."""
    version = _run(["perf", "--version"])
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                             capture_output=True, text=True, timeout=10)
        text = out.stderr
        hw = None if out.returncode != 0 and not text else ("not supported" not in text and "<not" not in text)
    except (OSError, subprocess.TimeoutExpired):
        hw = None
    return {"perf_version": version.strip() if version else None, "hardware_counters": hw,
            "instruction_counts": "perf" if hw else "callgrind (valgrind --tool=callgrind)"}


# Environment variables the server and the generators inherit that change how they allocate or
# link: glibc's malloc settings (MALLOC_ARENA_MAX, ...), its tunables, a preloaded library.
RUNTIME_ENV_NAMES = ("GLIBC_TUNABLES", "LD_PRELOAD", "LD_BIND_NOW")
RUNTIME_ENV_PREFIXES = ("MALLOC_",)


def runtime_env(environ=None) -> dict:
    """{name: value} of the set variables RUNTIME_ENV_NAMES and RUNTIME_ENV_PREFIXES name, sorted."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ)
            if k in RUNTIME_ENV_NAMES or k.startswith(RUNTIME_ENV_PREFIXES)}


def limits_and_memory() -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    thp = _read("/sys/kernel/mm/transparent_hugepage/enabled")
    defrag = _read("/sys/kernel/mm/transparent_hugepage/defrag")
    sel = (lambda t: (re.search(r"\[(\w+)\]", t).group(1) if t and re.search(r"\[(\w+)\]", t) else t))
    return {"ulimit_nofile": {"soft": soft, "hard": hard}, "transparent_hugepage": sel(thp),
            "transparent_hugepage_defrag": sel(defrag), "runtime_env": runtime_env()}


def provenance(server_cpus: str | None, client_cpus: str | None) -> dict:
    """The machine's fingerprint and settings that change timings (all best effort)."""
    ident = cpu_identity()
    pinned = ",".join(c for c in (server_cpus, client_cpus) if c)
    return {**ident, "smt": smt_siblings(pinned, ident["virtualized"]),
            "mitigations": mitigations(), "sysctl": sysctls(), **limits_and_memory(),
            "irq_time_accounting": kernel_config_option("CONFIG_IRQ_TIME_ACCOUNTING"),
            **perf_info()}


def collect(repo: str, build_dir: str, server_cpus: str, client_cpus: str,
            wrk_bin: str | None = None) -> dict:
    """meta.json's "env" object."""
    model, count = cpu_info()
    upstream, full = package_versions()
    upstream.update(peer_versions())
    upstream["python"] = platform.python_version()
    if wrk_bin:
        out = _run([wrk_bin, "-v"])  # prints version then usage; exits 1, so read stdout anyway
        if out is None:
            try:
                out = subprocess.run([wrk_bin, "-v"], capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
        m = re.search(r"wrk (\S+)", out or "")
        if m:
            full["wrk_binary"] = m.group(1)
    env = {
        "cpu_model": model, "cpu_count": count,
        "kernel": platform.release(), "kernel_version": platform.version(),
        **compiler_info(build_dir),
        "server_cpus": server_cpus, "client_cpus": client_cpus,
        "versions": upstream, "versions_debian": full,
        **git_info(repo),
        "hostname": socket.gethostname(),
        **provenance(server_cpus, client_cpus),
        "cpu": cpu_settings(server_cpus, client_cpus),
    }
    return env


def cpu_settings(server_cpus: str | None, client_cpus: str | None) -> dict:
    """env.cpu: the topology and frequency settings of the CPUs the run may use, what pyperf's
    system check would warn about, and the layout the topology gives (its reason; whether the
    run used it or CPU lists given by the scenario or a flag)."""
    used: list[int] = []
    for spec in (server_cpus, client_cpus):
        try:
            used += scenario.cpu_list(spec) if spec else []
        except ValueError:
            pass
    out = cputopo.describe(sorted(set(used)))
    auto = cpulayout.automatic(cputopo.read(out["sysfs_root"]))
    out["layout"] = {"server_cpus": server_cpus, "client_cpus": client_cpus,
                     "automatic": auto.to_json(),
                     "is_automatic": (server_cpus, client_cpus) == (auto.server_cpus, auto.client_cpus)}
    return out
