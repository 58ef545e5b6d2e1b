"""The detection probe writes the detections its COCO metrics scored as a COCO results json with the matching ground
truth (`detections_coco.json`, `detections_coco_gt.json`); pycocotools' COCOeval re-scores the two files to the
mAP/mAP50/mAP75 the run reported. Before, named datasets (DIOR, NWPU VHR-10) wrote metrics only: no per-detection
output to re-score or compare with another toolbox."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from geodino.eval.detection import DetectionProbeConfig, _evaluate, run_detection
from geodino.eval.detection_coco import COCO_GT_FILE, COCO_RESULTS_FILE, CocoRecorder

pytest.importorskip("pycocotools")


def rescore(out_dir: Path, max_detections: int = 100) -> dict[str, float]:
    """mAP, mAP50, mAP75 of the written files by pycocotools alone."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(out_dir / COCO_GT_FILE))
    results = json.loads((out_dir / COCO_RESULTS_FILE).read_text())
    dt = gt.loadRes(results)
    ev = COCOeval(gt, dt, "bbox")
    ev.params.maxDets = [1, 10, max_detections]
    ev.evaluate()
    ev.accumulate()
    p = ev.eval["precision"]  # [T, R, K, A, M]

    def mean(a: np.ndarray) -> float:
        a = a[a > -1]
        return float(a.mean()) if a.size else math.nan

    return {"mAP": mean(p[:, :, :, 0, -1]), "mAP50": mean(p[0, :, :, 0, -1]), "mAP75": mean(p[5, :, :, 0, -1])}


class _Scripted(nn.Module):
    """Returns the scripted detections of the image whose top-left pixel holds its index."""

    def __init__(self, per_image: list[dict[str, torch.Tensor]]):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.per_image = per_image
        self.detections_per_img = 100

    def forward(self, images):
        return [self.per_image[int(images[0][0, 0, 0])]]


def _det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


def test_written_files_rescore_to_the_reported_map(tmp_path):
    """Three images, two classes, a crowd (ignored) region, a duplicate, a miss, a wrong class, a loose box."""
    samples, preds = [], []
    truth = [
        ([[2, 2, 12, 12], [20, 20, 40, 44.5]], [0, 1]),
        ([[5, 5, 25, 15], [30, 2, 45, 20]], [0, 0]),
        ([[10, 10, 30, 30]], [1]),
    ]
    for k, (boxes, labels) in enumerate(truth):
        image = torch.zeros(3, 48, 48)
        image[0, 0, 0] = k
        s = {"image": image, "boxes": torch.tensor(boxes), "labels": torch.tensor(labels), "name": f"im{k}.tif"}
        if k == 0:  # an ignored object: a detection inside it is neither a true nor a false positive
            s["ignore_boxes"], s["ignore_labels"] = torch.tensor([[30.0, 0, 48, 16]]), torch.tensor([0])
        samples.append(s)
    preds.append(
        _det([[2, 3, 12, 12], [21, 20, 40, 44], [32, 2, 40, 10], [2, 2, 11, 12]], [0.9, 0.8, 0.7, 0.6], [0, 1, 0, 0])
    )
    preds.append(_det([[6, 5, 26, 16], [0, 30, 10, 40], [30, 2, 45, 20]], [0.95, 0.85, 0.5], [0, 0, 1]))
    preds.append(_det([[12, 10, 30, 34]], [0.75], [1]))
    cfg = DetectionProbeConfig(detector="retinanet", tile_size=64)
    coco = CocoRecorder(["car", "tree"])
    out = _evaluate(_Scripted(preds), samples, cfg, ["car", "tree"], lambda s, where: s, coco)
    coco.write(tmp_path)

    got = rescore(tmp_path)
    for key in ("mAP", "mAP50", "mAP75"):
        assert got[key] == pytest.approx(out[key], abs=1e-6), key  # torchmetrics: float32
    assert 0.3 < out["mAP50"] < 1.0  # the crafted errors cost something; the crowd hit did not

    gt = json.loads((tmp_path / COCO_GT_FILE).read_text())
    assert [c["name"] for c in gt["categories"]] == ["car", "tree"]
    assert [im["file_name"] for im in gt["images"]] == ["im0.tif", "im1.tif", "im2.tif"]
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["bbox"] == [30.0, 0.0, 18.0, 16.0] and crowd[0]["image_id"] == 1
    res = json.loads((tmp_path / COCO_RESULTS_FILE).read_text())
    assert len(res) == 8 and res[0] == {
        "image_id": 1,
        "category_id": 1,
        "bbox": [2.0, 3.0, 10.0, 9.0],
        "score": res[0]["score"],
    }
    assert res[0]["score"] == pytest.approx(0.9)


def test_dior_run_writes_files_that_rescore_to_its_metrics(tmp_path):
    """A real (one-epoch) probe run on the DIOR adapter: the files beside detection_metrics.json re-score to it."""
    from geodino.eval.datasets import DatasetConfig
    from tests.eval.dense_backbone import tiny_backbone
    from tests.eval.test_detection_adapters import make_dior

    root = tmp_path / "dior"
    make_dior(root)
    cfg = DetectionProbeConfig(
        data=DatasetConfig(name="dior", root=str(root), test_split="val"),
        detector="retinanet",
        pyramid_channels=32,
        tile_size=32,
        epochs=1,
        score_threshold=0.0,  # an untrained head scores low: keep its detections, so there is something to score
        box_score_threshold=0.1,
        progress=False,
    )
    out_dir = tmp_path / "out"
    with pytest.warns(UserWarning):
        run_detection(tiny_backbone(), cfg, out_dir)
    saved = json.loads((out_dir / "detection_metrics.json").read_text())
    assert saved["voc_max_detections"] == 0 and saved["voc_inclusive_pixels"] is False  # how voc_mAP50 was scored
    res = json.loads((out_dir / COCO_RESULTS_FILE).read_text())
    gt = json.loads((out_dir / COCO_GT_FILE).read_text())
    assert len(res) == 100 and len(gt["images"]) == 1 and len(gt["categories"]) == 20
    assert sum(a["iscrowd"] for a in gt["annotations"]) == 1  # the windmill flagged <difficult>
    got = rescore(out_dir)
    for key in ("mAP", "mAP50", "mAP75"):
        assert got[key] == pytest.approx(saved[key], abs=1e-6, nan_ok=True), key
