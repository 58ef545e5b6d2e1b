"""gram_evidence.py --config: the two continuation arms of a recipe differ only in the Gram loss, and each row's
training-log means cover only the steps before its checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.conftest import BENCH, bench_module

ROOT = BENCH.parent
RECIPE = ROOT / "configs" / "pretrain" / "small_vit_tiny.yaml"


def _arm_config(g, gram: bool, tmp_path: Path):
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig

    args = argparse.Namespace(
        data=str(tmp_path), sensor="imagenet", steps=150, cont_lr=1e-4, gram_weight=2.0, config=str(RECIPE)
    )
    over = g.recipe_overrides(args, tmp_path / "run", 150, 50)
    over += g.gram_stage_overrides(args, tmp_path / "base.ckpt", gram, 48)
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


def test_init_without_config_is_one_line_and_exit_2(tmp_path):
    ckpt = tmp_path / "x.ckpt"
    ckpt.write_text("")
    r = subprocess.run(
        [sys.executable, str(BENCH / "gram_evidence.py"), "--init", str(ckpt)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if "sample data not found" in r.stdout:
        return
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "--init needs --config" in r.stderr
