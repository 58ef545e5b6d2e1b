"""Label budgets where validation comes apart from the training data: a canopy probe with its own validation
rasters (the tiles counted, kept and recorded are training tiles only; validation is scored whole) and a
segmentation probe fed by the LoveDA adapter (a tiny copy in torchgeo's layout: the budget keeps a share of the
Train images, nested for a seed; Val, scored, is untouched)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geodino.eval import canopy, segmentation
from geodino.eval.canopy import run_canopy
from geodino.eval.datasets import DatasetConfig
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.conftest import canopy_dpt_cfg
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_canopy import write_chm, write_image
from tests.eval.test_datasets import make_loveda


def _crops(data: np.ndarray, crop: int) -> list[torch.Tensor]:
    """Every crop x crop window of a [C, H, W] uint8 image on the crop grid, as the probe reads it (DN / 255)."""
    _, h, w = data.shape
    return [
        torch.from_numpy(data[:, r : r + crop, c : c + crop].astype(np.float32) / 255.0)
        for r in range(0, h, crop)
        for c in range(0, w, crop)
    ]


# a head of a few steps predicts every pixel above the 2 m tree threshold: its degenerate-tree_IoU warning is
# expected here (test_canopy_metrics_json_flags_a_degenerate_tree_iou asserts it)
@pytest.mark.filterwarnings("ignore:canopy probe. every predicted pixel:UserWarning")
# the validation raster lies on the training ground on purpose (other pixels, so no trained tile is one of its)
@pytest.mark.filterwarnings("ignore:canopy validation raster .* overlaps training raster:UserWarning")
def test_canopy_budget_with_validation_rasters_counts_and_keeps_training_tiles_only(tmp_path, monkeypatch):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    train_px = write_image(tmp_path / "train" / "a.tif", seed=0)  # 64 px: 16 tiles of 16 px, all on the CHM
    write_chm(tmp_path / "train" / "a_CHM.tif")
    val_px = write_image(tmp_path / "val" / "b.tif", size=96, seed=1)  # same place, other pixels, 36 tiles
    write_chm(tmp_path / "val" / "b_CHM.tif", size=30)
    seen: list[torch.Tensor] = []
    real = canopy._train
    monkeypatch.setattr(
        canopy, "_train", lambda bb, cfg, tiles, *a: seen.append(tiles["image"]) or real(bb, cfg, tiles, *a)
    )
    runs = {}
    for f in (1.0, 0.5, 0.25):
        cfg = canopy_dpt_cfg(
            tmp_path, crop_size=16, stride=16, batch_size=8, block_size=6, block_border=1, output="direct",
            progress=False, train_fraction=f,
        )  # fmt: skip
        cfg.train_images, cfg.train_chms = [str(tmp_path / "train" / "a.tif")], [str(tmp_path / "train")]
        cfg.val_images, cfg.val_chms = [str(tmp_path / "val" / "b.tif")], [str(tmp_path / "val")]
        run_canopy(tiny_backbone(), cfg, tmp_path / str(f))
        runs[f] = json.loads((tmp_path / str(f) / "canopy_metrics.json").read_text())
    assert [t.shape[0] for t in seen] == [16, 8, 4]  # 16 training tiles, half up: 8, 4
    train_crops, val_crops = _crops(train_px, 16), _crops(val_px, 16)
    for tiles in seen:  # every trained tile is a window of the training raster, none of the validation raster
        for t in tiles:
            assert any(torch.allclose(t, c, atol=1e-6) for c in train_crops)
            assert not any(torch.allclose(t, c, atol=1e-6) for c in val_crops)
    nested = lambda small, big: all(any(torch.equal(s, b) for b in big) for s in small)
    assert nested(seen[2], seen[1]) and nested(seen[1], seen[0])
    budget = runs[0.5]["label_budget"]
    assert (budget["unit"], budget["n_train_full"], budget["n_train"]) == ("tiles", 16, 8)
    assert runs[0.25]["label_budget"]["n_train"] == 4 and "label_budget" not in runs[1.0]
    # scored on the validation raster, no hold-out: counted as val_images (it was a NaN val_tiles)
    assert all(r["val_images"] == 1 and "val_tiles" not in r for r in runs.values())


def test_segmentation_budget_on_the_loveda_adapter_keeps_train_images_and_scores_val_whole(tmp_path, monkeypatch):
    make_loveda(tmp_path / "loveda")  # Train and Val: 2 Urban + 2 Rural images each
    seen: dict[float, tuple[list, list]] = {}
    real = segmentation._samples

    def spy(cfg, *args):
        train, val = real(cfg, *args)
        key = lambda d: [d[i]["image"].sum().item() for i in range(len(d))]
        seen[cfg.train_fraction] = (key(train), key(val))
        return train, val

    monkeypatch.setattr(segmentation, "_samples", spy)
    saved = {}
    for f in (1.0, 0.5, 0.25):
        data = DatasetConfig(name="loveda", root=str(tmp_path / "loveda"), test_split="val")
        cfg = SegmentationProbeConfig(
            data=data, crop_size=16, epochs=1, min_steps=1, plots=0, progress=False, train_fraction=f
        )
        m = run_segmentation(tiny_backbone(), cfg, tmp_path / str(f))
        saved[f] = json.loads((tmp_path / str(f) / "segmentation_metrics.json").read_text())
        assert saved[f]["scored_split"] == "loveda val"
        assert ("n_train" in m) == (f < 1.0)
    assert [len(seen[f][0]) for f in (1.0, 0.5, 0.25)] == [4, 2, 1]  # half up of 4 Train images
    assert seen[0.5][1] == seen[0.25][1] == seen[1.0][1] and len(seen[1.0][1]) == 4  # Val whole, the same
    assert set(seen[0.25][0]) <= set(seen[0.5][0]) <= set(seen[1.0][0])  # nested
    assert not set(seen[1.0][0]) & set(seen[1.0][1])  # Train and Val images differ
    budget = saved[0.5]["label_budget"]
    assert (budget["n_train_full"], budget["n_train"], budget["kept_fraction"]) == (4, 2, 0.5)
