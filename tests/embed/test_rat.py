"""Raster attribute tables of the class maps (cluster, classify, change mask) in GDAL's PAM file `OUT.tif.aux.xml`.

Class names lived only in GEODINO_* tags and the `.qml`, so ArcGIS, or QGIS without the style, showed bare numbers.
rasterio has no RAT API, and neither `gdalinfo` nor osgeo is installed here, so the tables are read back twice:
by parsing the XML, and by GDAL itself (rasterio's own libgdal through ctypes: GDALGetDefaultRAT), which is what
QGIS and gdalinfo call. The values, names and colours must match the colour table, the `.qml` and the PNG legend.
"""

from __future__ import annotations

import ctypes
import glob
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import cluster_map, pca_map, similarity_map
from geodino.embed.change import change_map
from geodino.embed.classify import classify_map
from geodino.errors import ConfigError

T = from_origin(500000.0, 4000000.0, 40.0, 40.0)
TAGS = {"GEODINO_MODEL_FINGERPRINT": "abc123", "GEODINO_MODEL_SPEC": "arch:test", "GEODINO_LAYERS": "[11]"}


def feature_raster(path: Path, feats: np.ndarray) -> Path:
    """A float32 feature raster with the backbone record the products require."""
    d, h, w = feats.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=h, width=w, count=d, dtype="float32", crs="EPSG:32633", transform=T,
        nodata=np.nan,
    ) as dst:  # fmt: skip
        dst.write(feats.astype(np.float32))
        dst.update_tags(**TAGS)
    return path


def stripes(k: int = 3, seed: int = 0) -> np.ndarray:
    """`k` vertical stripes of 10 columns, each around its own 8-d vector; a 3x3 nodata corner."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(k, 8))
    f = np.repeat(centres.T[:, None, :], 10, axis=2).repeat(20, axis=1)
    f = f + rng.normal(scale=0.05, size=f.shape)
    f[:, :3, :3] = np.nan
    return f.astype(np.float32)


def xml_rat(cog: Path, band: int = 1) -> tuple[list[tuple[str, int, int]], list[list[str]]]:
    """(columns as (name, type, usage), rows as strings) of `band`'s table in COG.aux.xml."""
    root = ET.parse(f"{cog}.aux.xml").getroot()
    assert root.tag == "PAMDataset"
    (b,) = [b for b in root.findall("PAMRasterBand") if b.get("band") == str(band)]
    (rat,) = b.findall("GDALRasterAttributeTable")
    cols = [(f.findtext("Name"), int(f.findtext("Type")), int(f.findtext("Usage"))) for f in rat.findall("FieldDefn")]
    rows = [[f.text or "" for f in r.findall("F")] for r in rat.findall("Row")]
    return cols, rows


def _libgdal() -> ctypes.CDLL | None:
    """rasterio's own GDAL (its wheel bundles it), for the RAT calls rasterio does not wrap."""
    libs = glob.glob(str(Path(rasterio.__file__).parent.parent / "rasterio.libs" / "libgdal*.so*"))
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    p, i = ctypes.c_void_p, ctypes.c_int
    for name, res, args in (
        ("GDALOpen", p, [ctypes.c_char_p, i]),
        ("GDALGetRasterBand", p, [p, i]),
        ("GDALGetDefaultRAT", p, [p]),
        ("GDALRATGetRowCount", i, [p]),
        ("GDALRATGetColumnCount", i, [p]),
        ("GDALRATGetNameOfCol", ctypes.c_char_p, [p, i]),
        ("GDALRATGetUsageOfCol", i, [p, i]),
        ("GDALRATGetValueAsString", ctypes.c_char_p, [p, i, i]),
        ("GDALClose", None, [p]),
    ):
        getattr(lib, name).restype, getattr(lib, name).argtypes = res, args
    lib.GDALAllRegister()
    return lib


