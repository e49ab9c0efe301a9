"""The two builds `cbench regress` compares: the candidate's build directory brought up to date,
and the baseline commit's cbench-server built from `git archive` beside it (kept for the next run).
GateError: the gate cannot run (git, build or sweep failure), exit status 2.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time

from ..format.paths import REPO_ROOT
from ..run import envinfo

DEFAULT_SERVER_BIN = os.path.join(REPO_ROOT, "build", "cbench-server")


class GateError(Exception):
    """The gate cannot run (git, build or sweep failure): exit status 2."""


# -- builds ----------------------------------------------------------------------------------
def git(argv: list[str]) -> str:
    proc = subprocess.run(["git", "-C", REPO_ROOT] + argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GateError(f"git {' '.join(argv)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout.strip()


def _logged(argv: list[str], log_path: str, **kw) -> None:
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, **kw)
    if proc.returncode != 0:
        raise GateError(f"{shlex.join(argv)} exited with status {proc.returncode}; see {log_path}")


def build_candidate(server_bin: str, jobs: int, log_path: str) -> bool:
    """Brings the candidate's build directory up to date when it is one (True), else leaves the
    binary as given (False: nothing says which source it was built from)."""
    build_dir = os.path.dirname(server_bin)
    built = False
    if os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        _logged(["cmake", "--build", build_dir, "-j", str(jobs), "--target", "cbench-server"], log_path)
        built = True
    elif server_bin == DEFAULT_SERVER_BIN:
        _logged(["cmake", "-S", REPO_ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"], log_path)
        _logged(["cmake", "--build", build_dir, "-j", str(jobs), "--target", "cbench-server"], log_path)
        built = True
    if not os.access(server_bin, os.X_OK):
        raise GateError(f"candidate server not found: {server_bin}")
    return built


def build_baseline(sha: str, out: str, candidate_bin: str, candidate_built: bool, jobs: int) -> tuple[str, str]:
    """(binary, how it was obtained) of the baseline commit SHA, kept in OUT/<sha[:12]>/."""
    d = os.path.join(out, sha[:12])
    binary, stamp = os.path.join(d, "cbench-server"), os.path.join(d, "baseline.json")
    if os.path.exists(stamp) and os.access(binary, os.X_OK):
        with open(stamp, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("commit") == sha:
            return binary, meta.get("how", "built") + " (kept from an earlier run)"
    os.makedirs(d, exist_ok=True)
    log_path = os.path.join(d, "build.log")
    git = envinfo.git_info(REPO_ROOT)
    if candidate_built and git.get("git_commit") == sha and git.get("git_dirty") is False:
        # The candidate was just built from this clean tree: it is the baseline's build.
        shutil.copy2(candidate_bin, binary)
        how = f"copied from {os.path.relpath(candidate_bin, REPO_ROOT)} (REV is HEAD and the tree is clean)"
    else:
        src, build = os.path.join(d, "src"), os.path.join(d, "build")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        print(f"regress: building the baseline {sha[:12]} in {os.path.relpath(d, REPO_ROOT)}"
              f" (log: {os.path.relpath(log_path, REPO_ROOT)})", flush=True)
        archive = subprocess.Popen(["git", "-C", REPO_ROOT, "archive", "--format=tar", sha], stdout=subprocess.PIPE)
        untar = subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout)
        archive.stdout.close()
        if archive.wait() != 0 or untar.returncode != 0:
            raise GateError(f"git archive {sha} | tar -x -C {src} failed")
        _logged(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release"], log_path)
        _logged(["cmake", "--build", build, "-j", str(jobs), "--target", "cbench-server"], log_path)
        shutil.copy2(os.path.join(build, "cbench-server"), binary)
        how = "built from git archive (Release, cbench-server only)"
    with open(stamp, "w", encoding="utf-8") as f:
        json.dump({"commit": sha, "how": how, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
    return binary, how
