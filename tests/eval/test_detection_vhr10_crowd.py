"""NWPU VHR-10 `iscrowd: 1` objects reach the detection probe as ignore boxes (COCO crowd regions).

Before: torchgeo's VHR10 reader drops crowd annotations (`ConvertCocoAnnotations` keeps `iscrowd == 0`), so the
adapter gave the probe no trace of them and a detection of a crowd object was scored as a false positive (COCOeval
and the VOC meter ignore a detection inside a crowd region of its class). The adapter now reads them from the
dataset's own COCO index (image id = torchgeo index, file `{index + 1:03d}.jpg`, as torchgeo loads it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.detection import DetectionProbeConfig
from geodino.eval.detection_scoring import evaluate_detector

pytest.importorskip("pycocotools")

OBJECT = [4.0, 4.0, 10.0, 8.0]  # xywh, category 2 (label 1)
CROWD = [18.0, 16.0, 14.0, 10.0]  # xywh, category 2, iscrowd 1: to the right edge of the 32 px image
FALSE = [0.0, 20.0, 8.0, 8.0]  # xywh: no object there


def make_vhr10_with_crowds(root: Path, n: int = 5, size: int = 32) -> None:
    """torchgeo's VHR10 layout; every image holds one object and one crowd region of the same class (the crowd
    region's box overshoots the image by 2 px on the right, as torchgeo clips its other boxes)."""
    rng = np.random.default_rng(0)
    folder = root / "NWPU VHR-10 dataset"
    (folder / "positive image set").mkdir(parents=True)
    (root / "NWPU VHR-10 dataset.zip").write_bytes(b"placeholder")
    images, anns = [], []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(
            folder / "positive image set" / f"{i + 1:03d}.jpg"
        )
        images.append({"id": i, "file_name": f"{i + 1:03d}.jpg", "width": size, "height": size})
        for crowd, (x, y, w, h) in ((0, OBJECT), (1, [CROWD[0], CROWD[1], CROWD[2] + 2, CROWD[3]])):
            seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 2, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd, "segmentation": seg})  # fmt: skip
    cats = [{"id": k, "name": f"c{k}"} for k in range(1, 11)]
    (folder / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def _xyxy(b: list[float]) -> list[float]:
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def test_crowd_objects_arrive_as_ignore_boxes(tmp_path):
    make_vhr10_with_crowds(tmp_path)
    ds = build_dataset(DatasetConfig(name="vhr10", root=str(tmp_path)), "train")
    for k in range(len(ds)):
        s = ds[k]
        assert s["boxes"].tolist() == [_xyxy(OBJECT)] and s["labels"].tolist() == [1]
        assert s["ignore_boxes"].tolist() == [_xyxy(CROWD)]  # clipped to the 32 px image as torchgeo clips boxes
        assert s["ignore_labels"].tolist() == [1]


class _Fixed(nn.Module):
    """The same detections on every image: a false positive (0.95), the crowd region (0.9), the object (0.8)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.detections_per_img = 100

    def forward(self, images):
        boxes = torch.tensor([_xyxy(FALSE), _xyxy(CROWD), _xyxy(OBJECT)])
        return [{"boxes": boxes, "scores": torch.tensor([0.95, 0.9, 0.8]), "labels": torch.tensor([1, 1, 1])}]


def test_a_detection_of_a_crowd_object_is_neither_true_nor_false_positive(tmp_path):
    """Ranked: false positive, crowd hit, object. The crowd hit ignored: precision 1/2 at recall 1, AP = 0.5 at
    every IoU threshold (COCO and VOC alike; 1/3 when the crowd hit counted as a false positive)."""
    make_vhr10_with_crowds(tmp_path)
    test = build_dataset(DatasetConfig(name="vhr10", root=str(tmp_path)), "test")
    assert len(test) == 1
    cfg = DetectionProbeConfig(detector="retinanet", tile_size=32)
    names = [f"c{k}" for k in range(1, 11)]
    out = evaluate_detector(_Fixed(), test, cfg, names, lambda s, where: s)
    for key in ("mAP", "mAP50", "mAP75", "voc_mAP50"):
        assert out[key] == pytest.approx(0.5, abs=1e-6), key
