"""voc_mAP50: Pascal VOC `difficult` objects scored by the VOC devkit's rule, on crafted boxes where it and the COCO
crowd rule (which mAP/mAP50 keep, as pycocotools scores `iscrowd`) differ. Expected values are computed by hand.

Before: difficult objects were scored only as COCO crowd regions (intersection over the detection's own area, a
regular object matched first), so a VOC-format dataset had no number comparable with VOC-protocol papers.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from torch import nn

from geodino.eval.detection import DetectionProbeConfig, _evaluate
from geodino.eval.detection_voc import VocMeter, voc_ap
from geodino.eval.metrics import DetectionMeter

T = torch.tensor
REGULAR = T([[0.0, 0.0, 10.0, 10.0]])


def _target(ignore: list[list[float]], boxes: torch.Tensor = REGULAR) -> dict[str, torch.Tensor]:
    return {
        "boxes": boxes,
        "labels": torch.zeros(len(boxes), dtype=torch.long),
        "ignore_boxes": T(ignore),
        "ignore_labels": torch.zeros(len(ignore), dtype=torch.long),
    }


def _pred(boxes: list[list[float]], scores: list[float]) -> dict[str, torch.Tensor]:
    return {"boxes": T(boxes), "scores": T(scores), "labels": torch.zeros(len(boxes), dtype=torch.long)}


def _both(pred: dict, target: dict) -> tuple[float, dict[str, float]]:
    coco, voc = DetectionMeter(["a"]), VocMeter(["a"])
    coco.update([pred], [target])
    voc.update([pred], [target])
    return coco.compute()["mAP50"], voc.compute()


def _cocoeval_ap50(pred: dict, target: dict) -> float:
    """AP at IoU 0.5 from pycocotools' COCOeval run directly, the ignored box given as `iscrowd`."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b: list[float]) -> list[float]:
        return [b[0], b[1], b[2] - b[0], b[3] - b[1]]

    anns = [(b, 0) for b in target["boxes"].tolist()] + [(b, 1) for b in target["ignore_boxes"].tolist()]
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": xywh(b),
                "area": xywh(b)[2] * xywh(b)[3],
                "iscrowd": c,
            }
            for i, (b, c) in enumerate(anns)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dets = coco.loadRes(
            [
                {"image_id": 1, "category_id": 1, "bbox": xywh(b), "score": s}
                for b, s in zip(pred["boxes"].tolist(), pred["scores"].tolist())
            ]
        )
        ev = COCOeval(coco, dets, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


def test_small_detection_inside_a_large_difficult_box_is_a_false_positive_under_voc():
    """COCO: intersection over the detection's area is 1 -> ignored, AP 1. VOC: IoU 100/1600 < 0.5 -> a false
    positive ranked first: recall [0, 1], precision [0, 0.5] -> AP 0.5 (11-point 0.5 too)."""
    pred, target = _pred([[22.0, 2.0, 32.0, 12.0], [0.0, 0.0, 10.0, 10.0]], [0.9, 0.8]), _target([[20, 0, 60, 40]])
    coco, voc = _both(pred, target)
    assert coco == pytest.approx(1.0) and _cocoeval_ap50(pred, target) == pytest.approx(1.0)
    assert voc == pytest.approx({"voc_mAP50": 0.5, "voc07_mAP50": 0.5})


def test_a_detection_closest_to_a_difficult_box_is_ignored_and_the_regular_one_stays_unfound():
    """The detection's IoU is 1 with the difficult box, 90/110 with the regular one. COCO matches the regular
    object first (AP 1); VOC takes the largest IoU, the difficult box: ignored, recall 0, AP 0."""
    pred, target = _pred([[1.0, 0.0, 11.0, 10.0]], [0.9]), _target([[1, 0, 11, 10]])
    coco, voc = _both(pred, target)
    assert coco == pytest.approx(1.0) and _cocoeval_ap50(pred, target) == pytest.approx(1.0)
    assert voc == pytest.approx({"voc_mAP50": 0.0, "voc07_mAP50": 0.0})


def test_a_duplicate_on_a_taken_box_is_a_false_positive_even_over_a_difficult_box():
    """Objects A (taken by the 0.9 detection) and B; the 0.8 duplicate of A lies wholly in a difficult box (IoU
    0.875) but its best IoU is A's (0.952), already taken. COCO: ignored (crowd), AP 1. VOC: TP, FP, TP ->
    recall [.5, .5, 1], precision [1, .5, 2/3] -> AP .5 + .5 * 2/3; 11-point (6 * 1 + 5 * 2/3) / 11."""
    regular = T([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    pred = _pred([[0, 0, 10, 10], [0, 0, 10, 10.5], [50, 50, 60, 60]], [0.9, 0.8, 0.7])
    target = _target([[0, 0, 10, 12]], regular)
    coco, voc = _both(pred, target)
    assert coco == pytest.approx(1.0) and _cocoeval_ap50(pred, target) == pytest.approx(1.0)
    assert voc == pytest.approx({"voc_mAP50": 0.5 + 0.5 * 2 / 3, "voc07_mAP50": (6 + 5 * 2 / 3) / 11})


def test_difficult_objects_are_not_positives_and_classes_without_positives_are_left_out():
    """Class 0: one regular (found) and one difficult (not found) object: recall 1, AP 1 (the difficult one is no
    positive). Class 1: difficult objects only: no AP, out of the mean. Class 2: one regular object, missed: AP 0."""
    target = {
        "boxes": T([[0.0, 0, 10, 10], [40, 40, 50, 50]]),
        "labels": T([0, 2]),
        "ignore_boxes": T([[20.0, 20, 30, 30], [60, 60, 70, 70]]),
        "ignore_labels": T([0, 1]),
    }
    pred = {"boxes": T([[0.0, 0, 10, 10]]), "scores": T([0.5]), "labels": T([0])}
    meter = VocMeter(["a", "b", "c"])
    meter.update([pred], [target])
    assert meter.class_ap(0) == (1.0, 1.0) and meter.class_ap(2) == (0.0, 0.0)
    assert all(np.isnan(meter.class_ap(1)))
    assert meter.compute() == pytest.approx({"voc_mAP50": 0.5, "voc07_mAP50": 0.5})


def test_voc_ap_area_and_eleven_points():
    """Recall [.2, .4, .4, .8], precision [1, 1, 2/3, .75]: envelope 1 up to .4, .75 up to .8 -> area .4 + .4 * .75;
    11 points: 1 at 0-.4 (5 points), .75 at .5-.8 (4), 0 at .9 and 1 -> (5 + 3) / 11."""
    rec, prec = np.array([0.2, 0.4, 0.4, 0.8]), np.array([1.0, 1.0, 2 / 3, 0.75])
    assert voc_ap(rec, prec) == pytest.approx(0.4 + 0.4 * 0.75)
    assert voc_ap(rec, prec, eleven_point=True) == pytest.approx(8 / 11)


class FixedDetector(nn.Module):
    """Returns the same detections for any image (a single-stage detector: labels are 0-based)."""

    def __init__(self, pred: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.pred = pred
        self.detections_per_img = 100

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [dict(self.pred) for _ in images]


def test_the_probe_reports_voc_map50_beside_coco_map50():
    """The probe's evaluation gives voc_mAP50 (VOC rule) next to mAP50 (COCO rule) on a sample with a difficult
    object (case of the first test: 0.5 against 1.0)."""
    pred = _pred([[22.0, 2.0, 32.0, 12.0], [0.0, 0.0, 10.0, 10.0]], [0.9, 0.8])
    sample = {"image": torch.zeros(3, 64, 64), **_target([[20, 0, 60, 40]])}
    cfg = DetectionProbeConfig(detector="retinanet", tile_size=64)
    out = _evaluate(FixedDetector(pred), [sample], cfg, ["a"], lambda s, where: s)
    assert out["mAP50"] == pytest.approx(1.0)
    assert out["voc_mAP50"] == pytest.approx(0.5) and out["voc07_mAP50"] == pytest.approx(0.5)


def test_without_difficult_objects_voc_takes_the_largest_iou_box_even_when_found():
    """Objects A and B overlap; the second detection's IoU is 0.98 with A (already found) and 0.85 with B. VOC: a
    false positive (A is its box), recall stays 0.5: AP 0.5. COCO: it takes B, the best box not yet found: AP 1."""
    regular = T([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 12.0]])
    pred = _pred([[0, 0, 10, 10], [0, 0, 10, 10.2]], [0.9, 0.8])
    target = {"boxes": regular, "labels": torch.zeros(2, dtype=torch.long)}
    coco, voc = _both(pred, target)
    assert coco == pytest.approx(1.0)
    assert voc == pytest.approx({"voc_mAP50": 0.5, "voc07_mAP50": 6 / 11})
