"""Detection probe: box readers, box checks, GeoJSON export and a Faster R-CNN run on a frozen ViT."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geodino.errors import InputError
from geodino.eval import dense
from geodino.eval.boxes import Boxes, check_boxes, read_boxes
from geodino.eval.detection import DetectionProbeConfig, boxes_to_geojson, run_detection
from tests.eval.dense_backbone import assert_unchanged, snapshot, tiny_backbone

BOXES = [[10.0, 12.0, 30.0, 40.0, "tree"], [40.0, 5.0, 60.0, 20.0, "snag"]]


def write_voc(path, name="a.tif", boxes=BOXES):
    objs = "".join(
        f"<object><name>{lab}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>"
        for x0, y0, x1, y1, lab in boxes
    )
    path.write_text(f"<annotation><filename>{name}</filename><size><width>64</width></size>{objs}</annotation>")


def write_coco(path, name="a.tif", boxes=BOXES):
    cats = sorted({b[4] for b in boxes})
    anns = [
        {"id": i, "image_id": 7, "category_id": cats.index(lab) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0]}
        for i, (x0, y0, x1, y1, lab) in enumerate(boxes)
    ]
    path.write_text(
        json.dumps(
            {
                "images": [{"id": 7, "file_name": f"imgs/{name}", "width": 64, "height": 64}],
                "annotations": anns,
                "categories": [{"id": i + 1, "name": c} for i, c in enumerate(cats)],
            }
        )
    )


def write_csv(path, name="a.tif", boxes=BOXES, with_image=True):
    head = "image_path,xmin,ymin,xmax,ymax,label" if with_image else "xmin,ymin,xmax,ymax,label"
    rows = [f"{name + ',' if with_image else ''}{x0},{y0},{x1},{y1},{lab}" for x0, y0, x1, y1, lab in boxes]
    path.write_text("\n".join([head, *rows]) + "\n")


def test_voc_coco_and_csv_readers_agree(tmp_path):
    write_voc(tmp_path / "a.xml")
    write_coco(tmp_path / "a.json")
    write_csv(tmp_path / "with_path.csv")
    write_csv(tmp_path / "a.csv", with_image=False)  # rows belong to the image with the CSV's stem
    expected = np.array([b[:4] for b in BOXES], np.float32)
    for f in ("a.xml", "a.json", "with_path.csv", "a.csv"):
        table = read_boxes([tmp_path / f])
        assert list(table) == ["a.tif"] or list(table) == ["a"], f
        b = next(iter(table.values()))
        np.testing.assert_array_equal(b.boxes, expected)
        assert b.labels == ["tree", "snag"]


def test_boxes_outside_the_image_are_refused():
    b = Boxes(np.array([[10, 10, 20, 20], [50, 50, 90, 60]], np.float32), ["t", "t"], "x.xml")
    with pytest.raises(InputError, match=r"box 1 \[50.0, 50.0, 90.0, 60.0\] lies outside the 64x64 px image"):
        check_boxes(b, 64, 64, "boxes of a.tif in x.xml")
    clipped = check_boxes(Boxes(np.array([[-0.5, 0, 64.5, 10]], np.float32), ["t"]), 64, 64, "ok")
    assert clipped.tolist() == [[0.0, 0.0, 64.0, 10.0]]  # half-pixel overshoots are clipped
    with pytest.raises(InputError, match="xmax <= xmin"):
        check_boxes(Boxes(np.array([[20, 10, 10, 20]], np.float32), ["t"]), 64, 64, "bad")


def test_geojson_export_uses_map_coordinates():
    transform = from_origin(404211.9, 3285142.9, 0.1, 0.1)
    r = dense.Raster(
        np.zeros((3, 400, 400), np.uint8), np.ones((400, 400), bool), "OSBS.tif", CRS.from_epsg(32617), transform
    )
    pred = {
        "boxes": torch.tensor([[100.0, 50.0, 120.0, 80.0], [0, 0, 5, 5]]),
        "scores": torch.tensor([0.9, 0.1]),
        "labels": torch.tensor([0, 0]),
    }
    fc = boxes_to_geojson(pred, r, ["Tree"], threshold=0.3)
    assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32617"
    assert len(fc["features"]) == 1  # the 0.1 score is under the threshold
    f = fc["features"][0]
    ring = np.array(f["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(404211.9 + 10.0) and ring[:, 0].max() == pytest.approx(404211.9 + 12.0)
    assert ring[:, 1].max() == pytest.approx(3285142.9 - 5.0) and ring[:, 1].min() == pytest.approx(3285142.9 - 8.0)
    area2 = np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
    assert area2 > 0  # exterior ring counter-clockwise (RFC 7946)
    assert f["properties"]["label"] == "Tree" and f["properties"]["score"] == pytest.approx(0.9)


def _scene(tmp_path, size=64, n_boxes=6, seed=0):
    """A georeferenced image with bright squares on a dark background and their boxes in a CSV."""
    rng = np.random.default_rng(seed)
    img = np.full((3, size, size), 30, np.uint8)
    rows = []
    for _ in range(n_boxes):
        x, y = rng.integers(2, size - 14, 2)
        img[:, y : y + 12, x : x + 12] = 220
        rows.append([float(x), float(y), float(x + 12), float(y + 12), "crown"])
    with rasterio.open(
        tmp_path / "scene.tif",
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs=CRS.from_epsg(32617),
        transform=from_origin(400000, 3000000, 0.5, 0.5),
    ) as dst:
        dst.write(img)
    write_csv(tmp_path / "scene.csv", "scene.tif", rows)


def _small_cfg(tmp_path, **extra) -> DetectionProbeConfig:
    """One epoch of a small detector on the scene `_scene` writes (32 px tiles, 16 pyramid channels)."""
    return DetectionProbeConfig(
        train_images=[str(tmp_path / "scene.tif")],
        train_boxes=[str(tmp_path / "scene.csv")],
        tile_size=32,
        epochs=1,
        batch_size=3,
        pyramid_channels=16,
        anchor_sizes=[8, 16, 32, 64, 128],
        # a short head meant: an explicit min_steps keeps it from warning (min_steps=0 in `extra`: the warning)
        **{"min_steps": 1, **extra},
    )


def test_faster_rcnn_probe_end_to_end(tmp_path):
    bb = tiny_backbone()
    before = snapshot(bb)
    _scene(tmp_path)
    cfg = _small_cfg(tmp_path, export_threshold=0.0)
    metrics = run_detection(bb, cfg, tmp_path / "out")
    assert {"mAP", "mAP50", "mAP75", "mAR100"} <= metrics.keys()
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("mAP", "mAP50", "mAP75"))
    assert metrics["val_tiles"] == 1.0 and "val_images" not in metrics  # 4 tiles of 32 px, a quarter held out
    fc = json.loads((tmp_path / "out" / "scene_boxes.geojson").read_text())
    assert fc["type"] == "FeatureCollection"
    for f in fc["features"]:
        xs = [p[0] for p in f["geometry"]["coordinates"][0]]
        assert 400000 <= min(xs) and max(xs) <= 400032  # inside the image's 32 m footprint, in metres
    assert (tmp_path / "out" / "detection_boxes.png").stat().st_size > 0
    assert_unchanged(bb, before)
    state = torch.load(tmp_path / "out" / "detection_head.pt", weights_only=False)["state_dict"]
    assert not any(k.startswith("backbone._frozen") or ".blocks." in k for k in state)  # heads only


def test_unknown_label_and_band_mismatch(tmp_path):
    _scene(tmp_path)
    cfg = DetectionProbeConfig(
        train_images=[str(tmp_path / "scene.tif")], train_boxes=[str(tmp_path / "scene.csv")], class_names=["tree"]
    )
    with pytest.raises(InputError, match=r"use 1 label not in class_names \['tree'\] \(crown\); add it to class_names"):
        run_detection(tiny_backbone(), cfg, tmp_path / "out")
    cfg = DetectionProbeConfig(
        train_images=[str(tmp_path / "scene.tif")], train_boxes=[str(tmp_path / "scene.csv")], bands=[0, 1]
    )
    with pytest.raises(InputError, match=r"has 2 bands but backbone .* expects 3; .*adapt the patch embedding"):
        run_detection(tiny_backbone(), cfg, tmp_path / "out")


def test_same_seed_gives_the_same_detector_whatever_drew_random_numbers_before(tmp_path):
    """The pyramid and detector heads are built after re-seeding: earlier RNG use must not change them."""
    _scene(tmp_path)
    cfg = _small_cfg(tmp_path)
    heads = []
    for i, before in enumerate((1, 2)):
        torch.manual_seed(before)
        run_detection(tiny_backbone(), cfg, tmp_path / f"out{i}")
        heads.append(torch.load(tmp_path / f"out{i}" / "detection_head.pt", weights_only=False)["state_dict"])
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
