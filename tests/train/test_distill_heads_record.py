"""Warmed-up teacher heads are reused only with the settings they were made with; the warm-up EMA forgets its
random init (<= 1 %)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.distill import DistillConfig, distill

TEACHER = "arch:vit_tiny?seed=0&patch_size=8&depth=2&n_storage_tokens=1"


def _heads(k: int) -> str:
    return f"{{head_n_prototypes: {k}, head_hidden_dim: 32, head_bottleneck_dim: 16}}"


def _cfg(images: Path, out: Path, k: int = 64, *extra: str) -> DistillConfig:
    return load_config(
        DistillConfig,
        None,
        [
            f"output_dir={out}",
            f"teacher.spec={TEACHER}",
            "teacher.head_warmup_steps=2",
            f"dino={_heads(k)}",
            f"ibot={_heads(k)}",
            f"data.sources=[{{type: images, paths: [{images}], sensor: imagenet}}]",
            "crops={global_size: 32, local_size: 16, n_local: 2, vflips: false, rot90: false}",  # web photos: up kept
            "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1}}]",
            "schedules.lr={start: 0.0, peak: 0.0, end: 1.0e-3, warmup_iters: 0, cosine_iters: 1}",
            "schedules.momentum={start: 0.0, peak: 0.0, end: 1.0}",  # a 1-step run's EMA: the students, not their init
            "train.max_steps=1",
            "train.global_batch_size=4",
            "train.num_workers=0",
            "train.device=cpu",
            "train.progress_bar=false",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def warmed(images, tmp_path_factory) -> Path:
    """The run folder of a finished 1-step run of `_cfg` (64 prototypes, 2 warm-up steps): each test starts from a
    copy of it (one run per module, not one per test)."""
    out = tmp_path_factory.mktemp("warmed") / "run"
    distill(_cfg(images, out))
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    """A copy of finished run folder `run` at tmp_path/run, as that run would have left it there."""
    return Path(shutil.copytree(run, tmp_path / "run"))


def _killed_before_first_checkpoint(out: Path) -> None:
    """Leave what a run killed after its warm-up, before its first checkpoint, leaves: config.yaml and the heads."""
    shutil.rmtree(out / "checkpoints")
    shutil.rmtree(out / "tiny")
    (out / "log.csv").unlink()


def _student_prototypes(out: Path) -> int:
    return torch.load(out / "tiny" / "tiny.heads.pth", weights_only=True)["dino_head"]["last_layer.weight"].shape[0]


def test_stale_warmed_up_heads_are_warmed_up_again(warmed, images, tmp_path, caplog) -> None:
    """Re-run with 32 prototypes and 3 warm-up steps: the 64-prototype heads of the killed run are replaced (said
    in one line), the student gets 32 prototypes and the file records the new settings."""
    out = _copy(warmed, tmp_path)
    _killed_before_first_checkpoint(out)
    with caplog.at_level(logging.INFO, logger="geodino.distill"):
        distill(_cfg(images, out, 32, "teacher.head_warmup_steps=3"))
    assert _student_prototypes(out) == 32
    meta = torch.load(out / "teacher.heads.pth", weights_only=True)
    assert meta["head_sizes"]["dino.head_n_prototypes"] == 32 and meta["warmup_steps"] == 3
    said = [r.getMessage() for r in caplog.records if "warmed up with other settings" in r.getMessage()]
    assert len(said) == 1 and "dino.head_n_prototypes 64 -> 32" in said[0] and "head_warmup_steps 2 -> 3" in said[0]
    # the warm-up's summary says how much of the random init its EMA keeps (none: 3 steps start at momentum 0)
    assert any("0.00% of the random init left" in r.getMessage() for r in caplog.records)


def test_same_settings_reuse_the_heads_and_a_changed_seed_does_not(warmed, images, tmp_path) -> None:
    out = _copy(warmed, tmp_path)
    heads = (out / "teacher.heads.pth").read_bytes()
    _killed_before_first_checkpoint(out)
    distill(_cfg(images, out))
    assert (out / "teacher.heads.pth").read_bytes() == heads  # no second warm-up
    _killed_before_first_checkpoint(out)
    distill(_cfg(images, out, 64, "train.seed=1"))
    assert (out / "teacher.heads.pth").read_bytes() != heads


def test_old_heads_file_without_record_is_reused_and_said_once(warmed, images, tmp_path, caplog) -> None:
    from geodino.train import teacher_heads as th

    out = _copy(warmed, tmp_path)
    _killed_before_first_checkpoint(out)
    dino, ibot = th.load_heads_file(out / "teacher.heads.pth")
    meta = torch.load(out / "teacher.heads.pth", weights_only=True)
    old = {k: meta[k] for k in ("teacher_spec", "teacher_fingerprint", "warmup_steps", "warmup_final_loss")}
    th.save_heads_file(out / "teacher.heads.pth", dino, ibot, old)
    with caplog.at_level(logging.WARNING, logger="geodino.distill"):
        distill(_cfg(images, out, 64, "teacher.head_warmup_steps=3"))
    said = [r.getMessage() for r in caplog.records if "records no head sizes" in r.getMessage()]
    assert len(said) == 1
    assert _student_prototypes(out) == 64


def test_given_heads_of_another_size_are_refused_in_one_line(warmed, images, tmp_path) -> None:
    out = _copy(warmed, tmp_path)
    given = tmp_path / "given.heads.pth"
    shutil.copy(out / "teacher.heads.pth", given)
    with pytest.raises(ConfigError) as err:
        distill(_cfg(images, tmp_path / "r2", 32, f"teacher.heads={given}"))
    msg = str(err.value)
    assert "\n" not in msg and "dino.head_n_prototypes=32" in msg and "have 64" in msg
    assert not (tmp_path / "r2" / "teacher.heads.pth").exists()


@pytest.mark.parametrize("steps", [50, 300, 2000])
def test_warmup_ema_keeps_at_most_one_percent_of_the_init(steps) -> None:
    """The product of the warm-up's real momenta over its steps (the EMA's weight on the random init)."""
    from geodino.train import teacher_heads as th
    from geodino.train.schedules import cosine_schedule

    start = th.warmup_momentum_start(0.994, steps)
    share = float(np.prod(cosine_schedule(start, 1.0, steps)))
    assert share <= 0.01 and th.init_share((0.994, 1.0), steps) == pytest.approx(share)
    if steps == 2000:
        assert start == 0.994
