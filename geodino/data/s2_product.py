"""Sentinel-2 L1C/L2A radiometry from the product's own metadata: the DN -> reflectance rule a SAFE's
MTD_MSIL2A.xml / MTD_MSIL1C.xml declares, and the one a STAC item's `s2:processing_baseline` implies.

Since processing baseline 04.00 (products from 2022-01-25 on, and every Collection-1 reprocessing, whatever its
sensing date) the DN carry an added offset: reflectance = (DN + offset) / quantification, offset -1000 for every
band so far (L2A: `BOA_ADD_OFFSET` in `BOA_ADD_OFFSET_VALUES_LIST`, quantification `BOA_QUANTIFICATION_VALUE`; L1C:
`RADIO_ADD_OFFSET` in `Radiometric_Offset_List`, `QUANTIFICATION_VALUE`; `band_id` is the `bandId` of
`Spectral_Information`, 0..12 for B1..B8, B8A, B9..B12). Read as DN / 10000, every reflectance of such a product
is 0.1 too high, and an archive spanning the change holds two distributions. The band files themselves (JP2, or
GeoTIFFs converted from them) say nothing of it, so `geodino data stack` reads the product's MTD and writes the
rule into the VRT as each reflectance band's `<Scale>`/`<Offset>`, which every reader of declared rules applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geodino.errors import InputError

__all__ = [
    "MTD_NAMES",
    "ProductRule",
    "band_key",
    "baseline_has_offset",
    "find_product_metadata",
    "offset_applied",
    "read_product_metadata",
    "reflectance_band",
    "stac_baseline_rule",
    "stack_line",
    "stack_rule",
]

MTD_NAMES = ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml")
"""The product metadata files at the root of a SAFE (compact naming, every product since 2016-12)."""

# band_id -> band, when the file lists no Spectral_Information (the order of the PSD)
_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_BAND = re.compile(r"^B0?(\d{1,2})(A?)(?:_\d+m)?$", re.IGNORECASE)  # B2, B02, B8A, B02_10m
_LEVEL_TAGS = {  # level: (quantification element, offset element)
    "L2A": ("BOA_QUANTIFICATION_VALUE", "BOA_ADD_OFFSET"),
    "L1C": ("QUANTIFICATION_VALUE", "RADIO_ADD_OFFSET"),
}
_UP = 5  # folders above a band file searched for the MTD: R10m, IMG_DATA, granule, GRANULE, the SAFE


def band_key(name: str) -> str | None:
    """The reflectance band a name stands for, spelled as the files spell it ("B2", "b02", "B02_10m" -> "B02",
    "B8A"); None for anything else (SCL, AOT, WVP, TCI, common names): those are no reflectance, no rule."""
    m = _BAND.match(str(name).strip())
    if not m or not 1 <= int(m.group(1)) <= 12 or (m.group(2) and m.group(1) != "8"):
        return None
    return "B8A" if m.group(2) else f"B{int(m.group(1)):02d}"


def baseline_has_offset(baseline: Any) -> bool | None:
    """Whether processing baseline text ("04.00", "05.09", "N0509", 5.09) is 04.00 or later; None when it is no
    baseline."""
    text = str(baseline).strip().upper().removeprefix("N")
    m = re.fullmatch(r"(\d{1,2})\.?(\d{2})", text) if text else None
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2))) >= (4, 0)


@dataclass(frozen=True)
class ProductRule:
    """A product's DN -> reflectance rule: reflectance = DN * scale + offset per band (`rules`, by `band_key`)."""

    source: str  # the MTD file that declares it
    level: str  # "L2A", "L1C"
    baseline: str  # "05.09"; "" when the file names none
    quantification: float
    rules: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # "B02": (0.0001, -0.1)

    def per_band(self, names: Sequence[str]) -> list[tuple[float, float] | None]:
        """The rule of each of `names` (band names as stacked), None for bands that are no reflectance."""
        return [self.rules.get(band_key(n) or "") for n in names]

    def said(self, names: Sequence[str], source: str = "") -> str:
        """What the rule is and where it came from, for a console line and the VRT's metadata; `source` names the
        MTD (default: its file name)."""
        kinds = {r for r in self.per_band(names) if r is not None}
        offsets = sorted({round(o / s) for s, o in kinds})
        quant = f"{self.quantification:g}"
        if offsets == [0]:
            how = f"DN / {quant}"
        elif len(offsets) == 1:
            how = f"(DN {'-' if offsets[0] < 0 else '+'} {abs(offsets[0])}) / {quant}"
        else:
            how = f"(DN + its band's offset) / {quant}"
        base = f"processing baseline {self.baseline}" if self.baseline else "no processing baseline named"
        return f"{how} ({source or Path(self.source).name} of Sentinel-2 {self.level}, {base})"


