"""OGC SLD 1.0.0 styles (`.sld`) next to every product COG: the schema's structure (namespaces, element order,
attributes) and the same values, colours, opacities and labels as the `.qml` beside it and the GeoTIFF's colour
table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import cluster_map, pca_map, similarity_map
from geodino.embed.style import palette_qml, qml_path, ramp_qml, rgb_qml, sld_path

SLD = "{http://www.opengis.net/sld}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# the sequences of the SLD 1.0.0 schema (StyledLayerDescriptor.xsd) for the elements these styles use
ORDER = {
    "StyledLayerDescriptor": ["Name", "Title", "Abstract", "NamedLayer", "UserLayer"],
    "NamedLayer": ["Name", "LayerFeatureConstraints", "NamedStyle", "UserStyle"],
    "UserStyle": ["Name", "Title", "Abstract", "IsDefault", "FeatureTypeStyle"],
    "FeatureTypeStyle": ["Name", "Title", "Abstract", "FeatureTypeName", "SemanticTypeIdentifier", "Rule"],
    "Rule": [
        "Name",
        "Title",
        "Abstract",
        "LegendGraphic",
        "Filter",
        "ElseFilter",
        "MinScaleDenominator",
        "MaxScaleDenominator",
        "RasterSymbolizer",
    ],
    "RasterSymbolizer": [
        "Geometry",
        "Opacity",
        "ChannelSelection",
        "OverlapBehavior",
        "ColorMap",
        "ContrastEnhancement",
        "ShadedRelief",
        "ImageOutline",
    ],
    "ChannelSelection": ["RedChannel", "GreenChannel", "BlueChannel", "GrayChannel"],
    "RedChannel": ["SourceChannelName", "ContrastEnhancement"],
    "GreenChannel": ["SourceChannelName", "ContrastEnhancement"],
    "BlueChannel": ["SourceChannelName", "ContrastEnhancement"],
    "GrayChannel": ["SourceChannelName", "ContrastEnhancement"],
    "ColorMap": ["ColorMapEntry"],
    "ColorMapEntry": [],
}
REQUIRED = {"NamedLayer": ["Name"], "FeatureTypeStyle": ["Rule"], "Rule": ["RasterSymbolizer"]}


def check_sld(path: Path) -> ET.Element:
    """Parse an SLD and check it against the SLD 1.0.0 structure; returns its RasterSymbolizer."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode("utf-8"))  # well-formed XML, or this raises
    assert root.tag == f"{SLD}StyledLayerDescriptor" and root.get("version") == "1.0.0"
    assert root.get(f"{XSI}schemaLocation").split() == [
        "http://www.opengis.net/sld",
        "http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd",
    ]

    def walk(el: ET.Element) -> None:
        assert el.tag.startswith(SLD), el.tag  # every element in the SLD namespace
        name = el.tag[len(SLD) :]
        kids = [k.tag[len(SLD) :] for k in el]
        allowed = ORDER.get(name)
        if allowed is None:  # a text element (Name, Title, Opacity, SourceChannelName)
            assert not kids and (el.text or "").strip(), name
            return
        positions = [allowed.index(k) for k in kids]  # ValueError: an element the schema has not here
        assert positions == sorted(positions), f"{name}: {kids} out of the schema's order"
        for need in REQUIRED.get(name, []):
            assert need in kids, f"{name} lacks {need}"
        if name == "ChannelSelection":
            assert kids in (["RedChannel", "GreenChannel", "BlueChannel"], ["GrayChannel"])
        if name == "ColorMapEntry":
            assert set(el.attrib) <= {"color", "opacity", "quantity", "label"} and "color" in el.attrib
            assert len(el.get("color")) == 7 and el.get("color").startswith("#")
            float(el.get("quantity"))
            assert 0.0 <= float(el.get("opacity", "1")) <= 1.0
        if name == "ColorMap":
            assert set(el.attrib) <= {"type"}
        for k in el:
            walk(k)

    walk(root)
    syms = list(root.iter(f"{SLD}RasterSymbolizer"))
    assert len(syms) == 1
    assert float(syms[0].findtext(f"{SLD}Opacity")) == 1.0
    return syms[0]


