"""A resume refused for a changed key (a longer `train.max_steps`: the "train it longer" a user tries next) names
distillation's way to continue from the weights, `students[i].init_from=CKPT?which=NAME`. It said pretraining's
"init_from the checkpoint", and `init_from=...` is an unknown key in a distillation config."""

from __future__ import annotations

import pytest
import torch

from geodino.config import load_config, to_dict
from geodino.errors import CheckpointError
from geodino.train.distill import DistillConfig
from geodino.train.distill.export import FORMAT, check_resume_config


def _cfg(*extra: str) -> DistillConfig:
    students = "students=[{name: small, arch: vit_tiny}]"
    return load_config(DistillConfig, None, ["data.sources=[{type: synthetic}]", students, *extra])


def test_a_refused_resume_names_students_init_from_with_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "step_00000010.ckpt"
    torch.save({"format": FORMAT, "config": to_dict(_cfg("train.max_steps=10"))}, path)
    with pytest.raises(
        CheckpointError, match=r"written with train\.max_steps=10 but this run has train\.max_steps=20"
    ) as e:
        check_resume_config(path, to_dict(_cfg("train.max_steps=20")))
    message = str(e.value)
    assert f"students[0].init_from='{path}?which=small'" in message and "?which=small.raw" in message
    assert "init_from the checkpoint" not in message and "\n" not in message
    check_resume_config(path, to_dict(_cfg("train.max_steps=10")))  # the same config resumes
