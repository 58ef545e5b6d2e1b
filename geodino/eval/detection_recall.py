"""DeepForest / NeonTreeEvaluation box precision and recall, so detection probe results compare with the numbers
those benchmarks publish (they report these, not COCO mAP).

What DeepForest does (`deepforest/IoU.py`, `evaluate.py`, `metrics.RecallPrecision`), and this module repeats:

- predictions are first cut at a score threshold (DeepForest's model config `score_thresh: 0.1`, applied by the
  detector before evaluation; torchvision keeps scores strictly above it) and to the best `detections_per_img`
  (300, DeepForest's config and torchvision RetinaNet's default; COCO mAP's cap is 100) of each image;
- per image, predictions and ground-truth boxes are paired one-to-one by Hungarian assignment
  (`scipy.optimize.linear_sum_assignment`) maximising the *intersection area* of the pairs; a pair is a true
  positive when its IoU is strictly above the IoU threshold (`validation.iou_threshold: 0.4`). Labels play no part;
- per image: recall = TP / ground-truth boxes, precision = TP / predictions;
- `box_recall` is the mean of the per-image recalls over the images with ground truth (an image without
  predictions adds 0); `box_precision` is the mean of the per-image precisions over the images with predictions
  (an image without ground truth but with predictions adds 0; NaN when no image has a prediction). These are
  means of per-image values, not pooled counts, as DeepForest computes them.
- `class_recall/<name>` (several classes): among the matched pairs whose true label is `name`, the fraction whose
  predicted label is `name` (DeepForest's `compute_class_recall`).

Images without ground truth are where DeepForest's two evaluators differ: `RecallPrecision` counts them in the
recall mean (as 0) and, with predictions, in the precision mean (as 0); the older `evaluate_boxes` leaves them out
of both. This meter follows `RecallPrecision` for precision and `evaluate_boxes` for recall; sets where every image
has objects score the same under all three. Ignore regions (objects
a held-out tile's edge cut, which DeepForest does not have): a prediction left unmatched that lies mostly inside one
(intersection over its own area above the IoU threshold, COCO's crowd rule) counts neither way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch import Tensor

__all__ = [
    "DEEPFOREST_IOU_THRESHOLD",
    "DEEPFOREST_MAX_DETECTIONS",
    "DEEPFOREST_SCORE_THRESHOLD",
    "BoxRecallMeter",
    "top_scoring",
]

DEEPFOREST_IOU_THRESHOLD = 0.4  # DeepForest config.yaml validation.iou_threshold
DEEPFOREST_SCORE_THRESHOLD = 0.1  # DeepForest config.yaml score_thresh
DEEPFOREST_MAX_DETECTIONS = 300  # DeepForest config.yaml detections_per_img (torchvision RetinaNet's default)


def top_scoring(pred: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """The `n` best-scoring detections of one image (boxes, scores, labels), best first: a detector's per-image
    cap applied after the fact, so one prediction pass serves metrics with different caps."""
    order = pred["scores"].argsort(descending=True, stable=True)[: max(int(n), 0)]
    return {k: (v[order] if k in ("boxes", "scores", "labels") else v) for k, v in pred.items()}


def _areas(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] intersection areas of xyxy boxes."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def match_image(pred: np.ndarray, truth: np.ndarray, iou_threshold: float) -> list[tuple[int, int]]:
    """(truth index, prediction index) pairs that match: Hungarian assignment on intersection area (maximised),
    then IoU of the assigned pair > `iou_threshold`."""
    from scipy.optimize import linear_sum_assignment

    if len(pred) == 0 or len(truth) == 0:
        return []
    inter = _intersections(truth, pred)
    rows, cols = linear_sum_assignment(inter, maximize=True)
    union = _areas(truth)[rows] + _areas(pred)[cols] - inter[rows, cols]
    iou = np.divide(inter[rows, cols], union, out=np.zeros_like(union), where=union > 0)
    return [(int(r), int(c)) for r, c, v in zip(rows, cols, iou) if v > iou_threshold]


class BoxRecallMeter:
    """Streams per-image predictions and targets; `compute` gives DeepForest's box precision and recall (scores
    only: the thresholds are settings, which `settings` names, kept out of the suite's score rows)."""

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        iou_threshold: float = DEEPFOREST_IOU_THRESHOLD,
        score_threshold: float = DEEPFOREST_SCORE_THRESHOLD,
        max_detections: int = DEEPFOREST_MAX_DETECTIONS,
    ):
        self.class_names = list(class_names) if class_names else []
        self.iou_threshold = float(iou_threshold)
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        self.precisions: list[float] = []
        self.recalls: list[float] = []
        self.class_hits: dict[int, list[int]] = {}  # true label -> [matched pairs, pairs with the same label]

    def update(self, preds: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> None:
        """`preds`: boxes [N,4] xyxy, scores, labels; `targets`: boxes, labels, optionally `ignore_boxes`."""
        for p, t in zip(preds, targets, strict=True):
            self._update_one(p, t)

    def _update_one(self, p: dict[str, Tensor], t: dict[str, Tensor]) -> None:
        p = top_scoring(p, self.max_detections)  # DeepForest's detector keeps its best 300 per image
        scores = p["scores"].detach().cpu().double().numpy().reshape(-1)
        kept = scores > self.score_threshold
        pb = p["boxes"].detach().cpu().double().numpy().reshape(-1, 4)[kept]
        pl = p["labels"].detach().cpu().numpy().reshape(-1)[kept]
        tb = t["boxes"].detach().cpu().double().numpy().reshape(-1, 4)
        tl = t["labels"].detach().cpu().numpy().reshape(-1)
        pairs = match_image(pb, tb, self.iou_threshold)
        n_pred = len(pb)
        ignore = t.get("ignore_boxes")
        if ignore is not None and ignore.numel() and n_pred:
            matched = {c for _, c in pairs}
            ib = ignore.detach().cpu().double().numpy().reshape(-1, 4)
            inside = _intersections(pb, ib).max(axis=1) / np.maximum(_areas(pb), 1e-12)
            n_pred -= sum(1 for i in range(len(pb)) if i not in matched and inside[i] > self.iou_threshold)
        if len(tb):
            self.recalls.append(len(pairs) / len(tb))
        if n_pred:
            self.precisions.append(len(pairs) / n_pred)
        for r, c in pairs:
            hits = self.class_hits.setdefault(int(tl[r]), [0, 0])
            hits[0] += 1
            hits[1] += int(pl[c] == tl[r])

    def settings(self) -> dict[str, float]:
        """The thresholds the scores were computed at, for the probe's metrics json."""
        return {"box_iou_threshold": self.iou_threshold, "box_score_threshold": self.score_threshold}

    def compute(self) -> dict[str, float]:
        out = {
            "box_precision": float(np.mean(self.precisions)) if self.precisions else math.nan,
            "box_recall": float(np.mean(self.recalls)) if self.recalls else math.nan,
        }
        if len(self.class_names) > 1:
            for k, (n, same) in sorted(self.class_hits.items()):
                name = self.class_names[k] if 0 <= k < len(self.class_names) else str(k)
                out[f"class_recall/{name}"] = same / n
        return out
