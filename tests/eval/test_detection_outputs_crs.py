"""The detection GeoJSON's CRS as GIS software reads it (GDAL, through geopandas).

Before: an image whose CRS has no EPSG code (a custom projection) got only a `crs_wkt` member, which GDAL ignores:
QGIS and geopandas read the boxes' map coordinates (metres) as EPSG:4326 degrees. Now the WKT is also the `crs`
name, which GDAL reads; EPSG CRSs keep their URN.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geodino.eval import dense
from geodino.eval.detection_outputs import write_predictions

LAEA = CRS.from_proj4("+proj=laea +lat_0=52 +lon_0=10 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")


@pytest.mark.parametrize("crs", [LAEA, CRS.from_epsg(32617)], ids=["custom", "epsg"])
def test_gis_software_reads_the_boxes_crs(tmp_path, crs):
    import geopandas as gpd

    assert (crs.to_epsg() is None) == (crs is LAEA)
    r = dense.Raster(np.zeros((3, 100, 100), np.uint8), np.ones((100, 100), bool), tmp_path / "scene.tif", crs,
                     from_origin(4321000.0, 3210000.0, 0.5, 0.5))  # fmt: skip
    pred = {
        "boxes": torch.tensor([[10.0, 20.0, 30.0, 50.0]]),
        "scores": torch.tensor([0.9]),
        "labels": torch.tensor([0]),
    }
    path = write_predictions(pred, r, ["tree"], 0.3, tmp_path)
    g = gpd.read_file(path)
    assert g.crs is not None and CRS.from_user_input(g.crs.to_wkt()) == crs  # was EPSG:4326 for the custom CRS
    assert g.total_bounds == pytest.approx([4321005.0, 3209975.0, 4321015.0, 3209990.0])
