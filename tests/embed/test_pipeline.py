"""embed_raster end to end: geometry, seams, blending, nodata, writers, resume, parallel ranks, bad input."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_raster, sweep
from geodino.embed.pipeline import run_lines, work_dir_for
from geodino.embed.writers import INT8_NODATA, dequantize_int8, int8_error_bound, quantize_int8
from geodino.errors import ConfigError, InputError
from tests.embed.conftest import random_image, read_all, whole_image_features, write_tif
from tests.embed.toy_backbones import ConstantBackbone, ConvBackbone

UINT8_LINE = (
    "geodino: input DN -> reflectance "
    "x/255 (the default for uint8 input; --sensor/--scale to change)"
)  # the dtype default, said as such

FAST = {"progress": False}


@pytest.mark.parametrize(
    ("crs", "patch", "res", "ext"),
    [
        ("EPSG:32633", 4, 10.0, ".tif"),
        ("EPSG:4326", 8, 0.0001, ".zarr"),
        ("EPSG:3857", 16, 30.0, ".tif"),
        ("EPSG:2154", 8, 0.5, ".zarr"),
    ],
)
def test_output_grid_matches_input(tmp_path, crs, patch, res, ext):
    import rasterio

    t = from_origin(1234.5, 98765.0, res, res)
    src = write_tif(tmp_path / "in.tif", random_image(70, 90), crs=crs, transform=t)
    bb = ConstantBackbone(patch=patch)
    for out in (tmp_path / f"o{ext}",):
        embed_raster(src, bb, out, tile=4 * patch, overlap=patch, **FAST)
        with rasterio.open(out) as ds:
            assert ds.crs == rasterio.crs.CRS.from_user_input(crs)
            assert ds.transform.almost_equals(t @ t.scale(patch), precision=1e-9)
            assert (ds.height, ds.width) == (-(-70 // patch), -(-90 // patch))
            assert ds.count == 4


def test_constant_model_gives_constant_raster(tmp_path, const_bb):
    src = write_tif(tmp_path / "in.tif", random_image(130, 170))
    for blend in ("cosine", "hann", "center"):
        out = embed_raster(src, const_bb, tmp_path / f"{blend}.zarr", tile=48, overlap=16, blend=blend, **FAST)
        feats = read_all(out)[0]
        expect = const_bb.value.numpy()[:, None, None]
        np.testing.assert_allclose(feats, np.broadcast_to(expect, feats.shape), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("blend", ["cosine", "hann", "center"])
def test_no_seams_translation_equivariant_backbone(tmp_path, conv_bb, blend):
    """Blended tiles equal whole-image inference (the conv reaches 2 cells; margin and overlap hide tile borders)."""
    data = random_image(152, 188)
    src = write_tif(tmp_path / "in.tif", data)
    out = embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=64, overlap=32, margin=8, blend=blend, chunk=8, **FAST)
    feats = read_all(out)[0]
    whole = whole_image_features(conv_bb, data)
    assert feats.shape == whole.shape
    np.testing.assert_allclose(feats, whole, atol=2e-5)


def test_seams_without_margin_differ(tmp_path, conv_bb):
    """Control: with no overlap, tile borders show (so the test above can fail)."""
    data = random_image(152, 188)
    src = write_tif(tmp_path / "in.tif", data)
    feats = read_all(embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=64, overlap=0, **FAST))[0]
    assert np.abs(feats - whole_image_features(conv_bb, data)).max() > 0.05


def test_nodata_propagation_and_skipped_tiles(tmp_path, conv_bb):
    import rasterio

    data = random_image(128, 160)
    data[:, :64, :] = 0  # top half of the first tile rows: nodata (all bands 0)
    data[:, 100:, 120:] = 0
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=64, overlap=16, margin=0, **FAST)
    feats, _, _, _, _, nod = read_all(out)
    assert np.isnan(nod)
    invalid = np.isnan(feats).all(axis=0)
    expect = np.zeros((32, 40), bool)
    expect[:16, :] = True
    expect[25:, 30:] = True
    np.testing.assert_array_equal(invalid, expect)
    assert not np.isnan(feats[:, ~expect]).any()
    with rasterio.open(out) as ds:  # a cell with a single valid pixel is valid
        assert ds.nodata != ds.nodata


@pytest.mark.parametrize("kind", ["uint8 nodata 0", "float32 NaN"])
def test_nodata_pixels_enter_the_backbone_at_its_mean(tmp_path, conv_bb, kind):
    """Nodata pixels of a partly valid tile are fed as 0 after normalisation (the backbone's mean), NaN ones too;
    all-valid tiles skip the mask, and both give the features of the whole image with that substitution."""
    import torch

    if kind == "float32 NaN":  # float input is used as reflectance as it is
        data, nodata, fill, scale = random_image(64, 64, dtype="float32"), None, np.nan, np.float32(1)
    else:
        data, nodata, fill, scale = random_image(64, 64), 0, 0, np.float32(1 / 255)
    data[:, 10:30, 5:25] = fill  # nodata inside the first tile; the tiles of the right half are all valid
    src = write_tif(tmp_path / "in.tif", data, nodata=nodata)
    feats = read_all(embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=32, overlap=0, **FAST))[0]
    x = conv_bb.normalize(torch.from_numpy(np.nan_to_num(data[None].astype(np.float32)) * scale))
    x[:, :, 10:30, 5:25] = 0.0
    with torch.no_grad():
        whole = conv_bb.features(x)[0][0][0].numpy()
    valid = ~np.isnan(feats).all(0)
    assert valid.sum() > 200 and not valid[4, 3]  # cell (4, 3) covers pixels 16-19 x 12-15: all nodata
    # tiles are 8 x 8 cells here: compare the cells whose reach (2 cells) stays inside their own tile
    inner = np.zeros_like(valid)
    for ty in (0, 8):
        for tx in (0, 8):
            inner[ty + 2 : ty + 6, tx + 2 : tx + 6] = True
    keep = valid & inner
    assert keep[:8, :8].sum() > 0 and keep[:8, :8].sum() < 16  # the masked tile contributes, partly
    np.testing.assert_allclose(feats[:, keep], whole[:, keep], atol=1e-5)


def test_partial_cell_validity_and_user_nodata(tmp_path, conv_bb):
    data = random_image(64, 64)
    data[:, :8, :] = 7
    data[:, 4:8, 0:1] = 9  # one valid column of pixels in cells (1, 0)
    src = write_tif(tmp_path / "in.tif", data)
    feats = read_all(embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=32, overlap=8, nodata=7, **FAST))[0]
    invalid = np.isnan(feats).all(0)
    assert invalid[0].all() and invalid[1, 1:].all() and not invalid[1, 0] and not invalid[2:].any()


def test_raster_smaller_than_tile_is_padded(tmp_path, conv_bb):
    data = random_image(21, 30)  # not even a multiple of the patch
    src = write_tif(tmp_path / "in.tif", data)
    feats = read_all(embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=128, overlap=32, **FAST))[0]
    assert feats.shape == (8, 6, 8)
    pad = np.zeros((3, 24, 32), np.uint8)
    pad[:, :21, :30] = data
    whole = whole_image_features(conv_bb, pad)
    np.testing.assert_allclose(feats[:, :3, :5], whole[:, :3, :5], atol=1e-5)  # 2 cells from the padded edge


def test_int8_roundtrip_within_bound():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(64, 5000)).astype(np.float32)
    v /= np.linalg.norm(v, axis=0, keepdims=True)
    v[:, :3] = 0
    v[0, 0], v[1, 1], v[2, 2] = 1.0, -1.0, 0.999
    q = quantize_int8(v)
    assert q.dtype == np.int8 and q.min() >= -127
    back = dequantize_int8(q)
    err = np.abs(back - v)
    assert (err <= int8_error_bound(v)).all()
    assert err.max() <= 0.0079
    assert np.isnan(dequantize_int8(np.full((2, 1), INT8_NODATA, np.int8))).all()


def test_int8_and_float16_outputs(tmp_path, conv_bb):
    data = random_image(64, 96)
    src = write_tif(tmp_path / "in.tif", data)
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.zarr", tile=32, overlap=8, l2_normalize=True, **FAST))[0]
    for out in (tmp_path / "q.tif", tmp_path / "q.zarr"):
        embed_raster(src, conv_bb, out, tile=32, overlap=8, dtype="int8", **FAST)
        q, _, _, _, tags, nod = read_all(out)
        assert q.dtype == np.int8 and nod == INT8_NODATA
        if out.suffix == ".tif":
            assert "abs(q) / 127.5" in tags["GEODINO_DEQUANTIZATION"]
        assert (np.abs(dequantize_int8(q) - ref) <= int8_error_bound(ref)).all()
    h, *_ = read_all(embed_raster(src, conv_bb, tmp_path / "h.tif", tile=32, overlap=8, dtype="float16", **FAST))
    unnorm = read_all(embed_raster(src, conv_bb, tmp_path / "u.zarr", tile=32, overlap=8, **FAST))[0]
    np.testing.assert_allclose(h, unnorm, rtol=1e-3, atol=1e-3)


def test_bf16_autocast_close_to_float32(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 48))
    a = read_all(embed_raster(src, conv_bb, tmp_path / "a.zarr", tile=32, overlap=8, **FAST))[0]
    b = read_all(embed_raster(src, conv_bb, tmp_path / "b.zarr", tile=32, overlap=8, amp=True, **FAST))[0]
    assert not np.array_equal(a, b)  # bf16 really ran
    np.testing.assert_allclose(b, a, atol=0.1 * np.abs(a).max())


def test_metadata_and_band_descriptions(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=8, layers="0,1", **FAST)
    feats, _, _, desc, tags, _ = read_all(out)
    assert feats.shape[0] == 16
    assert desc[0] == "L0_E000" and desc[8] == "L1_E000"
    assert tags["GEODINO_MODEL_SPEC"] == "toy:conv8p4" and tags["GEODINO_MODEL_FINGERPRINT"] == "toyconv"
    assert tags["GEODINO_LAYERS"] == "[0, 1]" and tags["GEODINO_INPUT_SCALE"].startswith("x/255")
    mean = read_all(
        embed_raster(src, conv_bb, tmp_path / "m.zarr", tile=32, overlap=8, layers="0,1", layer_mode="mean", **FAST)
    )[0]
    np.testing.assert_allclose(mean, (feats[:8] + feats[8:]) / 2, atol=1e-5)


def test_gdal_opens_zarr_with_crs_and_transform(tmp_path, conv_bb):
    import rasterio
    import rioxarray  # noqa: F401
    import xarray as xr

    src = write_tif(tmp_path / "in.tif", random_image(64, 80))
    out = embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=32, overlap=8, **FAST)
    with rasterio.open(out) as ds:
        assert ds.driver == "Zarr" and ds.crs.to_epsg() == 32633 and ds.count == 8
        assert ds.transform == from_origin(500000.0, 4000000.0, 40.0, 40.0)
        a = ds.read()
    z = xr.open_zarr(out, decode_coords="all")
    assert z.rio.crs.to_epsg() == 32633
    np.testing.assert_array_equal(z["embedding"].values, a)
    assert not any(p.name.startswith(".o.zarr") for p in tmp_path.iterdir())


def test_upsample_to_input_resolution(tmp_path, const_bb, conv_bb):
    import rasterio

    data = random_image(50, 70)
    data[:, :, :9] = 0
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    out = embed_raster(src, const_bb, tmp_path / "c.tif", tile=32, overlap=8, upsample=True, **FAST)
    with rasterio.open(out) as ds:
        assert ds.shape == (50, 70) and ds.transform == from_origin(500000.0, 4000000.0, 10.0, 10.0)
        a = ds.read()
    # nodata exactly where the input is: 9 px columns (the second cell's first pixel too, although its cell is valid)
    assert np.isnan(a[:, :, :9]).all()
    expect = np.broadcast_to(const_bb.value.numpy()[:, None, None], a[:, :, 9:].shape)
    np.testing.assert_allclose(a[:, :, 9:], expect, rtol=1e-6)
    # bilinear on a conv backbone: pixel centres on cell centres reproduce the cell values
    src2 = write_tif(tmp_path / "in2.tif", random_image(32, 32))
    cells = read_all(embed_raster(src2, conv_bb, tmp_path / "cells.zarr", tile=32, overlap=0, **FAST))[0]
    up = read_all(embed_raster(src2, conv_bb, tmp_path / "up.zarr", tile=32, overlap=0, upsample=True, **FAST))[0]
    assert up.shape == (8, 32, 32)
    mid = (up[:, 3:-4:4, 3:-4:4] + up[:, 4:-3:4, 4:-3:4] + up[:, 3:-4:4, 4:-3:4] + up[:, 4:-3:4, 3:-4:4]) / 4
    np.testing.assert_allclose(
        mid, (cells[:, :-1, :-1] + cells[:, 1:, 1:] + cells[:, 1:, :-1] + cells[:, :-1, 1:]) / 4, atol=1e-5
    )


def test_xarray_cube_input(tmp_path, conv_bb):
    import rioxarray  # noqa: F401
    import xarray as xr

    data = random_image(64, 64)
    src = write_tif(tmp_path / "in.tif", data)
    cube = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": [1, 2, 3],
            "y": 4000000.0 - 10 * (np.arange(64) + 0.5),
            "x": 500000.0 + 10 * (np.arange(64) + 0.5),
        },
    ).rio.write_crs("EPSG:32633")
    a = read_all(embed_raster(cube, conv_bb, tmp_path / "a.zarr", tile=32, overlap=8, **FAST))
    b = read_all(embed_raster(src, conv_bb, tmp_path / "b.zarr", tile=32, overlap=8, **FAST))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2] and a[1] == b[1]
    cube.to_dataset(name="refl").to_zarr(tmp_path / "cube.zarr", zarr_format=2)
    c = read_all(embed_raster(tmp_path / "cube.zarr", conv_bb, tmp_path / "c.zarr", tile=32, overlap=8, **FAST))
    np.testing.assert_array_equal(c[0], b[0])


def test_uint16_netcdf_and_zarr_cubes_read_like_the_geotiff(tmp_path, conv_bb):
    """Cubes go through the training reader (data.cubes.open_cube): raw DN, nodata from _FillValue, GeoZarr-style
    `transform` attribute; the features equal those of the same pixels as a GeoTIFF with nodata 0."""
    import rioxarray  # noqa: F401
    import xarray as xr

    data = random_image(64, 64, dtype="uint16")
    data[:, :20, :24] = 0
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    cube = xr.DataArray(data, dims=("band", "y", "x"), name="dn").rio.write_crs("EPSG:32633")
    cube.attrs["_FillValue"] = 0
    cube.attrs["transform"] = list(from_origin(500000.0, 4000000.0, 10.0, 10.0))[:6]
    cube.to_dataset().to_zarr(tmp_path / "c.zarr", zarr_format=2)
    cube.to_dataset().to_netcdf(tmp_path / "c.nc")
    opts = dict(tile=32, overlap=8, scale=1e-4, **FAST)
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.tif", **opts))
    assert np.isnan(ref[0][:, 0, 0]).all() and not np.isnan(ref[0][:, -1, -1]).any()
    for store in ("c.zarr", "c.nc"):
        got = read_all(embed_raster(tmp_path / store, conv_bb, tmp_path / f"{store}.tif", **opts))
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1] == ref[1] and got[2] == ref[2]


def test_uint16_scale_warns_and_sensor_option(tmp_path):
    data = random_image(32, 32, dtype="uint16")
    src = write_tif(tmp_path / "in.tif", data)
    bb = ConvBackbone()
    with pytest.warns(UserWarning, match="assuming reflectance = DN / 10000"):
        a = read_all(embed_raster(src, bb, tmp_path / "a.zarr", tile=32, overlap=0, **FAST))[0]
    b = read_all(embed_raster(src, bb, tmp_path / "b.zarr", tile=32, overlap=0, scale=1e-4, **FAST))[0]
    np.testing.assert_array_equal(a, b)


def _export(tmp_path, **rec):
    """A tiny 3-band geodino export with a normalisation record (mean/std plus the given DN scale/offset)."""
    import torch

    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=2)
    norm = {"bands": ["BLUE", "GREEN", "RED"], "mean": [0.1, 0.12, 0.15], "std": [0.05, 0.06, 0.08], **rec}
    return save_backbone(model, tmp_path / "bb.safetensors", normalization=norm)


def test_recorded_dn_scale_is_the_default(tmp_path, monkeypatch, capsys):
    """A uint16 raster embedded with an export that records scale 2e-4 equals the same run with --scale 2e-4
    (and not the x/10000 dtype default); the CLI says where the scale came from."""
    from geodino import cli

    path = _export(tmp_path, sensor="demo3", scale=2e-4)
    src = write_tif(tmp_path / "in.tif", random_image(32, 32, dtype="uint16"))
    opts = dict(tile=32, overlap=0, progress=False)
    a = read_all(embed_raster(src, str(path), tmp_path / "a.tif", **opts))
    b = read_all(embed_raster(src, str(path), tmp_path / "b.tif", scale=2e-4, **opts))
    c = read_all(embed_raster(src, str(path), tmp_path / "c.tif", scale=1e-4, **opts))
    np.testing.assert_array_equal(a[0], b[0])
    assert np.abs(a[0] - c[0]).max() > 1e-3  # the scale matters: the old dtype default differs
    assert a[4]["GEODINO_INPUT_SCALE"].startswith("x*0.0002 (sensor demo3, recorded in bb.safetensors")
    assert b[4]["GEODINO_INPUT_SCALE"] == "x*0.0002"

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    out = tmp_path / "d.tif"
    assert cli.main(["embed", str(src), "--backbone", str(path), "--out", str(out), "tile=32", "overlap=0"]) == 0
    err = capsys.readouterr().err
    said = "input DN -> reflectance x*0.0002 (the backbone's record: sensor demo3, in bb.safetensors, safetensors "
    assert f"{said}metadata geodino_normalization; --sensor/--scale to change)\n" in err  # no nested brackets
    np.testing.assert_array_equal(read_all(out)[0], a[0])
    assert cli.main(["embed", str(src), "--backbone", str(path), "--out", str(tmp_path / "e.tif"),
                     "--scale", "0.0001", "tile=32", "overlap=0"]) == 0  # fmt: skip
    assert "input DN -> reflectance x*0.0001 (passed)" in capsys.readouterr().err
    np.testing.assert_array_equal(read_all(tmp_path / "e.tif")[0], c[0])


def test_a_sensor_passed_with_the_backbone_scales_the_data_as_a_record(tmp_path):
    """`?sensor=landsat8` on a backbone without a record (an `arch:` spec, or an export whose record it replaces)
    stands for that sensor's record: 16-bit Landsat C2 L2 DN are scaled by 2.75e-5 and offset by -0.2, exactly as
    `--sensor landsat8` scales them (the dtype rule, x/10000 with no offset, applied before)."""
    from geodino.backbones import load_backbone

    src = write_tif(tmp_path / "in.tif", random_image(32, 32, c=3, dtype="uint16") + 7272)  # DN around 0 refl.
    spec = "arch:vit_tiny?depth=1&patch_size=8&bands=red,green,blue&sensor=landsat8"
    bb = load_backbone(spec)
    assert bb.normalization["scale"] == 2.75e-5 and bb.normalization["offset"] == -0.2
    opts = dict(tile=32, overlap=0, progress=False)
    a = read_all(embed_raster(src, spec, tmp_path / "a.tif", **opts))
    b = read_all(embed_raster(src, spec, tmp_path / "b.tif", scale=2.75e-5, **opts))
    assert a[4]["GEODINO_INPUT_SCALE"] == "x*2.75e-05+-0.2 (sensor landsat8)"
    assert np.abs(a[0] - b[0]).max() > 1e-3  # the offset matters: scale alone differs
    dn = (random_image(32, 32, c=3, dtype="uint16") + 7272).astype(np.float32)
    c = whole_image_features(bb, dn * np.float32(2.75e-5) - np.float32(0.2), scale=1.0)  # by hand: DN*s + o
    np.testing.assert_allclose(a[0], c, atol=1e-4)
    old = read_all(embed_raster(src, spec, tmp_path / "d.tif", scale=1e-4, **opts))
    assert np.abs(a[0] - old[0]).max() > 1e-3
    # float input is reflectance: the passed sensor's DN scale is not applied to it again
    refl = write_tif(tmp_path / "refl.tif", (dn * np.float32(2.75e-5) - np.float32(0.2)).astype(np.float32))
    f = read_all(embed_raster(refl, spec, tmp_path / "f.tif", **opts))
    assert f[4]["GEODINO_INPUT_SCALE"] == "x (float input used as reflectance)"
    np.testing.assert_allclose(f[0], a[0], atol=1e-4)


def test_recorded_per_band_scale_and_offset(tmp_path):
    """Per-band scale and an offset are applied band by band (hand-computed reflectance as float input)."""
    scale, offset = [1e-4, 2e-4, 5e-5], -0.1
    path = _export(tmp_path, scale=scale, offset=offset)
    data = random_image(32, 32, dtype="uint16")
    src = write_tif(tmp_path / "in.tif", data)
    refl = (data.astype(np.float64) * np.asarray(scale)[:, None, None] + offset).astype(np.float32)
    ref_src = write_tif(tmp_path / "refl.tif", refl)
    opts = dict(tile=32, overlap=0, progress=False)
    a = read_all(embed_raster(src, str(path), tmp_path / "a.tif", **opts))
    b = read_all(embed_raster(ref_src, str(path), tmp_path / "b.tif", scale=1.0, **opts))
    np.testing.assert_allclose(a[0], b[0], atol=2e-5)
    assert a[4]["GEODINO_INPUT_SCALE"].startswith("x*[0.0001,0.0002,5e-05]+-0.1 (recorded in")


def test_record_without_dn_scale_keeps_the_dtype_default(tmp_path):
    """A bare mean/std (no sensor, scale 1, offset 0) says nothing about DN units: uint16 still gets x/10000."""
    path = _export(tmp_path)
    src = write_tif(tmp_path / "in.tif", random_image(32, 32, dtype="uint16"))
    with pytest.warns(UserWarning, match="assuming reflectance = DN / 10000"):
        a = read_all(embed_raster(src, str(path), tmp_path / "a.tif", tile=32, overlap=0, progress=False))
    assert a[4]["GEODINO_INPUT_SCALE"] == "x/10000 (uint16, assumed)"


def test_16_bit_values_with_an_8_bit_sensor_are_refused_as_tiles_are_read(tmp_path, capsys, conv_bb):
    """maxar scales 8-bit DN (1/255): a uint16 raster with values up to 3,999 was embedded as reflectance up to
    15.7 without a word. Refused in the one line of the data readers (`check_read_values`), exit 2, nothing left
    in the output folder (no output, no partial work folder); the same for an export that records an 8-bit DN
    scale. 8-bit values stored as uint16 (and the nodata value) are fine."""
    from tests.test_bad_inputs import one_line_exit_2

    rng = np.random.default_rng(0)
    wide = write_tif(tmp_path / "wide.tif", rng.integers(200, 4000, (3, 96, 96)).astype("uint16"))
    said = r"raster .*wide\.tif is 16-bit \(uint16, values up to 39\d\d\) but sensor '{}' scales 8-bit DN"
    argv = ("embed", wide, "-b", "arch:vit_tiny?depth=1&seed=0", "--sensor", "maxar", "--out", tmp_path / "f.tif")
    line = one_line_exit_2(capsys, tmp_path, *argv, "--tile", "64", "--overlap", "16", "--no-progress")
    assert re.search(said.format("maxar") + r".*set --sensor to your imagery's", line), line
    path = _export(tmp_path, sensor="rgb8", scale=1 / 255)  # a backbone whose recorded sensor is 8-bit
    out = tmp_path / "g.tif"
    with pytest.raises(ConfigError, match=said.format("rgb8")):
        embed_raster(wide, str(path), out, tile=32, overlap=0, **FAST)
    assert not out.exists() and not work_dir_for(out).exists()
    narrow = rng.integers(0, 256, (3, 32, 32)).astype("uint16")
    narrow[:, :8] = 9999  # the nodata value: not a pixel
    src = write_tif(tmp_path / "narrow.tif", narrow, nodata=9999)
    embed_raster(src, conv_bb, tmp_path / "n.tif", sensor="maxar", tile=32, overlap=0, **FAST)


def test_uint8_input_with_a_16_bit_sensor_is_refused_before_anything_is_written(tmp_path, capsys, conv_bb):
    """uint8 input through a sensor of 16-bit DN (--sensor with scale 1e-4, or an export that records one) was
    embedded as a near-constant image (255 DN is reflectance 0.026); data stats and the training readers refuse
    it (`check_bit_depth`). Now embed does too, for rasters and cubes, in the same line, exit 2, before any window
    is read: no output, no partial work folder. --scale, or an 8-bit sensor, still embeds it."""
    from geodino.data.sensors import Sensor, save_sensor_yaml
    from tests.data.test_cubes import _cube
    from tests.test_bad_inputs import one_line_exit_2

    u8 = write_tif(tmp_path / "u8.tif", random_image(64, 64))
    yaml = save_sensor_yaml(Sensor("s3", ("B", "G", "R"), 1e-4, (0.1,) * 3, (0.05,) * 3, False), tmp_path / "s3.yaml")
    argv = ("embed", u8, "-b", "arch:vit_tiny?depth=1&seed=0", "--sensor", yaml, "--out", tmp_path / "f.tif")
    line = one_line_exit_2(capsys, tmp_path, *argv, "--tile", "64", "--overlap", "16", "--no-progress")
    assert re.search(r"raster .*u8\.tif is uint8 but sensor 's3' scales 16-bit DN \(scale 0\.0001\)", line), line
    path = _export(tmp_path, sensor="s2like", scale=1e-4)  # a backbone whose recorded sensor is 16-bit
    out = tmp_path / "g.tif"
    with pytest.raises(InputError, match=r"raster .*u8\.tif is uint8 but sensor 's2like' scales 16-bit DN"):
        embed_raster(u8, str(path), out, tile=32, overlap=0, **FAST)
    assert not out.exists() and not work_dir_for(out).exists()
    store = tmp_path / "u8.zarr"
    _cube(random_image(32, 32)).to_dataset().to_zarr(store, zarr_format=2)
    out = tmp_path / "h.tif"
    with pytest.raises(InputError, match=r"datacube .*u8\.zarr is uint8 but sensor 's3' scales 16-bit DN"):
        embed_raster(store, conv_bb, out, sensor=str(yaml), tile=32, overlap=0, **FAST)
    assert not out.exists() and not work_dir_for(out).exists()
    embed_raster(u8, str(path), tmp_path / "i.tif", scale=1 / 255, tile=32, overlap=0, **FAST)
    embed_raster(store, conv_bb, tmp_path / "j.tif", sensor="maxar", tile=32, overlap=0, **FAST)


def test_resume_after_kill_is_identical(tmp_path, conv_bb, monkeypatch):
    data = random_image(160, 96)
    src = write_tif(tmp_path / "in.tif", data)
    opts = dict(tile=32, overlap=8, chunk=8, **FAST)
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.tif", **opts))[0]
    out = tmp_path / "o.tif"

    def kill(n_blocks: int, n_rows: int) -> None:  # the sweep's fault seam: a kill after two finished blocks
        if n_blocks >= 2:
            raise KeyboardInterrupt(f"simulated kill after {n_blocks} blocks")

    monkeypatch.setattr(sweep, "_after_row", kill)
    with pytest.raises(KeyboardInterrupt):
        embed_raster(src, conv_bb, out, **opts)
    monkeypatch.undo()
    assert not out.exists() and work_dir_for(out).exists()
    with pytest.raises(InputError, match="pass --resume"):
        embed_raster(src, conv_bb, out, **opts)
    with pytest.raises(InputError, match="other settings"):
        embed_raster(src, conv_bb, out, resume=True, **{**opts, "overlap": 16})
    done_before = len(list((work_dir_for(out) / "done").glob("*.done")))
    assert done_before >= 2
    embed_raster(src, conv_bb, out, resume=True, **opts)
    np.testing.assert_array_equal(read_all(out)[0], ref)
    assert not work_dir_for(out).exists()


def test_output_exists_refused(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    out = embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=32, overlap=0, **FAST)
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        embed_raster(src, conv_bb, out, tile=32, overlap=0, **FAST)
    assert embed_raster(src, conv_bb, out, tile=32, overlap=0, resume=True, **FAST) == out
    embed_raster(src, conv_bb, out, tile=32, overlap=0, overwrite=True, **FAST)


def test_no_crs_refused_unless_allowed(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32), crs=None)
    with pytest.raises(InputError, match=r"has no CRS.*--allow-no-crs"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", **FAST)
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, allow_no_crs=True, **FAST)
    assert read_all(out)[1] is None


def test_band_count_mismatch_suggests_adaptation(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32, c=4))
    with pytest.raises(InputError, match=r"has 4 bands but backbone toy:conv8p4 takes 3.*--bands.*to 4 bands by name"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", **FAST)
    out = embed_raster(src, conv_bb, tmp_path / "o.zarr", tile=32, overlap=0, bands=[1, 2, 3], **FAST)
    assert read_all(out)[0].shape[0] == 8


def test_bad_options(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    with pytest.raises(ConfigError, match=r"must end in \.tif"):
        embed_raster(src, conv_bb, tmp_path / "o.png", **FAST)
    with pytest.raises(ConfigError, match=r"unknown embed option.*overlaps.*did you mean overlap"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", overlaps=32)
    with pytest.raises(ConfigError, match="multiple of the backbone's patch size 4"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=30, **FAST)
    with pytest.raises(InputError, match="does not exist"):
        embed_raster(tmp_path / "missing.tif", conv_bb, tmp_path / "o.tif", **FAST)


def test_cli_errors_exit_2(tmp_path, monkeypatch, capsys):
    from geodino import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    src = write_tif(tmp_path / "in.tif", random_image(32, 32), crs=None)
    code = cli.main(["embed", str(src), "--backbone", "arch:vit_tiny", "--out", str(tmp_path / "o.tif")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("geodino: error: ") and len(err.strip().splitlines()) == 1
    code = cli.main(["embed", str(src), "--out", str(tmp_path / "o.png"), "tile=64"])
    assert code == 2 and "must end in .tif" in capsys.readouterr().err
    code = cli.main(["embed", "zonal", str(src), "--out", str(tmp_path / "z.parquet")])
    assert code == 2 and "needs FEATURES and POLYGONS" in capsys.readouterr().err


def test_two_ranks_write_disjoint_blocks_equal_one(tmp_path, conv_bb):
    """Ranks of one store (as launched by SLURM): each writes its blocks; the last one to finish finalises."""
    data = random_image(200, 120)
    src = write_tif(tmp_path / "in.tif", data)
    opts = dict(tile=32, overlap=8, chunk=8, **FAST)
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.tif", **opts))[0]
    out = tmp_path / "par.tif"
    embed_raster(src, conv_bb, out, world_size=2, rank=0, **opts)
    assert not out.exists()  # rank 1's blocks are missing: no output yet
    done = {int(p.stem) for p in (work_dir_for(out) / "done").glob("*.done")}
    assert done == {0, 1, 2}  # 7 stripes of 8 cells: rank 0 takes the first 3
    embed_raster(src, conv_bb, out, world_size=2, rank=1, **opts)
    np.testing.assert_array_equal(read_all(out)[0], ref)
    assert not work_dir_for(out).exists()


@pytest.mark.slow
def test_spawned_workers_equal_one(tmp_path, conv_bb):
    data = random_image(160, 120)
    src = write_tif(tmp_path / "in.tif", data)
    ref = read_all(embed_raster(src, conv_bb, tmp_path / "ref.zarr", tile=32, overlap=8, chunk=8, **FAST))[0]
    out = embed_raster(src, conv_bb, tmp_path / "par.zarr", tile=32, overlap=8, chunk=8, workers=2, **FAST)
    np.testing.assert_array_equal(read_all(out)[0], ref)


def test_a_worker_that_refuses_the_input_is_one_line_and_exit_2(tmp_path, capfd, conv_bb, monkeypatch):
    """--workers 2 with input a worker refuses (16-bit values above 255 with --sensor maxar, read in the bottom
    half): the worker printed its traceback and the parent "embedding worker(s) [1] failed ...; rerun with
    --resume", leaving the partial output. Now the worker's one line, exit 2, as a single process: a run that
    started the partial output removes it, a --resume run keeps it (as a single process does). A worker that
    crashes (not a refusal) still prints its traceback and the parent names it."""
    from tests.embed.toy_backbones import CrashingBackbone
    from tests.test_bad_inputs import one_line_exit_2

    data = np.random.default_rng(0).integers(0, 256, (3, 160, 96)).astype("uint16")
    data[:, 80:] += 4000  # refused where the sweep reads the bottom half
    src = write_tif(tmp_path / "wide.tif", data)
    said = r"raster .*wide\.tif is 16-bit \(uint16, values up to 42\d\d\) but sensor 'maxar' scales 8-bit DN"
    argv = ("embed", src, "-b", "arch:vit_tiny?depth=1&seed=0", "--sensor", "maxar", "--out", tmp_path / "f.tif")
    line = one_line_exit_2(capfd, tmp_path, *argv, "--tile", "64", "--overlap", "16", "--workers", "2", "--no-progress")
    assert re.search(said, line) and "embedding worker" not in line, line  # no traceback, nothing left in tmp_path
    opts = dict(sensor="maxar", tile=32, overlap=8, chunk=8, **FAST)
    out = tmp_path / "g.zarr"
    with pytest.raises(ConfigError, match=said):
        embed_raster(src, conv_bb, out, workers=2, **opts)
    assert not out.exists() and not work_dir_for(out).exists()

    def kill(n_blocks: int, n_rows: int) -> None:  # a partial output holding the top block
        if n_blocks >= 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(sweep, "_after_row", kill)
    with pytest.raises(KeyboardInterrupt):
        embed_raster(src, conv_bb, out, **opts)
    monkeypatch.undo()
    done = {p.name for p in (work_dir_for(out) / "done").glob("*.done")}
    assert done
    for workers in (1, 2):  # the same refusal by a --resume run keeps the partial output, with one or two processes
        with pytest.raises(ConfigError, match=said):
            embed_raster(src, conv_bb, out, resume=True, workers=workers, **opts)
        assert not out.exists() and done <= {p.name for p in (work_dir_for(out) / "done").glob("*.done")}
    # an error that does not unpickle in the parent (its __init__ takes more than the message): the same kind and line
    import pickle

    from geodino.embed.workers import worker_error
    from geodino.eval.dense import LayerError

    got = worker_error(1, 2, (pickle.dumps(LayerError("bad layers", "r", "f", 2)), "ConfigError", "bad layers", "tb"))
    assert type(got) is ConfigError and str(got) == "bad layers" and "embedding worker 1 of 2" in got.__notes__[0]
    capfd.readouterr()
    out = tmp_path / "h.zarr"
    with pytest.raises(InputError, match=r"2 embedding workers of 2 failed \(workers 0, 1; see their messages above\)"):
        embed_raster(src, CrashingBackbone(), out, workers=2, tile=32, overlap=8, chunk=8, **FAST)
    err = capfd.readouterr().err
    assert err.count("Traceback") == 2 and "RuntimeError: simulated crash in the backbone" in err
    assert work_dir_for(out).exists()  # kept for --resume, as a single process that crashes keeps it


def test_a_refusal_by_one_worker_stops_the_others(tmp_path):
    """Worker 1 refuses its share (16-bit values with an 8-bit sensor) while worker 0 takes 600 s for each tile of
    the top rows (values below 256, so below 10 after the toy normalization; the rest are above 60): the parent
    waited for worker 0 before it read worker 1's refusal, so the one line came after work that is then thrown
    away. Now the refusal stops worker 0 at once, and the stopped worker exits cleanly: no "leaked semaphore"
    warning from multiprocessing when the parent exits (run in a child process so that its exit is seen)."""
    import subprocess
    import sys
    import textwrap
    import time

    data = np.random.default_rng(0).integers(0, 256, (3, 160, 96)).astype("uint16")
    data[:, 40:] += 4000  # everything below row 40 is refused: all of worker 1's share, most of worker 0's
    src = write_tif(tmp_path / "wide.tif", data)
    out = tmp_path / "g.zarr"
    script = textwrap.dedent(f"""
        from geodino.embed import embed_raster
        from geodino.errors import ConfigError
        from tests.embed.toy_backbones import StallingBackbone

        if __name__ == "__main__":
            try:
                embed_raster({str(src)!r}, StallingBackbone(), {str(out)!r}, workers=2, sensor="maxar", tile=32,
                             overlap=8, chunk=8, progress=False)
            except ConfigError as exc:
                print("refused:", exc)
        """)
    (tmp_path / "run.py").write_text(script)
    start = time.monotonic()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, tmp_path / "run.py"], capture_output=True, text=True, env=env, timeout=900)
    assert time.monotonic() - start < 300  # not the 600 s a tile of worker 0 takes
    assert done.returncode == 0, done.stderr
    assert re.search(r"refused: .* is 16-bit \(uint16, values up to 42\d\d\) but sensor 'maxar'", done.stdout), done
    assert "leaked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not out.exists() and not work_dir_for(out).exists()


def test_geodino_vit_runs_the_fast_path_and_records_it(tmp_path, monkeypatch):
    """A geodino ViT embeds through geodino.inference's fast path (GEODINO_FAST=0: eager); same features to 1e-4,
    and the raster says which path and dtype made it."""
    import rasterio
    import torch

    from geodino.backbones import load_backbone

    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    torch.manual_seed(0)
    opts = dict(tile=32, overlap=8, **FAST)
    out = {}
    for fast in ("1", "0"):
        monkeypatch.setenv("GEODINO_FAST", fast)
        bb = load_backbone("arch:vit_tiny?depth=2&patch_size=8&layerscale_init=1.0")
        eager = bb.model
        out[fast] = embed_raster(src, bb, tmp_path / f"f{fast}.tif", **opts)
        assert bb.model is eager  # the caller's backbone is handed back as it came
        torch.manual_seed(0)
    with rasterio.open(out["1"]) as a, rasterio.open(out["0"]) as b:
        assert a.tags()["GEODINO_INFERENCE_PATH"].startswith("fast-float32")
        assert b.tags()["GEODINO_INFERENCE_PATH"] == "eager"
        assert a.tags()["GEODINO_INFERENCE_DTYPE"] == b.tags()["GEODINO_INFERENCE_DTYPE"] == "float32"
        np.testing.assert_allclose(a.read(), b.read(), atol=1e-4)


@pytest.mark.parametrize(
    ("width", "batch_size", "graph_batch", "per_row"),
    [
        (72, 2, 2, 1),  # 3 tiles a row at 2: 2 + 1; the lone tile (half a batch) runs uncompiled, not padded
        (368, 8, 8, 2),  # 15 tiles at 8: 8 + 7, the 7 (7/8 of the graph's batch) zero-padded to it
        (104, 3, 2, 2),  # 4 tiles at 3: balanced 2 + 2 (not 3 + 1), one graph of batch 2, nothing padded
    ],
)
def test_compiled_fast_path_warms_up_on_the_calls_the_sweep_makes(
    tmp_path, monkeypatch, width, batch_size, graph_batch, per_row
):
    """The warm-up compiles exactly the call the sweep makes (balanced batch, tile, layers, norm): every batch runs
    that one graph, a partial one zero-padded when it fills at least `PAD_MIN_SHARE` of it, else uncompiled; a
    second raster on the same backbone pays no warm-up forward; features equal the eager path's to 1e-4.
    (torch.compile is replaced by a recorder.)"""
    import torch

    import geodino.inference as inference
    import geodino.models.fast_choice as fast_choice
    from geodino.backbones import load_backbone

    calls = []

    def fake_compile(fn, **kw):
        return lambda x, take, norm, *rest: calls.append((x.shape, take, norm)) or fn(x, take, norm, *rest)

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(fast_choice, "_compiler_available", lambda device: True)
    monkeypatch.setattr(inference, "COMPILE_MIN_IMAGES", {"cpu": 0, "cuda": 0})
    src = write_tif(tmp_path / "in.tif", random_image(64, width))  # 3 tile rows of (width - 8) / 24 tiles
    opts = dict(tile=32, overlap=8, batch_size=batch_size, layers="0,1", norm=False, **FAST)
    torch.manual_seed(0)
    bb = load_backbone("arch:vit_tiny?depth=2&patch_size=8&layerscale_init=1.0")
    first = embed_raster(src, bb, tmp_path / "a.zarr", **opts)
    assert {c[0] for c in calls} == {(graph_batch, 3, 32, 32)}  # the warm-up's graph serves every compiled call
    assert {c[1:] for c in calls} == {((0, 1), False)}
    n_first = len(calls)
    assert n_first == 1 + 3 * per_row  # the warm-up, then per tile row its compiled batches
    embed_raster(src, bb, tmp_path / "b.zarr", **opts)
    assert len(calls) - n_first == 3 * per_row  # the same batches, no warm-up forward
    monkeypatch.setenv("GEODINO_FAST", "0")
    ref = embed_raster(src, bb, tmp_path / "ref.zarr", **opts)
    np.testing.assert_allclose(read_all(first)[0], read_all(ref)[0], atol=1e-4)


def _other_weights(seed: int = 1) -> ConvBackbone:
    """The same architecture and spec with other weights (what `arch:vit_tiny?seed=1` is to `?seed=0`)."""
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2, seed=seed)
    bb.fingerprint = f"toyconv-seed{seed}"
    return bb


def test_resume_onto_a_complete_output_checks_its_settings(tmp_path, conv_bb, capsys):
    """`--resume` on a finished output says "nothing to resume" only when this run's settings made it; otherwise
    one line names the options that differ, with both values."""
    src = write_tif(tmp_path / "in.tif", random_image(32, 48, c=4))
    opts = dict(tile=32, overlap=8, bands=[1, 2, 3], **FAST)
    out = embed_raster(src, conv_bb, tmp_path / "o.tif", **opts)
    written = out.stat().st_mtime_ns
    with pytest.raises(InputError, match=r"o\.tif is complete but was written with other settings: tile 32 \(this "
                       r"run: 16\); rerun with the same settings .*--overwrite"):  # fmt: skip
        embed_raster(src, conv_bb, out, resume=True, **{**opts, "tile": 16})
    with pytest.raises(InputError, match=r"backbone weights toyconv \(this run: toyconv-seed1\)"):
        embed_raster(src, _other_weights(), out, resume=True, **opts)
    with pytest.raises(InputError, match=r"other settings: bands \[1, 2, 3\] \(this run: \[3, 2, 1\]\);"):
        embed_raster(src, conv_bb, out, resume=True, **{**opts, "bands": [3, 2, 1]})
    other = write_tif(tmp_path / "other.tif", random_image(32, 48, c=4, seed=1))
    with pytest.raises(InputError, match=r"other settings: input .*in\.tif \(this run: .*other\.tif\);"):
        embed_raster(other, conv_bb, out, resume=True, **opts)
    capsys.readouterr()
    with run_lines():  # the command's lines, without the bar
        assert embed_raster(src, conv_bb, out, resume=True, **opts) == out  # the same settings: nothing to do
    assert "already complete; nothing to resume" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == written and not work_dir_for(out).exists()


def test_partial_resume_mismatch_names_the_user_options(tmp_path, conv_bb):
    """The partial-run check speaks of --tile/--overlap, not of the internal record ("plan", "margin")."""
    src = write_tif(tmp_path / "in.tif", random_image(96, 64))
    opts = dict(tile=32, overlap=8, chunk=8, **FAST)
    out = tmp_path / "o.tif"
    embed_raster(src, conv_bb, out, world_size=2, rank=0, **opts)  # half the blocks: a partial output
    assert not out.exists() and work_dir_for(out).exists()
    with pytest.raises(InputError) as err:
        embed_raster(src, conv_bb, out, resume=True, **{**opts, "tile": 64, "overlap": 16})
    msg = str(err.value)
    assert "started with other settings: tile 32 (this run: 64); overlap 8 (this run: 16); rerun" in msg
    assert "plan" not in msg and "margin" not in msg  # margin follows overlap (overlap/4): one cause, one name
    with pytest.raises(InputError, match=r"other settings: margin 0 \(this run: 4\); rerun"):
        embed_raster(src, conv_bb, out, resume=True, **{**opts, "margin": 4})
    with pytest.raises(InputError, match=r"other settings: backbone weights toyconv \(this run: toyconv-seed1\); r"):
        embed_raster(src, _other_weights(), out, resume=True, **opts)
    # the same weights under another spec (a relative and an absolute path to one file) are one backbone
    renamed = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    renamed.spec = "/abs/path/to/toy.pth"
    assert renamed.fingerprint == conv_bb.fingerprint and renamed.spec != conv_bb.spec
    embed_raster(src, renamed, out, resume=True, **opts)
    assert out.exists()


@pytest.mark.parametrize(("c", "said"), [(1, "has 1 band but"), (2, "has 2 bands but")])
def test_band_counts_are_said_in_their_number(tmp_path, conv_bb, c, said):
    """Band counts in their number: "1 band", "2 bands" (it said "has 1 bands", "adapt the backbone to 1 bands")."""
    from geodino.errors import plural

    assert (plural(1, "class", "classes"), plural(0, "class", "classes")) == ("1 class", "0 classes")
    src = write_tif(tmp_path / "in.tif", random_image(32, 32, c=c))
    adapt = f"adapt the backbone to {said.split()[1]} {said.split()[2]} by name: --backbone 'toy:conv8p4?bands=NAME1"
    with pytest.raises(InputError, match=rf"input .*in\.tif {said} backbone toy:conv8p4 takes 3; {re.escape(adapt)}"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", **FAST)


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
# the 4-band RGB file's fourth band taken as data is this test's input
@pytest.mark.filterwarnings("ignore:band 4 of input .* is an alpha band:UserWarning")
def test_the_band_adaptation_suggested_fits_the_spec(tmp_path):
    """An `arch:` spec keeps its own options and gets a band count; a checkpoint gets the input's band names (they
    decide which trained kernels are kept), and the suggested spec runs. It suggested `arch:vit_small?bands=N` for
    every backbone, a checkpoint file too, dropping the spec's options."""
    import torch

    from geodino.models import build_model
    from tests.helpers import write_tif as write_named

    torch.save(build_model("vit_tiny", depth=1, patch_size=8).state_dict(), tmp_path / "rgb.pth")
    data = np.random.default_rng(0).integers(0, 256, (4, 32, 32)).astype("uint8")
    src = write_named(tmp_path / "s2.tif", data, descriptions=["blue", "green", "red", "nir"])
    arch = "arch:vit_tiny?depth=1&patch_size=8"
    with pytest.raises(
        InputError, match=re.escape(f"4 bands (random weights, any band count): --backbone '{arch}&bands=4'")
    ):
        embed_raster(src, arch, tmp_path / "o.tif", **FAST)
    ckpt = str(tmp_path / "rgb.pth")
    with pytest.raises(InputError, match=re.escape(f"4 bands by name: --backbone '{ckpt}?bands=blue,green,red,nir'")):
        embed_raster(src, ckpt, tmp_path / "o.tif", **FAST)
    with pytest.warns(UserWarning, match=r"1 band \(nir\) match(es)? no band of checkpoint"):
        out = embed_raster(src, f"{ckpt}?bands=blue,green,red,nir", tmp_path / "o.tif", tile=32, overlap=0, **FAST)
    assert out.exists()


