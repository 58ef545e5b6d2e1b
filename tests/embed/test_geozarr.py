"""The GeoZarr feature store opens with its CRS and band names in plain xarray, rioxarray and GDAL."""

from __future__ import annotations

import json

import numpy as np
from rasterio.transform import from_origin

from geodino.embed import embed_raster
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone


def test_geozarr_crs_and_band_names_in_xarray_rioxarray_and_gdal(tmp_path):
    import rasterio
    import rioxarray  # noqa: F401
    import xarray as xr

    t = from_origin(500000.0, 4500000.0, 10.0, 10.0)
    src = write_tif(tmp_path / "in.tif", random_image(40, 48), crs="EPSG:32633", transform=t)
    out = embed_raster(src, ConvBackbone(), tmp_path / "f.zarr", tile=32, overlap=8, progress=False)
    attrs = json.loads((out / "embedding" / ".zattrs").read_text())
    assert attrs["grid_mapping"] == "spatial_ref" and "spatial_ref" in attrs["coordinates"].split()
    ds = xr.open_zarr(out)  # plain xarray, default decode_coords: no decode_coords="all" needed
    try:
        assert "spatial_ref" in ds.coords and ds.rio.crs.to_epsg() == 32633
        assert ds["embedding"].rio.crs.to_epsg() == 32633
        assert ds.rio.transform().almost_equals(t @ t.scale(4), precision=1e-6)  # patch-grid cells
        names = [str(b) for b in ds["band"].values]
        assert names == [str(b) for b in ds["band_name"].values] and names[0] == "E000"
        first = ds["embedding"].sel(band=names[0]).values
    finally:
        ds.close()
    with rasterio.open(f'ZARR:"{out}":/embedding') as gd:  # GDAL's Zarr driver
        assert gd.crs.to_epsg() == 32633 and gd.count == len(names)
        assert [gd.tags(i + 1)["DIM_band_VALUE"] for i in range(gd.count)] == names
        np.testing.assert_array_equal(gd.read(1), first)
