"""`bf16-true` casts the whole module to bfloat16, teacher included: the EMA lerp (1 - momentum <= 0.004) rounds back
to the old weights and small AdamW steps vanish. Pretraining and distillation refuse it in one line naming the
setting and pointing at bf16-mixed; the precisions that keep float32 weights still load."""

from __future__ import annotations

import pytest
import torch

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.config import TrainerConfig
from geodino.train.distill import DistillConfig
from geodino.train.pretrain import PretrainConfig
from tests.train.conftest import write_config

SOURCE = "data.sources=[{type: images, paths: [/tmp], sensor: imagenet}]"
LINE = r"{key}=bf16-true keeps the weights in bfloat16, .*; use {key}=bf16-mixed \(bfloat16 compute, float32 weights\)"


def test_the_reason_holds() -> None:
    """What the refusal says: a bf16 EMA step of the default final momentum leaves the teacher where it was."""
    teacher = torch.full((4,), 1.0, dtype=torch.bfloat16)
    student = torch.full((4,), 1.5, dtype=torch.bfloat16)
    assert torch.equal(teacher.lerp(student, 1 - 0.999), teacher)


def test_pretraining_refuses_bf16_true(tmp_path, tiny_data) -> None:
    path = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    with pytest.raises(ConfigError, match=LINE.format(key=r"trainer\.precision")):
        load_config(PretrainConfig, path, ["trainer.precision=bf16-true"])
    with pytest.raises(ConfigError, match=LINE.format(key=r"trainer\.precision")):
        TrainerConfig(precision="bf16-true").validate()


@pytest.mark.parametrize("precision", ["auto", "32-true", "bf16-mixed", "16-mixed"])
def test_pretraining_keeps_the_other_precisions(precision: str) -> None:
    TrainerConfig(precision=precision).validate()


def test_distillation_refuses_bf16_true() -> None:
    with pytest.raises(ConfigError, match=LINE.format(key=r"train\.precision")):
        load_config(DistillConfig, None, [SOURCE, "train.precision=bf16-true"])
