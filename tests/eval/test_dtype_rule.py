"""The probes' image files follow the one dtype rule (`geodino.data.dtype_rule`): int8, int32 and uint32 images
have no default DN -> reflectance rule and are refused in one line naming the file and `data_scale` (before: read
as reflectance, scale 1, silently, where `geodino embed` divided the same file by 10000), and an explicit scale
reads them; uint8, uint16, int16 and float images keep their rule and values. Every path that reads image files:
the run's settling, segmentation pairs, canopy pairs, detection scenes, the image-folder dataset and
`read_image`; a recorded DN scale applies to 32-bit integers as to 16-bit ones, never to int8 codes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.errors import InputError
from geodino.eval import dense
from geodino.eval.canopy import CanopyProbeConfig
from geodino.eval.chm import load_chm_pair
from geodino.eval.datasets import DatasetConfig, build_dataset, read_image
from geodino.eval.detection import DetectionProbeConfig, load_detection_set
from geodino.eval.scaling import InputScaling
from geodino.eval.segmentation import SegmentationProbeConfig
from geodino.eval.segmentation_data import load_pair
from tests.eval.conftest import write_dn

ODD = ["int8", "int32", "uint32"]
SCALE = 2e-5


def dn_of(dtype: str, seed: int = 0, size: int = 16) -> np.ndarray:
    """[3,size,size] values of `dtype` across its sign and, for 32 bits, beyond 16 bits."""
    lo, hi = {"int8": (-100, 100), "int32": (-70000, 70000), "uint32": (0, 200000)}.get(dtype, (0, 250))
    return np.random.default_rng(seed).integers(lo, hi, (3, size, size)).astype(dtype)


def scaled(dn: np.ndarray, scale: float) -> torch.Tensor:
    return torch.from_numpy(dn.astype(np.float32)) * np.float32(scale)


def refusal(path, dtype: str, key: str = "data_scale") -> str:
    """The refusal's line: the file (with how many more of its type a whole dataset has), its type, the key."""
    more = r"( \(and \d other images of its type\))?"
    fix = rf"; if it is imagery, set {re.escape(key)} to its DN -> reflectance factor"
    return rf"^{re.escape(str(path))}{more} is {dtype}: .*{fix}"


@pytest.mark.parametrize("dtype", ODD)
def test_segmentation_and_the_runs_settling_refuse_then_read_with_data_scale(tmp_path, dtype):
    dn = dn_of(dtype)
    write_dn(img := tmp_path / "s.tif", dn)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(msk := tmp_path / "s.png")
    with pytest.raises(InputError, match=refusal(img, dtype)):  # before any feature: the run's settling
        dense.settle_scaling(InputScaling.of(SegmentationProbeConfig(num_classes=2)), [img])
    with pytest.raises(InputError, match=refusal(img, dtype)):
        load_pair(img, msk, SegmentationProbeConfig(num_classes=2))
    sample = load_pair(img, msk, SegmentationProbeConfig(num_classes=2, data_scale=SCALE))
    torch.testing.assert_close(sample["image"], scaled(dn, SCALE), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ODD)
def test_canopy_pairs_refuse_then_read_with_data_scale(tmp_path, dtype):
    dn = dn_of(dtype, seed=1)
    write_dn(img := tmp_path / "i.tif", dn, georef=True)
    write_dn(chm := tmp_path / "h.tif", np.full((1, 16, 16), 12.5, np.float32), georef=True)
    with pytest.raises(InputError, match=refusal(img, dtype)):
        load_chm_pair(img, chm, CanopyProbeConfig())
    sample = load_chm_pair(img, chm, CanopyProbeConfig(data_scale=SCALE))
    torch.testing.assert_close(sample["image"], scaled(dn, SCALE), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ODD)
def test_detection_scenes_refuse_then_read_with_data_scale(tmp_path, dtype):
    dn = dn_of(dtype, seed=2, size=32)
    write_dn(img := tmp_path / "scene.tif", dn)
    (csv := tmp_path / "scene.csv").write_text("xmin,ymin,xmax,ymax,label\n2,2,12,12,tree\n")
    data, _ = load_detection_set([str(img)], [str(csv)], DetectionProbeConfig(), None)
    with pytest.raises(InputError, match=refusal(img, dtype)):
        data[0]
    data, _ = load_detection_set([str(img)], [str(csv)], DetectionProbeConfig(data_scale=SCALE), None)
    torch.testing.assert_close(data[0]["image"], scaled(dn, SCALE), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ODD)
