"""chartset.panels: a family with more variants than MAX_PANEL_ROWS is split by queues and --gvl
into small-multiple panels; smaller families keep one panel."""
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)

from cbenchlib.render import chartset as charts
from cbenchlib.analysis.runload import Row


def row(model, threads, queues=None, gvl=False):
    key = f"{model} t{threads} {queues or ''}{' gvl' if gvl else ''}".strip()
    return Row(key, None, "model", model, threads, queues, gvl, None, (), {})


class TestPanels(unittest.TestCase):
    def test_split_only_crowded_families(self):
        wp = [row("worker-pool", t, q, g) for t in (4, 8) for q in ("shared", "per-worker") for g in (False, True)]
        wp += [row("worker-pool", 1, "shared"), row("worker-pool", 1, "shared", True)]
        small = [row("pull-loop", 1), row("pull-loop", 1, gvl=True)]
        p = charts.panels(wp + small)
        self.assertEqual(len(wp), 10)
        self.assertEqual(sorted(set(p[r.key] for r in wp)),
                         ["worker-pool per-worker", "worker-pool per-worker gvl", "worker-pool shared",
                          "worker-pool shared gvl"])
        self.assertEqual({p[r.key] for r in small}, {"pull-loop"})
        for r in wp:
            self.assertLessEqual(sum(1 for k in wp if p[k.key] == p[r.key]), charts.MAX_PANEL_ROWS)


if __name__ == "__main__":
    unittest.main()
