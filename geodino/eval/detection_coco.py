"""The scored detections of a detection probe as COCO files, so pycocotools (or any COCO evaluator) re-scores them.

`detections_coco.json` is a COCO *results* list (`image_id`, `category_id`, `bbox` = [x, y, width, height] in
pixels, `score`): the detections the COCO metrics scored, i.e. each image's best `max_detections` over all classes.
`detections_coco_gt.json` is the matching COCO ground truth (`images`, `annotations`, `categories`): the reference
boxes of the same scored images, and the ignored objects (VOC `difficult`, COCO `iscrowd`, objects a held-out tile
edge cut) as `iscrowd: 1` regions, as the probe scored them. Re-scoring:

    gt = COCO("detections_coco_gt.json"); dt = gt.loadRes("detections_coco.json")
    ev = COCOeval(gt, dt, "bbox"); ev.params.maxDets = [1, 10, max_detections]; ev.evaluate(); ev.accumulate()

gives the run's `mAP` (mean of `ev.eval["precision"][..., 0, -1]` over its defined entries; `ev.stats[0]` when
`max_detections` is 100), `mAP50` and `mAP75` (pycocotools' `loadRes` refuses an empty list: a run without any
detection writes `[]`, its COCO metrics are 0 or NaN). Image ids are 1-based positions in the scored order; category ids
are the class indices + 1 (`categories` names them). A scored unit that is a tile of a larger image (held-out
tiles) names its file and `tile_origin` [row, col]; its boxes are in the tile's pixels. Images of named datasets are
named by their file as torchgeo reads it (DIOR `00012.jpg`, NWPU VHR-10 `001.jpg` of its positive image set); a
sample without a name by its position in the scored split (`000000`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

__all__ = ["COCO_GT_FILE", "COCO_RESULTS_FILE", "CocoRecorder"]

COCO_RESULTS_FILE = "detections_coco.json"
COCO_GT_FILE = "detections_coco_gt.json"


def _xywh(boxes: Tensor) -> list[list[float]]:
    """xyxy boxes [N,4] as COCO's [x, y, width, height] lists (float32 arithmetic, as torchmetrics converts)."""
    b = boxes.detach().cpu().float().reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    return [[x, y, w, h] for (x, y), (w, h) in zip(b[:, :2].tolist(), wh.tolist())]


class CocoRecorder:
    """Collects the scored images (`add`) and writes them as COCO results and ground truth (`write`)."""

    def __init__(self, class_names: Sequence[str]):
        self.categories = [{"id": k + 1, "name": str(n)} for k, n in enumerate(class_names)]
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []

    def add(self, pred: dict[str, Tensor], target: dict[str, Tensor], sample: dict[str, Any]) -> None:
        """One scored image: `pred` the detections its COCO metrics scored, `target` its boxes, labels and ignore
        boxes, `sample` the probe sample (image size, name, tile origin)."""
        image_id = len(self.images) + 1
        h, w = (int(v) for v in sample["image"].shape[-2:])
        entry: dict[str, Any] = {"id": image_id, "width": w, "height": h}
        entry["file_name"] = str(sample.get("name") or f"{image_id - 1:06d}")
        if "origin" in sample:
            entry["tile_origin"] = [int(v) for v in sample["origin"]]
        self.images.append(entry)
        groups = [(target["boxes"], target["labels"], 0)]
        if target.get("ignore_boxes") is not None and len(target["ignore_boxes"]):
            groups.append((target["ignore_boxes"], target["ignore_labels"], 1))
        for boxes, labels, crowd in groups:
            for bbox, lab in zip(_xywh(boxes), labels.reshape(-1).tolist()):
                self.annotations.append(
                    {
                        "id": len(self.annotations) + 1,
                        "image_id": image_id,
                        "category_id": int(lab) + 1,
                        "bbox": bbox,
                        "area": bbox[2] * bbox[3],
                        "iscrowd": crowd,
                    }
                )
        for bbox, score, lab in zip(_xywh(pred["boxes"]), pred["scores"].tolist(), pred["labels"].tolist()):
            self.results.append(
                {"image_id": image_id, "category_id": int(lab) + 1, "bbox": bbox, "score": float(score)}
            )

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write `detections_coco.json` and `detections_coco_gt.json` into `out_dir` (each atomically)."""
        from geodino.io import atomic_path

        gt = {"images": self.images, "annotations": self.annotations, "categories": self.categories}
        paths = (Path(out_dir) / COCO_RESULTS_FILE, Path(out_dir) / COCO_GT_FILE)
        for path, payload in zip(paths, (self.results, gt)):
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(payload))
        return paths
