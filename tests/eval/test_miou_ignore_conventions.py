"""mIoU with classes left out (`metric_ignore_classes`): the two conventions against a hand-written confusion
matrix and against torchmetrics' `JaccardIndex(ignore_index=...)`.

`pixels` (the default) drops the pixels whose target is a left-out class, as torchmetrics' ignore_index,
TerraTorch's segmentation metrics and DINOv3's `reduce_zero_label` do; `mean` keeps them scored and only skips the
class in the means. An `ignore_index` inside 0..K-1 is left out of the means as torchmetrics does.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_jaccard_index

from geodino.errors import ConfigError
from geodino.eval.metrics import SegmentationMeter, segmentation_scores
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_segmentation import make_folder

# (target, prediction): pixel count. Rows of the confusion matrix are targets, columns predictions:
#   target 0: [2, 3, 0]   target 1: [1, 4, 1]   target 2: [0, 2, 5]   (+ 3 pixels of target 255, predicted 1)
PAIRS = {(0, 0): 2, (0, 1): 3, (1, 1): 4, (1, 0): 1, (1, 2): 1, (2, 2): 5, (2, 1): 2, (255, 1): 3}


def crafted() -> tuple[torch.Tensor, torch.Tensor]:
    t = [k[0] for k, n in PAIRS.items() for _ in range(n)]
    p = [k[1] for k, n in PAIRS.items() for _ in range(n)]
    return torch.tensor(p).reshape(1, 1, -1), torch.tensor(t).reshape(1, 1, -1)


def meter(excludes=(), mode="pixels", ignore_index=255) -> dict[str, float]:
    m = SegmentationMeter(3, ignore_index, mean_excludes=excludes, ignore_mode=mode)
    m.update(*crafted())
    return m.compute()


def test_pixels_convention_drops_the_left_out_class_pixels_as_computed_by_hand():
    got = meter([0], "pixels")
    # rows of class 0 dropped: class 1 keeps 4 TP, FP = 2 (from class 2), FN = 2 -> 4/8; class 2: 5/(5+1+2) = 5/8
    assert got["IoU/1"] == pytest.approx(4 / 8) and got["IoU/2"] == pytest.approx(5 / 8)
    assert got["mIoU"] == pytest.approx((4 / 8 + 5 / 8) / 2)
    assert math.isnan(got["IoU/0"])  # no class-0 pixel is left to score
    assert got["pixel_acc"] == pytest.approx(9 / 13)  # 13 pixels of classes 1 and 2, 9 right
    assert got["mAcc"] == pytest.approx((4 / 6 + 5 / 7) / 2)


def test_mean_convention_keeps_the_pixels_as_computed_by_hand():
    got = meter([0], "mean")
    # class 0's 3 pixels predicted 1 stay false positives of class 1: 4/(4+5+2) = 4/11
    assert got["IoU/1"] == pytest.approx(4 / 11) and got["IoU/2"] == pytest.approx(5 / 8)
    assert got["IoU/0"] == pytest.approx(2 / 6)  # still reported
    assert got["mIoU"] == pytest.approx((4 / 11 + 5 / 8) / 2)
    assert got["pixel_acc"] == pytest.approx(11 / 18)
    assert got["mAcc"] == pytest.approx((4 / 6 + 5 / 7) / 2)
    every = meter()  # no class left out: the mean over the three
    assert every["mIoU"] == pytest.approx((2 / 6 + 4 / 11 + 5 / 8) / 3)


def test_pixels_convention_is_torchmetrics_ignore_index():
    p, t = crafted()
    keep = t != 255
    p, t = p[keep], t[keep]
    got = meter([0], "pixels")
    assert got["mIoU"] == pytest.approx(float(multiclass_jaccard_index(p, t, 3, ignore_index=0)), abs=1e-6)
    # (mAcc is checked by hand above: torchmetrics' macro accuracy averages the ignored class in as 0)
    micro = float(multiclass_accuracy(p, t, 3, ignore_index=0, average="micro"))
    assert got["pixel_acc"] == pytest.approx(micro, abs=1e-6)
    per = multiclass_jaccard_index(p, t, 3, ignore_index=0, average="none")
    assert [got["IoU/1"], got["IoU/2"]] == pytest.approx(per[1:].tolist(), abs=1e-6)
    assert meter([0], "mean")["mIoU"] != pytest.approx(got["mIoU"], abs=1e-3)


def test_random_maps_match_torchmetrics_in_pixels_mode():
    rng = np.random.default_rng(1)
    t = torch.from_numpy(rng.integers(0, 5, (4, 33, 17)))
    p = torch.from_numpy(np.where(rng.random(t.shape) < 0.5, t.numpy(), rng.integers(0, 5, t.shape)))
    m = SegmentationMeter(5, None, mean_excludes=[0, 3])
    m.update(p, t)
    got = m.compute()
    # torchmetrics takes one ignore_index: drop class 3's pixels by hand, class 0 through ignore_index
    keep = t != 3
    per = multiclass_jaccard_index(p[keep], t[keep], 5, ignore_index=0, average="none")
    assert got["mIoU"] == pytest.approx(float(per[[1, 2, 4]].mean()), abs=1e-6)


def test_conventions_agree_when_the_scored_masks_hold_no_pixel_of_the_class():
    # DINOv3's m-cashew test split has no class-0 pixel: both conventions give the same mIoU there
    rng = np.random.default_rng(2)
    t = torch.from_numpy(rng.integers(1, 4, (2, 20, 20)))
    p = torch.from_numpy(rng.integers(0, 4, (2, 20, 20)))  # class 0 still predicted sometimes
    a, b = (
        SegmentationMeter(4, 255, mean_excludes=[0]),
        SegmentationMeter(4, 255, mean_excludes=[0], ignore_mode="mean"),
    )
    a.update(p, t)
    b.update(p, t)
    ra, rb = a.compute(), b.compute()
    assert ra["mIoU"] == pytest.approx(rb["mIoU"], abs=1e-6) and ra["pixel_acc"] == rb["pixel_acc"]


def test_ignore_index_inside_the_classes_is_left_out_of_the_mean():
    # a user mask with 0 = unlabelled and ignore_index=0 (TerraTorch style); class 0 is sometimes predicted
    p, t = crafted()
    t = torch.where(t == 255, torch.zeros_like(t), t)
    m = SegmentationMeter(3, 0)
    m.update(p, t)
    got = m.compute()
    assert got["mIoU"] == pytest.approx(float(multiclass_jaccard_index(p, t, 3, ignore_index=0)), abs=1e-6)
    assert got["mIoU"] == pytest.approx((4 / 8 + 5 / 8) / 2)  # not pulled down by class 0's IoU of 0
    assert math.isnan(got["IoU/0"])


def test_mode_is_checked():
    with pytest.raises(ConfigError, match="metric_ignore_mode"):
        segmentation_scores(torch.eye(3), None, [0], "drop")
    with pytest.raises(ConfigError, match="metric_ignore_mode"):
        SegmentationProbeConfig(train_images="x", train_masks="y", num_classes=2, metric_ignore_mode="x").validate()


def test_probe_run_scores_both_conventions_and_says_which(tmp_path):
    img, msk = make_folder(tmp_path, n=5, size=32)
    common = dict(train_images=str(img), train_masks=str(msk), num_classes=2, crop_size=16, epochs=1, min_steps=2)
    bb = tiny_backbone()
    full = run_segmentation(bb, SegmentationProbeConfig(**common), tmp_path / "a")
    drop = run_segmentation(bb, SegmentationProbeConfig(**common, metric_ignore_classes=[0]), tmp_path / "b")
    keep = SegmentationProbeConfig(**common, metric_ignore_classes=[0], metric_ignore_mode="mean")
    kept = run_segmentation(bb, keep, tmp_path / "c")
    assert kept["IoU/0"] == full["IoU/0"] and kept["mIoU"] == pytest.approx(full["IoU/1"])
    assert math.isnan(drop["IoU/0"])
    # dropping class 0's pixels removes class 1's false positives there: its IoU can only rise
    assert drop["mIoU"] == drop["IoU/1"] and drop["IoU/1"] >= full["IoU/1"]
    saved = json.loads((tmp_path / "b" / "segmentation_metrics.json").read_text())
    assert saved["metric_ignore_mode"] == "pixels" and saved["mean_leaves_out_classes"] == [0]
    assert json.loads((tmp_path / "c" / "segmentation_metrics.json").read_text())["metric_ignore_mode"] == "mean"


def test_probe_runs_with_ignore_index_inside_the_classes(tmp_path):
    # masks 0/1/2 with 0 = unlabelled (TerraTorch style: ignore_index=0, num_classes counting it); the label-count
    # check read the ignored class 0 as a class without training pixels and refused the run
    img, msk = make_folder(tmp_path, n=4, size=32, classes=3)
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=3, ignore_index=0, crop_size=16, epochs=1,
        min_steps=1, plots=0,
    )  # fmt: skip
    out = run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    assert math.isnan(out["IoU/0"])
    assert out["mIoU"] == pytest.approx(np.nanmean([out["IoU/1"], out["IoU/2"]]))
