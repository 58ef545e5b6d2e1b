"""A VRT mosaic of many rasters listed no overviews (GDAL exposes sources' overviews only for one source a band),
so gdalinfo and QGIS showed none although every scene COG has them: the overview factors all sources share are
declared (`<OverviewList>`) and zoomed-out reads give the same pixels, taken from the sources' overviews."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from geodino.data.vrt import mosaic_vrt
from geodino.data.vrt_mosaic import shared_overviews


def raster(path, x0, seed, *, levels=(2, 4), dtype="float32"):
    data = np.random.default_rng(seed).normal(size=(2, 64, 64)).astype(dtype)
    with rasterio.open(
        path, "w", driver="GTiff", width=64, height=64, count=2, dtype=dtype, crs="EPSG:32633",
        transform=from_origin(x0, 4000000.0, 10.0, 10.0), nodata=np.nan if dtype == "float32" else None,
    ) as dst:  # fmt: skip
        dst.write(data)
        if levels:
            dst.build_overviews(list(levels), Resampling.average)
    return path


def test_mosaic_declares_the_shared_overviews_and_reads_them(tmp_path):
    a = raster(tmp_path / "a.tif", 500000.0, 1)
    b = raster(tmp_path / "b.tif", 500000.0 + 960, 2)  # 32 cells of gap: 160 x 64 mosaic
    with rasterio.open(mosaic_vrt([a, b], tmp_path / "m.vrt")) as m, rasterio.open(a) as src:
        assert m.overviews(1) == [2, 4] and m.shape == (64, 160)
        zoomed = m.read(out_shape=(2, 16, 40))  # 4x smaller
        np.testing.assert_array_equal(zoomed[:, :, :16], src.read(out_shape=(2, 16, 16)))  # a's own overview
        assert np.isnan(zoomed[:, :, 16:24]).all()
    plain = raster(tmp_path / "plain.tif", 500000.0 + 960, 3, levels=())
    with rasterio.open(mosaic_vrt([a, plain], tmp_path / "p.vrt")) as m:
        assert m.overviews(1) == []  # not every source has them: none declared
    codes = [raster(tmp_path / f"{n}.tif", 500000.0 + 640 * i, i, dtype="uint8") for i, n in enumerate("cd")]
    assert '<OverviewList resampling="nearest">2 4</OverviewList>' in mosaic_vrt(codes, tmp_path / "c.vrt").read_text()


def test_shared_overviews_are_on_the_mosaic_grid():
    assert shared_overviews([(1.0, 1.0), (2.0, 2.0)], [[2, 4, 8], [2, 4]]) == [4, 8]  # 2x coarser: its 2 is our 4
    assert shared_overviews([(1.0, 1.0), (1.5, 1.5)], [[2, 4, 6], [2, 4]]) == [6]
    assert shared_overviews([(1.0, 1.0)], [[]]) == []