def find_product_metadata(band_file: str | Path) -> Path | None:
    """The MTD_MSIL2A.xml / MTD_MSIL1C.xml of the SAFE holding `band_file`: in the folders above it, up to 5
    levels, only in a SAFE's layout: the `.SAFE` folder, or the folder holding the `GRANULE/` the file lies in (a
    SAFE unpacked under another name). None for band files outside a SAFE: an MTD copied into a folder of band files
    (or above it) is no product's word on them, and would have given every file below it that product's rule."""
    d, below = Path(band_file).parent, ""
    for _ in range(_UP):
        safe = d.suffix.upper() == ".SAFE"
        if safe or below.upper() == "GRANULE":
            for name in MTD_NAMES:
                if (d / name).is_file():
                    return d / name
        if safe or d.parent == d:
            return None
        below, d = d.name, d.parent
    return None


def stack_rule(band_files: Mapping[str, str | Path]) -> ProductRule | None:
    """The rule of the one SAFE product holding every file of a band stack ({band: file}), read from its MTD
    (`read_product_metadata`); None when the files lie outside a SAFE (or in several: no one product speaks for
    them) or no band stacked is a reflectance band."""
    found = {find_product_metadata(p) for p in band_files.values()}
    mtd = found.pop() if len(found) == 1 else None
    if mtd is None:
        return None
    rule = read_product_metadata(mtd)
    return rule if any(r is not None for r in rule.per_band(list(band_files))) else None


def stack_line(
    scenes: Sequence[tuple[ProductRule | None, Mapping[str, Path]]], bands: Sequence[str], root: str | Path = "."
) -> str:
    """One line for `geodino data stack`: the reflectance rule of each kind the scenes' SAFE products declare
    (`scenes`: per scene its product's rule, None outside a SAFE, and its {band: file}) and where it came from (the
    MTD's path relative to the stacked `root`; of the first scene, "e.g." when several share the kind), and how
    many scenes of Sentinel-2 band files (`T33UUP_20240101T100031_B02_10m.jp2`) lie outside a SAFE, whose rule
    nothing here says; "" when no scene is either."""
    import os

    kinds: dict[str, tuple[int, ProductRule]] = {}
    for p, _ in scenes:
        if p is not None:
            n, first = kinds.get(p.said(bands), (0, p))
            kinds[p.said(bands)] = (n + 1, first)
    bare = [files for p, files in scenes if p is None and any(_S2_FILE.match(Path(f).name) for f in files.values())]
    if not kinds and not bare:
        return ""
    from geodino.errors import plural

    def where(n: int, p: ProductRule) -> str:
        rel = Path(os.path.relpath(os.path.abspath(p.source), os.path.abspath(root))).as_posix()
        return rel if n == 1 else f"e.g. {rel}"

    said = "; ".join(f"{plural(n, 'scene')} {p.said(bands, where(n, p))}" for n, p in kinds.values())
    head = "Sentinel-2 reflectance as each product's metadata declares it, written as the VRT bands' scale/offset"
    if not bare:
        return f"{head}: {said}"
    folder = Path(next(iter(bare[0].values()))).parent
    rest = (
        f"{plural(len(bare), 'scene')} of Sentinel-2 band files outside a SAFE (e.g. {folder}, no MTD_MSIL2A.xml or "
        "MTD_MSIL1C.xml in a .SAFE folder or beside a GRANULE/ folder above them): no rule written, their "
        "products' processing baseline is unknown; from 04.00 on "
        "(sensed since 2022-01-25, or reprocessed) their DN carry +1000: read those with band_scale=[0.0001] "
        "band_offset=[-0.1] (embed) or a sensor YAML of offset: -0.1 (pretraining)"
    )
    return f"{head}: {said}; {rest}" if said else rest


