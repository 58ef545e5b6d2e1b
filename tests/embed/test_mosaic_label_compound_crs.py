"""Scenes in two CRSs get one mosaic per CRS named after it: a compound (UTM + EGM96 height) or custom-WKT CRS has
no code, so its file name held its whole WKT and the run ended in `OSError: File name too long` after embedding
every scene. It is now the CRS's name and 8 hex digits of its WKT."""

from __future__ import annotations

import numpy as np
from rasterio.crs import CRS

from geodino.embed.scene_mosaic import mosaic_label, write_mosaic
from tests.embed.conftest import write_tif


def test_a_compound_crs_mosaic_has_a_short_distinct_name(tmp_path):
    compound = CRS.from_user_input("EPSG:32633+5773")
    paths = [
        write_tif(tmp_path / "a.tif", np.zeros((2, 4, 4), "float32"), crs=compound),
        write_tif(tmp_path / "b.tif", np.zeros((2, 4, 4), "float32")),
    ]
    written = write_mosaic(paths, tmp_path / "mosaic.vrt")
    names = sorted(p.name for p in written)
    assert names[0] == "mosaic_EPSG_32633.vrt"
    assert names[1].startswith("mosaic_WGS_84___UTM_zone_33N___EGM96_height_") and len(names[1]) < 80
    assert all(p.exists() for p in written)
    assert mosaic_label(compound.to_string()) != mosaic_label(CRS.from_user_input("EPSG:32634+5773").to_string())
