"""Pascal VOC average precision at IoU 0.5 (`voc_mAP50`, `voc07_mAP50`), with the VOC rule for ignored objects.

The COCO metrics (`metrics.DetectionMeter`) score an ignored object (Pascal VOC `difficult`, COCO `iscrowd`, an
object a held-out tile's edge cut) as a COCO crowd region: a detection first matches a regular object; failing
that, it is ignored when its intersection with the region over *its own area* reaches the IoU threshold, and a
crowd region takes any number of detections. The VOC devkit (`VOCevaldet.m`) scores them otherwise, and VOC-format
benchmarks (Pascal VOC, DIOR, NWPU VHR-10 in most papers) publish that number:

- per class, detections of all images are ranked by score (ties keep their order); each takes the reference box
  of its image and class with the largest IoU, `difficult` ones included;
- IoU >= 0.5 with a `difficult` box: neither a true nor a false positive; with a regular box not yet taken: a true
  positive (the box is taken); with a taken box: a false positive (a duplicate). IoU below 0.5: a false positive;
- the positives are the regular boxes only; AP is the area under the precision envelope at every recall step
  (VOC 2010 and later, `VOCap.m`), `voc07_mAP50` the mean of the envelope at recall 0, 0.1, ..., 1 (VOC 2007's
  11 points). The mean runs over the classes with at least one regular box (a class without is NaN, left out).

So the two rules differ on: a small detection inside a large ignored box (COCO: ignored; VOC: IoU small, a false
positive), a detection whose best IoU is with an ignored box although it also overlaps a regular one (COCO: a true
positive; VOC: ignored, and the regular box stays unfound), and a duplicate on a taken box that also overlaps an
ignored box (COCO: ignored; VOC: a false positive). IoU is computed on continuous pixel coordinates (xyxy,
half-open), as everywhere in geodino, by default. Pascal VOC xml is read as written (`boxes.read_voc`, as the DIOR
readers of torchgeo and BboxToolkit, and DeepForest, read it), while the devkit (`VOCevaldet.m`) takes the integers
as 1-based inclusive pixels and adds 1 to every width and height, and the generic VOC readers follow it: detectron2
subtracts 1 from xmin/ymin, mmdetection's `XMLDataset` subtracts 1 from all four and its VOC metric
(`use_legacy_coordinate=True`) adds 1 to every width and height. `pixel_inclusive=True` (the probe's
`voc_inclusive_pixels` key) adds the devkit's 1 in the IoU, so voc_mAP50 on VOC-xml data (DIOR) is the devkit's
number for the same boxes; it matters for small objects (an 8 px box shifted by 2 px: IoU 0.342
without, 0.391 with the +1). Leave it off for boxes in continuous coordinates (CSV, COCO json, held-out tiles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch import Tensor

__all__ = ["VocMeter", "voc_ap"]


def voc_ap(recall: np.ndarray, precision: np.ndarray, eleven_point: bool = False) -> float:
    """AP of a ranked list: the area under the precision envelope (VOC 2010+), or the mean of the envelope at the 11
    recall points 0, 0.1, ..., 1 (VOC 2007)."""
    if eleven_point:
        points = [precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in np.linspace(0, 1, 11)]
        return float(np.mean(points))
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the envelope: the best precision at this recall or beyond
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def _iou(box: np.ndarray, boxes: np.ndarray, extra: float = 0.0) -> np.ndarray:
    """IoU of one xyxy box with each of `boxes` [N,4]; `extra` 1 adds the devkit's +1 to widths and heights."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + extra, 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + extra, 0, None)
    inter = w * h
    area = (box[2] - box[0] + extra) * (box[3] - box[1] + extra)
    union = area + (boxes[:, 2] - boxes[:, 0] + extra) * (boxes[:, 3] - boxes[:, 1] + extra) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class VocMeter:
    """Streams per-image predictions and targets (as `metrics.DetectionMeter` takes them: `ignore_boxes` and
    `ignore_labels` are the difficult objects); `compute` gives `voc_mAP50` and `voc07_mAP50` (module docstring).
    `pixel_inclusive`: the devkit's +1 on widths and heights (1-based inclusive integer pixels)."""

    def __init__(self, class_names: Sequence[str], iou_threshold: float = 0.5, pixel_inclusive: bool = False):
        self.num_classes = len(class_names)
        self.iou_threshold = float(iou_threshold)
        self.extra = 1.0 if pixel_inclusive else 0.0
        # per class: (score, image index, box) of every detection; per image and class: boxes and difficult flags
        self.dets: dict[int, list[tuple[float, int, np.ndarray]]] = {}
        self.truth: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []

    def update(self, preds: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> None:
        for p, t in zip(preds, targets, strict=True):
            image = len(self.truth)
            boxes = t["boxes"].detach().cpu().double().numpy().reshape(-1, 4)
            labels = t["labels"].detach().cpu().numpy().reshape(-1)
            difficult = np.zeros(len(boxes), bool)
            ignore = t.get("ignore_boxes")
            if ignore is not None and ignore.numel():
                boxes = np.concatenate([boxes, ignore.detach().cpu().double().numpy().reshape(-1, 4)])
                labels = np.concatenate([labels, t["ignore_labels"].detach().cpu().numpy().reshape(-1)])
                difficult = np.concatenate([difficult, np.ones(len(ignore), bool)])
            self.truth.append({int(c): (boxes[labels == c], difficult[labels == c]) for c in np.unique(labels)})
            pb = p["boxes"].detach().cpu().double().numpy().reshape(-1, 4)
            ps = p["scores"].detach().cpu().double().numpy().reshape(-1)
            pl = p["labels"].detach().cpu().numpy().reshape(-1)
            for b, s, c in zip(pb, ps, pl):
                self.dets.setdefault(int(c), []).append((float(s), image, b))

    def class_ap(self, c: int) -> tuple[float, float]:
        """(all-point AP, 11-point AP) of class `c`; NaN when it has no regular reference box."""
        npos = sum(int((~d).sum()) for per in self.truth if c in per for d in [per[c][1]])
        if npos == 0:
            return math.nan, math.nan
        dets = self.dets.get(c, [])
        order = sorted(range(len(dets)), key=lambda i: -dets[i][0])  # stable: ties keep their order
        taken = {i: np.zeros(len(per[c][0]), bool) for i, per in enumerate(self.truth) if c in per}
        tp, fp = np.zeros(len(order)), np.zeros(len(order))
        for k, i in enumerate(order):
            _, image, box = dets[i]
            if image not in taken:
                fp[k] = 1
                continue
            gt, difficult = self.truth[image][c]
            iou = _iou(box, gt, self.extra)
            j = int(np.argmax(iou))
            if iou[j] < self.iou_threshold:
                fp[k] = 1
            elif difficult[j]:
                continue  # neither way
            elif not taken[image][j]:
                tp[k], taken[image][j] = 1, True
            else:
                fp[k] = 1
        tp_sum, fp_sum = np.cumsum(tp), np.cumsum(fp)
        recall = tp_sum / npos
        precision = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(float).eps)
        return voc_ap(recall, precision), voc_ap(recall, precision, eleven_point=True)

    def compute(self) -> dict[str, float]:
        aps = [self.class_ap(c) for c in range(self.num_classes)]
        area = [a for a, _ in aps if not math.isnan(a)]
        eleven = [b for _, b in aps if not math.isnan(b)]
        return {
            "voc_mAP50": float(np.mean(area)) if area else math.nan,
            "voc07_mAP50": float(np.mean(eleven)) if eleven else math.nan,
        }
