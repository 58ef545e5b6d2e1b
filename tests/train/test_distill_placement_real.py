"""`placement_resume.load_by_name` on a real distillation checkpoint (two co-located students after one step): each
student's share of it loads into an optimizer built as a rank of that student alone builds it (`build_optimizer`
over that student), and those per-student states load back into the co-located optimizer as they were saved."""

from __future__ import annotations

import pytest
from torch import nn

from geodino.models.checkpoints import load_file
from geodino.train.distill import distill
from geodino.train.distill.build import build_optimizer
from geodino.train.distill.loop import setup
from geodino.train.distill.placement_resume import load_by_name
from tests.helpers import same_tree
from tests.train.test_distill import _cfg


@pytest.mark.filterwarnings("ignore:the students' EMA keeps")
def test_real_checkpoint_splits_per_student_and_merges_back(images, tmp_path) -> None:
    out = tmp_path / "run"
    cfg = _cfg(images, out, "train.max_steps=1")
    distill(cfg)
    saved = load_file(out / "checkpoints" / "step_00000001.ckpt")
    names = [g["names"][0].split(".")[0] for g in saved["optimizer"]["param_groups"]]
    assert set(names) == {"tiny", "small"} and saved["optimizer"]["state"]  # moments after one step
    run = setup(_cfg(images, out, "train.max_steps=1"))  # the finished run's state, loaded as a resume loads it
    parts = []
    for name in ("small", "tiny"):
        view = nn.Module()  # what a rank of this student alone builds
        view.students = nn.ModuleDict({name: run.arch.students[name]})
        view.students_ema = nn.ModuleDict({name: run.arch.students_ema[name]})
        opt = build_optimizer(cfg, view)
        assert load_by_name([saved], view, opt, out) == 1
        sd = opt.state_dict()
        assert len(sd["state"]) == sum(len(g["params"]) for g in sd["param_groups"])  # every parameter has moments
        assert all(n.startswith(f"{name}.") for g in sd["param_groups"] for n in g["names"])
        parts.append({"step": 1, **{k: {name: saved[k][name]} for k in ("students", "students_ema")}, "optimizer": sd})
    fresh = build_optimizer(cfg, run.arch)
    assert load_by_name(parts, run.arch, fresh, out) == 1
    assert same_tree(fresh.state_dict(), saved["optimizer"])  # merged back: the co-located state as it was saved