_S2_FILE = re.compile(r"^T\d{2}[A-Z]{3}_\d{8}T\d{6}_B(\d{2}|8A)(_\d+m)?\.", re.IGNORECASE)  # ESA's band file names


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_product_metadata(path: str | Path) -> ProductRule:
    """The rule MTD_MSIL2A.xml / MTD_MSIL1C.xml at `path` declares for each reflectance band: 1 / quantification
    and offset / quantification (0 before baseline 04.00, whose files list no offsets). A baseline of 04.00 or
    later listing no offsets is refused: its DN carry an offset the file does not give (a trimmed or rewritten
    file; if the DN were shifted back already, the file should say offset 0)."""
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(
            f"Sentinel-2 product metadata {path} cannot be read ({exc}); re-download the product, or move the "
            "file out to stack its bands without a reflectance rule"
        ) from exc
    level = "L1C" if "1C" in _local(root.tag) or path.name.upper().endswith("L1C.XML") else "L2A"
    quant_tag, offset_tag = _LEVEL_TAGS[level]
    texts: dict[str, str] = {}
    offsets: dict[str, float] = {}
    ids: dict[str, str] = {}
    for el in root.iter():
        name = _local(el.tag)
        if name in ("PROCESSING_BASELINE", quant_tag) and name not in texts:
            texts[name] = (el.text or "").strip()
        elif name == offset_tag:
            offsets[el.get("band_id", "")] = _number(el.text, path, name)
        elif name == "Spectral_Information" and el.get("bandId") is not None:
            ids[el.get("bandId", "")] = el.get("physicalBand", "")
    baseline = texts.get("PROCESSING_BASELINE", "")
    quant = _number(texts[quant_tag], path, quant_tag) if texts.get(quant_tag) else 10000.0
    if quant <= 0:
        raise InputError(f"{path} gives {quant_tag} {quant:g}; a quantification value is positive")
    if not offsets and baseline_has_offset(baseline):
        raise InputError(
            f"Sentinel-2 product metadata {path} is of processing baseline {baseline} but lists no {offset_tag}: "
            f"the DN of such products carry an offset (reflectance = (DN + {offset_tag}) / {quant:g}, -1000 so "
            "far) that this file does not give; re-download the product's metadata, or if its DN were shifted "
            f"back already, list {offset_tag} 0 for its bands there"
        )
    rules: dict[str, tuple[float, float]] = {}
    for k, band in enumerate(_BAND_IDS):
        bid = next((i for i, b in ids.items() if band_key(b) == band), str(k))
        rules[band] = (1.0 / quant, offsets.get(bid, 0.0) / quant)
    return ProductRule(str(path), level, baseline, quant, rules)


def _number(text: str | None, path: Path, tag: str) -> float:
    try:
        return float(str(text).strip())
    except ValueError:
        raise InputError(f"{path} gives {tag} {text!r}, which is no number; re-download the product") from None


def reflectance_band(aliases: Iterable[str]) -> bool:
    """Whether a band answering to `aliases` (asset key, band name, common name) is a Sentinel-2 reflectance band
    (B02, B8A, or the common names Earth Search keys them by: blue, nir08, swir16); SCL, AOT, WVP, visual are not."""
    return any(band_key(a) or str(a).lower() in _COMMON for a in aliases)


def stac_baseline_rule(properties: Mapping[str, Any]) -> tuple[tuple[float, float], str] | None:
    """(scale, offset) of the reflectance bands of a Sentinel-2 STAC item that declares none (Planetary Computer's
    items), as its properties imply, and the words naming them: `s2:processing_baseline` (Earth Search v0:
    `sentinel:processing_baseline`) of 04.00 or later gives (DN - 1000) / 10000, earlier DN / 10000, and so does
    a later one whose item says its pixels hold the offset already (`offset_applied`). None when the item names no
    processing baseline."""
    key = next((k for k in _BASELINE_KEYS if properties.get(k) is not None), None)
    after = baseline_has_offset(properties[key]) if key else None
    if key is None or after is None:
        return None
    said = f"its STAC item's {key} {properties[key]}"
    if after and (applied := offset_applied(properties)):
        return (1e-4, 0.0), f"{said} and {applied}"
    return (1e-4, -0.1 if after else 0.0), said


def offset_applied(properties: Mapping[str, Any]) -> str:
    """The property by which an Earth Search item says its pixels hold the baseline-04.00 offset already
    (`earthsearch:boa_offset_applied` true; v0: `sentinel:boa_offset_applied`), "" when it does not: its COGs were
    shifted back to DN / 10000 while its raster:bands may still declare offset -0.1, which applied again takes 0.1
    off every reflectance (Element84/earth-search#9: the property, not raster:bands, says what the pixels hold)."""
    return next((k for k in _APPLIED_KEYS if properties.get(k) is True), "")


_BASELINE_KEYS = ("s2:processing_baseline", "sentinel:processing_baseline")
_APPLIED_KEYS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
_COMMON = {"coastal", "blue", "green", "red", "rededge", "rededge1", "rededge2", "rededge3", "rededge071",
           "rededge075", "rededge078", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22"}  # fmt: skip
