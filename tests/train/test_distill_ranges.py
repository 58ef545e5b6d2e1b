"""Distillation configs get pretraining's range checks, and crop/mask values out of range are refused by both.

Before, `build_schedules` built an unvalidated SSLConfig from a distillation config, so a negative lr, momentum
1.5, a negative loss weight, `optim.adamw_beta2=1.0` or a negative heads warm-up lr ran silently (or in a torch
traceback); `CropsConfig.validate` let `crops.mask_ratio` above 1 (all patches masked, the iBOT upper bound
over-counted), `crops.mask_probability` above 1 and `crops.n_local=-1` through for distillation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geodino.config import load_config, shipped_configs
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig
from geodino.train.distill.config import DistillConfig

BAD = [
    ("schedules.lr.end=-1e-3", "schedules.lr.end=-0.001 must be a number >= 0"),
    ("schedules.lr.peak=.nan", "schedules.lr.peak=nan must be a number >= 0"),
    ("schedules.momentum.end=1.5", "schedules.momentum.end=1.5 must be a number in [0, 1]"),
    ("schedules.weight_decay.start=-0.1", "schedules.weight_decay.start=-0.1 must be"),
    ("schedules.teacher_temp.peak=0", "schedules.teacher_temp.peak=0.0 must be a number > 0"),
    ("dino.loss_weight=-1", "dino.loss_weight=-1.0 must be a number >= 0"),
    ("ibot.loss_weight=-0.5", "ibot.loss_weight=-0.5 must be a number >= 0"),
    ("koleo.loss_weight=-1", "koleo.loss_weight=-1.0 must be a number >= 0"),
    ("dino.student_temp=0", "dino.student_temp=0.0 must be a number > 0"),
    ("optim.adamw_beta2=1.0", "optim.adamw_beta2=1.0 must be a number in [0, 1)"),
    ("optim.layerwise_decay=0", "optim.layerwise_decay=0.0 must be a number in (0, 1]"),
    ("optim.clip_grad=-3", "optim.clip_grad=-3.0 must be a number >= 0"),
    ("optim.scaling_rule=linear", "optim.scaling_rule='linear' must be"),
    ("dino.head_n_prototypes=0", "dino.head_* sizes must be positive"),
    (
        "students=[{name: s, arch: vit_small, drop_path_rate: 1.5}]",
        "students[0].drop_path_rate=1.5 must be a number in [0, 1)",
    ),
    ("teacher.head_warmup_lr=-1e-3", "teacher.head_warmup_lr=-0.001 must be a number >= 0"),
    ("teacher.head_warmup_teacher_temp=0", "teacher.head_warmup_teacher_temp=0.0 must be a number > 0"),
    ("teacher.head_warmup_momentum=[0.994,1.5]", "teacher.head_warmup_momentum=[0.994, 1.5] must be two numbers"),
    ("crops.mask_ratio=[0.1,1.5]", "crops.mask_ratio=[0.1, 1.5] must be [low, high] with 0 <= low <= high <= 1"),
    ("crops.mask_ratio=[0.1,.nan]", "crops.mask_ratio=[0.1, nan] must be [low, high]"),
    ("crops.mask_probability=1.5", "crops.mask_probability=1.5 must be in [0, 1]"),
    ("crops.n_local=-1", "crops.n_local=-1 must be >= 0"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_distill_out_of_range_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(DistillConfig, "vitl_to_vits", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("crops.mask_ratio=[0.1,1.5]", "crops.mask_ratio=[0.1, 1.5] must be [low, high] with 0 <= low <= high <= 1"),
        ("crops.mask_probability=1.5", "crops.mask_probability=1.5 must be in [0, 1]"),
        ("crops.n_local=-1", "crops.n_local=-1 must be >= 0"),
    ],
)
def test_pretrain_refuses_the_same_crop_values(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, "demo", [override])
    assert message in str(err.value)


def test_distill_boundary_values_and_every_shipped_config_pass() -> None:
    ok = [
        "schedules.lr.start=0",  # the official distillation ramp starts at 0
        "schedules.momentum.end=1.0",
        "koleo.loss_weight=0",
        "optim.layerwise_decay=1.0",
        "optim.clip_grad=0",
        "teacher.head_warmup_momentum=[0.9,1.0]",
        "crops.mask_ratio=[0.0,1.0]",
        "crops.mask_probability=1.0",
        "crops.n_local=0",
        "students=[{name: s, arch: vit_small, drop_path_rate: 0.0}]",
    ]
    load_config(DistillConfig, "vitl_to_vits", ok)
    for name in shipped_configs(DistillConfig):
        load_config(DistillConfig, name)


def test_distill_cli_exits_2_with_one_line(tmp_path) -> None:
    main = "import sys; from geodino.cli import main; sys.exit(main())"
    out = tmp_path / "r"
    cmd = [
        sys.executable,
        "-c",
        main,
        "distill",
        "--config",
        "vitl_to_vits",
        f"output_dir={out}",
        "dino.loss_weight=-1",
    ]
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=root)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "dino.loss_weight=-1.0 must be a number >= 0" in r.stderr
    assert not out.exists()
