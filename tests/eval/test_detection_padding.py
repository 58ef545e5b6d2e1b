"""Detection tiles and batches are padded with the backbone's band means (0 once normalised), as the dense probes
pad (tests/eval/test_dense_padding.py). Training tiles at the image edge (boxes.tile_sample) and torchvision's
batch padding to a multiple of the pyramid stride (held-out tiles, small validation images) used reflectance 0,
-mean/std once normalised: a dark border unlike anything in the images."""

from __future__ import annotations

from typing import Any

import torch

from geodino.eval.detection import run_detection
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_dense_padding import _record_inputs
from tests.eval.test_detection import _scene, _small_cfg


def _padding_checks(seen: list[torch.Tensor], bb: Any) -> int:
    """No normalised input holds normalised reflectance 0; returns how many pixels are exactly the mean (0)."""
    seen = [x for x in seen if x.shape[-1] > bb.patch_size]  # not build_detector's one-patch shape probe
    assert seen
    dark = bb.normalize(torch.zeros(1, 3, 1, 1)).reshape(3)
    zeros = 0
    for x in seen:
        for b in range(3):
            assert not torch.isclose(x[:, b], dark[b], atol=1e-4).any(), (tuple(x.shape), b, float(dark[b]))
        zeros += int((x == 0).all(dim=1).sum())
    return zeros


def test_held_out_edge_tiles_are_padded_with_the_band_mean(tmp_path, monkeypatch):
    """A 40 px scene in 32 px tiles: three of its four tiles run past the edge (8 px real, 24 px padding)."""
    bb = tiny_backbone()
    seen = _record_inputs(monkeypatch, bb)
    _scene(tmp_path, size=40, n_boxes=4)
    run_detection(bb, _small_cfg(tmp_path), tmp_path / "out")
    assert _padding_checks(seen, bb) > 0  # the padding is there, and it is the mean


def test_a_small_validation_image_is_padded_with_the_band_mean(tmp_path, monkeypatch):
    """A 20 px validation image is predicted whole; torchvision pads it to 32 px (the pyramid's stride)."""
    bb = tiny_backbone()
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir()
    val.mkdir()
    _scene(train, size=32, n_boxes=3)
    _scene(val, size=20, n_boxes=1, seed=1)
    seen = _record_inputs(monkeypatch, bb)
    cfg = _small_cfg(train, val_images=[str(val / "scene.tif")], val_boxes=[str(val / "scene.csv")])
    run_detection(bb, cfg, tmp_path / "out")
    assert any(x.shape[-1] == 32 for x in seen)
    assert _padding_checks(seen, bb) > 0
