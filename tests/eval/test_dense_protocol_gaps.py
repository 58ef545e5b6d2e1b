"""Segmentation protocol keys: classes left out of the mIoU mean (GEO-Bench m-cashew-plantation leaves out
class 0; here with metric_ignore_mode=mean, the pixels still scored), a warning for runs of very few optimiser
steps (min_steps), and loveda_upernet's PANGAEA weight decay."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.eval import runner
from geodino.eval.head_training import FEW_STEPS, budget_epochs
from geodino.eval.metrics import SegmentationMeter
from geodino.eval.runner import SuiteConfig
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_segmentation import make_folder

CONFIGS = Path(__file__).resolve().parents[2] / "geodino" / "configs" / "eval"


def numpy_ious(pred: np.ndarray, target: np.ndarray, k: int, ignore: int) -> np.ndarray:
    """IoU per class written out: pixels whose target is `ignore` dropped, NaN where a class has no union."""
    keep = target != ignore
    p, t = pred[keep], target[keep]
    out = np.full(k, np.nan)
    for c in range(k):
        union = np.sum((p == c) | (t == c))
        if union:
            out[c] = np.sum((p == c) & (t == c)) / union
    return out


def test_metric_ignore_classes_leaves_classes_out_of_the_mean_only():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (3, 40, 40))
    target[:, :5] = 255
    pred = np.where(rng.random(target.shape) < 0.6, target % 4, rng.integers(0, 4, target.shape))
    iou = numpy_ious(pred, target, 4, 255)
    meter = SegmentationMeter(4, 255, mean_excludes=[0], ignore_mode="mean")  # the pixels-dropping default:
    # tests/eval/test_miou_ignore_conventions.py
    meter.update(torch.from_numpy(pred), torch.from_numpy(target))
    got = meter.compute()
    assert got["mIoU"] == pytest.approx(np.nanmean(iou[1:]), abs=1e-12)  # the mean over classes 1..3
    assert got["mIoU"] != pytest.approx(np.nanmean(iou), abs=1e-6)
    assert [got[f"IoU/{c}"] for c in range(4)] == pytest.approx(iou.tolist(), abs=1e-12)  # class 0 still reported
    keep = target != 255
    acc = [np.mean(pred[keep][target[keep] == c] == c) for c in range(4)]
    assert got["mAcc"] == pytest.approx(np.mean(acc[1:]), abs=1e-12) and got["mAcc"] != pytest.approx(np.mean(acc))
    assert got["pixel_acc"] == pytest.approx(np.mean(pred[keep] == target[keep]), abs=1e-12)  # all pixels
    # unlike torchmetrics' ignore_index=0, class 0's pixels stay scored: its pixels predicted 1 are class 1's FPs
    from torchmetrics.functional.classification import multiclass_jaccard_index

    t = torch.from_numpy(np.where(target == 255, 0, target))
    tm = float(multiclass_jaccard_index(torch.from_numpy(pred), t, 4, ignore_index=0, average="none")[1])
    assert tm > iou[1]
    plain = SegmentationMeter(4, 255)
    plain.update(torch.from_numpy(pred), torch.from_numpy(target))
    assert plain.compute()["mIoU"] == pytest.approx(np.nanmean(iou), abs=1e-12)


def test_metric_ignore_classes_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="metric_ignore_classes"):
        SegmentationProbeConfig(train_images="x", train_masks="y", num_classes=2, metric_ignore_classes=[-1]).validate()
    img, msk = make_folder(tmp_path, n=3, size=16)
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, metric_ignore_classes=[2], epochs=1, min_steps=1
    )
    with pytest.raises(ConfigError, match=r"class ids are 0\.\.1"):
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")


def test_segmentation_run_reports_the_mean_without_class_0(tmp_path):
    img, msk = make_folder(tmp_path, n=5, size=32)
    common = dict(train_images=str(img), train_masks=str(msk), num_classes=2, crop_size=16, epochs=1, min_steps=2)
    bb = tiny_backbone()
    full = run_segmentation(bb, SegmentationProbeConfig(**common), tmp_path / "a")
    part_cfg = SegmentationProbeConfig(**common, metric_ignore_classes=[0], metric_ignore_mode="mean")
    part = run_segmentation(bb, part_cfg, tmp_path / "b")
    assert 0 < full["IoU/0"] < 1 and 0 < full["IoU/1"] < 1 and full["mIoU"] != full["IoU/1"]
    assert part["IoU/0"] == full["IoU/0"] and part["IoU/1"] == full["IoU/1"]
    assert part["mIoU"] == pytest.approx(full["IoU/1"])
    saved = json.loads((tmp_path / "b" / "segmentation_metrics.json").read_text())
    assert saved["mean_leaves_out_classes"] == [0] and saved["mIoU"] == pytest.approx(part["mIoU"])
    assert "mean_leaves_out_classes" not in json.loads((tmp_path / "a" / "segmentation_metrics.json").read_text())


def test_budget_epochs_warns_exactly_below_few_steps_without_min_steps():
    def run(epochs, batch, min_steps, n):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            e = budget_epochs(epochs, batch, min_steps, n, "segmentation linear head")
        return e, [str(w.message) for w in got]

    e, msgs = run(3, 8, 0, 6)  # 1 step an epoch: 3 steps
    assert e == 3 and len(msgs) == 1 and "3 optimiser steps" in msgs[0] and "min_steps" in msgs[0]
    assert run(FEW_STEPS, 8, 0, 8) == (FEW_STEPS, [])  # exactly FEW_STEPS: quiet
    assert run(FEW_STEPS - 1, 8, 0, 8)[1]  # one step fewer: warns
    assert run(3, 8, 50, 6) == (50, [])  # explicit min_steps raises the epochs and is taken as meant
    assert run(3, 8, 1, 6) == (3, [])  # even when below FEW_STEPS
    assert run(10, 2, 0, 80) == (10, [])  # 40 steps an epoch x 10
    assert "1 optimiser step (1 epoch x 1 per epoch of 1 tile)" in run(1, 8, 0, 1)[1][0]  # no "1 steps"


def test_segmentation_min_steps_raises_the_epochs_and_the_short_run_warns(tmp_path):
    img, msk = make_folder(tmp_path, n=5, size=16)
    common = dict(train_images=str(img), train_masks=str(msk), num_classes=2, crop_size=16, epochs=2)
    bb = tiny_backbone()
    with pytest.warns(UserWarning, match=r"segmentation linear head: 2 optimiser steps"):
        run_segmentation(bb, SegmentationProbeConfig(**common), tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run_segmentation(bb, SegmentationProbeConfig(**common, min_steps=5), tmp_path / "b")
    assert np.isfinite(out["train_loss"])
    with pytest.raises(ConfigError, match="min_steps"):
        SegmentationProbeConfig(**common, min_steps=-1).validate()


def test_loveda_upernet_uses_pangaeas_weight_decay():
    cfg = load_config(SuiteConfig, CONFIGS / "loveda_upernet.yaml")
    task = runner.parse_tasks(cfg, Path("out"))["loveda_upernet"]
    assert task.cfg.weight_decay == 0.05 and (task.cfg.lr or 1e-4) == 1e-4 and task.cfg.batch_size == 8
