"""QGIS layer styles (`.qml`), and beside each an OGC SLD (`.sld`), written next to every product COG.

QGIS loads `NAME.qml` as the default style of `NAME.tif` when the layer is added. Three renderers cover the
products: `multibandcolor` (PCA: bands 1-3 as RGB, stretched over the stored 1..255 range), `paletted`
(clusters, classes, change masks: one entry per value with its colour and name) and `singlebandpseudocolor`
(similarity, change distance, confidence: an interpolated colour ramp between fixed limits). The XML is built
with `xml.etree` (escaping of class names included); QGIS does not publish a schema, the element names follow
what QGIS 3 writes when saving a raster style. Each writer hands the same colours, values and labels to
`geodino.embed.style_sld`, which writes `NAME.sld` (SLD 1.0.0, for GeoServer, MapServer and other WMS servers), so
the two styles cannot drift apart.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from geodino.embed import style_sld
from geodino.io import atomic_path

QGIS_VERSION = "3.34.0"
RAMPS = {"similarity": "viridis", "change": "magma", "confidence": "cividis"}


def qml_path(cog: str | Path) -> Path:
    """The style file QGIS picks up for `cog` (same folder and stem, `.qml`)."""
    return Path(cog).with_suffix(".qml")


def sld_path(cog: str | Path) -> Path:
    """The OGC SLD written beside the `.qml` (same folder and stem, `.sld`)."""
    return style_sld.sld_path(cog)


def _hex(rgb: Sequence[float | int]) -> str:
    vals = [round(v * 255) if isinstance(v, float) and v <= 1.0 else int(v) for v in rgb[:3]]
    return "#" + "".join(f"{v:02x}" for v in vals)


def _root(renderer: str, **attrs: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(
        "qgis",
        {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories", "hasScaleBasedVisibilityFlag": "0"},
    )
    pipe = ET.SubElement(root, "pipe")
    r = ET.SubElement(pipe, "rasterrenderer", {"type": renderer, "opacity": "1", "alphaBand": "-1", **attrs})
    ET.SubElement(r, "rasterTransparency")
    mm = ET.SubElement(r, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated")):
        ET.SubElement(mm, tag).text = text
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(root, "blendMode").text = "0"
    return root, r


def _write(root: ET.Element, path: Path) -> Path:
    ET.indent(root)
    text = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def rgb_qml(cog: str | Path, *, bands: tuple[int, int, int] = (1, 2, 3), vmin: float = 1, vmax: float = 255) -> Path:
    """Three bands as red/green/blue, each stretched linearly from `vmin` to `vmax` (the PCA COG's 1..255)."""
    root, r = _root("multibandcolor", redBand=str(bands[0]), greenBand=str(bands[1]), blueBand=str(bands[2]))
    for colour in ("red", "green", "blue"):
        ce = ET.SubElement(r, f"{colour}ContrastEnhancement")
        ET.SubElement(ce, "minValue").text = repr(float(vmin))
        ET.SubElement(ce, "maxValue").text = repr(float(vmax))
        ET.SubElement(ce, "algorithm").text = "StretchToMinimumMaximum"
    style_sld.rgb_sld(cog, bands=bands)
    return _write(root, qml_path(cog))


def palette_qml(
    cog: str | Path,
    entries: Mapping[int, tuple[Sequence[float | int], str]],
    *,
    band: int = 1,
    nodata: int | None = None,
) -> Path:
    """A paletted style: `entries[value] = (rgb or rgba, label)`; values without an entry (nodata) stay empty. The
    `.sld` gets the same entries, and `nodata` (the COG's nodata value) as a transparent one."""
    root, r = _root("paletted", band=str(band))
    pal = ET.SubElement(r, "colorPalette")
    rows = [(int(v), _hex(rgb), _alpha(rgb), label) for v, (rgb, label) in sorted(entries.items())]
    for value, colour, alpha, label in rows:
        ET.SubElement(pal, "paletteEntry", {"value": str(value), "color": colour, "alpha": str(alpha), "label": label})
    style_sld.palette_sld(cog, rows, band=band, nodata=nodata)
    return _write(root, qml_path(cog))


def _alpha(rgb: Sequence[float | int]) -> int:
    """The 0-255 alpha of an rgba colour given as integers (255 when not given, or given as a float)."""
    return int(rgb[3]) if len(rgb) > 3 and not isinstance(rgb[3], float) else 255


def ramp_qml(
    cog: str | Path,
    *,
    vmin: float,
    vmax: float,
    ramp: str = "viridis",
    band: int = 1,
    steps: int = 9,
    bounds: tuple[float, float] | None = None,
) -> Path:
    """An interpolated colour ramp (a matplotlib colormap sampled at `steps` stops) from `vmin` to `vmax` (widened
    by `ramp_range` when they are equal); `bounds`, the values the band can take, extend the `.sld`'s end colours
    to them (`style_sld.ramp_sld`) as QGIS extends them beyond the stops."""
    lo, hi = ramp_range(vmin, vmax)
    root, r = _root("singlebandpseudocolor", band=str(band), classificationMin=repr(lo), classificationMax=repr(hi))
    shader = ET.SubElement(ET.SubElement(r, "rastershader"), "colorrampshader")
    shader.attrib.update(
        {
            "colorRampType": "INTERPOLATED",
            "classificationMode": "1",
            "clip": "0",
            "minimumValue": repr(lo),
            "maximumValue": repr(hi),
        }
    )
    stops = ramp_stops(lo, hi, ramp, steps)
    shader.set("labelPrecision", str(label_decimals(lo, hi, steps)))
    for v, colour, label in stops:
        ET.SubElement(shader, "item", {"value": repr(v), "color": colour, "alpha": "255", "label": label})
    style_sld.ramp_sld(cog, stops, band=band, bounds=bounds)
    return _write(root, qml_path(cog))


def ramp_range(vmin: float, vmax: float, *, least: float = 1e-3) -> tuple[float, float]:
    """(vmin, vmax) as floats, with vmin lowered to `vmax - least` when not below vmax: a similarity map of constant
    features (every cell 1.0, so its 2nd percentile is 1.0 too) gave a ramp of 9 stops all at 1.0, which no
    renderer can interpolate and SLD servers expect in increasing order."""
    lo, hi = float(vmin), float(vmax)
    return (lo, hi) if hi > lo else (hi - least, hi)


def ramp_stops(vmin: float, vmax: float, ramp: str, steps: int) -> list[tuple[float, str, str]]:
    """`steps` (value, "#rrggbb", label) stops of a matplotlib colormap from `vmin` to `vmax` (exact end values)."""
    import matplotlib
    import numpy as np

    cmap = matplotlib.colormaps[ramp]
    k = label_decimals(vmin, vmax, steps)
    return [
        (float(v), _hex(cmap(t)), f"{float(v):.{k}f}")
        for t, v in zip(np.linspace(0.0, 1.0, steps), np.linspace(float(vmin), float(vmax), steps), strict=True)
    ]


def label_decimals(vmin: float, vmax: float, steps: int, *, least: int = 2, most: int = 9) -> int:
    """Decimals for the ramp's legend labels: 2, or as many as it takes for `steps` stops from `vmin` to `vmax` to
    read apart. At 2 fixed, the change map of two close dates (0 to a 99th percentile of 0.001) was labelled 0.00
    at all 9 stops in QGIS's legend and the `.sld`, and a 0..0.04 ramp repeated 0.01, 0.03 and 0.04."""
    import numpy as np

    values = np.linspace(float(vmin), float(vmax), steps)
    for k in range(least, most + 1):
        if len({f"{v:.{k}f}" for v in values}) == len(values):
            return k
    return most


def data_limits(cog: str | Path, *, band: int = 1, pct: tuple[float, float] = (2, 98), side: int = 1024) -> tuple:
    """2-98 % limits of a band, read decimated to at most `side` pixels (NaN/nodata ignored); (0, 1) if empty."""
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(cog) as src:
        f = max(1.0, max(src.height, src.width) / side)
        shape = (max(1, int(src.height / f)), max(1, int(src.width / f)))
        arr = src.read(band, out_shape=shape, masked=True, resampling=Resampling.nearest).astype("float64")
    vals = arr.compressed()
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(vals, pct))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
