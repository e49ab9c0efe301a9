"""wrk output parsing, on saved outputs of real wrk 4.1.0 runs (tests/harness/fixtures/wrk/)."""
import os
import unittest

from common import FIXTURES
from cbenchlib.run import wrk

W = os.path.join(FIXTURES, "wrk")


def read(name):
    with open(os.path.join(W, name)) as f:
        return f.read()


class ParseWrk(unittest.TestCase):
    def test_lua_json_line(self):
        r = wrk.parse(read("lua-ok.txt"))
        self.assertEqual(r["source"], "lua")
        self.assertEqual(r["requests"], 161886)
        self.assertEqual(r["duration_us"], 1100012)
        self.assertEqual(r["bytes"], 21207066)
        self.assertAlmostEqual(r["req_per_s"], 161886 / 1.100012, places=1)
        self.assertEqual(r["errors"], {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0})
        self.assertEqual(r["non_2xx"], 0)
        lat = r["latency_us"]
        self.assertEqual((lat["mean"], lat["stdev"], lat["max"]), (569.119, 1106.0, 8089.0))
        self.assertEqual((lat["p50"], lat["p75"], lat["p90"], lat["p99"], lat["p99.9"]),
                         (47.0, 305.0, 2381.0, 4339.0, 6994.0))
        self.assertFalse(r["latency_is_per_batch"])
        self.assertNotIn("latency_note", r)

    def test_pipelined_marks_batches_and_drops_wrks_broken_statistics(self):
        # A real wrk run at depth 16: its p75..p99.9 came out 0 (see wrk.latency_problem).
        r = wrk.parse(read("lua-pipelined.txt"), pipeline=16)
        self.assertTrue(r["latency_is_per_batch"])
        self.assertEqual(r["requests"], 538560)
        self.assertEqual(r["latency_us"]["max"], 5600.0)
        for k in ("mean", "stdev", "p50", "p99"):
            self.assertIsNone(r["latency_us"][k])
        self.assertIn("pipelining", r["latency_note"])

    def test_inconsistent_percentiles_without_pipelining_are_dropped(self):
        text = read("lua-ok.txt").replace('"p99.9":6994', '"p99.9":0')
        r = wrk.parse(text)
        self.assertIsNone(r["latency_us"]["p50"])
        self.assertEqual(r["latency_us"]["max"], 8089.0)
        self.assertIn("inconsistent", r["latency_note"])

    def test_text_fallback_with_non_2xx_and_latency_distribution(self):
        r = wrk.parse(read("text-non2xx-latency.txt"))
        self.assertEqual(r["source"], "text")
        self.assertEqual(r["requests"], 45069)
        self.assertEqual(r["errors"]["status"], 45069)
        self.assertEqual(r["non_2xx"], 45069)
        self.assertEqual(r["duration_us"], 1100000)
        self.assertAlmostEqual(r["latency_us"]["mean"], 313.99)
        self.assertAlmostEqual(r["latency_us"]["max"], 5510.0)
        self.assertAlmostEqual(r["latency_us"]["p50"], 27.0)
        self.assertAlmostEqual(r["latency_us"]["p99"], 3920.0)
        self.assertIsNone(r["latency_us"]["p99.9"])
        self.assertEqual(r["bytes"], int(3.05 * 1024 * 1024))

    def test_text_fallback_with_socket_errors(self):
        r = wrk.parse(read("text-socket-errors.txt"))
        self.assertEqual(r["requests"], 1999)
        self.assertEqual(r["errors"], {"connect": 0, "read": 4, "write": 38574, "status": 0, "timeout": 0})
        self.assertEqual(r["latency_us"]["p50"], None)

    def test_unusable_outputs_raise_with_their_last_lines(self):
        with self.assertRaises(wrk.WrkOutputError) as cm:
            wrk.parse(read("unable-to-connect.txt"))
        self.assertIn("unable to connect", str(cm.exception))
        with self.assertRaises(wrk.WrkOutputError) as cm:
            wrk.parse(read("empty.txt"))
        self.assertIn("empty", str(cm.exception))

    def test_broken_json_line_falls_back_to_text(self):
        text = read("lua-ok.txt").replace('"requests":161886', '"requests":')
        r = wrk.parse(text)
        self.assertEqual(r["source"], "text")
        self.assertEqual(r["requests"], 161886)

    def test_json_with_a_non_number_is_refused(self):
        text = read("lua-ok.txt").replace('"requests":161886', '"requests":"many"')
        with self.assertRaises(wrk.WrkOutputError):
            wrk.parse(text)

    def test_command(self):
        argv = wrk.command("wrk", "http://127.0.0.1:1/x", 2, 10, 3, 10, pipeline=16, script="s.lua")
        self.assertEqual(argv, ["wrk", "-t2", "-c10", "-d3s", "--timeout", "10s", "-s", "s.lua",
                                "http://127.0.0.1:1/x", "--", "pipeline=16"])
        self.assertTrue(os.path.exists(wrk.LUA_SCRIPT))


if __name__ == "__main__":
    unittest.main()