def sld_entries(sym: ET.Element) -> list[tuple[float, str, float, str]]:
    return [
        (float(e.get("quantity")), e.get("color"), float(e.get("opacity", "1")), e.get("label"))
        for e in sym.iter(f"{SLD}ColorMapEntry")
    ]


def qml_palette(qml: Path) -> list[tuple[float, str, float, str]]:
    r = ET.fromstring(qml.read_text().split("\n", 1)[1]).find("pipe/rasterrenderer")
    return [
        (float(e.get("value")), e.get("color"), int(e.get("alpha")) / 255, e.get("label"))
        for e in r.iter("paletteEntry")
    ]


def qml_ramp(qml: Path) -> list[tuple[float, str, float, str]]:
    r = ET.fromstring(qml.read_text().split("\n", 1)[1]).find("pipe/rasterrenderer")
    return [(float(i.get("value")), i.get("color"), int(i.get("alpha")) / 255, i.get("label")) for i in r.iter("item")]


def gray_band(sym: ET.Element) -> str:
    return sym.findtext(f"{SLD}ChannelSelection/{SLD}GrayChannel/{SLD}SourceChannelName")


NODATA_ENTRY = (255.0, "#000000", 0.0, "nodata")


def test_pca_cluster_similarity_write_an_sld_matching_the_qml(tmp_path, feats):
    import rasterio

    sym = check_sld(sld_path(pca_map(feats, tmp_path / "pca.tif")))
    sel = sym.find(f"{SLD}ChannelSelection")
    assert [c.findtext(f"{SLD}SourceChannelName") for c in sel] == ["1", "2", "3"]
    assert sym.find(f"{SLD}ColorMap") is None

    out = cluster_map(feats, tmp_path / "k.tif", k=3)
    sym = check_sld(tmp_path / "k.sld")
    assert gray_band(sym) == "1" and sym.find(f"{SLD}ColorMap").get("type") == "values"
    with rasterio.open(out) as ds:
        cmap, nodata = ds.colormap(1), ds.nodata
    got = sld_entries(sym)
    assert got == [*qml_palette(tmp_path / "k.qml"), NODATA_ENTRY] and nodata == 255
    assert [c for _, c, _, _ in got[:3]] == ["#{:02x}{:02x}{:02x}".format(*cmap[i][:3]) for i in range(3)]

    similarity_map(feats, tmp_path / "s.tif", point=(500000.0 + 40 * 5.5, 4000000.0 - 40 * 10.5))
    sym = check_sld(tmp_path / "s.sld")
    assert gray_band(sym) == "1" and sym.find(f"{SLD}ColorMap").get("type") is None  # ramp: the default
    got = sld_entries(sym)
    qml = qml_ramp(tmp_path / "s.qml")
    assert got[1:] == qml and len(got) == 10 and got[-1][0] == 1.0
    # the least similar cells (below the 2nd percentile) keep the first colour down to -1, as in QGIS
    assert got[0] == (-1.0, qml[0][1], 1.0, "-1.00")


def test_classify_and_change_mask_write_an_sld_matching_the_qml(tmp_path):
    from geodino.embed.change import change_map
    from geodino.embed.classify import classify_map
    from tests.embed.test_change import pair
    from tests.embed.test_classify import feature_raster, polygons, stripes

    feats = feature_raster(tmp_path / "f.tif", stripes())
    m = classify_map(feats, polygons(tmp_path / "lab.geojson"), tmp_path / "map.tif", column="landcover")
    sym = check_sld(tmp_path / "map.sld")
    assert sld_entries(sym) == [*qml_palette(tmp_path / "map.qml"), NODATA_ENTRY]
    assert [e[3] for e in sld_entries(sym)[:3]] == ["class_0", "class_1", "class_2"]
    assert m["sld"] == str(tmp_path / "map.sld")
    assert json.loads((tmp_path / "map.metrics.json").read_text())["sld"] == m["sld"]

    fa, fb, _, _ = pair(tmp_path)
    s = change_map(fa, fb, tmp_path / "c.tif", threshold=0.5)
    sym = check_sld(tmp_path / "c.sld")
    got, qml = sld_entries(sym), qml_ramp(tmp_path / "c.qml")
    assert got[:-1] == qml and got[0][0] == 0.0
    assert got[-1] == (2.0, qml[-1][1], 1.0, "2.00")  # the most changed cells (above p99) keep the last colour
    sym = check_sld(Path(s["mask"]).with_suffix(".sld"))
    got = sld_entries(sym)
    assert got == [*qml_palette(tmp_path / "c_mask.qml"), NODATA_ENTRY]
    assert got[0][2:] == (0.0, "no change") and got[1][2:] == (1.0, "change")  # no change: transparent


