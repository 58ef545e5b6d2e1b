"""Detection probe label budget: train_fraction keeps a seeded, nested share of the training IMAGES (before tiling,
after the val_fraction hold-out); validation (given images or held-out tiles) stays whole; the run records it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geodino.errors import ConfigError
from geodino.eval import detection as det
from geodino.eval.detection import DetectionProbeConfig, run_detection
from geodino.eval.detection_training import budget_images
from tests.eval.dense_backbone import tiny_backbone


def _images(folder, n, size=32, prefix="t"):
    """`n` georeferenced images with one bright square each, their boxes in one CSV (`boxes.csv`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image_path,xmin,ymin,xmax,ymax,label"]
    for i in range(n):
        img = np.full((3, size, size), 30, np.uint8)
        img[:, 4:16, 6:18] = 220
        profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=CRS.from_epsg(32617))
        with rasterio.open(folder / f"{prefix}{i}.tif", "w", transform=from_origin(4e5, 3e6, 0.5, 0.5), **profile) as d:
            d.write(img)
        rows.append(f"{prefix}{i}.tif,6,4,18,16,crown")
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")


def _cfg(tmp_path, **extra) -> DetectionProbeConfig:
    return DetectionProbeConfig(
        train_images=[str(tmp_path / "train")],
        train_boxes=[str(tmp_path / "train" / "boxes.csv")],
        tile_size=32,
        epochs=1,
        batch_size=2,
        pyramid_channels=16,
        anchor_sizes=[8, 16, 32, 64, 128],
        progress=False,
        **extra,
    )


def _samples(n):
    return [
        {"image": torch.zeros(3, 8, 8), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0), "i": i} for i in range(n)
    ]


@pytest.mark.parametrize(("fraction", "want"), [(0.1, 1), (0.25, 2), (0.5, 4), (1.0, 8)])
def test_counts_with_validation_images(fraction, want):
    data = _samples(8)
    units, rec = budget_images(DetectionProbeConfig(train_fraction=fraction), data, data, None)
    if fraction == 1.0:
        assert rec is None and units is data
    else:
        assert len(units) == want and rec["n_train"] == want and rec["n_train_full"] == 8 and rec["unit"] == "images"


def test_budgets_are_nested_and_follow_the_seed():
    data = _samples(20)

    def kept(fraction, seed=0):
        units, _ = budget_images(DetectionProbeConfig(train_fraction=fraction, seed=seed), data, data, None)
        return {units[i]["i"] for i in range(len(units))}

    assert kept(0.1) <= kept(0.25) <= kept(0.5)
    assert kept(0.25) == kept(0.25) and kept(0.25, seed=1) != kept(0.25)


def test_held_out_tiles_keep_every_tile_of_a_kept_image():
    # 4 images of 3 training tiles each (their val tiles already carved): half the IMAGES keep all their tiles
    units = [{"src": s, "k": k} for s in range(4) for k in range(3)]
    sources = [u["src"] for u in units]
    kept, rec = budget_images(DetectionProbeConfig(train_fraction=0.5), _samples(5), units, sources)
    assert rec["n_train_full"] == 4 and rec["n_train"] == 2  # image 4 has no training tile left: not counted
    assert len(kept) == 6 and len({u["src"] for u in kept}) == 2


def test_end_to_end_trains_on_fewer_images_and_keeps_validation(tmp_path, monkeypatch):
    _images(tmp_path / "train", 4)
    _images(tmp_path / "val", 2, prefix="v")
    seen = []

    def fake_train(model, data, cfg):
        seen.append([data[i]["name"] for i in range(len(data))])
        return [1.0]

    monkeypatch.setattr(det, "train_detector", fake_train)
    val = dict(val_images=[str(tmp_path / "val")], val_boxes=[str(tmp_path / "val" / "boxes.csv")])
    full = run_detection(tiny_backbone(), _cfg(tmp_path, **val), tmp_path / "full")
    half = run_detection(tiny_backbone(), _cfg(tmp_path, train_fraction=0.5, **val), tmp_path / "half")
    assert len(seen[0]) == 4 and len(seen[1]) == 2 and set(seen[1]) <= set(seen[0])
    assert full["val_images"] == half["val_images"] == 2.0
    assert "n_train" not in full and half["n_train"] == 2.0 and half["train_fraction"] == 0.5
    saved = json.loads((tmp_path / "half" / "detection_metrics.json").read_text())["label_budget"]
    assert saved["n_train"] == 2 and saved["n_train_full"] == 4 and sorted(saved["train_images"]) == sorted(seen[1])


def test_held_out_tiles_are_the_same_with_a_budget(tmp_path, monkeypatch):
    _images(tmp_path / "train", 4)
    seen = []
    monkeypatch.setattr(det, "train_detector", lambda model, data, cfg: seen.append(len(data)) or [1.0])
    a = run_detection(tiny_backbone(), _cfg(tmp_path, val_fraction=0.25), tmp_path / "a")
    b = run_detection(tiny_backbone(), _cfg(tmp_path, val_fraction=0.25, train_fraction=0.34), tmp_path / "b")
    assert a["val_tiles"] == b["val_tiles"] == 1.0 and seen == [3, 1]  # 3 training images left; 0.34 x 3 -> 1


def test_an_out_of_range_fraction_is_one_line():
    with pytest.raises(ConfigError, match=r"detection train_fraction=0"):
        run_detection(tiny_backbone(), DetectionProbeConfig(train_fraction=0.0), "/nonexistent")


def test_budget_record_names_images_of_one_name_in_two_folders_apart(tmp_path, monkeypatch):
    """The kept training images are recorded by their path below the common folder (a/t0.tif, b/t0.tif), as the
    outputs name them; the bare file name recorded both as t0.tif."""
    _images(tmp_path / "train" / "a", 2)
    _images(tmp_path / "train" / "b", 2)
    monkeypatch.setattr(det, "train_detector", lambda model, data, cfg: [1.0])
    cfg = _cfg(tmp_path, train_fraction=0.99)
    cfg.train_boxes = [str(tmp_path / "train" / f / "boxes.csv") for f in ("a", "b")]
    cfg.train_images = [str(tmp_path / "train" / f) for f in ("a", "b")]
    cfg.val_fraction = 0.1  # one tile held out (0 is refused: nothing to score on)
    with pytest.warns(UserWarning):
        run_detection(tiny_backbone(), cfg, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "detection_metrics.json").read_text())["label_budget"]
    names = saved["train_images"]
    assert len(names) == len(set(names)) == saved["n_train"] >= 2
    assert set(names) <= {"a/t0.tif", "a/t1.tif", "b/t0.tif", "b/t1.tif"}
