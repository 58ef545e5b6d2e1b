"""A schedule longer than the run names the run-length key of the command that runs it.

Pretraining's length is `trainer.max_steps`; distillation's is `train.max_steps` (it has no `trainer` section). The
"schedules.lr: ... exceeds the run's N iterations" refusal told distillation users to read `trainer.max_steps`."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.distill import DistillConfig
from geodino.train.distill.build import build_schedules
from geodino.train.pretrain import PretrainConfig
from geodino.train.schedules import Schedules


def test_distillation_schedule_refusal_names_train_max_steps() -> None:
    cfg = load_config(
        DistillConfig,
        None,
        ["schedules.lr.cosine_iters=5", "train.max_steps=4", "data.sources=[{type: synthetic, tile_size: 32}]"],
    )
    with pytest.raises(ConfigError, match=r"exceeds the run's 4 iterations") as err:
        build_schedules(cfg)
    assert "train.max_steps" in str(err.value)
    assert "trainer.max_steps" not in str(err.value)


def test_pretraining_schedule_refusal_still_names_trainer_max_steps() -> None:
    cfg = load_config(
        PretrainConfig,
        None,
        ["ssl.schedules.lr.warmup_iters=5", "trainer.max_steps=4", "data.sources=[{type: synthetic, tile_size: 32}]"],
    )
    with pytest.raises(ConfigError, match=r"ssl\.schedules\.lr: .* exceeds the run's 4 iterations") as err:
        Schedules.build(cfg.ssl, cfg.trainer.max_steps, cfg.batch_size, prefix="ssl.")
    assert "trainer.max_steps" in str(err.value)
