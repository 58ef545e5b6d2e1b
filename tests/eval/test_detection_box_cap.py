"""DeepForest's box_precision/box_recall score each image's best 300 detections (DeepForest's `detections_per_img`)
while COCO mAP keeps its 100: checked on a crafted dense image of 150 objects and a stand-in detector that finds
all 150 exactly and, as torchvision's detectors do, returns at most its `detections_per_img`."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import ConfigError
from geodino.eval.detection import DetectionProbeConfig
from geodino.eval.detection_recall import BoxRecallMeter
from geodino.eval.metrics import DetectionMeter
from tests.eval.conftest import DENSE_N as N
from tests.eval.conftest import dense_objects, evaluate_dense


def test_box_recall_scores_300_per_image_while_coco_keeps_100():
    out, model, _ = evaluate_dense()  # the detector built with COCO's cap, as build_detector does
    boxes = dense_objects()

    assert out["box_recall"] == pytest.approx(1.0)  # was 100/150: only the detector's 100 were scored
    assert out["box_precision"] == pytest.approx(1.0)
    assert model.detections_per_img == 100  # the detector's own cap is back (exports keep it)

    # COCO's metrics in their own convention: the best 100 of the image
    ref = DetectionMeter(["tree"], max_detections=100)
    scores = torch.linspace(0.99, 0.5, N)
    ref.update(
        [{"boxes": boxes[:100], "scores": scores[:100], "labels": torch.zeros(100, dtype=torch.long)}],
        [{"boxes": boxes, "labels": torch.zeros(N, dtype=torch.long)}],
    )
    want = ref.compute()
    assert out["mAR100"] == pytest.approx(100 / 150)
    for k in ("mAP", "mAP50", "mAP75", "mAR100"):
        assert out[k] == pytest.approx(want[k])


def test_meter_keeps_its_best_max_detections():
    boxes = dense_objects()
    scores = torch.linspace(0.99, 0.5, N)
    pred = {"boxes": boxes.flip(0), "scores": scores.flip(0), "labels": torch.zeros(N, dtype=torch.long)}
    truth = {"boxes": boxes, "labels": torch.zeros(N, dtype=torch.long)}
    m = BoxRecallMeter(max_detections=120)  # the best 120 by score, whatever their order
    m.update([pred], [truth])
    assert m.compute()["box_recall"] == pytest.approx(120 / 150)
    assert m.compute()["box_precision"] == pytest.approx(1.0)
    full = BoxRecallMeter()  # DeepForest's 300
    full.update([pred], [truth])
    assert full.compute()["box_recall"] == pytest.approx(1.0)


def test_box_max_detections_must_be_positive():
    with pytest.raises(ConfigError, match="box_max_detections"):
        DetectionProbeConfig(box_max_detections=0).validate()
