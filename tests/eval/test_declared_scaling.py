"""The probes' image files and `embed images` read the scale/offset a GeoTIFF declares (GDAL `<Scale>`/`<Offset>`)
as `geodino embed` does: explicit scale > the file's declared rule > the backbone's record > the dtype rule. Before,
a uint16 file declaring Landsat's x*2.75e-5-0.2 was divided by 10000 in the probes and `embed images`, and an int32
folder declaring 1e-4 was refused there. Each file gets its own declared rule (Sentinel-2 baselines side by side);
files of one type that declare beside files that do not are refused in one line naming one of each."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geodino.errors import ConfigError, InputError
from geodino.eval import dense
from geodino.eval.datasets import DatasetConfig, build_dataset, read_image
from geodino.eval.scaling import InputScaling
from geodino.eval.segmentation import SegmentationProbeConfig
from geodino.eval.segmentation_data import load_pair
from tests.eval.conftest import write_dn

SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
LANDSAT = ((2.75e-5,) * 3, (-0.2,) * 3)


def tagged(path: Path, dn: np.ndarray, rule: tuple[tuple[float, ...], tuple[float, ...]] | None) -> Path:
    """`dn` [C,H,W] written as a GeoTIFF that declares `rule` (scales, offsets per band), or nothing."""
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    write_dn(path, dn)
    if rule is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not georeferenced
            with rasterio.open(path, "r+") as dst:
                dst.scales, dst.offsets = rule
    return path


def dn_of(seed: int, dtype: str = "uint16", top: int = 40000) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, top, (3, 16, 16)).astype(dtype)


def by_hand(dn: np.ndarray, scales, offsets) -> torch.Tensor:
    """x * scale + offset per band in float32, as every reader computes it."""
    s = np.asarray(scales, np.float32).reshape(-1, 1, 1)
    o = np.asarray(offsets, np.float32).reshape(-1, 1, 1)
    return torch.from_numpy(dn.astype(np.float32) * s + o)


def classes(root: Path, rule, dtype: str = "uint16") -> dict[str, np.ndarray]:
    """ROOT/{a,b}/0.tif, each declaring `rule`; their DN by class."""
    out = {}
    for i, c in enumerate("ab"):
        tagged(root / c / "0.tif", dn := dn_of(i, dtype), rule)
        out[c] = dn
    return out


def test_image_folder_reads_each_files_declared_rule_and_an_explicit_scale_wins(tmp_path):
    dn = classes(tmp_path, LANDSAT)
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.0), "train")
    got = {ds.labels[i]: ds[i]["image"] for i in range(len(ds))}
    for k, c in enumerate("ab"):
        torch.testing.assert_close(got[k], by_hand(dn[c], *LANDSAT), rtol=0, atol=0)
    assert ds.scaling == "x*2.75e-05-0.2 (declared by each file: GDAL scale/offset)"
    mine = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.0, scale=1e-4), "train")
    torch.testing.assert_close(mine[0]["image"], by_hand(dn["a"], [1e-4], [0.0]), rtol=0, atol=0)
    assert mine.key.split("|")[4] != ds.key.split("|")[4]  # the feature cache tells the two rules apart
    x, _ = read_image(tmp_path / "a" / "0.tif")
    torch.testing.assert_close(x, by_hand(dn["a"], *LANDSAT), rtol=0, atol=0)


def test_int32_files_that_declare_a_scale_are_read_not_refused(tmp_path):
    dn = classes(tmp_path, ((1e-4,) * 3, (0.0,) * 3), dtype="int32")
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.0), "train")
    got = {ds.labels[i]: ds[i]["image"] for i in range(len(ds))}
    torch.testing.assert_close(got[0], by_hand(dn["a"], [1e-4], [0.0]), rtol=0, atol=0)


def test_files_without_a_declaration_and_pngs_keep_the_dtype_rule(tmp_path):
    dn = classes(tmp_path / "tif", None)
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path / "tif"), val_fraction=0.0), "train")
    torch.testing.assert_close(ds[0]["image"], by_hand(dn["a"], [1e-4], [0.0]), rtol=0, atol=0)
    assert ds.scaling.startswith("x/10000 (by dtype: uint16")
    rgb = np.random.default_rng(5).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    for c in "ab":
        (tmp_path / "png" / c).mkdir(parents=True)
        Image.fromarray(rgb).save(tmp_path / "png" / c / "0.png")
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path / "png"), val_fraction=0.0), "train")
    torch.testing.assert_close(ds[0]["image"], by_hand(rgb.transpose(2, 0, 1), [1 / 255], [0.0]), rtol=0, atol=0)
    assert ds.scaling.startswith("x/255 (by dtype: uint8")


def test_segmentation_pairs_read_each_files_declared_rule_per_selected_band(tmp_path):
    s2_old, s2_new = ((1e-4, 2e-4, 3e-4), (0.0, 0.0, 0.0)), ((1e-4, 2e-4, 3e-4), (-0.1, -0.1, -0.2))
    old = tagged(tmp_path / "old.tif", dn_old := dn_of(1), s2_old)
    new = tagged(tmp_path / "new.tif", dn_new := dn_of(2), s2_new)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask := tmp_path / "m.png")
    cfg = SegmentationProbeConfig(num_classes=2, bands=[2, 0])
    scaling = InputScaling.of(cfg)
    dense.settle_scaling(scaling, [old, new], cfg.bands)
    for path, dn, (s, o) in ((old, dn_old, s2_old), (new, dn_new, s2_new)):
        want = by_hand(dn[[2, 0]], [s[2], s[0]], [o[2], o[0]])
        torch.testing.assert_close(load_pair(path, mask, cfg, scaling)["image"], want, rtol=0, atol=0)
        torch.testing.assert_close(load_pair(path, mask, cfg)["image"], want, rtol=0, atol=0)  # unsettled: same
    assert "x*[0.0003,0.0001]+[-0.2,-0.1] (declared by the file: GDAL scale/offset)" in scaling.describe()


def test_declaring_beside_non_declaring_files_is_one_line_naming_both(tmp_path):
    tagged(tmp_path / "a" / "0.tif", dn_of(0), LANDSAT)
    tagged(tmp_path / "b" / "0.tif", dn_of(1), None)
    a, b = (re.escape(str(tmp_path / c / "0.tif")) for c in "ab")
    line = rf"^{a} declares its DN -> reflectance rule \(x\*2.75e-05-0.2, GDAL scale/offset\) but {b}, also uint16"
    with pytest.raises(InputError, match=line + r".*or set data.scale to one rule for all"):
        build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.0), "train")
    scaling = InputScaling()
    with pytest.raises(InputError, match=line + r".*or set data_scale"):
        dense.settle_scaling(scaling, [tmp_path / "a" / "0.tif", tmp_path / "b" / "0.tif"])
    ok = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.0, scale=1e-4), "train")
    assert len(ok) == 2


def test_a_file_without_a_kept_band_is_left_to_its_reader_not_called_a_file_declaring_none(tmp_path):
    """bands=[0, 1, 2] over a declaring 3-band file and a 2-band one: the 2-band file is refused by the reader
    ("has 2 bands"), not as a uint16 file "with 3 bands" declaring no rule beside one that does."""
    good = tagged(tmp_path / "good.tif", dn := dn_of(0), LANDSAT)
    short = tagged(tmp_path / "short.tif", dn_of(1)[:2], None)
    scaling = InputScaling()
    dense.settle_scaling(scaling, [good, short], [0, 1, 2])
    torch.testing.assert_close(
        dense.to_image_tensor(dense.read_raster(good), scaling, [0, 1, 2]), by_hand(dn, *LANDSAT)
    )
    with pytest.raises(ConfigError, match=rf"^bands=\[0, 1, 2\] but {re.escape(str(short))} has 2 bands"):
        dense.to_image_tensor(dense.read_raster(short), scaling, [0, 1, 2])


def test_embed_images_reads_the_declared_rule_as_features_of_the_scaled_values(tmp_path):
    """Features of a folder declaring Landsat's rule (uint16) and 1e-4 (int32) equal those of float32 files holding
    the values scaled by hand (float files are read as reflectance)."""
    import geopandas as gpd

    from geodino.embed import embed_images

    dn16, dn32 = dn_of(0), dn_of(1, "int32")
    tagged(tmp_path / "dn" / "l.tif", dn16, LANDSAT)
    tagged(tmp_path / "dn" / "i.tif", dn32, ((1e-4,) * 3, (0.0,) * 3))
    write_dn((tmp_path / "refl").mkdir() or tmp_path / "refl" / "l.tif", by_hand(dn16, *LANDSAT).numpy())
    write_dn(tmp_path / "refl" / "i.tif", by_hand(dn32, [1e-4], [0.0]).numpy())
    got = {}
    for name in ("dn", "refl"):
        embed_images(tmp_path / name, SPEC, out := tmp_path / f"{name}.parquet", progress=False)
        got[name] = {p: np.asarray(v) for p, v in gpd.read_parquet(out).set_index("path")["embedding"].items()}
    assert sorted(got["dn"]) == ["i.tif", "l.tif"]
    for p in got["dn"]:
        np.testing.assert_array_equal(got["dn"][p], got["refl"][p])
    with pytest.raises(InputError, match=r"declares none: .*or pass --scale FACTOR to one rule for all"):
        tagged(tmp_path / "dn" / "plain.tif", dn_of(2), None)
        embed_images(tmp_path / "dn", SPEC, tmp_path / "mixed.parquet", progress=False)
