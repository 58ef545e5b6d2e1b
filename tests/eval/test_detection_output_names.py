"""Detection outputs of images that share a stem, and COCO images that share a file name in different subfolders.

Before: write_predictions named files `<stem>_boxes.*`, so the second scene.tif (folder b/) overwrote the first's
(folder a/); read_coco keyed images by file name alone, so a/x.tif and b/x.tif got one merged box list."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geodino.errors import InputError
from geodino.eval import detection as det
from geodino.eval.boxes import match_boxes, read_boxes, read_coco
from geodino.eval.detection import run_detection
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_detection import _small_cfg


def _images(folder, n, prefix="t"):
    """`n` georeferenced 32 px images with one bright square each, their boxes in `boxes.csv`."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image_path,xmin,ymin,xmax,ymax,label"]
    for i in range(n):
        img = np.full((3, 32, 32), 30, np.uint8)
        img[:, 4:16, 6:18] = 220
        profile = dict(driver="GTiff", width=32, height=32, count=3, dtype="uint8", crs=CRS.from_epsg(32617))
        with rasterio.open(folder / f"{prefix}{i}.tif", "w", transform=from_origin(4e5, 3e6, 0.5, 0.5), **profile) as d:
            d.write(img)
        rows.append(f"{prefix}{i}.tif,6,4,18,16,crown")
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")


def _cfg(tmp_path, **extra):
    cfg = _small_cfg(tmp_path, progress=False, **extra)
    cfg.train_images, cfg.train_boxes = [str(tmp_path / "train")], [str(tmp_path / "train" / "boxes.csv")]
    return cfg


def test_output_names_keep_stems_and_split_shared_ones_by_folder(tmp_path):
    from geodino.eval.detection_outputs import output_names

    paths = [tmp_path / "a" / "scene.tif", tmp_path / "b" / "scene.tif", tmp_path / "a" / "other.tif"]
    paths += [tmp_path / "c" / "x.tif", tmp_path / "c" / "x.png"]
    names = output_names(paths)
    assert names[paths[0]] == "a__scene" and names[paths[1]] == "b__scene" and names[paths[2]] == "other"
    assert {names[paths[3]], names[paths[4]]} == {"c__x_tif", "c__x_png"}


def test_two_predicted_images_with_one_stem_both_get_outputs(tmp_path, monkeypatch):
    _images(tmp_path / "train", 2)
    for folder in ("a", "b"):
        _images(tmp_path / "pred" / folder, 1, prefix="scene")  # pred/a/scene0.tif and pred/b/scene0.tif
    monkeypatch.setattr(det, "train_detector", lambda model, data, cfg: [1.0])
    cfg = _cfg(tmp_path, predict_images=[str(tmp_path / "pred" / "a"), str(tmp_path / "pred" / "b")])
    cfg.export_threshold = 0.0
    run_detection(tiny_backbone(), cfg, tmp_path / "out")
    got = sorted(p.name for p in (tmp_path / "out").glob("*_boxes.geojson"))
    assert got == ["a__scene0_boxes.geojson", "b__scene0_boxes.geojson"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*_boxes.gpkg")) == [n[:-7] + "gpkg" for n in got]


def _coco(path, names_boxes):
    images = [{"id": i, "file_name": n, "width": 32, "height": 32} for i, (n, _) in enumerate(names_boxes)]
    anns = [
        {"id": i, "image_id": i, "bbox": box, "category_id": 1, "iscrowd": 0} for i, (_, box) in enumerate(names_boxes)
    ]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "car"}]}))


def test_coco_images_with_one_name_in_two_folders_stay_apart(tmp_path):
    _coco(tmp_path / "c.json", [("a/x.tif", [1, 1, 4, 4]), ("b/x.tif", [10, 10, 5, 5]), ("y.tif", [2, 2, 2, 2])])
    table = read_coco(tmp_path / "c.json")
    assert sorted(table) == ["a/x.tif", "b/x.tif", "y.tif"]  # a unique name stays keyed by name
    assert len(table["a/x.tif"].boxes) == 1 and len(table["b/x.tif"].boxes) == 1
    table = read_boxes([tmp_path / "c.json"])
    np.testing.assert_array_equal(match_boxes(tmp_path / "data" / "b" / "x.tif", table).boxes, [[10, 10, 15, 15]])
    np.testing.assert_array_equal(match_boxes(tmp_path / "data" / "a" / "x.tif", table).boxes, [[1, 1, 5, 5]])
    assert match_boxes(Path("/elsewhere/y.tif"), table) is not None


def test_an_image_that_fits_no_folder_of_a_shared_name_is_refused(tmp_path):
    _coco(tmp_path / "c.json", [("a/x.tif", [1, 1, 4, 4]), ("b/x.tif", [10, 10, 5, 5])])
    with pytest.raises(InputError, match=r"matches none of the COCO images a/x\.tif, b/x\.tif"):
        match_boxes(tmp_path / "x.tif", read_boxes([tmp_path / "c.json"]))
