"""A NWPU VHR-10 image whose annotations are all crowd objects reaches the probe: no boxes, the crowds ignored.

Before: torchgeo 0.8.1's VHR10 drops iscrowd annotations and then stacks the masks of none
(`RuntimeError: stack expects a non-empty TensorList`), so building such a sample crashed inside torchgeo before the
adapter saw it. The adapter now loads that image and its crowd regions itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_detection_vhr10_crowd import CROWD, OBJECT, _xyxy, make_vhr10_with_crowds

pytest.importorskip("pycocotools")


def test_an_image_with_only_crowd_objects_has_no_boxes_and_its_crowds_ignored(tmp_path):
    make_vhr10_with_crowds(tmp_path)
    ann = tmp_path / "NWPU VHR-10 dataset" / "annotations.json"
    data = json.loads(ann.read_text())
    for a in data["annotations"]:
        if a["image_id"] == 2:  # 003.jpg: its object becomes a crowd too (category 3)
            a["iscrowd"], a["category_id"] = 1, 3 if a["bbox"] == OBJECT else a["category_id"]
    ann.write_text(json.dumps(data))
    pixels = np.asarray(Image.open(tmp_path / "NWPU VHR-10 dataset" / "positive image set" / "003.jpg"))
    seen = {}
    for split in ("train", "val", "test"):
        ds = build_dataset(DatasetConfig(name="vhr10", root=str(tmp_path)), split)
        for k in range(len(ds)):
            s = ds[k]
            seen[s["name"]] = s
    assert sorted(seen) == [f"{i:03d}.jpg" for i in range(1, 6)]
    s = seen["003.jpg"]
    assert s["boxes"].shape == (0, 4) and s["labels"].tolist() == []
    assert sorted(s["ignore_boxes"].tolist()) == sorted([_xyxy(OBJECT), _xyxy(CROWD)])
    assert sorted(s["ignore_labels"].tolist()) == [1, 2]
    assert s["image"].shape == (3, 32, 32)
    np.testing.assert_allclose(s["image"].permute(1, 2, 0).numpy() * 255.0, pixels, atol=1e-3)
    other = seen["001.jpg"]  # the others as before
    assert other["boxes"].tolist() == [_xyxy(OBJECT)] and other["ignore_boxes"].tolist() == [_xyxy(CROWD)]