def gdal_rat(cog: Path, band: int = 1) -> tuple[list[tuple[str, int]], list[list[str]]] | None:
    """(columns as (name, usage), rows) of the band's default RAT as GDAL reads it; None without a table."""
    lib = _libgdal()
    if lib is None:
        pytest.skip("rasterio's libgdal not found: cannot ask GDAL for the table")
    ds = lib.GDALOpen(str(cog).encode(), 0)
    assert ds, f"GDAL cannot open {cog}"
    try:
        rat = lib.GDALGetDefaultRAT(lib.GDALGetRasterBand(ds, band))
        if not rat:
            return None
        n, m = lib.GDALRATGetRowCount(rat), lib.GDALRATGetColumnCount(rat)
        cols = [(lib.GDALRATGetNameOfCol(rat, j).decode(), lib.GDALRATGetUsageOfCol(rat, j)) for j in range(m)]
        rows = [[lib.GDALRATGetValueAsString(rat, r, j).decode() for j in range(m)] for r in range(n)]
        return cols, rows
    finally:
        lib.GDALClose(ds)


COLUMNS = [("Value", 5), ("Class_Name", 2), ("Red", 6), ("Green", 7), ("Blue", 8), ("Alpha", 9)]  # GFU_* codes


def qml_entries(cog: Path) -> list[list[str]]:
    """The `.qml` palette as RAT-like rows: value, label, red, green, blue, alpha."""
    out = []
    for e in ET.parse(cog.with_suffix(".qml")).getroot().iter("paletteEntry"):
        c = e.get("color")
        out.append([e.get("value"), e.get("label"), *(str(int(c[i : i + 2], 16)) for i in (1, 3, 5)), e.get("alpha")])
    return out


def colour_table_rows(cog: Path, values: list[int]) -> list[list[str]]:
    """Value, red, green, blue of the COG's colour table (a TIFF colour map holds no alpha: GDAL says 255)."""
    with rasterio.open(cog) as ds:
        cmap = ds.colormap(1)
    return [[str(v), *(str(x) for x in cmap[v][:3])] for v in values]


def check_table(cog: Path, names: list[str], values: list[int]) -> list[list[str]]:
    """The table GDAL reads equals the XML's, names the classes, and agrees with the colour table and `.qml`."""
    cols, rows = xml_rat(cog)
    assert [(n, u) for n, _, u in cols] == COLUMNS and [t for _, t, _ in cols] == [0, 2, 0, 0, 0, 0]
    assert gdal_rat(cog) == (COLUMNS, rows)
    assert [r[0] for r in rows] == [str(v) for v in values] and [r[1] for r in rows] == names
    assert [[r[0], *r[2:5]] for r in rows] == colour_table_rows(cog, values)
    assert rows == qml_entries(cog)  # alpha included
    return rows


def test_cluster_map_names_its_clusters_in_an_attribute_table(tmp_path):
    src = feature_raster(tmp_path / "f.tif", stripes())
    out = cluster_map(src, tmp_path / "k.tif", k=3)
    check_table(out, [f"cluster {i}" for i in range(3)], [0, 1, 2])
    with rasterio.open(out) as ds:
        assert ds.read(1)[0, 0] == 255 and ds.nodata == 255  # nodata has no row: GDAL shows it as nodata


def test_classify_table_matches_tags_qml_and_the_png_legend(tmp_path, monkeypatch):
    """Class names with XML characters and natural order; the legend's entries are the table's rows (band 1 only:
    band 2 is the confidence)."""
    import geopandas as gpd
    from shapely.geometry import box

    from geodino.embed import quicklook

    legends = []
    real = quicklook.classes_png
    monkeypatch.setattr(quicklook, "classes_png", lambda *a, **k: legends.append(a[2]) or real(*a, **k))
    names = ["water & <ice>", "class_10", "class_2"]  # stripe k's class
    geoms, labels = [], []
    for k in range(3):
        for r in (5, 14):
            x0, y0 = T * (10 * k + 3, r)
            geoms.append(box(x0, y0 - 40 * 3, x0 + 40 * 4, y0))
            labels.append(names[k])
    gpd.GeoDataFrame({"lc": labels}, geometry=geoms, crs="EPSG:32633").to_file(tmp_path / "lab.gpkg")
    feats = feature_raster(tmp_path / "f.tif", stripes())
    m = classify_map(feats, tmp_path / "lab.gpkg", tmp_path / "map.tif", column="lc")
    with rasterio.open(tmp_path / "map.tif") as ds:
        tag_names = json.loads(ds.tags()["GEODINO_CLASS_NAMES"])
        tag_values = json.loads(ds.tags()["GEODINO_CLASS_VALUES"])
    assert m["classes"] == tag_names == ["class_2", "class_10", "water & <ice>"]
    rows = check_table(tmp_path / "map.tif", tag_names, tag_values)
    (legend,) = legends
    assert [[str(v), n, *map(str, c)] for v, (c, n) in sorted(legend.items())] == rows
    assert gdal_rat(tmp_path / "map.tif", band=2) is None
    # the model named as the map's attribute table: refused by the model's suffix rule now (it must be .safetensors)
    with pytest.raises(
        ConfigError, match=r"classify writes a safetensors file \(the fitted model, for --model\), not \.xml"
    ):
        lab, m2 = tmp_path / "lab.gpkg", tmp_path / "m2.tif"
        classify_map(feats, lab, m2, column="lc", save_model=tmp_path / "m2.tif.aux.xml")