def test_bands_that_select_the_wrong_count_are_named_as_a_selection(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    with pytest.raises(InputError, match=r"--bands 1,2 selects 2 of the 3 bands of input .*in\.tif but backbone "
                       r"toy:conv8p4 takes 3; pass 3 band numbers \(e\.g\. --bands 1,2,3\)"):  # fmt: skip
        embed_raster(src, conv_bb, tmp_path / "o.tif", bands=[1, 2], **FAST)


def test_no_progress_hides_only_the_bar(tmp_path, conv_bb, capsys, monkeypatch):
    """--no-progress (progress=False under `run_lines`, as the command runs) turns the tqdm bar off; the lines
    saying what was used and written stay (held to the end: a failed run prints only its error). From Python,
    progress=False is quiet (test_embed_quiet)."""
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    with run_lines():
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, progress=False)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == UINT8_LINE
    assert lines[-2].startswith("geodino: time ") and lines[-1].startswith(f"geodino: wrote {tmp_path / 'o.tif'} (")
    assert len(lines) == 3  # no bar

    def fail(n_blocks: int, n_rows: int) -> None:
        raise InputError("simulated bad block")

    monkeypatch.setattr(sweep, "_after_row", fail)  # the sweep's fault seam
    with pytest.raises(InputError), run_lines():
        embed_raster(src, conv_bb, tmp_path / "p.tif", tile=32, overlap=0, progress=False)
    assert capsys.readouterr().err == ""  # the CLI adds the error's one line


