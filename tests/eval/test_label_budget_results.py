"""Counts among the bookkeeping rows (n_train of a label budget, n_pixels, val_tiles, val_images) read as whole
numbers in results.md and comparison.md (180, not 180.0000); shares and losses keep four decimals."""

from __future__ import annotations

import math

from geodino.eval.compare import comparison_markdown
from geodino.eval.results import format_value, write_results
from geodino.eval.runner import SuiteConfig


def _row(metric: str, value: float, kind: str = "info") -> dict:
    return {"task": "seg", "dataset": "folder:img", "metric": metric, "kind": kind, "value": value,
            "backbone": "tiny", "config_hash": "abc"}  # fmt: skip


def test_results_md_shows_counts_as_integers(tmp_path):
    rows = [_row("mIoU", 0.5, "score"), _row("n_train", 180.0), _row("train_fraction", 0.1),
            _row("n_pixels", 65536.0), _row("val_images", 3.0), _row("train_loss", 0.25)]  # fmt: skip
    write_results(tmp_path, SuiteConfig(name="s"), "tiny", "fp", rows, "now", {}, {})
    md = (tmp_path / "results.md").read_text()
    assert "| seg | folder:img | n_train | 180 | `tiny` | `abc` |" in md
    assert "| seg | folder:img | n_pixels | 65536 |" in md and "| seg | folder:img | val_images | 3 |" in md
    assert "| seg | folder:img | train_fraction | 0.1000 |" in md and "| seg | folder:img | train_loss | 0.2500 |" in md
    assert "| seg | folder:img | mIoU | 0.5000 |" in md
    assert "180.0000" not in md


def test_comparison_md_shows_counts_as_integers():
    main = [_row("mIoU", 0.5, "score"), _row("n_train", 180.0), _row("train_fraction", 0.5)]
    other = [_row("mIoU", 0.6, "score"), _row("n_train", 90.0), _row("train_fraction", 0.25)]
    md = comparison_markdown([("main", main), ("other", other)], "s")
    assert "| seg | n_train | 180 | 90 |\n" in md and "| seg | train_fraction | 0.5000 | 0.2500 |\n" in md


def test_a_count_that_is_not_whole_keeps_its_decimals():
    assert format_value("n_train", 2.5) == "2.5000"  # not rounded away: it would hide a wrong count
    assert format_value("n_train", math.nan) == "nan" and format_value("n_train", None) == "-"
    assert format_value("mIoU", 1.0) == "1.0000"  # scores keep four decimals even when whole


def test_seeds_md_says_the_seed_draws_a_label_budget():
    from geodino.eval.runner_seeds import aggregate, seeds_markdown

    per_seed = {s: [("main", [_row("mIoU", 0.5 + s / 10, "score")])] for s in (0, 1)}
    md = " ".join(seeds_markdown(aggregate(per_seed), "s", [0, 1], ["main"]).split())
    assert "the training subset a label budget (train_fraction/train_per_class) keeps" in md
