"""Fixtures shared by the checkpoint, convert and `which` tests of `geodino.models`."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.models import build_model


@pytest.fixture
def only_model_commands(monkeypatch):
    """Run the real `geodino.cli.main` with this part's commands (independent of the other parts' modules)."""
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.models.commands",))


@pytest.fixture
def ssl_ckpt(tmp_path):
    """A training-checkpoint-shaped file with a teacher and a student backbone (different weights):
    `(path, teacher, student)`."""
    torch.manual_seed(0)
    t = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1)
    s = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1)
    state = {f"arch.teacher.backbone.{k}": v for k, v in t.state_dict().items()}
    state |= {f"arch.student.backbone.{k}": v for k, v in s.state_dict().items()}
    path = tmp_path / "run.pth"
    torch.save({"state_dict": state}, path)
    return path, t, s
