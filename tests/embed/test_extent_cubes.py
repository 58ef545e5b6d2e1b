"""A many-scene `--bbox` that meets none of the scenes names the scenes' extent. That extent was read through GDAL
alone, which reads a store of one variable per band (B02, B03, ... each a (y, x) array) with no CRS and an identity
transform: the line said `whose extent is 0 512 512 0 in no CRS`. Cube stores are now read by geodino's cube reader
(the grid `embed` reads), as the bbox test itself does."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.errors import InputError

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"
RUN = ["--tile", "32", "--overlap", "0", "--no-progress", "--threads", "1", "--scale", "1e-4"]


def _store(path: Path, north: float, size: int = 32) -> Path:
    """A `size` x `size` Zarr v2 store of one uint16 variable per band, 10 m pixels in EPSG:32633, top edge at
    `north`, left edge at x=500000."""
    import rioxarray  # noqa: F401
    import xarray as xr

    y = north - 10 * (np.arange(size) + 0.5)
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {b: (("y", "x"), rng.integers(0, 10000, (size, size)).astype("uint16")) for b in ("B02", "B03", "B04")},
        coords={"y": y, "x": 5e5 + 10 * (np.arange(size) + 0.5)},
    ).rio.write_crs("EPSG:32633")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, zarr_format=2)
    return path


@pytest.mark.parametrize("crs", [[], ["--bbox-crs", "EPSG:32633"]])
def test_bbox_missing_every_cube_names_their_true_extent(tmp_path: Path, crs: list[str], capsys) -> None:
    d = tmp_path / "in"
    d.mkdir()
    _store(d / "a.zarr", 4e6)  # x 500000..500320, y 3999680..4000000
    _store(d / "b.zarr", 4e6 - 320)  # y 3999360..3999680
    box = ["--bbox", "600000", "3000000", "600100", "3000100"]  # 100 km east, 1000 km south of both
    argv = ["embed", str(d), "-b", SPEC, "--out", str(tmp_path / "out"), "--bands", "1,2,3", *box, *crs, *RUN]
    try:
        rc = cli.main(argv)
        msg = capsys.readouterr().err
    except InputError as exc:  # the CLI may print the line or let the error through
        rc, msg = 1, str(exc)
    assert rc != 0
    assert "overlaps none of the 2 scenes" in msg
    assert "whose extent is 500000 3999360 500320 4000000 in EPSG:32633" in msg
    assert "no CRS" not in msg


def test_scenes_extent_reads_cubes_by_the_given_grid(tmp_path: Path) -> None:
    """The Python API: `scenes_extent` takes the cube grid callable for store paths; GeoTIFFs stay GDAL's."""
    import rasterio
    from rasterio.transform import from_origin

    from geodino.embed.config import EmbedConfig
    from geodino.embed.extent import scenes_extent
    from geodino.embed.scene_checks import _cube_grid

    a = _store(tmp_path / "a.zarr", 4e6)
    tif = tmp_path / "c.tif"
    prof = dict(driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32633")
    with rasterio.open(tif, "w", transform=from_origin(499000, 4001000, 10, 10), **prof) as dst:
        dst.write(np.zeros((1, 8, 8), "uint8"))
    cfg = EmbedConfig(bands=[1, 2, 3])
    text = scenes_extent([str(a), str(tif)], None, grid=lambda p: _cube_grid(p, cfg))
    assert text == "499000 3999680 500320 4001000 in EPSG:32633"
