"""sockstat: kernel TCP memory from /proc/net/sockstat for the idle point."""
import unittest

from common import REPO  # noqa: F401  (puts scripts/ on sys.path)
from cbenchlib.run import sockstat

LINES = "sockets: used 18\nTCP: inuse 3 orphan 0 tw 767 alloc 5 mem 12\nUDP: inuse 0 mem 0\n"


class Parse(unittest.TestCase):
    CASES = [
        ("the TCP line", LINES, {"tcp_inuse": 3, "tcp_orphan": 0, "tcp_tw": 767, "tcp_alloc": 5, "tcp_mem_pages": 12}),
        ("no TCP line", "sockets: used 18\nUDP: inuse 0 mem 0\n", {}),
        ("empty", "", {}),
    ]

    def test_table(self):
        for label, text, want in self.CASES:
            with self.subTest(label):
                self.assertEqual(sockstat.parse(text), want)


class IdleFields(unittest.TestCase):
    def test_difference_per_held_connection(self):
        f = sockstat.idle_fields({"tcp_mem_pages": 10}, {"tcp_mem_pages": 20}, 100)
        self.assertEqual(f["kernel_socket_bytes_per_conn"], round(10 * sockstat.PAGE_BYTES / 100, 1))

    def test_unknown_without_connections_or_file(self):
        self.assertIsNone(sockstat.idle_fields({"tcp_mem_pages": 1}, {"tcp_mem_pages": 2}, 0)["kernel_socket_bytes_per_conn"])
        self.assertIsNone(sockstat.idle_fields({}, {}, 10)["kernel_socket_bytes_per_conn"])

    def test_sample_reads_this_machine(self):
        s = sockstat.sample()
        self.assertIn("tcp_mem_pages", s, "this Linux has /proc/net/sockstat with a TCP line")


if __name__ == "__main__":
    unittest.main()
