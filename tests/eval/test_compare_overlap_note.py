"""comparison.md's † note: overlapping Wilson intervals are a conservative screen, not a significance test. Both
backbones score the same test images, so a paired (McNemar) test can find a † difference significant; the note
said such a Δ was 'no evidence of a difference'."""

from __future__ import annotations

import math

from geodino.eval.compare import comparison_markdown
from geodino.eval.results import wilson_interval


def test_an_overlapping_pair_can_be_a_significant_paired_difference():
    n = 400
    main = [{"task": "t", "metric": "knn_top1", "value": 0.70, "ci95": list(wilson_interval(0.70, n))}]
    other = [{"task": "t", "metric": "knn_top1", "value": 0.75, "ci95": list(wilson_interval(0.75, n))}]
    md = comparison_markdown([("a", main), ("b", other)], "s")
    assert "| t | knn_top1 | 0.7000 | 0.7500 | +0.0500 † |" in md  # the intervals overlap
    # the 20 images that differ all favour b: McNemar's exact two-sided p = 2 * 0.5**20 (< 1e-5)
    p = 2 * math.comb(20, 0) * 0.5**20
    assert p < 1e-5
    assert "no evidence of a difference" not in md  # before: the note said so of this Δ
    assert "Overlap is a conservative screen, not a test" in md and "McNemar" in md
