"""Detection annotations as tools write them: DeepForest's 0,0,0,0 row for an image without objects, Pascal VOC
`difficult` and COCO `iscrowd` objects (left out of scoring by both protocols).

Before: the row was read as a box and refused ('box 0 [0.0, 0.0, 0.0, 0.0] has xmax <= xmin'), so a DeepForest
training CSV with negative images could not be used; its label could also add a class. Now the image is listed with
no boxes (a negative image) and the row adds no label.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from geodino.eval.boxes import read_boxes, tile_sample
from geodino.eval.detection import DetectionProbeConfig, load_detection_set
from geodino.eval.metrics import DetectionMeter
from tests.eval.test_detection import _scene


def test_a_zero_row_lists_an_image_without_objects(tmp_path):
    _scene(tmp_path)  # scene.tif with 6 'crown' boxes in scene.csv
    shutil.copy(tmp_path / "scene.tif", tmp_path / "empty.tif")
    rows = (tmp_path / "scene.csv").read_text().splitlines()
    (tmp_path / "all.csv").write_text("\n".join([*rows, "empty.tif,0,0,0,0,Tree"]) + "\n")
    table = read_boxes([tmp_path / "all.csv"])
    assert table["empty.tif"].boxes.shape == (0, 4) and table["empty.tif"].labels == []
    assert len(table["scene.tif"].boxes) == 6
    cfg = DetectionProbeConfig()
    data, names = load_detection_set(
        [str(tmp_path / "scene.tif"), str(tmp_path / "empty.tif")], [str(tmp_path / "all.csv")], cfg, None
    )
    assert names == ["crown"]  # the zero row's label is no class
    by_name = {data[i]["name"]: data[i] for i in range(len(data))}
    assert set(by_name) == {"scene.tif", "empty.tif"}
    assert by_name["empty.tif"]["boxes"].shape == (0, 4) and len(by_name["empty.tif"]["labels"]) == 0
    np.testing.assert_array_equal(by_name["scene.tif"]["boxes"].numpy(), table["scene.tif"].boxes)


def _voc_with_difficult(path, name="scene.tif"):
    """Two objects, the second flagged difficult (its box overlaps nothing else)."""
    objs = [((10, 12, 30, 40), 0), ((40, 5, 60, 20), 1)]
    body = "".join(
        f"<object><name>crown</name><difficult>{d}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for (x0, y0, x1, y1), d in objs
    )
    path.write_text(f"<annotation><filename>{name}</filename>{body}</annotation>")


def _coco_with_crowd(path, name="scene.tif"):
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 12, 20, 28], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 5, 20, 15], "iscrowd": 1},
    ]
    path.write_text(
        json.dumps(
            {"images": [{"id": 1, "file_name": name}], "annotations": anns, "categories": [{"id": 1, "name": "crown"}]}
        )
    )


@pytest.mark.parametrize("fmt", ["voc", "coco"])
def test_difficult_and_crowd_objects_are_not_scored(tmp_path, fmt):
    """VOC `difficult` and COCO `iscrowd` objects were read as ordinary boxes: trained on, and a detector that
    missed them lost recall (mAP 0.5 here instead of 1). Now they are COCO crowd regions in scoring, and in tiles."""
    _scene(tmp_path)
    ann = tmp_path / ("scene.xml" if fmt == "voc" else "scene.json")
    (_voc_with_difficult if fmt == "voc" else _coco_with_crowd)(ann)
    data, names = load_detection_set([str(tmp_path / "scene.tif")], [str(ann)], DetectionProbeConfig(), None)
    s = data[0]
    assert names == ["crown"] and s["boxes"].tolist() == [[10.0, 12.0, 30.0, 40.0]]
    assert s["ignore_boxes"].tolist() == [[40.0, 5.0, 60.0, 20.0]] and s["ignore_labels"].tolist() == [0]
    meter = DetectionMeter(names)
    found = {
        "boxes": torch.tensor([[10.0, 12.0, 30.0, 40.0]]),
        "scores": torch.tensor([0.9]),
        "labels": torch.tensor([0]),
    }
    meter.update([found], [{k: s[k] for k in ("boxes", "labels", "ignore_boxes", "ignore_labels") if k in s}])
    assert meter.compute()["mAP"] == pytest.approx(1.0)  # the unflagged object found: nothing missed
    tile = tile_sample(s, 0, 32, 32, 0.5)  # the difficult box (x 40..60) lies in the tile at column 32
    assert tile["boxes"].shape == (0, 4) and tile["ignore_boxes"].tolist() == [[8.0, 5.0, 28.0, 20.0]]


def test_fcos_pyramid_channels_must_suit_its_group_norm():
    """torchvision's FCOS head normalises with GroupNorm(32, channels): pyramid_channels=48 failed deep in
    torchvision ('num_channels (48) must be divisible by num_groups (32)') after the data was read; now one line
    from validate, before anything runs. Faster R-CNN and RetinaNet heads take any width."""
    from geodino.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"detector=fcos needs pyramid_channels divisible by 32 .*got 48: use e.g. 32"
    ):
        DetectionProbeConfig(detector="fcos", pyramid_channels=48).validate()
    DetectionProbeConfig(detector="fcos", pyramid_channels=64).validate()
    DetectionProbeConfig(detector="retinanet", pyramid_channels=48).validate()
