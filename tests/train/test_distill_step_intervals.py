"""`train.log_every_n_steps` / `train.checkpoint_every_n_steps` of 0 passed `DistillConfig.validate` and the loop's
`step % 0` stopped the run after its first step with a ZeroDivisionError traceback (after the heads warm-up)."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.distill import DistillConfig


@pytest.mark.parametrize("key", ["log_every_n_steps", "checkpoint_every_n_steps"])
def test_a_zero_step_interval_is_refused_before_the_run(key: str) -> None:
    """One line naming the key, as pretraining's checkpoint.every_n_steps."""
    sources = "data.sources=[{type: images, paths: [x/]}]"
    with pytest.raises(ConfigError, match=rf"^train\.{key}=0 must be >= 1"):
        load_config(DistillConfig, None, [sources, f"train.{key}=0"])
    load_config(DistillConfig, None, [sources, f"train.{key}=1"])
