"""The COCO outputs of a detection probe on DIOR and NWPU VHR-10 name each image by its file.

Before: the adapters' samples had no name, so `detections_coco_gt.json` listed their images as `000000`,
`000001`, ... (positions in the scored split): a user could not tell which image a detection belonged to.
Each name is checked against the file the sample's pixels were read from.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.detection import DetectionProbeConfig
from geodino.eval.detection_coco import COCO_GT_FILE, COCO_RESULTS_FILE, CocoRecorder
from geodino.eval.detection_scoring import evaluate_detector
from geodino.eval.torchgeo_datasets import torchgeo_random_split
from tests.eval.test_datasets import make_vhr10
from tests.eval.test_detection_adapters import make_dior

pytest.importorskip("pycocotools")


class _OneBox(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.detections_per_img = 100

    def forward(self, images):
        return [{"boxes": torch.tensor([[1.0, 2, 11, 12]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]


def _written(ds, names, tmp_path):
    coco = CocoRecorder(names)
    evaluate_detector(_OneBox(), ds, DetectionProbeConfig(detector="retinanet", tile_size=32), names,
                      lambda s, where: s, coco)  # fmt: skip
    coco.write(tmp_path)
    gt = json.loads((tmp_path / COCO_GT_FILE).read_text())
    res = json.loads((tmp_path / COCO_RESULTS_FILE).read_text())
    return gt, res


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path)).transpose(2, 0, 1).astype(np.float32) / 255.0


def test_dior_images_are_named_by_their_file(tmp_path):
    root = tmp_path / "dior"
    make_dior(root)
    ds = build_dataset(DatasetConfig(name="dior", root=str(root), test_split="val"), "train")
    assert [ds[k]["name"] for k in range(len(ds))] == ["00000.jpg", "00001.jpg"]
    val = build_dataset(DatasetConfig(name="dior", root=str(root), test_split="val"), "test")
    gt, res = _written(val, ds.classes, tmp_path)
    assert [im["file_name"] for im in gt["images"]] == ["00002.jpg"]  # the one val image of sample_df.csv
    assert np.array_equal(_pixels(root / "Images_trainval/00002.jpg"), val[0]["image"].numpy())
    assert {r["image_id"] for r in res} == {gt["images"][0]["id"]}


def test_vhr10_images_are_named_by_their_file(tmp_path):
    root = tmp_path / "vhr10"
    make_vhr10(root, n=10)
    cfg = DatasetConfig(name="vhr10", root=str(root))
    test = build_dataset(cfg, "test")
    expected = [f"{i + 1:03d}.jpg" for i in torchgeo_random_split(10, 0.2, 0.2, 0)["test"]]
    assert len(expected) == 2 and expected != ["001.jpg", "002.jpg"]
    gt, _ = _written(test, [f"c{k}" for k in range(1, 11)], tmp_path)
    assert [im["file_name"] for im in gt["images"]] == expected
    folder = root / "NWPU VHR-10 dataset" / "positive image set"
    for k, name in enumerate(expected):
        assert np.array_equal(_pixels(folder / name), test[k]["image"].numpy())
