"""A train_per_class above a class's training images is refused, in a suite, in one line naming
tasks.<name>.train_per_class (the key parse_tasks names for an out-of-range budget too)."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import InputError
from geodino.eval.runner import SuiteConfig, run_suite
from tests.eval.test_label_fraction import _suite


def test_suite_names_the_task_of_a_per_class_budget_too_large(tmp_path, tiny_probe_backbone):
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", "tasks.two_per_class.train_per_class=7"])
    with pytest.raises(InputError) as info, pytest.warns(UserWarning):
        run_suite(cfg, "tiny", tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith("tasks.two_per_class.train_per_class=7 is more than the 6 training images of class")
    assert "\n" not in msg