def test_summary_line_gives_width_x_height_of_what_was_written(tmp_path, const_bb, capsys):
    """The last line describes the file as GDAL sees it: width x height, cells or (upsampled) input pixels."""
    import rasterio

    src = write_tif(tmp_path / "in.tif", random_image(40, 72))  # 72 px wide, 40 high; patch 8: 9 x 5 cells
    with run_lines():  # the command's lines, without the bar
        out = embed_raster(src, const_bb, tmp_path / "cells.tif", tile=32, overlap=8, **FAST)
    assert "(4 bands, 9 x 5 cells (width x height) of 8 px, " in capsys.readouterr().err
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (9, 5)
    with run_lines():
        up = embed_raster(src, const_bb, tmp_path / "up.tif", tile=32, overlap=8, upsample=True, **FAST)
    err = capsys.readouterr().err
    assert "(4 bands, 72 x 40 px (width x height) at the input resolution, upsampled from 9 x 5 cells" in err
    with rasterio.open(up) as ds:
        assert (ds.width, ds.height) == (72, 40)


def test_patch_size_errors_suggest_the_nearest_valid_values(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    with pytest.raises(ConfigError, match=r"tile=30 must be a multiple of the backbone's patch size 4; pass --tile 28 "
                       r"or 32 \(tile= in Python\)$"):  # fmt: skip
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=30, **FAST)
    with pytest.raises(
        ConfigError, match=r"overlap=6 must be a multiple .* 4; pass --overlap 4 or 8 \(overlap= in Python\)$"
    ):
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=6, **FAST)
    bb12 = ConvBackbone(in_chans=3, dim=8, patch=12)
    with pytest.raises(
        ConfigError, match=r"tile=512 \(the default\) must be .* 12; pass --tile 504 or 516 \(tile= in Python\)$"
    ):
        embed_raster(src, bb12, tmp_path / "o.tif", **FAST)
    from geodino.embed.plan import make_plan

    with pytest.raises(ConfigError, match=r"tile=100 must be a positive multiple .* 16; pass --tile 96 or 112$"):
        make_plan(200, 200, (1, 0, 0, 0, -1, 0), patch=16, tile=100, overlap=0)
    with pytest.raises(ConfigError, match=r"tile=10 must be a positive multiple .* 16; pass --tile 16$"):
        make_plan(200, 200, (1, 0, 0, 0, -1, 0), patch=16, tile=10, overlap=0)


