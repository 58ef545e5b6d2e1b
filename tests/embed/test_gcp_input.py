"""An input georeferenced only by ground control points (no geotransform; the CRS is on its GCPs) was refused with
"has no CRS; set one (gdal_edit.py -a_srs ...)", which does not place it, and with --allow-no-crs its GCPs were
dropped without a word. It is now refused with one line saying it is georeferenced by GCPs only and how to warp it
to a grid; with --allow-no-crs it is embedded in pixel coordinates with one warning that the GCPs are not carried."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import embed_raster
from geodino.errors import InputError
from tests.embed.conftest import random_image

FAST = dict(progress=False, chunk=16, block_rows=16)


def _gcp_tif(path: Path) -> Path:
    """A 3-band 32 x 40 px GeoTIFF with 4 GCPs in EPSG:32633 and no geotransform."""
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    data = random_image(32, 40)
    gcps = [
        GroundControlPoint(row=0, col=0, x=500000.0, y=4000000.0),
        GroundControlPoint(row=0, col=40, x=500400.0, y=4000000.0),
        GroundControlPoint(row=32, col=0, x=500000.0, y=3999680.0),
        GroundControlPoint(row=32, col=40, x=500400.0, y=3999680.0),
    ]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=40,
        height=32,
        count=3,
        dtype="uint8",
        gcps=gcps,
        crs=CRS.from_epsg(32633),
    ) as dst:
        dst.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as src:  # the fixture is what the test means: GCPs, no CRS on the grid
            assert src.crs is None and len(src.gcps[0]) == 4 and src.gcps[1].to_epsg() == 32633
    return path


def test_gcp_only_input_is_refused_with_a_warp_hint(tmp_path, conv_bb):
    src = _gcp_tif(tmp_path / "gcp.tif")
    with pytest.raises(InputError) as err:
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, **FAST)
    text = str(err.value)
    assert "\n" not in text
    assert "georeferenced by 4 GCPs only" in text
    assert f"gdalwarp -t_srs EPSG:32633 {src} gridded.tif" in text
    assert "gdal_edit" not in text  # assigning a CRS to the pixel grid would not place it


def test_gcp_only_input_with_allow_no_crs_says_the_gcps_are_dropped(tmp_path, conv_bb):
    src = _gcp_tif(tmp_path / "gcp.tif")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, allow_no_crs=True, **FAST)
    said = [str(w.message) for w in seen if "GCP" in str(w.message)]
    assert len(said) == 1, said
    assert "pixel coordinates" in said[0] and "does not carry its GCPs" in said[0]
    import rasterio

    with rasterio.open(out) as ds:
        assert ds.crs is None and ds.count == 8 and (ds.height, ds.width) == (8, 10)


def test_rpc_only_input_is_refused_naming_rpcs(tmp_path, conv_bb):
    import rasterio
    from rasterio.rpc import RPC

    src = tmp_path / "rpc.tif"
    coeffs = [0.0] * 20
    rpc = RPC(
        height_off=0,
        height_scale=100,
        lat_off=45,
        lat_scale=0.1,
        line_den_coeff=[1.0, *coeffs[1:]],
        line_num_coeff=coeffs,
        line_off=16,
        line_scale=16,
        long_off=15,
        long_scale=0.1,
        samp_den_coeff=[1.0, *coeffs[1:]],
        samp_num_coeff=coeffs,
        samp_off=20,
        samp_scale=20,
    )
    with rasterio.open(src, "w", driver="GTiff", width=40, height=32, count=3, dtype="uint8", rpcs=rpc) as dst:
        dst.write(random_image(32, 40))
    with pytest.raises(InputError, match=r"georeferenced by RPCs only.*gdalwarp -rpc"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, **FAST)


def test_input_without_any_georeferencing_keeps_the_gdal_edit_hint(tmp_path, conv_bb):
    from tests.embed.conftest import write_tif

    src = write_tif(tmp_path / "plain.tif", np.zeros((3, 32, 32), np.uint8) + 7, crs=None)
    with pytest.raises(InputError, match=r"has no CRS; set one \(gdal_edit.py"):
        embed_raster(src, conv_bb, tmp_path / "o.tif", tile=32, overlap=0, **FAST)
