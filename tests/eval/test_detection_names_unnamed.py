"""Samples given to the detection probe without a `name` (`run_detection(train_data=...)`, documented as probe
samples: `image`, `boxes`, `labels`) are cut into held-out tiles like named ones.

Before: `boxes.tile_sample` copied `s["name"]`, so an unnamed sample larger than `tile_size` stopped the run with
`KeyError: 'name'` when no validation samples were given. Unnamed tiles stay unnamed: the COCO outputs name them
by position, with their `tile_origin`.
"""

from __future__ import annotations

import json

import pytest
import torch

from geodino.eval.boxes import tiles_of
from geodino.eval.detection import DetectionProbeConfig, run_detection
from geodino.eval.detection_coco import COCO_GT_FILE
from tests.eval.dense_backbone import tiny_backbone


def _sample(k: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(k)
    boxes = torch.tensor([[2.0, 2, 14, 12], [40, 36, 56, 50]])
    return {"image": torch.rand(3, 64, 64, generator=g), "boxes": boxes, "labels": torch.tensor([0, 1])}


def test_tiles_of_an_unnamed_sample():
    tiles = tiles_of(_sample(0), 32, 0.5)
    assert [t["origin"] for t in tiles] == [(0, 0), (0, 32), (32, 0), (32, 32)]
    assert all("name" not in t for t in tiles)
    assert tiles[0]["boxes"].tolist() == [[2.0, 2, 14, 12]] and tiles[3]["boxes"].tolist() == [[8.0, 4, 24, 18]]
    named = tiles_of({**_sample(0), "name": "a.tif"}, 32, 0.5)
    assert {t["name"] for t in named} == {"a.tif"}


def test_run_with_unnamed_samples_and_held_out_tiles(tmp_path):
    cfg = DetectionProbeConfig(detector="retinanet", pyramid_channels=32, tile_size=32, epochs=1, progress=False)
    with pytest.warns(UserWarning):  # a one-epoch run warns that it is short
        metrics = run_detection(tiny_backbone(), cfg, tmp_path, train_data=[_sample(0), _sample(1)],
                                class_names=["car", "tree"])  # fmt: skip
    gt = json.loads((tmp_path / COCO_GT_FILE).read_text())
    assert len(gt["images"]) == metrics["val_tiles"] >= 1
    for k, im in enumerate(gt["images"]):
        assert im["file_name"] == f"{k:06d}" and len(im["tile_origin"]) == 2
