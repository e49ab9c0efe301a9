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


class TestFamilyPanels(unittest.TestCase):
    """chart_panels.family_panels: one panel per family in the fixed family order, never more than
    MAX_SERIES rows in a panel (worker pool's 12 rows split by model, then by --gvl)."""

    def test_no_panel_over_the_limit_and_families_in_order(self):
        from cbenchlib.render import chart_panels
        wp = [row("worker-pool", t, q, g) for t in (1, 4, 8) for q in ("shared", "per-worker") for g in (False, True)]
        sp = [row("selector-pool", t, None, g) for t in (1, 4, 8) for g in (False, True)]
        loop = [row("pull-loop", 1), row("epoll-reactor", 1)]
        pans = chart_panels.family_panels(sp + wp + loop)
        self.assertEqual(pans[0][1], "event loop")
        self.assertTrue(all(len(rows) <= chart_panels.MAX_SERIES for _t, _f, rows in pans), [(t, len(r)) for t, _f, r in pans])
        self.assertEqual(sum(len(rows) for _t, _f, rows in pans), len(wp) + len(sp) + len(loop))
        self.assertEqual([t for t, _f, _r in pans], ["event loop", "worker pool: selector-pool", "worker pool: worker-pool",
                                                    "worker pool: worker-pool --gvl"])


if __name__ == "__main__":
    unittest.main()
