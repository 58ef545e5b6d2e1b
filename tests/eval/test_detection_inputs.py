"""Detection annotations as tools write them: DeepForest's 0,0,0,0 row for an image without objects.

Before: the row was read as a box and refused ('box 0 [0.0, 0.0, 0.0, 0.0] has xmax <= xmin'), so a DeepForest
training CSV with negative images could not be used; its label could also add a class. Now the image is listed with
no boxes (a negative image) and the row adds no label.
"""

from __future__ import annotations

import shutil

import numpy as np

from geodino.eval.boxes import read_boxes
from geodino.eval.detection import DetectionProbeConfig, load_detection_set
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
