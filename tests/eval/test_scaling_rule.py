"""The probes' DN -> reflectance rule is a property of the dataset, not of one image.

A backbone that records an 8-bit DN scale (1/255) fits 16-bit files only while their values stay <= 255. That
used to be decided per image (dense probes) or on each split's first image (`image_folder`), so a dark 16-bit
tile (a water tile, max <= 255) was divided by 255 next to its neighbours divided by 10000 (39x brighter), and
train and test splits could be scaled differently. Now every file of the dataset is looked at first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.scaling import InputScaling
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.conftest import read_dn, write_dn

EIGHT_BIT = "arch:vit_tiny?seed=0&patch_size=8&bands=red,green,blue&sensor=maxar"  # records x/255


def bright(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    return rng.integers(300, 4000, (3, size, size)).astype(np.uint16)


def dark(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A 16-bit tile whose largest value is 200 (<= 255): alone it fits a scale for 8-bit DN."""
    return rng.integers(0, 201, (3, size, size)).astype(np.uint16)


def recording(monkeypatch: pytest.MonkeyPatch) -> tuple[object, list[torch.Tensor]]:
    from geodino.backbones import load_backbone

    bb = load_backbone(EIGHT_BIT)
    seen: list[torch.Tensor] = []
    plain = bb.normalize
    monkeypatch.setattr(bb, "normalize", lambda x: (seen.append(x.detach().clone()), plain(x))[1])
    return bb, seen


def test_a_dark_16bit_tile_gets_the_rule_of_its_dataset(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    images = [bright(rng), dark(rng)]  # s0 bright, s1 the dark one
    mask = ((np.arange(32)[:, None] // 8 + np.arange(32)[None] // 8) % 2).astype(np.uint8)
    for i, dn in enumerate(images):
        write_dn(tmp_path / "img" / f"s{i}.tif", dn)
        Image.fromarray(mask).save(tmp_path / "msk" / f"s{i}_mask.png")
    folders = {"train_images": str(tmp_path / "img"), "train_masks": str(tmp_path / "msk")}
    cfg = SegmentationProbeConfig(
        **folders,
        val_images=folders["train_images"],
        val_masks=folders["train_masks"],
        num_classes=2,
        crop_size=32,
        epochs=1,
        min_steps=1,
        plots=0,
        progress=False,
    )
    bb, seen = recording(monkeypatch)
    run_segmentation(bb, cfg, tmp_path / "out")
    # the first forward pass is the training tiles of s0 and s1, one batch; before, s1 came as DN/255 (0..0.78)
    assert seen[0].shape[0] == 2
    for got, dn in zip(seen[0], images):
        torch.testing.assert_close(got, torch.from_numpy(dn.astype(np.float32)) * np.float32(1e-4))
    rule = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())["input_scaling"]
    assert rule.startswith("x/10000 (by dtype: uint16; the backbone's DN scale x*0.00392157 (sensor maxar")
    assert "; x*0.00392157 (the backbone's DN scale" not in rule  # one rule, not one per kind of image
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("segmentation: input scaling ")]
    assert lines == [f"segmentation: input scaling {rule}"]


def test_train_and_test_splits_of_an_image_folder_get_one_rule(tmp_path):
    from geodino.backbones import load_backbone

    rng = np.random.default_rng(1)
    for split, make in (("train", bright), ("val", bright), ("test", dark)):  # every test image is dark
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                write_dn(tmp_path / split / c / f"{i}.tif", make(rng, 16))
    test_dn = read_dn(tmp_path / "test" / "a" / "0.tif")
    bb = load_backbone(EIGHT_BIT)
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path))
    train, test = build_dataset(cfg, "train", backbone=bb), build_dataset(cfg, "test", backbone=bb)
    # before: the test split took x/255 from its own first (dark) image, train x/10000
    torch.testing.assert_close(test[0]["image"], torch.from_numpy(test_dn.astype(np.float32)) * np.float32(1e-4))
    assert test.scaling == train.scaling
    assert test.scaling.startswith("x/10000 (by dtype: uint16; the backbone's DN scale x*0.00392157")
    assert test.key.split("|")[4].split(",files=")[0].endswith(",scale=0.0001")  # the feature cache key too
    assert train.key.split("|")[4].split(",files=")[0].endswith(",scale=0.0001")


def test_8bit_values_stored_as_16_bits_keep_the_8bit_record(tmp_path):
    """The documented case the value check is for: 16-bit files whose values all stay <= 255 are 8-bit DN, so the
    record (x/255) applies to every one of them; the scan stops at the first file with a value above 255."""
    from geodino.backbones import load_backbone

    rng = np.random.default_rng(2)
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.tif")
        write_dn(files[-1], dark(rng, 8))
    reads: list[Path] = []

    def read(p: Path) -> tuple[np.ndarray, None]:
        reads.append(p)
        return read_dn(p), None

    scaling = InputScaling(load_backbone(EIGHT_BIT))
    scaling.settle(files, read)
    scale, offset, text = scaling.rule(np.full((3, 2, 2), 3000, np.uint16))  # later values do not change it
    assert np.ravel(scale).tolist() == pytest.approx([1 / 255]) and not np.any(offset)
    assert text.startswith("x*0.00392157 (the backbone's DN scale: sensor maxar")
    assert reads == files  # every file read once: none above 255
    write_dn(files[0], bright(rng, 8))
    reads.clear()
    again = InputScaling(load_backbone(EIGHT_BIT))
    again.settle(files, read)
    assert reads == files[:1]  # the first file above 255 decides; the rest are not read
    assert again.rule(np.zeros((3, 2, 2), np.uint16))[0] == pytest.approx(1e-4)