@pytest.mark.slow
def test_spawned_workers_print_the_run_lines_once(tmp_path, conv_bb, capfd):
    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    embed_raster(src, conv_bb, tmp_path / "par.zarr", tile=32, overlap=8, chunk=8, workers=2)  # with the bar
    err = capfd.readouterr().err
    assert err.count("input DN -> reflectance") == 1 and err.count("geodino: wrote") == 1
    assert "embed rank 0" in err and "embed rank 1" not in err  # one bar: the first worker's


def test_resume_onto_a_file_geodino_did_not_write(tmp_path, conv_bb):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    other = write_tif(tmp_path / "o.tif", random_image(32, 32))  # any GeoTIFF under the output's name
    with pytest.raises(InputError, match=r"o\.tif exists but holds no geodino metadata .*--overwrite"):
        embed_raster(src, conv_bb, other, tile=32, overlap=0, resume=True, **FAST)


def test_sensor_of_every_input_band_follows_the_bands_selected(tmp_path, conv_bb):
    """`--sensor` describing all 6 bands of the input with `--bands 4,3,2`: the sensor is restricted to those bands
    (their own per-band scale, in that order), as a 3-band sensor of the same bands on a 3-band file gives; it used
    to be refused with 'input has 3' for a 6-band input."""
    import yaml

    data = random_image(32, 32, c=6, dtype="uint16")
    six = write_tif(tmp_path / "six.tif", data)
    three = write_tif(tmp_path / "three.tif", data[[3, 2, 1]])
    scales = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4]

    def sensor(name, idx):
        path = tmp_path / f"{name}.yaml"
        rec = {"name": name, "bands": [f"b{i + 1}" for i in idx], "scale": [scales[i] for i in idx],
               "mean": [0.1] * len(idx), "std": [0.05] * len(idx), "rgb_like": False}  # fmt: skip
        path.write_text(yaml.safe_dump(rec))
        return str(path)

    opts = dict(tile=32, overlap=0, **FAST)
    s6, s5 = sensor("s6", range(6)), sensor("s5", range(5))
    got = read_all(embed_raster(six, conv_bb, tmp_path / "a.tif", bands=[4, 3, 2], sensor=s6, **opts))
    ref = read_all(embed_raster(three, conv_bb, tmp_path / "b.tif", sensor=sensor("s3", [3, 2, 1]), **opts))
    np.testing.assert_array_equal(got[0], ref[0])
    with pytest.raises(InputError, match=r"--bands 4,3 selects 2 of 6; pick matching bands"):
        embed_raster(six, ConvBackbone(in_chans=2), tmp_path / "c.tif", bands=[4, 3], sensor=s5, **opts)
