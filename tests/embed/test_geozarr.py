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
        # CF / GeoZarr dimension coordinates: what they are and in which unit (not bare numbers)
        assert ds["x"].attrs == {
            "axis": "X", "long_name": "x coordinate of projection", "standard_name": "projection_x_coordinate",
            "units": "metre",
        }  # fmt: skip
        assert ds["y"].attrs["standard_name"] == "projection_y_coordinate" and ds["y"].attrs["units"] == "metre"
        names = [str(b) for b in ds["band"].values]
        assert names == [str(b) for b in ds["band_name"].values] and names[0] == "E000"
        first = ds["embedding"].sel(band=names[0]).values
    finally:
        ds.close()
    with rasterio.open(f'ZARR:"{out}":/embedding') as gd:  # GDAL's Zarr driver
        assert gd.crs.to_epsg() == 32633 and gd.count == len(names)
        assert [gd.tags(i + 1)["DIM_band_VALUE"] for i in range(gd.count)] == names
        # band descriptions (what QGIS lists instead of "Band 001"), from GDAL's PAM file of the array
        assert list(gd.descriptions) == names
        np.testing.assert_array_equal(gd.read(1), first)
    with rasterio.open(out) as folder:  # the folder alone (QGIS: open the .zarr directory) opens the same view
        assert list(folder.descriptions) == names


def test_gdal_band_names_escaped_and_unicode(tmp_path):
    """Names XML would break on (&, <) and non-ASCII ones reach GDAL's band descriptions as they are; a store
    without geodino's band-name attribute gets no PAM file."""
    import rasterio

    from geodino.embed.writers import create_store, finalize_store

    names = ["E000", "a&b <c>", "band é"]
    kw = dict(height=5, width=7, transform=from_origin(0.0, 10.0, 1.0, 1.0), crs="EPSG:32633", dtype="float32")
    create_store(tmp_path / "s.zarr", band_names=names, chunk=4, metadata={}, **kw)
    finalize_store(tmp_path / "s.zarr")
    with rasterio.open(f'ZARR:"{tmp_path / "s.zarr"}":/embedding') as gd:
        assert list(gd.descriptions) == names
    create_store(tmp_path / "t.zarr", band_names=names, chunk=4, metadata={}, **kw)
    attrs = tmp_path / "t.zarr" / ".zattrs"
    attrs.write_text(json.dumps({k: v for k, v in json.loads(attrs.read_text()).items() if k != "geodino_band_names"}))
    finalize_store(tmp_path / "t.zarr")
    assert not (tmp_path / "t.zarr" / "embedding" / ".zarray.aux.xml").exists()


def test_a_rotated_input_is_refused_as_zarr_and_kept_as_cog(tmp_path):
    """GDAL and QGIS read a store's 1-D x/y coordinates, which dropped a rotated input's rotation (the cells landed
    kilometres away, silently); a .zarr output of a rotated input is refused in one line, its COG keeps the rotation."""
    import pytest
    import rasterio
    from affine import Affine

    import geodino
    from geodino.errors import InputError

    t = Affine.translation(500000.0, 4500000.0) * Affine.rotation(20) * Affine.scale(10.0, -10.0)
    src = write_tif(tmp_path / "rot.tif", random_image(40, 48), crs="EPSG:32633", transform=t)
    refused = r"rot\.tif has a rotated geotransform, .*write a COG instead \(--out f\.tif, out= in Python\)$"
    with pytest.raises(InputError, match=refused):
        embed_raster(src, ConvBackbone(), tmp_path / "f.zarr", tile=32, overlap=8, progress=False)
    assert not (tmp_path / "f.zarr").exists() and not list(tmp_path.glob(".f*"))
    cog = embed_raster(src, ConvBackbone(), tmp_path / "f.tif", tile=32, overlap=8, progress=False)
    with rasterio.open(cog) as r:
        assert r.transform.almost_equals(t * Affine.scale(4), precision=1e-6)  # patch-grid cells, rotation kept
        tags = r.tags()  # the version tag was GEODINO_GEODINO_VERSION
        assert tags["GEODINO_VERSION"] == geodino.__version__ and not [k for k in tags if "GEODINO_GEODINO" in k]
