"""Distillation defaults against the official multi-distillation: the lr ramps over the first half of the run then
holds (official cosine_epochs 10 of 20) and is scaled by sqrt_wrt_1024; the shipped small recipe keeps its written
lr; students take the teacher heads' sizes, not their weights (as vitl_to_vits.yaml now says)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from geodino.config import load_config, to_dict
from geodino.errors import CheckpointError, ConfigError
from geodino.train.distill import DistillConfig
from geodino.train.distill.build import build_schedules

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "data.sources=[{type: images, paths: [/tmp], sensor: imagenet}]"


def _cfg(*extra: str, path: Path | None = None) -> DistillConfig:
    return load_config(DistillConfig, path, [SOURCE, *extra] if path is None else list(extra))


def test_default_lr_ramps_over_the_first_half_then_holds_at_the_scaled_end() -> None:
    """1000 steps of 256 images: 0 -> 5e-5 x 4 sqrt(256/1024) = 1e-4 over steps 0-499, then 1e-4 to the end. Was: a
    ramp over all 1000 steps (half the lr at step 500) and no batch scaling (5e-5 at the end)."""
    cfg = _cfg("train.max_steps=1000", "train.global_batch_size=256")
    assert cfg.schedules.lr.cosine_iters == 0.5 and cfg.optim.scaling_rule == "sqrt_wrt_1024"
    s = build_schedules(cfg)
    end = 5e-5 * 4 * math.sqrt(256 / 1024)
    assert end == pytest.approx(1e-4)
    assert s.at(0)["lr"] == 0.0
    assert s.at(250)["lr"] == pytest.approx(end / 2, rel=0.01)  # the middle of the cosine ramp
    assert s.at(498)["lr"] < end
    for step in (499, 500, 750, 999):
        assert s.at(step)["lr"] == pytest.approx(end, rel=1e-12), step


def test_the_default_batch_keeps_the_written_lr() -> None:
    """At the default 64 images a step, 4 sqrt(64/1024) = 1: the written 5e-5 is the real lr."""
    s = build_schedules(_cfg("train.max_steps=10"))
    assert s.at(9)["lr"] == pytest.approx(5e-5, rel=1e-12)


@pytest.mark.parametrize(("length", "same_as"), [("0.5", "500"), ("1.0", "null"), ("0.25", "250")])
def test_cosine_length_is_a_fraction_or_a_step_count(length: str, same_as: str) -> None:
    def lrs(value: str) -> list[float]:
        s = build_schedules(_cfg("train.max_steps=1000", f"schedules.lr.cosine_iters={value}"))
        return [s.at(i)["lr"] for i in range(1000)]

    assert lrs(length) == lrs(same_as)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.0", r"schedules\.lr\.cosine_iters=0\.0 is not a fraction of the run in \(0, 1\]"),
        ("1.5", r"schedules\.lr\.cosine_iters=1\.5 is not a fraction of the run in \(0, 1\]"),
        ("-3", r"schedules\.lr\.cosine_iters=-3 must be a step count >= 0 or a fraction of the run in \(0, 1\]"),
    ],
)
def test_bad_cosine_lengths_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(f"schedules.lr.cosine_iters={value}")


def test_a_run_started_with_the_old_defaults_resumes_with_them_set(tmp_path) -> None:
    """A checkpoint of a run that ran with scaling none and the lr ramp over the whole run: the new defaults are
    refused naming the key, the old values given on the command line resume it."""
    from geodino.train.distill.export import FORMAT, check_resume_config

    old = ["optim.scaling_rule=none", "schedules.lr.cosine_iters=null"]
    path = tmp_path / "step_00000010.ckpt"
    torch.save({"format": FORMAT, "config": to_dict(_cfg(*old))}, path)
    with pytest.raises(CheckpointError, match=r"written with optim\.scaling_rule='none' but this run has"):
        check_resume_config(path, to_dict(_cfg()))
    check_resume_config(path, to_dict(_cfg(*old)))


def test_the_small_recipe_keeps_its_written_lr() -> None:
    """small_vit_tiny_half.yaml's 1e-3 is the real lr (as the small pretraining recipe's): its measured numbers
    (docs/distillation.md) do not move with distillation's default scaling."""
    cfg = _cfg(path=ROOT / "configs" / "distill" / "small_vit_tiny_half.yaml")
    assert cfg.optim.scaling_rule == "none"
    s = build_schedules(cfg)
    assert s.at(cfg.train.max_steps - 1)["lr"] == pytest.approx(1e-3)


def test_students_take_the_teacher_heads_sizes_not_their_weights() -> None:
    """vitl_to_vits.yaml said the students "copy" the warmed-up heads: they take their sizes and start fresh."""
    from geodino.models import build_model
    from geodino.models.heads import DINOHead
    from geodino.train.distill.build import build_student
    from geodino.train.distill.config import StudentSpec

    text = (ROOT / "configs" / "distill" / "vitl_to_vits.yaml").read_text()
    assert "copy them" not in text and "fresh init" in text
    torch.manual_seed(0)
    teacher = build_model("vit_tiny", patch_size=8, depth=1)
    t_dino, t_ibot = DINOHead(teacher.embed_dim, 64, 32, 16), DINOHead(teacher.embed_dim, 48, 32, 16)
    spec = StudentSpec(name="s", arch="vit_tiny", overrides={"depth": 1})
    st = build_student(spec, 0, teacher, t_dino, t_ibot)
    for mine, theirs in ((st.dino_head, t_dino), (st.ibot_head, t_ibot)):
        assert (mine.out_dim, mine.hidden_dim, mine.bottleneck_dim) == (theirs.out_dim, 32, 16)
        assert not torch.equal(mine.last_layer.weight, theirs.last_layer.weight)
