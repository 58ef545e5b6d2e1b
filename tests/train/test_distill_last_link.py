"""A distillation checkpoint folder's `last.ckpt` (made when a resume moves a later branch aside) follows the
checkpoints written after it."""

from __future__ import annotations

import torch
from torch import nn

from geodino.train.checkpoint_folder import abandon_later_checkpoints
from geodino.train.distill import DistillConfig
from geodino.train.distill.export import save_checkpoint


class _Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.backbone.config = {"arch": "test"}


class _Arch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.students = nn.ModuleDict({"a": _Student()})
        self.students_ema = nn.ModuleDict({"a": _Student()})


def test_last_link_follows_checkpoints_after_an_abandoned_branch(tmp_path) -> None:
    folder = tmp_path / "checkpoints"
    arch = _Arch()
    opt = torch.optim.SGD(arch.parameters(), lr=0.1)
    cfg = DistillConfig()
    for step in (2, 3):
        save_checkpoint(folder, arch, opt, step, cfg, keep_last=2)
    # another student's folder stopped at step 2: this one resumes there and moves step 3 aside
    moved, _ = abandon_later_checkpoints(folder, 2, folder / "step_00000002.ckpt")
    assert [p.name for p in moved] == ["step_00000003.ckpt"]
    assert (folder / "last.ckpt").resolve().name == "step_00000002.ckpt"
    save_checkpoint(folder, arch, opt, 3, cfg, keep_last=2)
    assert (folder / "last.ckpt").resolve().name == "step_00000003.ckpt"
    save_checkpoint(folder, arch, opt, 4, cfg, keep_last=1)  # step 2 and 3 pruned: the link is not left dangling
    assert (folder / "last.ckpt").resolve().name == "step_00000004.ckpt" and (folder / "last.ckpt").exists()


def test_no_last_link_is_made_where_none_was(tmp_path) -> None:
    folder = tmp_path / "checkpoints"
    arch = _Arch()
    save_checkpoint(folder, arch, torch.optim.SGD(arch.parameters(), lr=0.1), 1, DistillConfig(), keep_last=2)
    assert not (folder / "last.ckpt").exists() and not (folder / "last.ckpt").is_symlink()
