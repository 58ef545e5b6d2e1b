"""The classify COG's second band (confidence) is a grey band, not the class map's alpha: GDAL's COG driver writes
the second sample of a paletted TIFF as alpha, so GDAL readers (QGIS without the `.qml`, MapServer, gdal_translate)
drew the class colours at the confidence's opacity (100 % confidence = 100/255, 39 % opaque)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np


def test_confidence_band_is_grey_not_alpha_and_the_table_stays(tmp_path):
    import rasterio
    from rasterio.enums import ColorInterp

    from geodino.embed.classify import classify_map
    from tests.embed.test_classify import feature_raster, polygons, stripes

    feats = feature_raster(tmp_path / "f.tif", stripes())
    classify_map(feats, polygons(tmp_path / "lab.geojson"), tmp_path / "map.tif", column="landcover")
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert ds.colorinterp == (ColorInterp.palette, ColorInterp.gray)
        assert ds.colormap(1)[0][:3] == (31, 119, 180)
        conf = ds.read(2)
    assert 0 < int(np.median(conf[conf != 255])) <= 100  # what alpha would have made ~transparent
    pam = ET.parse(tmp_path / "map.tif.aux.xml").getroot()
    bands = {b.get("band"): b for b in pam.findall("PAMRasterBand")}
    assert bands["1"].find("GDALRasterAttributeTable") is not None
    assert [e.text for e in bands["2"].findall("ColorInterp")] == ["Gray"]
    with rasterio.open(tmp_path / "map.tif") as ds:  # GDAL rewrites the PAM file with statistics ...
        ds.stats(approx=False)
    with rasterio.open(tmp_path / "map.tif") as ds:  # ... and keeps the grey band and the table
        assert ds.colorinterp == (ColorInterp.palette, ColorInterp.gray)
    pam = ET.parse(tmp_path / "map.tif.aux.xml").getroot()
    assert pam.find("PAMRasterBand/GDALRasterAttributeTable") is not None
    assert "STATISTICS_MEAN" in ET.tostring(pam, encoding="unicode")


def test_single_band_class_maps_get_no_extra_band_entry(tmp_path):
    import rasterio
    from rasterio.enums import ColorInterp

    from geodino.embed import cluster_map
    from tests.embed.test_classify import feature_raster, stripes

    out = cluster_map(feature_raster(tmp_path / "f.tif", stripes()), tmp_path / "k.tif", k=3)
    with rasterio.open(out) as ds:
        assert ds.colorinterp == (ColorInterp.palette,)
    pam = ET.parse(tmp_path / "k.tif.aux.xml").getroot()
    assert [b.get("band") for b in pam.findall("PAMRasterBand")] == ["1"]


def test_a_rewritten_table_keeps_one_colour_interpretation(tmp_path):
    from geodino.embed.map_outputs import write_rat

    out = tmp_path / "m.tif"
    out.write_bytes(b"")
    write_rat(out, {0: ((1, 2, 3), "a")}, extra_bands=1)
    write_rat(out, {0: ((1, 2, 3), "a"), 1: ((4, 5, 6), "b")}, extra_bands=1)
    pam = ET.parse(tmp_path / "m.tif.aux.xml").getroot()
    assert [e.text for e in pam.iter("ColorInterp")] == ["Gray"]
    assert len(list(pam.iter("Row"))) == 2
