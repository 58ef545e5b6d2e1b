"""`geodino embed` marks a datacube's pixels outside their CF `valid_range` invalid, as the training reader does
(fc61749 applied it to training tiles and `data stats` only): an out-of-range value is a flag (saturation, an
error code), and embedding it as reflectance put a flagged block's cells in the map as if measured. An object
xarray decoded (scale_factor in `encoding`, values unpacked) gets its packed bounds unpacked by the same rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geodino.embed import embed_raster
from tests.embed.conftest import random_image, read_all

OPTS = {"tile": 32, "overlap": 8, "progress": False, "scale": 1e-4}


def _bb():
    from tests.embed.toy_backbones import ConvBackbone

    return ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)


def _cube(path: Path, dn: np.ndarray, **attrs) -> Path:
    import rioxarray  # noqa: F401
    import xarray as xr

    c, h, w = dn.shape
    coords = {"band": [f"B{i}" for i in range(1, c + 1)], "y": 4000000.0 - 10 * (np.arange(h) + 0.5),
              "x": 500000.0 + 10 * (np.arange(w) + 0.5)}  # fmt: skip
    da = xr.DataArray(dn, dims=("band", "y", "x"), coords=coords, name="reflectance")
    da.attrs.update(attrs)
    da.rio.write_crs("EPSG:32633", inplace=True)
    da.to_dataset().to_zarr(path, zarr_format=2)
    return path


def test_cells_of_out_of_range_pixels_are_nodata(tmp_path: Path) -> None:
    dn = (random_image(48, 48, c=3, seed=3, dtype="uint16").astype(np.int64) % 5000 + 1000).astype(np.uint16)
    dn[1, 8:16, 8:16] = 65000  # a flagged 8x8 block in band 2: cells (2..3, 2..3) of patch 4
    plain = read_all(embed_raster(_cube(tmp_path / "a.zarr", dn), _bb(), tmp_path / "a.tif", **OPTS))
    ranged = read_all(
        embed_raster(_cube(tmp_path / "b.zarr", dn, valid_range=[0, 10000]), _bb(), tmp_path / "b.tif", **OPTS)
    )
    a, b, nodata = plain[0], ranged[0], ranged[5]
    gone = np.isnan(b).all(0) if nodata is None or np.isnan(nodata) else (b == nodata).all(0)
    want = np.zeros(gone.shape, bool)
    want[2:4, 2:4] = True
    np.testing.assert_array_equal(gone, want)  # exactly the flagged cells; without the range all were valid
    assert not (np.isnan(a).all(0) if nodata is None or np.isnan(nodata) else (a == nodata).all(0)).any()


def test_a_decoded_object_gets_unpacked_bounds(tmp_path: Path) -> None:
    import xarray as xr

    from geodino.data.cube_grid import declared_valid_range

    dn = np.full((1, 4, 4), 2000, np.int16)
    store = _cube(tmp_path / "c.zarr", dn, scale_factor=1e-4, add_offset=-0.1, valid_range=[1000, 11000])
    raw = xr.open_zarr(store, mask_and_scale=False)["reflectance"]
    decoded = xr.open_zarr(store)["reflectance"]
    assert declared_valid_range([raw]) == ((1000.0, 11000.0),)
    ((lo, hi),) = declared_valid_range([decoded])
    assert np.isclose(lo, 1000 * 1e-4 - 0.1) and np.isclose(hi, 11000 * 1e-4 - 0.1)
    assert lo <= float(decoded.values.min()) <= hi  # the unpacked values lie inside the unpacked bounds