def test_writers_escape_names_keep_bands_and_opacity(tmp_path):
    palette_qml(
        tmp_path / "c.tif",
        {5: ((255, 255, 255, 128), "half"), 0: ((1, 2, 3), 'a <"b"> & c')},
        band=2,
        nodata=0,  # a class value: no second entry for it
    )
    sym = check_sld(tmp_path / "c.sld")
    assert gray_band(sym) == "2"
    assert sld_entries(sym) == [(0.0, "#010203", 1.0, 'a <"b"> & c'), (5.0, "#ffffff", 0.502, "half")]
    ramp_qml(tmp_path / "d.tif", vmin=-1.0, vmax=2.0, ramp="magma", steps=4, band=3)
    sym = check_sld(tmp_path / "d.sld")
    assert gray_band(sym) == "3"
    assert [(q, c) for q, c, _, _ in sld_entries(sym)] == [(q, c) for q, c, _, _ in qml_ramp(tmp_path / "d.qml")]
    assert sld_entries(sym)[0][:2] == (-1.0, "#000004") and sld_entries(sym)[-1][:2] == (2.0, "#fcfdbf")
    rgb_qml(tmp_path / "e.tif", bands=(4, 3, 2))
    sel = check_sld(tmp_path / "e.sld").find(f"{SLD}ChannelSelection")
    assert [c.tag[len(SLD) :] for c in sel] == ["RedChannel", "GreenChannel", "BlueChannel"]
    assert [c.findtext(f"{SLD}SourceChannelName") for c in sel] == ["4", "3", "2"]
    assert qml_path(tmp_path / "e.tif").exists()


def test_similarity_of_constant_features_gets_an_increasing_ramp(tmp_path):
    """Every cell 1.0 (constant features): the 2nd percentile is 1.0 too, and the ramp was 9 stops all at 1.0."""
    from tests.embed.test_products import feature_raster

    feats = feature_raster(tmp_path / "c.tif", np.ones((4, 10, 12), np.float32))
    similarity_map(feats, tmp_path / "s.tif", point=(500000.0 + 40 * 2.5, 4000000.0 - 40 * 2.5))
    sld = [q for q, *_ in sld_entries(check_sld(tmp_path / "s.sld"))]
    qml = [q for q, *_ in qml_ramp(tmp_path / "s.qml")]
    assert sld[1:] == qml and sld == sorted(set(sld)) and sld[-1] == 1.0
    assert sld[0] == -1.0 and sld[1] == pytest.approx(0.999)
    ramp_qml(tmp_path / "d.tif", vmin=0.5, vmax=0.5)
    assert [q for q, *_ in sld_entries(check_sld(tmp_path / "d.sld"))][::8] == [pytest.approx(0.499), 0.5]


def test_ramp_bounds_repeat_the_end_colours_only_beyond_the_stops(tmp_path):
    ramp_qml(tmp_path / "a.tif", vmin=0.2, vmax=0.8, steps=3, bounds=(0.0, 1.0))
    got = sld_entries(check_sld(tmp_path / "a.sld"))
    qml = qml_ramp(tmp_path / "a.qml")
    assert [q for q, *_ in got] == [0.0, 0.2, 0.5, 0.8, 1.0]
    assert got[0][1] == got[1][1] == qml[0][1] and got[-1][1] == got[-2][1] == qml[-1][1]
    ramp_qml(tmp_path / "b.tif", vmin=0.0, vmax=1.0, steps=3, bounds=(0.0, 1.0))  # already at the bounds
    assert [q for q, *_ in sld_entries(check_sld(tmp_path / "b.sld"))] == [0.0, 0.5, 1.0]
