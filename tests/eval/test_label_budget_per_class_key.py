"""A train_per_class above a class's training images is refused, in a suite, before any task runs (an image
folder's labels are known unread), in one line naming tasks.<name>.train_per_class (as parse_tasks names an
out-of-range budget)."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import InputError
from geodino.eval.runner import SuiteConfig, run_suite
from tests.eval.test_label_fraction import _suite


def test_suite_names_the_task_of_a_per_class_budget_too_large(tmp_path, tiny_probe_backbone):
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", "tasks.two_per_class.train_per_class=7"])
    with pytest.raises(InputError) as info:  # before any task runs (tasks full and half ran first, with warnings)
        run_suite(cfg, "tiny", tmp_path / "out")
    assert not (tmp_path / "out" / "full").exists()
    msg = str(info.value)
    assert msg.startswith("tasks.two_per_class.train_per_class=7 is more than the 6 training images of class")
    assert "\n" not in msg
