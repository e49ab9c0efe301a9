"""The environment a run was measured in: meta.json's "env" object (SCHEMA.md).

Every probe is best effort: a missing tool or file gives null, never an error,
because a run without a field is still a run (readers treat null as unknown).
"""
from __future__ import annotations

import os
import platform
import re
import socket
import subprocess

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


# Peers (issue 7): the version the binary itself reports, which is what ran (a Debian package
# version says what dpkg installed, and nginx-light's would not name a locally built nginx).
PEER_VERSION_PROBES = {
    "nginx": (["nginx", "-v"], r"nginx/(\S+)"),        # "nginx version: nginx/1.22.1" (stderr)
    "h2o": (["h2o", "--version"], r"h2o version (\S+)"),  # "h2o version 2.2.5"
}


def peer_versions(which=None) -> dict:
    """{peer: version} of the peer binaries found (PATH, then the sbin directories)."""
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


def git_info(repo: str) -> dict:
    commit = _run(["git", "rev-parse", "HEAD"], cwd=repo)
    # results/ is excluded: a run writes into it, and that is not a change to the code measured.
    status = _run(["git", "status", "--porcelain", "--", ".", ":(exclude)results"], cwd=repo)
    return {"git_commit": commit.strip() if commit else None,
            "git_dirty": None if status is None else bool(status.strip())}


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
    }
    return env
