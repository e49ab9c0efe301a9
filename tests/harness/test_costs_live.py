"""One live check of `cbench costs`' method (run/costs.py): callgrind's instructions per request
of a single-threaded model are positive and repeat (two pairs of fresh servers within 0.5%), and
strace's system calls per request are positive. Bounded: epoll-reactor, 1000 and 2000 one-connection
requests, four servers under valgrind and two under strace, about 15 s. Skips when the binary or
valgrind is missing, unless CBENCH_REQUIRE_BINARY=1 (ctest's harness_costs_live); harness_unit
skips it (CBENCH_SKIP_E2E)."""
import os
import shutil
import tempfile
import unittest

from common import REPO
from cbenchlib.format import costs as costs_format
from cbenchlib.run import costs

SERVER_BIN = os.environ.get("CBENCH_SERVER_BIN") or os.path.join(REPO, "build", "cbench-server")
REQUIRE = os.environ.get("CBENCH_REQUIRE_BINARY") == "1"
COUNTS = (1000, 2000)  # enough requests that a timer tick more or less (wall-time work) stays well under the tolerance
REPEAT_TOLERANCE_PCT = 0.5


class LiveCosts(unittest.TestCase):
    def setUp(self):
        if os.environ.get("CBENCH_SKIP_E2E") == "1":
            self.skipTest("CBENCH_SKIP_E2E=1 (ctest runs this as harness_costs_live)")
        missing = [what for what, ok in ((SERVER_BIN, os.path.exists(SERVER_BIN)),
                                          ("valgrind", shutil.which("valgrind")),
                                          ("strace", shutil.which("strace"))) if not ok]
        if missing:
            if REQUIRE:
                self.fail(f"CBENCH_REQUIRE_BINARY=1 but missing: {missing} (build; scripts/deps.sh)")
            self.skipTest(f"missing: {missing}")
        self.work = tempfile.mkdtemp(prefix="cbench-costs-test-")
        self.addCleanup(shutil.rmtree, self.work, True)

    def test_instructions_per_request_repeat(self):
        row = {"model": "epoll-reactor", "threads": 1}
        rec = costs.measure(row, costs_format.server_argv(SERVER_BIN, row), COUNTS, 1, self.work, None, True)
        self.assertEqual(rec["failures"], {})
        d = rec["derived"]
        self.assertGreater(d["instructions_per_req"], 0)
        self.assertLessEqual(d["repeat_diff_pct"], REPEAT_TOLERANCE_PCT,
                             f"instructions/request {d['instructions_per_req']} then {d['instructions_per_req_repeat']}")
        self.assertGreater(d["syscalls_per_req"], 0)
        self.assertGreater(d["ctx_switches_per_req"], 0)


if __name__ == "__main__":
    unittest.main()
