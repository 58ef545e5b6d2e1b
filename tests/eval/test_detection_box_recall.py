"""DeepForest-comparable box precision/recall of the detection probe (geodino/eval/detection_recall.py), checked
on crafted boxes whose matches are worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from geodino.errors import ConfigError
from geodino.eval.detection import DetectionProbeConfig
from geodino.eval.detection_recall import BoxRecallMeter, match_image


def _pred(boxes, scores=None, labels=None):
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    s = torch.tensor(scores if scores is not None else [0.9] * len(b), dtype=torch.float32)
    lab = torch.tensor(labels if labels is not None else [0] * len(b), dtype=torch.long)
    return {"boxes": b, "scores": s, "labels": lab}


def _truth(boxes, labels=None):
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {"boxes": b, "labels": torch.tensor(labels if labels is not None else [0] * len(b), dtype=torch.long)}


def test_hand_computed_three_images():
    # image 1: truths A=[0,0,10,10], B=[20,0,30,10]; predictions exact A (IoU 1), B shifted by 5 (IoU 50/150=1/3,
    # below 0.4), one far away: TP 1 -> recall 1/2, precision 1/3
    # image 2: 2 truths, no prediction: recall 0, no precision
    # image 3: no truth, 2 predictions: precision 0, no recall
    m = BoxRecallMeter()
    m.update(
        [
            _pred([[0, 0, 10, 10], [25, 0, 35, 10], [100, 100, 110, 110]]),
            _pred([]),
            _pred([[0, 0, 5, 5], [10, 10, 20, 20]]),
        ],
        [_truth([[0, 0, 10, 10], [20, 0, 30, 10]]), _truth([[0, 0, 4, 4], [5, 5, 9, 9]]), _truth([])],
    )
    out = m.compute()
    assert out["box_recall"] == pytest.approx((0.5 + 0.0) / 2)  # mean over the images with ground truth
    assert out["box_precision"] == pytest.approx((1 / 3 + 0.0) / 2)  # mean over the images with predictions
    assert m.settings() == {"box_iou_threshold": 0.4, "box_score_threshold": 0.1}
    assert set(out) == {"box_precision", "box_recall"}  # thresholds are no score rows of the suite table


def test_iou_threshold_is_strict_and_mean_is_per_image_not_pooled():
    # IoU exactly 0.4: [0,0,10,10] vs [0,0,4,10] -> 40/100 = 0.4, not a match (DeepForest: IoU > threshold)
    assert (
        match_image(
            torch.tensor([[0.0, 0, 4, 10]]).double().numpy(), torch.tensor([[0.0, 0, 10, 10]]).double().numpy(), 0.4
        )
        == []
    )
    # pooled would be 2/5 recall; per-image mean is (1/1 + 1/4) / 2
    m = BoxRecallMeter()
    four = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
    m.update([_pred([[0, 0, 10, 10]]), _pred([[0, 0, 10, 10]])], [_truth([[0, 0, 10, 10]]), _truth(four)])
    assert m.compute()["box_recall"] == pytest.approx(0.625)
    assert m.compute()["box_precision"] == pytest.approx(1.0)


def test_hungarian_assignment_is_one_to_one():
    # two predictions on one truth: one TP, one FP; greedy-by-score would pair the same, but two truths with one
    # big prediction overlapping both: the prediction goes to the truth it overlaps most, the other is missed
    truth = [[0, 0, 10, 10], [8, 0, 18, 10]]
    m = BoxRecallMeter()
    m.update([_pred([[0, 0, 10, 10], [1, 0, 11, 10]])], [_truth(truth[:1])])
    m.update([_pred([[0, 0, 12, 10]])], [_truth(truth)])
    out = m.compute()
    assert out["box_recall"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["box_precision"] == pytest.approx((0.5 + 1.0) / 2)
    # assignment maximises the total intersection: truth 0 must take pred 1 (only overlap), truth 1 pred 0
    pairs = match_image(
        torch.tensor([[10.0, 0, 20, 10], [0, 0, 9, 10]]).double().numpy(),
        torch.tensor([[0.0, 0, 10, 10], [9, 0, 19, 10]]).double().numpy(),
        0.4,
    )
    assert sorted(pairs) == [(0, 1), (1, 0)]


def test_score_threshold_drops_low_scores_before_matching():
    m = BoxRecallMeter(score_threshold=0.5)
    m.update([_pred([[0, 0, 10, 10], [50, 50, 60, 60]], scores=[0.4, 0.9])], [_truth([[0, 0, 10, 10]])])
    out = m.compute()
    assert out["box_recall"] == 0.0 and out["box_precision"] == 0.0
    assert m.settings()["box_score_threshold"] == 0.5


def test_no_prediction_anywhere_gives_nan_precision_and_zero_recall():
    m = BoxRecallMeter()
    m.update([_pred([])], [_truth([[0, 0, 10, 10]])])
    out = m.compute()
    assert out["box_recall"] == 0.0 and math.isnan(out["box_precision"])


def test_class_recall_and_ignore_regions():
    m = BoxRecallMeter(["tree", "snag"])
    t = _truth([[0, 0, 10, 10], [20, 0, 30, 10]], labels=[0, 1])
    t["ignore_boxes"] = torch.tensor([[40.0, 0, 50, 10]])
    t["ignore_labels"] = torch.tensor([0])
    # both truths matched; the first with the right label, the second with the wrong one; a third prediction lies
    # on the ignore region and counts neither way
    m.update([_pred([[0, 0, 10, 10], [20, 0, 30, 10], [41, 0, 50, 10]], labels=[0, 0, 0])], [t])
    out = m.compute()
    assert out["box_precision"] == 1.0 and out["box_recall"] == 1.0
    assert out["class_recall/tree"] == 1.0 and out["class_recall/snag"] == 0.0


def test_config_defaults_are_deepforest_and_validated():
    cfg = DetectionProbeConfig()
    assert cfg.box_iou_threshold == 0.4 and cfg.box_score_threshold == 0.1
    with pytest.raises(ConfigError, match="box_iou_threshold"):
        DetectionProbeConfig(box_iou_threshold=1.5).validate()


def test_probe_reports_box_precision_recall_and_writes_a_geopackage(tmp_path):
    import json

    from geodino.eval.detection import run_detection
    from tests.eval.dense_backbone import tiny_backbone
    from tests.eval.test_detection import _scene, _small_cfg

    _scene(tmp_path)
    # 0.05: the lowest box score that counts (the default score_threshold; one below it warns and is that)
    metrics = run_detection(tiny_backbone(), _small_cfg(tmp_path, box_score_threshold=0.05), tmp_path / "out")
    assert "box_iou_threshold" not in metrics  # a setting, not a score row of the suite table
    assert 0.0 <= metrics["box_recall"] <= 1.0
    assert math.isnan(metrics["box_precision"]) or 0.0 <= metrics["box_precision"] <= 1.0
    saved = json.loads((tmp_path / "out" / "detection_metrics.json").read_text())
    assert saved["box_iou_threshold"] == 0.4 and saved["box_score_threshold"] == 0.05 and "box_recall" in saved
    assert (tmp_path / "out" / "scene_boxes.gpkg").is_file()


def test_assignment_maximises_total_intersection_like_brute_force():
    import itertools

    import numpy as np

    from geodino.eval.detection_recall import _intersections

    rng = np.random.default_rng(3)
    for _ in range(20):
        xy = rng.uniform(0, 30, (7, 2))
        wh = rng.uniform(5, 15, (7, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        truth, pred = boxes[:3], boxes[3:]
        inter = _intersections(truth, pred)
        best = max(sum(inter[r, c] for r, c in zip(range(3), perm)) for perm in itertools.permutations(range(4), 3))
        pairs = match_image(pred, truth, -1.0)  # threshold below 0: every assigned pair is returned
        assert len(pairs) == 3 and sum(inter[r, c] for r, c in pairs) == pytest.approx(best)
