"""A run's log archive (scripts/cbenchlib/format/runlogs.py, results/SCHEMA.md "Logs of a run"):
pack/read round trip, identical bytes on re-packing, loose files over archive members, resume."""
import os
import subprocess
import tempfile
import unittest

from common import REPO  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.format import runlogs

FILES = {
    "logs/0000-r0-pull-loop-t1-t2-c10-wrk.txt": b"Running 2s test\nRequests/sec: 1234.5\n",
    "logs/0000-r0-pull-loop-t1-t2-c10-wrk.err": b"",
    "logs/0000-r0-pull-loop-t1-t2-c10-server.log": "ready port 4242 \u00e9\n".encode(),
    "logs/0001-r0-" + "x" * 120 + "-perf.txt": b"long name (PAX header)\n",
    "profile/index.jsonl": b'{"point_id": "a", "folded": "profile/0000-a.folded.gz"}\n',
    "profile/0000-a.folded.gz": bytes(range(256)),
}


def make_run(d, files=FILES):
    for rel, data in files.items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    for plain in ("meta.json", "points.jsonl", "charts/charts.json"):
        os.makedirs(os.path.dirname(os.path.join(d, plain)), exist_ok=True)
        with open(os.path.join(d, plain), "w") as f:
            f.write("{}\n")


class RoundTrip(unittest.TestCase):
    def test_pack_then_read_every_member(self):
        with tempfile.TemporaryDirectory() as d:
            make_run(d)
            path = runlogs.pack(d)
            self.assertEqual(path, os.path.join(d, "logs.tar.xz"))
            # the loose logs are gone, the plain files stay
            self.assertEqual(sorted(os.listdir(d)), ["charts", "logs.tar.xz", "meta.json", "points.jsonl"])
            self.assertEqual(runlogs.names(d), sorted(FILES))
            self.assertEqual(runlogs.names(d, "profile/"), ["profile/0000-a.folded.gz", "profile/index.jsonl"])
            for rel, data in FILES.items():
                self.assertTrue(runlogs.exists(d, rel))
                self.assertEqual(runlogs.read_bytes(d, rel), data)
            self.assertEqual(runlogs.read_text(d, "logs/0000-r0-pull-loop-t1-t2-c10-server.log"), "ready port 4242 \u00e9\n")
            self.assertFalse(runlogs.exists(d, "logs/nope.txt"))
            with self.assertRaises(FileNotFoundError):
                runlogs.read_bytes(d, "logs/nope.txt")
            with self.assertRaises(ValueError):
                runlogs.read_bytes(d, "../outside")

    def test_tar_extracts_it_without_python(self):
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as dest:
            make_run(d)
            runlogs.pack(d)
            r = subprocess.run(["tar", "-xJf", os.path.join(d, "logs.tar.xz"), "-C", dest],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            for rel, data in FILES.items():
                with open(os.path.join(dest, rel), "rb") as f:
                    self.assertEqual(f.read(), data)

    def test_run_without_logs(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "logs"))
            self.assertIsNone(runlogs.pack(d))
            self.assertEqual(os.listdir(d), [])
            self.assertEqual(runlogs.names(d), [])


class Deterministic(unittest.TestCase):
    def test_same_logs_same_bytes(self):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            make_run(a)
            make_run(b, dict(reversed(list(FILES.items()))))  # written in another order
            os.utime(os.path.join(b, "logs"), (1, 1))
            runlogs.pack(a)
            runlogs.pack(b)
            with open(os.path.join(a, "logs.tar.xz"), "rb") as f1, open(os.path.join(b, "logs.tar.xz"), "rb") as f2:
                self.assertEqual(f1.read(), f2.read())

    def test_pack_is_idempotent_and_unpack_repack_is_identical(self):
        with tempfile.TemporaryDirectory() as d:
            make_run(d)
            path = runlogs.pack(d)
            with open(path, "rb") as f:
                first = f.read()
            st = os.stat(path)
            self.assertEqual(runlogs.pack(d), path)  # nothing loose: the archive is not rewritten
            self.assertEqual(os.stat(path).st_mtime_ns, st.st_mtime_ns)
            self.assertEqual(runlogs.unpack(d), len(FILES))  # what --resume does
            self.assertFalse(os.path.exists(path))
            with open(os.path.join(d, "profile/index.jsonl"), "rb") as f:
                self.assertEqual(f.read(), FILES["profile/index.jsonl"])
            runlogs.pack(d)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), first)


class LooseFilesWin(unittest.TestCase):
    def test_loose_file_over_member_then_merged_on_pack(self):
        with tempfile.TemporaryDirectory() as d:
            make_run(d)
            runlogs.pack(d)
            wrk = "logs/0000-r0-pull-loop-t1-t2-c10-wrk.txt"
            # a resumed sweep writes again: a new file, and one that replaces an archived one
            make_run(d, {wrk: b"rewritten\n", "logs/0002-r1-new-wrk.txt": b"new\n"})
            self.assertEqual(runlogs.read_bytes(d, wrk), b"rewritten\n")
            self.assertEqual(runlogs.read_text(d, "logs/0002-r1-new-wrk.txt"), "new\n")
            self.assertEqual(runlogs.names(d, "logs/0002"), ["logs/0002-r1-new-wrk.txt"])
            self.assertEqual(len(runlogs.names(d)), len(FILES) + 1)
            runlogs.pack(d)
            self.assertFalse(os.path.exists(os.path.join(d, "logs")))
            self.assertEqual(runlogs.read_bytes(d, wrk), b"rewritten\n")
            self.assertEqual(runlogs.read_bytes(d, "logs/0002-r1-new-wrk.txt"), b"new\n")
            self.assertEqual(runlogs.read_bytes(d, "profile/index.jsonl"), FILES["profile/index.jsonl"])


if __name__ == "__main__":
    unittest.main()
