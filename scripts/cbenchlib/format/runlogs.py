"""The one owner of a run's log archive (results/SCHEMA.md, "Logs of a run").

A sweep writes its per-repetition files as plain files while it runs: `logs/` (server output,
wrk/cbench-load raw output and `.err`, perf syscall counts, mechanism counters, rendered peer
configs) and, with `--profile`, `profile/` (index.jsonl and the folded stacks). When the run
finishes, `pack` moves them into ONE archive per run, `logs.tar.xz`, whose members keep their
paths relative to the run directory (`logs/0000-r0-...-wrk.txt`: the paths points.jsonl records
under `logs`). `points.jsonl`, `meta.json` and `charts/` are never archived.

Readers go through `exists`, `read_bytes`, `read_text` and `names`: a loose file wins over an
archive member of the same path, so a sweep that is still writing (or a resumed run) reads what
it wrote. `unpack` turns the archive back into loose files (what `--resume` does first, so
append-only files such as profile/index.jsonl continue where they were).

The archive is deterministic: members sorted by path, regular files only, mtime 0, uid/gid 0,
no user names, mode 0644, xz preset 6; packing an unchanged run gives identical bytes.

    PYTHONPATH=scripts python3 -m cbenchlib.format.runlogs pack RUN...      # archive loose logs
    PYTHONPATH=scripts python3 -m cbenchlib.format.runlogs ls RUN [PREFIX]  # list the logs
    PYTHONPATH=scripts python3 -m cbenchlib.format.runlogs cat RUN MEMBER   # print one
    PYTHONPATH=scripts python3 -m cbenchlib.format.runlogs unpack RUN       # back to loose files
or without Python: tar -xJf RUN/logs.tar.xz -C DEST
"""
from __future__ import annotations

import argparse
import io
import lzma
import os
import sys
import tarfile

ARCHIVE = "logs.tar.xz"
ARCHIVED_DIRS = ("logs", "profile")  # top-level directories of a run that go into the archive
XZ_PRESET = 6

_cache: dict = {}  # archive path -> ((mtime_ns, size), {member: bytes}); the last one read


def archive_path(run_dir: str) -> str:
    return os.path.join(run_dir, ARCHIVE)


def _norm(relpath: str) -> str:
    rel = os.path.normpath(relpath).replace(os.sep, "/")
    if rel.startswith("../") or rel == ".." or os.path.isabs(rel):
        raise ValueError(f"{relpath!r} is not a path inside the run directory")
    return rel


def _members(run_dir: str) -> dict[str, bytes]:
    """Every member of RUN_DIR's archive ({} without one), read once and cached."""
    path = archive_path(run_dir)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    key = (st.st_mtime_ns, st.st_size)
    hit = _cache.get(path)
    if hit and hit[0] == key:
        return hit[1]
    out = {}
    with tarfile.open(path, "r:xz") as tar:
        for info in tar:
            if info.isfile():
                out[info.name] = tar.extractfile(info).read()
    _cache.clear()
    _cache[path] = (key, out)
    return out


