"""`geodino embed` and `embed images` follow the one dtype rule (`geodino.data.dtype_rule`). int8 (codes:
quantised embeddings such as `--dtype int8` output, classes, SAR dB), int32 and uint32 input took the 16-bit
default, DN / 10000 with one "assumed" warning, in `geodino embed` and scale 1 silently in `embed images`:
without a rule from the user, the file or (except for int8) the backbone's record, the run is refused in one line
before anything is written, and --scale gives the rule. uint8, uint16, int16 and float input keep their rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

from geodino.embed import embed_images, embed_raster
from geodino.errors import InputError
from tests.embed.conftest import write_tif

ODD = ["int8", "int32", "uint32"]
SCALE = 2e-5
SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=3"
S2 = "arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=B04,B03,B02&sensor=sentinel2_l2a"  # records x * 1e-4


def dn_of(dtype: str, seed: int = 0) -> np.ndarray:
    """[3,16,16] values of `dtype` across its sign and, for 32 bits, beyond 16 bits."""
    lo, hi = {"int8": (-100, 100), "int32": (-70000, 70000), "uint32": (0, 200000)}.get(dtype, (0, 250))
    return np.random.default_rng(seed).integers(lo, hi, (3, 16, 16)).astype(dtype)


def embedded(path, bb, out, **kw) -> tuple[np.ndarray, str]:
    """The feature raster of `path` and the input scaling it records."""
    embed_raster(path, bb, out, tile=16, overlap=0, progress=False, **kw)
    with rasterio.open(out) as src:
        return src.read(), src.tags()["GEODINO_INPUT_SCALE"]


@pytest.mark.parametrize("dtype", ODD)
def test_embed_refuses_them_before_anything_is_written_and_reads_them_by_scale(tmp_path, conv_bb, dtype):
    dn = dn_of(dtype)
    src = write_tif(tmp_path / "codes.tif", dn)
    out = tmp_path / "out" / "f.tif"
    with pytest.raises(InputError, match=rf"codes\.tif is {dtype}: .*--scale FACTOR \(--scale 1 reads the values"):
        embed_raster(src, conv_bb, out, tile=16, overlap=0, progress=False)
    assert not out.parent.exists()
    got, rule = embedded(src, conv_bb, tmp_path / "f.tif", scale=SCALE)
    assert rule == f"x*{SCALE}"
    # the same reflectance given as floats: the same features, bit for bit
    refl = write_tif(tmp_path / "refl.tif", dn.astype(np.float32) * np.float32(SCALE))
    want, rule = embedded(refl, conv_bb, tmp_path / "r.tif")
    assert rule == "x (float input used as reflectance)"
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("dtype", "divisor", "rule"),
    [
        ("uint8", 255, "x/255 (uint8)"),
        ("uint16", 10000, "x/10000 (uint16, assumed)"),
        ("int16", 10000, "x/10000 (int16, assumed)"),
        ("float32", 1, "x (float input used as reflectance)"),
    ],
)
def test_embed_keeps_the_rule_of_types_with_a_default(tmp_path, conv_bb, dtype, divisor, rule):
    dn = (np.random.default_rng(1).random((3, 16, 16)) * (0.9 if dtype == "float32" else 250)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 16-bit "assumed" warning, tested where it is said
        got, said = embedded(write_tif(tmp_path / "in.tif", dn), conv_bb, tmp_path / "f.tif")
    assert said == rule
    refl = dn.astype(np.float32) * np.float32(1 / divisor)
    want, _ = embedded(write_tif(tmp_path / "refl.tif", refl), conv_bb, tmp_path / "r.tif")
    np.testing.assert_array_equal(got, want)


def test_a_recorded_dn_scale_reads_int32_but_not_int8_codes(tmp_path):
    from geodino.backbones import load_backbone

    bb = load_backbone(S2)
    _, rule = embedded(write_tif(tmp_path / "dn.tif", dn_of("int32")), bb, tmp_path / "f.tif")
    assert rule.startswith("x*0.0001 (sensor sentinel2_l2a")
    with pytest.raises(InputError, match=r"codes\.tif is int8: signed 8-bit data holds codes"):
        embedded(write_tif(tmp_path / "codes.tif", dn_of("int8")), bb, tmp_path / "g.tif")


def test_a_scale_the_file_declares_is_a_rule_for_int32(tmp_path, conv_bb):
    """GDAL scale/offset tags on an int32 raster (DN x 10^4 + 1000, scale 1e-4, offset -0.1) give the rule: read
    by it, not refused."""
    dn = dn_of("int32") % 5000 + 1000
    src = write_tif(tmp_path / "dn.tif", dn)
    with rasterio.open(src, "r+") as dst:
        dst.scales, dst.offsets = (1e-4,) * 3, (-0.1,) * 3
    got, rule = embedded(src, conv_bb, tmp_path / "f.tif")
    assert rule == "x*0.0001-0.1 (the input's GDAL scale/offset)"
    refl = dn.astype(np.float32) * np.float32(1e-4) + np.float32(-0.1)
    want, _ = embedded(write_tif(tmp_path / "refl.tif", refl), conv_bb, tmp_path / "r.tif")
    np.testing.assert_array_equal(got, want)


def test_the_cli_refusal_is_one_line_and_exit_2(tmp_path, capsys):
    from geodino.cli import main

    src = write_tif(tmp_path / "sums.tif", dn_of("uint32"))
    run = ["--tile", "16", "--overlap", "0", "--no-progress", "--threads", "1"]
    assert main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), *run]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err and "sums.tif is uint32: 32-bit integers" in lines[0]
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("dtype", ["int8", "int32"])
def test_embed_images_refuses_them_and_reads_them_by_scale(tmp_path, dtype):
    from geodino.backbones import load_backbone

    bb = load_backbone(SPEC)
    dn = dn_of(dtype, seed=2)
    (root := tmp_path / "odd").mkdir()
    write_tif(root / "a.tif", dn, crs=None)
    out = tmp_path / "o.parquet"
    with pytest.raises(InputError, match=rf"a\.tif is {dtype}: .*; if it is imagery, pass --scale FACTOR, .*scale="):
        embed_images(root, bb, out, progress=False)
    assert not out.exists()
    (same := tmp_path / "refl").mkdir()
    write_tif(same / "a.tif", dn.astype(np.float32) * np.float32(SCALE), crs=None)
    got = _vector(embed_images(root, bb, out, scale=SCALE, progress=False))
    np.testing.assert_array_equal(got, _vector(embed_images(same, bb, tmp_path / "r.parquet", progress=False)))


def _vector(out) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.read_parquet(out)["embedding"].iloc[0])


def test_big_endian_16_bit_dn_are_read_as_their_native_twins(tmp_path, conv_bb):
    # an in-memory cube of big-endian DN (np.fromfile(..., '>i2'), a raw memmap): int16 all the same, not refused
    # as "int16: 16-bit integers have no common DN scale" (numpy's '>i2' != int16): the same features, bit for bit
    import xarray as xr

    dn = np.random.default_rng(2).integers(0, 3000, (3, 16, 16)).astype(np.int16)
    coords = {"band": [1, 2, 3], "y": np.arange(16)[::-1] * 10.0 + 5, "x": np.arange(16) * 10.0 + 5}
    got = []
    for i, order in enumerate("<>"):
        cube = xr.DataArray(dn.astype(f"{order}i2"), dims=("band", "y", "x"), coords=coords, name="dn")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the 16-bit "assumed" warning, tested where it is said
            got.append(embedded(cube, conv_bb, tmp_path / f"{i}.tif", allow_no_crs=True))
    assert got[1][1] == got[0][1] == "x/10000 (int16, assumed)"
    np.testing.assert_array_equal(got[1][0], got[0][0])
