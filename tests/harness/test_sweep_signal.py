"""An interrupt whose raise was swallowed (the handler ran inside an at-fork callback or a
finaliser, which print and ignore exceptions) still stops the sweep at the next point."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from cbenchlib.run import sweepexec  # noqa: E402


class SwallowedInterrupt(unittest.TestCase):
    def tearDown(self):
        sweepexec.note_signal(None)

    def test_the_point_loop_reraises_a_noted_signal(self):
        cases = [(None, None), (signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")]
        for signum, name in cases:
            with self.subTest(signum=signum):
                sweepexec.note_signal(signum)
                if signum is None:
                    sweepexec.raise_if_signalled()  # nothing noted: the loop goes on
                    continue
                with self.assertRaises(sweepexec.SweepInterrupted) as cm:
                    sweepexec.raise_if_signalled()
                self.assertEqual((cm.exception.signum, str(cm.exception)), (signum, name))


if __name__ == "__main__":
    unittest.main()