def _loose(run_dir: str) -> dict[str, str]:
    """{relpath: absolute path} of the loose files under the archived directories."""
    out = {}
    for top in ARCHIVED_DIRS:
        base = os.path.join(run_dir, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in filenames:
                full = os.path.join(dirpath, name)
                if os.path.isfile(full) and not os.path.islink(full):
                    out[os.path.relpath(full, run_dir).replace(os.sep, "/")] = full
    return out


def exists(run_dir: str, relpath: str) -> bool:
    rel = _norm(relpath)
    return os.path.isfile(os.path.join(run_dir, rel)) or rel in _members(run_dir)


def read_bytes(run_dir: str, relpath: str) -> bytes:
    """The content of RELPATH (e.g. a point's `logs.wrk`): the loose file if there is one, else
    the archive member; FileNotFoundError if neither."""
    rel = _norm(relpath)
    loose = os.path.join(run_dir, rel)
    if os.path.isfile(loose):
        with open(loose, "rb") as f:
            return f.read()
    members = _members(run_dir)
    if rel not in members:
        raise FileNotFoundError(f"{loose} (neither a file nor a member of {archive_path(run_dir)})")
    return members[rel]


def read_text(run_dir: str, relpath: str, errors: str = "replace") -> str:
    return read_bytes(run_dir, relpath).decode("utf-8", errors)


def names(run_dir: str, prefix: str = "") -> list[str]:
    """Sorted relative paths of every log (loose or archived) starting with PREFIX."""
    found = set(_members(run_dir)) | set(_loose(run_dir))
    return sorted(n for n in found if n.startswith(prefix))


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(files[name]))
    return lzma.compress(raw.getvalue(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET)


def pack(run_dir: str) -> str | None:
    """Move RUN_DIR's loose logs into its archive (merged with the members already there; a
    loose file replaces a member of the same path), then remove the loose files and their
    emptied directories. Idempotent: without loose files it changes nothing. Returns the
    archive's path, or None when the run has no logs at all."""
    loose = _loose(run_dir)
    path = archive_path(run_dir)
    if not loose:
        _remove_empty_dirs(run_dir)
        return path if os.path.exists(path) else None
    files = dict(_members(run_dir))
    for rel, full in loose.items():
        with open(full, "rb") as f:
            files[rel] = f.read()
    data = _tar_bytes(files)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _cache.pop(path, None)
    if set(_members(run_dir)) != set(files):  # read it back before deleting anything
        raise OSError(f"{path}: the archive written does not hold every log")
    for full in loose.values():
        os.unlink(full)
    _remove_empty_dirs(run_dir)
    return path


def _remove_empty_dirs(run_dir: str) -> None:
    for top in ARCHIVED_DIRS:
        base = os.path.join(run_dir, top)
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass  # not empty (a symlink or other non-file we leave alone)


def unpack(run_dir: str) -> int:
    """Turn the archive back into loose files (a loose file already there is kept), then
    remove the archive; returns how many files were written."""
    path = archive_path(run_dir)
    members = _members(run_dir)
    n = 0
    for rel, data in members.items():
        full = os.path.join(run_dir, _norm(rel))
        if os.path.exists(full):
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        n += 1
    if os.path.exists(path):
        os.unlink(path)
        _cache.pop(path, None)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    return n


def describe(run_dir: str) -> str:
    """Where a human finds the run's logs (for messages): its archive once packed, else logs/."""
    if os.path.exists(archive_path(run_dir)) and not _loose(run_dir):
        return archive_path(run_dir)
    return os.path.join(run_dir, "logs")


def extract(run_dir: str, dest: str) -> int:
    """Write every log of RUN_DIR (loose or archived) under DEST with its relative path."""
    n = 0
    for rel in names(run_dir):
        full = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(read_bytes(run_dir, rel))
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m cbenchlib.format.runlogs", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("pack", help="archive the loose logs of each RUN (idempotent)")
    sp.add_argument("runs", nargs="+", metavar="RUN")
    sp = sub.add_parser("unpack", help="archive back to loose files")
    sp.add_argument("run", metavar="RUN")
    sp = sub.add_parser("ls", help="list a run's logs")
    sp.add_argument("run", metavar="RUN")
    sp.add_argument("prefix", nargs="?", default="")
    sp = sub.add_parser("cat", help="print one log (e.g. a point's logs.wrk path)")
    sp.add_argument("run", metavar="RUN")
    sp.add_argument("member")
    sp = sub.add_parser("extract", help="copy every log of RUN under DEST")
    sp.add_argument("run", metavar="RUN")
    sp.add_argument("dest")
    a = p.parse_args(argv)
    if a.cmd == "pack":
        for run in a.runs:
            print(f"{run}: {pack(run) or 'no logs'}")
    elif a.cmd == "unpack":
        print(f"{a.run}: {unpack(a.run)} files")
    elif a.cmd == "ls":
        print("\n".join(names(a.run, a.prefix)))
    elif a.cmd == "cat":
        sys.stdout.buffer.write(read_bytes(a.run, a.member))
    elif a.cmd == "extract":
        print(f"{a.run}: {extract(a.run, a.dest)} files in {a.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
