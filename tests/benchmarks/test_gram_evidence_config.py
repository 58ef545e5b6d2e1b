"""gram_evidence.py --config: the two continuation arms of a recipe differ only in the Gram loss, and each row's
training-log means cover only the steps before its checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import BENCH, bench_module

ROOT = BENCH.parent
RECIPE = ROOT / "configs" / "pretrain" / "small_vit_tiny.yaml"


def _arm_config(g, gram: bool, tmp_path: Path, gram_ckpt: str | None = None, seed: int = 0):
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig

    args = argparse.Namespace(
        data=str(tmp_path), sensor="imagenet", steps=150, cont_lr=1e-4, gram_weight=2.0, config=str(RECIPE), seed=seed
    )
    over = g.recipe_overrides(args, tmp_path / "run", 150, 50)
    over += g.gram_stage_overrides(args, tmp_path / "base.ckpt", gram, 48, gram_ckpt)
    return load_config(PretrainConfig, RECIPE, over)


def test_recipe_arms_differ_only_in_the_gram_loss(tmp_path):
    """Arm A (no Gram) and arm B (Gram) continue the same checkpoint with the same stage; only ssl.gram differs,
    and B's Gram stage has demo_gram.yaml's shape at 150 steps (weight 2, ramp 1/12, refresh every third)."""
    g = bench_module("gram_evidence")
    a, b = _arm_config(g, False, tmp_path), _arm_config(g, True, tmp_path)
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    assert da["ssl"].pop("gram") != db["ssl"].pop("gram")
    assert da == db
    assert a.ssl.gram.use_loss is False and b.ssl.gram.use_loss is True
    assert (b.ssl.gram.loss_weight, b.ssl.gram.weight_ramp_iters, b.ssl.gram.update_frequency) == (2.0, 12, 50)
    assert b.ssl.gram.rep_update and b.ssl.gram.img_level and b.ssl.gram.max_updates == 3
    assert a.crops.gram and a.crops.gram_size == 96  # both arms draw the same 2x crops
    assert a.init_from == str(tmp_path / "base.ckpt") and a.init_student_from == "student"
    assert a.ssl.student.overrides["layerscale_init"] == 1.0  # the recipe as users run it
    assert a.ssl.schedules.lr.peak == 1e-4 and a.ssl.dino.local_loss_weight == 0.5


def test_gram_ckpt_arm_differs_from_the_gram_arm_only_in_its_fixed_teacher(tmp_path):
    """Arm C (--gram-ckpt): the Gram teacher is that checkpoint, never refreshed from the EMA teacher (a refresh
    would replace the earlier teacher within the stage); everything else is arm B. --seed reaches the config."""
    g = bench_module("gram_evidence")
    early = str(tmp_path / "step_00000050.ckpt")
    b, c = _arm_config(g, True, tmp_path), _arm_config(g, True, tmp_path, early)
    assert b.ssl.gram.ckpt is None and b.ssl.gram.rep_update
    assert c.ssl.gram.ckpt == early and c.ssl.gram.rep_update is False
    db, dc = dataclasses.asdict(b), dataclasses.asdict(c)
    gb, gc = db["ssl"].pop("gram"), dc["ssl"].pop("gram")
    assert db == dc
    assert {k for k in gb if gb[k] != gc[k]} <= {
        "ckpt",
        "rep_update",
        "update_frequency",
        "it_first_update",
        "max_updates",
    }
    assert (c.ssl.gram.loss_weight, c.ssl.gram.weight_ramp_iters, c.ssl.gram.img_level) == (2.0, 12, True)
    assert _arm_config(g, False, tmp_path, seed=3).seed == 3 and b.seed == 0


def test_colour_backbone_gives_patch_statistics_through_forward_features():
    """--baselines scores baseline:colour through the ViT interface: one token per patch, D = 3 x (2 + 16), and a
    patch's token is its own statistics (a red patch's red mean differs from a blue one's)."""
    import torch

    e = bench_module("evidence_utils")
    x = torch.zeros(2, 3, 16, 24)
    x[:, 0, :8, :8] = 2.0  # top-left patch red
    out = e.ColourBackbone(3, 8).forward_features(x)
    pt, cls = out["x_norm_patchtokens"], out["x_norm_clstoken"]
    assert pt.shape == (2, 6, 54) and cls.shape == (2, 54)
    assert pt[0, 0, 0] == 2.0 and pt[0, 1, 0] == 0.0 and abs(float(cls[0, 0]) - 2.0 / 6) < 1e-6


def test_logged_means_cover_only_the_window_before_the_checkpoint(tmp_path):
    g = bench_module("gram_evidence")
    logs = tmp_path / "logs" / "version_0"
    logs.mkdir(parents=True)
    rows = ["step,dino_global_loss,monitor/cls_patch_cosine"]
    rows += [f"{s},{s / 10},{s / 100}" for s in (9, 19, 29, 39)]
    (logs / "metrics.csv").write_text("\n".join(rows) + "\n")
    row = g.logged_means(tmp_path, 39, 20)  # steps 29 and 39
    assert row.keys() == {"log_dino_global", "log_cls_patch_cosine"}
    assert abs(row["log_dino_global"] - 3.4) < 1e-9 and abs(row["log_cls_patch_cosine"] - 0.34) < 1e-9


@pytest.mark.parametrize("flag", ["--init", "--gram-ckpt"])
def test_checkpoint_flag_without_config_is_one_line_and_exit_2(tmp_path, flag):
    ckpt = tmp_path / "x.ckpt"
    ckpt.write_text("")
    r = subprocess.run(
        [sys.executable, str(BENCH / "gram_evidence.py"), flag, str(ckpt)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if "sample data not found" in r.stdout:
        return
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert f"{flag} needs --config" in r.stderr