def test_image_folder_and_read_image_refuse_then_read_with_a_scale(tmp_path, dtype):
    images = {}
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            write_dn(tmp_path / split / c / "0.tif", dn := dn_of(dtype, seed=len(images)))
            images[(split, c)] = dn
    first = tmp_path / "train" / "a" / "0.tif"
    with pytest.raises(InputError, match=refusal(first, dtype, "data.scale")):
        build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path)), "train")
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), scale=SCALE), "train")
    want = [scaled(images[("train", c)], SCALE) for c in ("a", "b")]
    got = [ds[i]["image"] for i in range(len(ds))]
    assert len(got) == 2 and all(any(torch.equal(g, w) for g in got) for w in want)
    with pytest.raises(InputError, match=rf"^image {re.escape(str(first))} is {dtype}: .*set scale to"):
        read_image(first)
    x, s = read_image(first, SCALE)
    torch.testing.assert_close(x, scaled(images[("train", "a")], SCALE), rtol=0, atol=0)
    assert s == SCALE


@pytest.mark.parametrize(
    ("dtype", "factor", "text"),
    [
        ("uint8", 1 / 255, "x/255 (by dtype: uint8; set data_scale if wrong)"),
        ("uint16", 1 / 10000, "x/10000 (by dtype: uint16; set data_scale if wrong)"),
        ("int16", 1 / 10000, "x/10000 (by dtype: int16; set data_scale if wrong)"),
        ("float32", 1.0, "x (by dtype: float32 used as reflectance; set data_scale if wrong)"),
    ],
)
def test_types_with_a_default_keep_their_rule_and_values(tmp_path, dtype, factor, text):
    rng = np.random.default_rng(5)
    dn = (rng.random((3, 16, 16)) * (0.9 if dtype == "float32" else 250)).astype(dtype)
    write_dn(img := tmp_path / "s.tif", dn)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(msk := tmp_path / "s.png")
    scaling = InputScaling.of(SegmentationProbeConfig(num_classes=2))
    sample = load_pair(img, msk, SegmentationProbeConfig(num_classes=2), scaling)
    torch.testing.assert_close(sample["image"], scaled(dn, factor), rtol=0, atol=0)
    assert scaling.describe() == text


def test_a_recorded_dn_scale_reads_32_bit_integers_but_never_int8_codes(tmp_path):
    """A backbone exported with sentinel2_l2a's DN scale (x * 1e-4): 32-bit integer DN are DN like 16-bit ones and
    take it; int8 holds codes, which no sensor's DN scale is for: refused as without a record."""
    from geodino.backbones import load_backbone

    bb = load_backbone("arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=B04,B03,B02&sensor=sentinel2_l2a")
    dn = dn_of("int32")
    scale, offset, text = InputScaling(bb).rule(dn, "a.tif")
    assert "the backbone's DN scale" in text and np.allclose(scale, 1e-4) and not np.any(offset)
    torch.testing.assert_close(InputScaling(bb).apply(dn, "a.tif"), scaled(dn, 1e-4), rtol=0, atol=0)
    with pytest.raises(InputError, match=r"^b\.tif is int8: signed 8-bit data holds codes"):
        InputScaling(bb).rule(dn_of("int8"), "b.tif")


def test_geodino_probe_refuses_them_in_one_line_naming_the_tasks_key_exit_2(tmp_path, capsys):
    from geodino.cli import main

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(2):
            write_dn(tmp_path / "imgs" / c / f"{i}.tif", dn_of("uint32", seed=i, size=8))
    suite = tmp_path / "suite.yaml"
    root = tmp_path / "imgs"
    suite.write_text(f"name: s\ntasks:\n  c:\n    type: classification\n    data: {{name: image_folder, root: {root}}}")
    out = tmp_path / "out"
    assert main(["probe", "-c", str(suite), "-b", "baseline:colour", "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "is uint32: 32-bit integers" in lines[0] and "set tasks.c.data.scale to its DN" in lines[0], lines[0]
