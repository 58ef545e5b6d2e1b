"""Recipe and crop values outside their meaningful range are refused in one line naming the key.

Before, a negative lr trained (gradient ascent), momentum 1.5, a negative weight decay or a negative KoLeo weight
ran silently, `adamw_beta2=1.0` and `crops.global_size=0` ended in tracebacks, `crops.local_size` above the global
size ran, and `crops.mask_ratio` was silently replaced by `ssl.ibot.mask_ratio_min_max`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geodino.config import load_config, shipped_configs
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig

BAD = [
    ("ssl.schedules.lr.peak=-1e-3", "ssl.schedules.lr.peak=-0.001 must be a number >= 0"),
    ("ssl.schedules.lr.end=.nan", "ssl.schedules.lr.end=nan must be a number >= 0"),
    ("ssl.schedules.weight_decay.end=-0.1", "ssl.schedules.weight_decay.end=-0.1 must be"),
    ("ssl.schedules.momentum.peak=1.5", "ssl.schedules.momentum.peak=1.5 must be a number in [0, 1]"),
    ("ssl.schedules.teacher_temp.start=0", "ssl.schedules.teacher_temp.start=0.0 must be a number > 0"),
    ("ssl.dino.student_temp=0", "ssl.dino.student_temp=0.0 must be a number > 0"),
    ("ssl.optim.adamw_beta2=1.0", "ssl.optim.adamw_beta2=1.0 must be a number in [0, 1)"),
    ("ssl.optim.layerwise_decay=0", "ssl.optim.layerwise_decay=0.0 must be a number in (0, 1]"),
    ("ssl.optim.layerwise_decay=1.5", "ssl.optim.layerwise_decay=1.5 must be a number in (0, 1]"),
    ("ssl.optim.clip_grad=-1", "ssl.optim.clip_grad=-1.0 must be a number >= 0"),
    ("ssl.optim.patch_embed_lr_mult=-0.2", "ssl.optim.patch_embed_lr_mult=-0.2 must be"),
    ("ssl.koleo.loss_weight=-1", "ssl.koleo.loss_weight=-1.0 must be a number >= 0"),
    ("ssl.gram.loss_weight=-2", "ssl.gram.loss_weight=-2.0 must be"),
    ("ssl.student.drop_path_rate=1.5", "ssl.student.drop_path_rate=1.5 must be a number in [0, 1)"),
    ("ssl.ibot.mask_ratio_min_max=[0.1,1.5]", "ssl.ibot.mask_ratio_min_max=[0.1, 1.5] must satisfy"),
    ("ssl.ibot.mask_ratio_min_max=[0.5]", "ssl.ibot.mask_ratio_min_max=[0.5] must be two numbers [min, max]"),
    ("ssl.ibot.mask_ratio_min_max=[0.1,0.2,0.3]", "must be two numbers [min, max]"),
    ("ssl.koleo.topk=2", "ssl.koleo.topk > 1 needs ssl.koleo.distributed=true"),
    ("ssl.koleo.topk=0", "ssl.koleo.topk=0 must be >= 1"),
    ("crops.n_local=-1", "crops.n_local=-1 must be >= 0"),
    ("crops.global_size=0", "crops.global_size=0 is smaller than one patch"),
    ("crops.local_size=256", "crops.local_size=256 is larger than crops.global_size=32"),
    ("crops.mask_ratio=[0.2,0.6]", "crops.mask_ratio=[0.2, 0.6] is not read by pretraining"),
    ("crops.mask_probability=0.3", "set ssl.ibot.mask_sample_probability=0.3 instead"),
    # the Gram refresh counters and the monitor thresholds: max_updates=-1 silently never refreshed the Gram teacher,
    # entropy_tol=0.6 flagged every entropy as collapsed, monitor.every=-1 ran the monitors every step
    ("ssl.gram.max_updates=-1", "ssl.gram.max_updates=-1 must be a number >= 0"),
    ("ssl.gram.it_first_update=-5", "ssl.gram.it_first_update=-5 must be a number >= 0"),
    ("ssl.gram.it_load_ema_teacher=-1", "ssl.gram.it_load_ema_teacher=-1 must be a number >= 0"),
    ("ssl.monitor.every=-1", "ssl.monitor.every=-1 must be a number >= 0: 0 turns the monitors off"),
    ("ssl.monitor.patience=0", "ssl.monitor.patience=0 must be a number >= 1"),
    ("ssl.monitor.entropy_tol=.nan", "ssl.monitor.entropy_tol=nan must be a number in [0, 0.5)"),
    ("ssl.monitor.entropy_tol=0.6", "ssl.monitor.entropy_tol=0.6 must be a number in [0, 0.5)"),
    ("ssl.monitor.std_tol=-0.1", "ssl.monitor.std_tol=-0.1 must be a number >= 0"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_out_of_range_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, "demo", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_crop_sets_are_checked_each() -> None:
    sets = (
        "crops.crop_sets=[{global_size: 64, local_size: 32, probability: 0.5}, "
        "{global_size: 64, local_size: 96, probability: 0.5}]"
    )
    with pytest.raises(ConfigError, match=r"crops\.crop_sets\[1\]\.local_size=96 is larger"):
        load_config(PretrainConfig, "demo", [sets])


def test_boundary_values_and_every_shipped_config_pass() -> None:
    ok = [
        "ssl.schedules.lr.peak=0",  # high-res stage: the lr ramp starts at peak 0
        "ssl.schedules.momentum.end=1.0",  # official v1 anneals the momentum to 1
        "ssl.optim.layerwise_decay=1.0",
        "ssl.optim.clip_grad=0",
        "ssl.koleo.loss_weight=0",
        "crops.n_local=0",
        "crops.local_size=300",  # no local crops: their size is not compared
        "crops.mask_ratio=[0.2,0.6]",  # ... and the crops' mask keys agree with the recipe's
        "ssl.ibot.mask_ratio_min_max=[0.2,0.6]",
    ]
    load_config(PretrainConfig, "demo", ok)
    for name in shipped_configs(PretrainConfig):
        load_config(PretrainConfig, name)


def test_cli_exits_2_with_one_line(tmp_path) -> None:
    # the checkout's geodino (cwd first on sys.path), as `geodino pretrain` runs it
    main = "import sys; from geodino.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", main, "pretrain", "--config", "demo", f"output_dir={tmp_path / 'r'}"]
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([*cmd, "ssl.schedules.lr.peak=-1e-3"], capture_output=True, text=True, timeout=120, cwd=root)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "ssl.schedules.lr.peak=-0.001 must be a number >= 0" in r.stderr
    assert not (tmp_path / "r").exists()


def test_boundary_counters_pass() -> None:
    ok = [
        "ssl.gram.max_updates=0",
        "ssl.gram.max_updates=null",
        "ssl.gram.it_first_update=0",
        "ssl.monitor.every=0",
        "ssl.monitor.patience=1",
        "ssl.monitor.entropy_tol=0",
        "ssl.monitor.std_tol=0",
    ]
    cfg = load_config(PretrainConfig, "demo", ok)
    assert cfg.ssl.gram.max_updates is None and cfg.ssl.monitor.every == 0
