"""Scoring a trained detection probe on its validation samples or held-out tiles: COCO, VOC and DeepForest metrics
from one prediction pass, each with its own per-image cap on the detections it scores.

- COCO (`mAP`, `mAP50`, `mAP75`, `mAR<max_detections>`): each image's best `max_detections` over all classes
  (COCO's 100), ignored objects as crowd regions (`metrics.DetectionMeter`); these detections are also written as
  COCO results (`detection_coco`).
- VOC (`voc_mAP50`, `voc07_mAP50`, `detection_voc`): the devkit ranks every detection of a class and has no
  per-image cap, so by default (`voc_max_detections` 0) every detection the detector returns is scored: at most
  max(`max_detections`, `box_max_detections`) per window (300 by default) above `score_threshold`. Before, VOC AP
  scored COCO's best 100, so an image of 150 objects could reach a recall of 2/3 at best. A positive
  `voc_max_detections` keeps each image's best that many.
- DeepForest (`box_precision`, `box_recall`, `detection_recall`): each image's best `box_max_detections` (300).

The detector keeps the largest of the three caps per window while scoring (`detections_kept`). Its detections come
sorted by score, so a larger cap appends lower-scoring ones and leaves each metric's best-N unchanged on images
that fit in one tile; on images predicted in windows, the extra boxes take part in the window merge
(`detection_windows`), which is why the VOC default raises no cap of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geodino.eval.detection import DetectionProbeConfig
    from geodino.eval.detection_coco import CocoRecorder

__all__ = ["detections_kept", "evaluate_detector"]


def evaluate_detector(
    model: Any,
    evaluated: Any,
    cfg: DetectionProbeConfig,
    names: list[str],
    check: Any,
    coco: CocoRecorder | None = None,
) -> dict[str, float]:
    """mAP, mAP50, mAP75, mAR<max_detections> (and per class) of the detector on the validation samples or held-out
    tiles (COCO rule: ignored objects are crowd regions), voc_mAP50/voc07_mAP50 (VOC devkit rule for them), and
    DeepForest's box_precision/box_recall (its thresholds go to detection_metrics.json only, not among the suite's
    scores); each metric scores its own best N per image (module docstring). `check(sample, where)` validates a
    sample; `coco` records the COCO-scored detections."""
    from geodino.eval.detection_recall import BoxRecallMeter, top_scoring
    from geodino.eval.detection_voc import VocMeter
    from geodino.eval.detection_windows import predict_image
    from geodino.eval.metrics import DetectionMeter

    meter = DetectionMeter(names, class_metrics=len(names) > 1, max_detections=cfg.max_detections)
    # VOC devkit rule for ignored (difficult) objects: voc_mAP50, voc07_mAP50 (+1 pixel widths: voc_inclusive_pixels)
    voc = VocMeter(names, pixel_inclusive=bool(getattr(cfg, "voc_inclusive_pixels", False)))
    boxes = BoxRecallMeter(names, cfg.box_iou_threshold, cfg.box_score_threshold, cfg.box_max_detections)
    voc_cap = int(getattr(cfg, "voc_max_detections", 0))
    with detections_kept(model, max(cfg.max_detections, cfg.box_max_detections, voc_cap)):
        for i in range(len(evaluated)):
            s = check(evaluated[i], f"val sample {i}")
            pred = predict_image(model, s["image"], cfg, whole_image_cap=False)
            target = {k: s[k] for k in ("boxes", "labels", "ignore_boxes", "ignore_labels") if k in s}
            # COCO's cap is per image over all classes (COCOeval alone would cap each class); ignore boxes: objects
            # the held-out tile's edge cut
            top = top_scoring(pred, cfg.max_detections)
            meter.update([top], [target])
            if coco is not None:
                coco.add(top, target, s)
            voc.update([top_scoring(pred, voc_cap) if voc_cap > 0 else pred], [target])
            boxes.update([pred], [target])  # the meter keeps its own best box_max_detections
    return {**meter.compute(), **voc.compute(), **boxes.compute()}


@contextmanager
def detections_kept(model: Any, n: int) -> Iterator[None]:
    """The torchvision detector keeps up to `n` detections per window inside the block (Faster R-CNN's
    `roi_heads.detections_per_img`, RetinaNet's and FCOS's `detections_per_img`), its own cap again after it."""
    holder = model.roi_heads if hasattr(model, "roi_heads") else model
    before = holder.detections_per_img
    holder.detections_per_img = int(n)
    try:
        yield
    finally:
        holder.detections_per_img = before
