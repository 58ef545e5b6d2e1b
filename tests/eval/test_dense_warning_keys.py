"""The dense probes' warnings name their keys as the user writes them: `min_steps`, `epochs` and `max_height`
alone from Python, `tasks.<name>.<key>` inside a probe suite's task (as the input-scaling and layer-set warnings
already did). Before, a suite's canopy task advised 'set min_steps' and 'raise max_height', keys no suite has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.eval.canopy import CanopyProbeConfig
from geodino.eval.chm import _warn_above_max
from geodino.eval.head_training import budget_epochs
from geodino.eval.runner_inputs import task_keys_named


def test_short_head_and_max_height_warnings_name_the_tasks_keys():
    with task_keys_named("neon", CanopyProbeConfig):
        with pytest.warns(UserWarning, match=r"set tasks\.neon\.min_steps \(e\.g\. 300\) or more tasks\.neon\.epochs"):
            budget_epochs(2, 4, 0, 12, "canopy head")
        with pytest.warns(UserWarning, match=r"above tasks\.neon\.max_height=96 m .* or raise tasks\.neon\.max_height"):
            _warn_above_max(np.array([120.0, 3.0]), Path("chm.tif"), 96.0)


def test_outside_a_suite_the_warnings_name_the_bare_keys():
    with pytest.warns(UserWarning, match=r"set min_steps \(e\.g\. 300\) or more epochs"):
        budget_epochs(2, 4, 0, 12, "canopy head")
    with pytest.warns(UserWarning, match=r"above max_height=96 m .* or raise max_height"):
        _warn_above_max(np.array([120.0]), Path("chm.tif"), 96.0)
