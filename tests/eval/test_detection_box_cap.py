"""DeepForest's box_precision/box_recall score each image's best 300 detections (DeepForest's `detections_per_img`)
while COCO mAP keeps its 100: checked on a crafted dense image of 150 objects and a stand-in detector that finds
all 150 exactly and, as torchvision's detectors do, returns at most its `detections_per_img`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geodino.errors import ConfigError
from geodino.eval.detection import DetectionProbeConfig, _evaluate
from geodino.eval.detection_recall import BoxRecallMeter
from geodino.eval.metrics import DetectionMeter

N = 150


def _objects() -> torch.Tensor:
    """150 disjoint 6x6 boxes on a 15 x 10 grid of a 160 px image."""
    return torch.tensor(
        [[c * 10.0, r * 10.0, c * 10.0 + 6, r * 10.0 + 6] for r in range(10) for c in range(15)], dtype=torch.float32
    )


class _PerfectDetector(nn.Module):
    """Finds every object (score falling with the index), keeping its best `detections_per_img` as RetinaNet."""

    def __init__(self, boxes: torch.Tensor, detections_per_img: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.boxes = boxes
        self.detections_per_img = detections_per_img

    def forward(self, images):
        n = min(len(self.boxes), self.detections_per_img)
        scores = torch.linspace(0.99, 0.5, len(self.boxes))
        return [{"boxes": self.boxes[:n], "scores": scores[:n], "labels": torch.zeros(n, dtype=torch.long)}]


def test_box_recall_scores_300_per_image_while_coco_keeps_100():
    boxes = _objects()
    cfg = DetectionProbeConfig(detector="retinanet", tile_size=256)
    model = _PerfectDetector(boxes, cfg.max_detections)  # built with COCO's cap, as build_detector does
    sample = {"image": torch.zeros(3, 160, 160), "boxes": boxes, "labels": torch.zeros(N, dtype=torch.long)}
    out = _evaluate(model, [sample], cfg, ["tree"], lambda s, where: s)

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
    boxes = _objects()
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
