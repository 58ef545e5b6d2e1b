"""`geodino embed` applies the rule a datacube declares by CF `scale_factor`/`add_offset` (physical = DN * scale +
offset) as it applies a GeoTIFF's GDAL scale/offset: the cube is read raw, so without it a Sentinel-2 L2A cube of
baseline >= 04.00 (DN = reflectance x 10^4 + 1000, scale 0.0001, offset -0.1) was read as DN / 10^4 with the
'assuming DN / 10000' warning, 0.1 too bright in every band."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from geodino.embed import embed_raster
from geodino.embed.pipeline import run_lines
from tests.embed.conftest import random_image, read_all, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}
CF = "x*0.0001-0.1 (the input's CF scale_factor/add_offset)"
BANDS = [3, 1, 2]  # of 4: the rule follows the bands picked


def _bb():
    from tests.embed.toy_backbones import ConvBackbone

    return ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)


def _dn() -> np.ndarray:
    """DN = reflectance x 10^4 + 1000 (reflectance x 10^4 in 1..5000), 4 bands of 48 x 48, uint16."""
    refl = random_image(48, 48, c=4, seed=7, dtype="uint16").astype(np.int64) % 5000 + 1
    return (refl + 1000).astype(np.uint16)


def _cube(path: Path, dn: np.ndarray, scale: float = 1e-4, offset: float = -0.1) -> Path:
    """A Zarr cube of `dn` on the grid `write_tif` gives (EPSG:32633, 10 m, origin 500000/4000000), declaring the CF
    rule on its variable, as a store written undecoded carries it."""
    import rioxarray  # noqa: F401
    import xarray as xr

    c, h, w = dn.shape
    coords = {"band": [f"B{i}" for i in range(1, c + 1)], "y": 4000000.0 - 10 * (np.arange(h) + 0.5),
              "x": 500000.0 + 10 * (np.arange(w) + 0.5)}  # fmt: skip
    da = xr.DataArray(dn, dims=("band", "y", "x"), coords=coords, name="reflectance")
    da.attrs.update(scale_factor=scale, add_offset=offset)
    da.rio.write_crs("EPSG:32633", inplace=True)
    da.to_dataset().to_zarr(path, zarr_format=2)
    return path


def test_a_cubes_cf_rule_is_applied_as_a_geotiffs_tags(tmp_path, capsys):
    """The same DN as a cube declaring scale 1e-4 / offset -0.1, as a GeoTIFF with those GDAL tags, and as float
    reflectance DN*1e-4-0.1 with scale=1: one set of features; the cube's rule is recorded and said, with no
    'assuming reflectance' warning (the old code read the cube as DN / 10^4: 0.1 too bright)."""
    import rasterio

    dn = _dn()
    cube = _cube(tmp_path / "dn.zarr", dn)
    tif = write_tif(tmp_path / "dn.tif", dn)
    with rasterio.open(tif, "r+") as dst:
        dst.scales, dst.offsets = (1e-4,) * 4, (-0.1,) * 4
    refl = write_tif(tmp_path / "refl.tif", (dn.astype(np.float32) * np.float32(1e-4) + np.float32(-0.1)))
    want = read_all(embed_raster(refl, _bb(), tmp_path / "refl_f.tif", bands=BANDS, scale=1.0, **OPTS))[0]
    by_tif = read_all(embed_raster(tif, _bb(), tmp_path / "tif_f.tif", bands=BANDS, **OPTS))[0]
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught, run_lines():
        warnings.simplefilter("always")
        got = embed_raster(cube, _bb(), tmp_path / "cube_f.tif", bands=BANDS, **OPTS)
    assert not [w for w in caught if "assuming reflectance" in str(w.message)]
    data, *_, tags, _ = read_all(got)
    np.testing.assert_allclose(data, by_tif, atol=1e-5)
    np.testing.assert_allclose(data, want, atol=1e-5)
    assert tags["GEODINO_INPUT_SCALE"] == CF
    assert (
        "geodino: input DN -> reflectance x*0.0001-0.1 (declared by the input: its CF scale_factor/add_offset)"
        in capsys.readouterr().err
    )


def test_a_rule_given_or_file_scale_false_wins_over_the_cubes(tmp_path):
    """As for a GeoTIFF: scale= given reads the DN by it, file_scale=false ignores the declaration (dtype default)."""
    cube = _cube(tmp_path / "dn.zarr", _dn())
    for name, extra, desc in (
        ("user", {"scale": 1e-4}, "x*0.0001"),
        ("off", {"file_scale": False}, "x/10000 (uint16, assumed)"),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = embed_raster(cube, _bb(), tmp_path / f"{name}.tif", bands=BANDS, **OPTS, **extra)
        assert read_all(out)[-2]["GEODINO_INPUT_SCALE"] == desc


def test_a_window_of_the_cube_keeps_its_rule(tmp_path):
    """A window of the cube (`window=`, read through `WindowSource`) is read by the cube's rule too: the same
    features as the same window of the tagged GeoTIFF."""
    import rasterio

    dn = _dn()
    cube = _cube(tmp_path / "dn.zarr", dn)
    tif = write_tif(tmp_path / "dn.tif", dn)
    with rasterio.open(tif, "r+") as dst:
        dst.scales, dst.offsets = (1e-4,) * 4, (-0.1,) * 4
    win = {"window": [8, 4, 32, 40], "bands": BANDS, **OPTS}
    by_tif = read_all(embed_raster(tif, _bb(), tmp_path / "tif_f.tif", **win))[0]
    data, *_, tags, _ = read_all(embed_raster(cube, _bb(), tmp_path / "cube_f.tif", **win))
    assert tags["GEODINO_INPUT_SCALE"] == CF
    np.testing.assert_allclose(data, by_tif, atol=1e-5)


def _scene(path: Path, x0: float, **attrs: float) -> None:
    import rioxarray  # noqa: F401
    import xarray as xr

    dn = _dn()[:3, :32, :32]
    coords = {"band": ["B1", "B2", "B3"], "y": 4000000.0 - 10 * (np.arange(32) + 0.5),
              "x": x0 + 10 * (np.arange(32) + 0.5)}  # fmt: skip
    da = xr.DataArray(dn, dims=("band", "y", "x"), coords=coords, name="r", attrs=attrs)
    da.rio.write_crs("EPSG:32633", inplace=True)
    da.to_dataset().to_zarr(path, zarr_format=2)


def test_cube_scenes_of_their_own_cf_rules_share_a_mosaic(tmp_path):
    """Cubes listed as scenes, each declaring its own CF rule: each is read by its own (recorded per scene) and the
    mosaic is written, as for GeoTIFFs of their own GDAL tags (the scenes' rule is 'per scene', not a setting that
    differs); one declaring beside one that does not is refused naming the CF rule."""
    from geodino.embed import embed_scenes
    from geodino.errors import InputError

    _scene(tmp_path / "a.zarr", 500000.0, scale_factor=1e-4, add_offset=-0.1)
    _scene(tmp_path / "b.zarr", 500320.0, scale_factor=2e-4, add_offset=0.0)
    (tmp_path / "list.txt").write_text("a.zarr\nb.zarr\n")
    out = embed_scenes(str(tmp_path / "list.txt"), backbone=_bb(), out=str(tmp_path / "out"), **OPTS)
    assert out and Path(out[0]).exists()
    tags = {n: read_all(tmp_path / "out" / f"{n}.tif")[-2]["GEODINO_INPUT_SCALE"] for n in "ab"}
    assert tags == {"a": CF, "b": "x*0.0002 (the input's CF scale_factor/add_offset)"}
    _scene(tmp_path / "c.zarr", 500640.0)
    (tmp_path / "mixed.txt").write_text("a.zarr\nc.zarr\n")
    try:
        embed_scenes(str(tmp_path / "mixed.txt"), backbone=_bb(), out=str(tmp_path / "out2"), **OPTS)
    except InputError as exc:
        assert f"(e.g. {tmp_path / 'a.zarr'}: CF scale_factor/add_offset) and 1 do not" in str(exc), str(exc)
    else:
        raise AssertionError("a cube declaring its rule beside one that does not was not refused")