def test_change_mask_has_a_table_and_the_distance_none(tmp_path):
    a = feature_raster(tmp_path / "a.tif", stripes(seed=0))
    f = stripes(seed=1)
    f[:, :, 20:] = -f[:, :, 20:]  # the third stripe turns round: change
    b = feature_raster(tmp_path / "b.tif", f)
    s = change_map(a, b, tmp_path / "c.tif", threshold=0.5)
    rows = check_table(Path(s["mask"]), ["no change", "change"], [0, 1])
    assert rows[0][-1] == "0"  # "no change" is transparent in the table as in the .qml (overlay on a basemap)
    assert not Path(f"{tmp_path / 'c.tif'}.aux.xml").exists()


def test_maps_without_classes_write_no_table(tmp_path):
    src = feature_raster(tmp_path / "f.tif", stripes())
    pca_map(src, tmp_path / "p.tif")
    similarity_map(src, tmp_path / "s.tif", point=(500000.0 + 40 * 15.5, 4000000.0 - 40 * 10.5))
    assert not list(tmp_path.glob("*.aux.xml"))


def test_overwrite_replaces_the_table_and_drops_stale_statistics(tmp_path):
    """GDAL writes statistics into the PAM file (rasterio's stats(), gdalinfo -stats): they describe that file,
    so --overwrite removes them with the raster; a pca written over a cluster map leaves no table behind."""
    src = feature_raster(tmp_path / "f.tif", stripes())
    out = cluster_map(src, tmp_path / "k.tif", k=3)
    with rasterio.open(out) as ds:
        ds.stats(indexes=1)  # GDAL keeps the table and adds STATISTICS_* to k.tif.aux.xml
    text = Path(f"{out}.aux.xml").read_text()
    assert "STATISTICS_MAXIMUM" in text and "GDALRasterAttributeTable" in text
    cluster_map(src, out, k=2, overwrite=True)
    assert "STATISTICS" not in Path(f"{out}.aux.xml").read_text()
    check_table(out, ["cluster 0", "cluster 1"], [0, 1])
    pca_map(src, out, overwrite=True)
    assert not Path(f"{out}.aux.xml").exists() and gdal_rat(out) is None


def test_write_rat_merges_into_a_pam_file_gdal_wrote(tmp_path):
    """A PAM file GDAL wrote for this raster (statistics) keeps its content; a table already there is replaced,
    never doubled."""
    from geodino.embed.map_outputs import write_rat

    src = feature_raster(tmp_path / "f.tif", stripes())
    out = cluster_map(src, tmp_path / "k.tif", k=3)
    Path(f"{out}.aux.xml").unlink()
    with rasterio.open(out) as ds:
        ds.stats(indexes=1)  # now a PAM file of statistics only
    with rasterio.open(out) as ds:
        stats = ds.tags(1)
    assert "STATISTICS_MEAN" in stats
    write_rat(out, {0: ((1, 2, 3), "a"), 2: ((4, 5, 6, 7), "c")})
    write_rat(out, {0: ((1, 2, 3), "a"), 1: ((9, 9, 9), "b")})
    with rasterio.open(out) as ds:
        assert ds.tags(1) == stats  # GDAL still reads the statistics
    assert gdal_rat(out) == (COLUMNS, [["0", "a", "1", "2", "3", "255"], ["1", "b", "9", "9", "9", "255"]])
    assert len(ET.parse(f"{out}.aux.xml").getroot().findall("PAMRasterBand/GDALRasterAttributeTable")) == 1
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
