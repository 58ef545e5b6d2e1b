"""The files every raster product writes: a streamed COG, a class map's attribute table, checked output names.

`write_cog` writes row blocks to a tiled GTiff and copies it to a COG (atomically, with a progress bar); for a
class map its colour table and, in `OUT.tif.aux.xml`, a GDAL raster attribute table (`write_rat`) come from one
`classes` mapping, the one the `.qml` and the PNG legend are drawn from. `check_map_outputs` refuses wrong or
clashing output names before anything is written, `cog_profile`/`n_blocks` describe the output grid; the PNG
quick-looks are `quicklook.py`. Kept apart from `products.py` (what each product computes) because classify and
change write their maps through the same helpers; `products.py` re-exports them.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from geodino.embed.writers import EmbeddingReader
from geodino.errors import ConfigError
from geodino.io import atomic_path, check_suffix


def progress(items: Any, *, total: int | None, desc: str) -> Any:
    """`items` with a tqdm bar on stderr that appears only when the loop takes more than a second."""
    from geodino.progress import progress_bar

    return progress_bar(items, total=total, desc=desc, unit="block", delay=1.0, leave=False)


def write_cog(
    out: Path,
    data: Any,
    profile: dict[str, Any],
    *,
    classes: Mapping[int, tuple[Sequence[int], str]] | None = None,
    bands: Sequence[str] = (),
    units: Sequence[str] = (),
    desc: str | None = None,
    total: int | None = None,
    source: EmbeddingReader | None = None,
    **tags: Any,
) -> None:
    """Write blocks (an iterator of (window, array)) to a tiled GTiff, then copy it to a COG under `out`.

    `bands` are the band descriptions (what each band holds, as QGIS and gdalinfo show it), `units` their units ("" for
    none: GDAL's unit type, which gdalinfo prints and QGIS shows in the layer's properties). `classes` (a class map:
    `classes[value] = (rgb or rgba 0-255, name)`) gives band 1 its colour table (nodata transparent) and, once the COG
    is in place, its raster attribute table (`write_rat`; bands after the first are marked grey there, as the COG driver
    writes the second band of a paletted TIFF as alpha; `unmark_alpha` also unmarks it in the TIFF, for a map read
    without its `.aux.xml`); their overviews are per band (`class_overviews`: band 1 by class, the others, the
    confidence, averaged), where the COG driver's one resampling sampled the confidence by nearest. A PAM file
    `OUT.tif.aux.xml` left from the file this replaces (statistics, an older table)
    is removed with it. With `desc`, a progress bar over the `total` blocks (see `progress`; by default the blocks of
    `source`). `source`, the feature raster the product was made from, adds its lineage to the tags (`lineage_tags`);
    `tags` given here win."""
    import rasterio
    import rasterio.shutil

    from geodino.embed.class_overviews import build_levels, overview_vrt

    if source is not None:
        tags = {**lineage_tags(source), **tags}
        total = n_blocks(source) if total is None else total
    if desc:
        data = progress(data, total=total, desc=desc)

    with atomic_path(out, overwrite=True) as tmp:
        staging = tmp.with_name(tmp.name + ".staging.tif")
        levels: list[Path] = []
        try:
            with rasterio.open(
                staging, "w", driver="GTiff", tiled=True, blockxsize=256, blockysize=256, **profile
            ) as d:
                for window, arr in data:
                    d.write(arr, window=window)
                if classes:
                    colormap = {int(v): _rgba(c) for v, (c, _) in classes.items()}
                    if profile.get("nodata") is not None:
                        colormap[int(profile["nodata"])] = (0, 0, 0, 0)
                    d.write_colormap(1, colormap)
                for i, name in enumerate(bands, start=1):
                    d.set_band_description(i, name)
                for i, unit in enumerate(units, start=1):
                    if unit:
                        d.set_band_unit(i, unit)
                d.update_tags(**{k: str(v) for k, v in tags.items()})
            # class maps keep class values in their overviews; the PCA's RGB (uint8 too) and the float maps average
            # (nodata-aware), where nearest showed one cell in 4, 16 ... as a speckle of the full-resolution colours
            resampling = "nearest" if classes else "average"
            copy_from, overviews = staging, "auto"
            if classes and int(profile["count"]) > 1:  # classify's confidence: averaged, band 1 by class
                levels = build_levels(staging, profile.get("nodata"))
                if levels:
                    copy_from, overviews = overview_vrt(staging, levels), "force_use_existing"
            rasterio.shutil.copy(
                copy_from, tmp, driver="COG", compress="deflate", overviews=overviews, resampling=resampling,
                blocksize=256, predictor=cog_predictor(str(profile["dtype"]), classes=bool(classes)),
            )  # fmt: skip
            if classes and int(profile["count"]) > 1:
                unmark_alpha(tmp)
        finally:
            staging.unlink(missing_ok=True)
            for p in (*levels, staging.with_name(staging.name + ".vrt")):
                p.unlink(missing_ok=True)
        pam_path(out).unlink(missing_ok=True)  # it described the file being replaced (right before the rename)
    if classes:
        write_rat(out, classes, extra_bands=int(profile["count"]) - 1)


def cog_predictor(dtype: str, *, classes: bool) -> str:
    """DEFLATE predictor of a product COG, in the COG driver's words: FLOATING_POINT (3) for the float maps,
    STANDARD (2, horizontal differences) for the PCA's smooth RGB, NO for class codes (the driver takes no numbers:
    `1` warned "unexpected value for PREDICTOR"). Without one, the similarity map was 25 % and the PCA 76 % larger
    than with it (a 791 x 718 map), a recompression GIS users do by hand."""
    if classes:
        return "NO"
    return "FLOATING_POINT" if dtype.startswith("float") else "STANDARD"


# the feature raster's record a product repeats: backbone, layers, the input imagery as it was read (its path and
# content), and the geodino version that embedded it (what a reproduction of the features needs, besides the tile
# settings)
LINEAGE = (
    *("model_spec", "model_fingerprint", "model_file_sha256", "layers", "layer_mode"),
    *("input", "input_identity", "input_bands", "input_scale", "version"),
)


def lineage_tags(rd: EmbeddingReader) -> dict[str, str]:
    """Where a product comes from, as GDAL metadata: `GEODINO_SOURCE_FEATURES` (the feature raster, as given) and
    the feature raster's backbone spec, fingerprint, layers and input imagery (`GEODINO_SOURCE_MODEL_SPEC` ...),
    those it records. Under their own names: a product carrying GEODINO_MODEL_SPEC or GEODINO_MODEL_FINGERPRINT
    would pass for a feature raster (`reader.FEATURE_MARKERS`), as the classify map did, so `embed pca map.tif`
    ran a PCA of its class and confidence bands into a scikit-learn traceback. A path names where the feature
    raster was, not what it held, so `GEODINO_SOURCE_FEATURES_IDENTITY` records its size and the digest of its head
    (`provenance.file_identity`; not for a Zarr folder), and `GEODINO_VERSION` the geodino that made the product."""
    from geodino import __version__
    from geodino.embed.provenance import file_identity

    md = rd.metadata
    tags = {"GEODINO_SOURCE_FEATURES": str(rd.path), "GEODINO_VERSION": __version__}
    identity = file_identity(rd.path)
    if identity:
        tags["GEODINO_SOURCE_FEATURES_IDENTITY"] = identity
    return tags | {f"GEODINO_SOURCE_{k.upper()}": str(md[k]) for k in LINEAGE if md.get(k)}


TIFF_EXTRASAMPLES, TIFF_SHORT = 338, 3
EXTRASAMPLE_UNSPECIFIED, EXTRASAMPLE_ASSOCALPHA, EXTRASAMPLE_UNASSALPHA = 0, 1, 2


def unmark_alpha(tif: str | Path) -> int:
    """Set every alpha ExtraSamples value (TIFF tag 338) of `tif` to unspecified, in place; return how many.

    GDAL's GTiff CreateCopy (which the COG driver calls) hard-codes EXTRASAMPLE_UNASSALPHA for the second band of a
    2-band paletted Byte TIFF, whatever the source band's colour interpretation or the ALPHA option says. Read
    without its `.aux.xml` (a copied file, QGIS with PAM off), the classify map's confidence band then was its
    alpha. The value is one SHORT held inside the IFD entry, so rewriting those two bytes moves nothing: the COG
    layout (IFDs first, tile order) stays valid. Classic TIFF and BigTIFF, either byte order."""
    import struct

    changed = 0
    with open(tif, "r+b") as fh:
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None:
            return 0
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        count_fmt, offset_fmt, entry = (order + "Q", order + "Q", 20) if big else (order + "H", order + "I", 12)
        value_at = 12 if big else 8  # where an entry's inline value starts
        offset = struct.unpack(offset_fmt, head[8:16] if big else head[4:8])[0]
        seen: set[int] = set()
        while offset and offset not in seen:
            seen.add(offset)
            fh.seek(offset)
            n = struct.unpack(count_fmt, fh.read(struct.calcsize(count_fmt)))[0]
            first = offset + struct.calcsize(count_fmt)
            table = fh.read(n * entry)
            for i in range(n):
                tag, kind = struct.unpack(order + "HH", table[i * entry : i * entry + 4])
                count = struct.unpack(offset_fmt, table[i * entry + 4 : i * entry + value_at])[0]
                if tag != TIFF_EXTRASAMPLES or kind != TIFF_SHORT or count > (4 if big else 2):
                    continue  # more values than fit inline are stored elsewhere: never written by GDAL here
                at = first + i * entry + value_at
                values = list(struct.unpack(order + "H" * count, table[at - first : at - first + 2 * count]))
                if any(v in (EXTRASAMPLE_ASSOCALPHA, EXTRASAMPLE_UNASSALPHA) for v in values):
                    fh.seek(at)
                    fh.write(struct.pack(order + "H" * count, *[EXTRASAMPLE_UNSPECIFIED] * count))
                    changed += 1
            fh.seek(first + n * entry)
            offset = struct.unpack(offset_fmt, fh.read(struct.calcsize(offset_fmt)))[0]
    return changed


def pam_path(cog: str | Path) -> Path:
    """GDAL's side file of `cog` (PAM: statistics, a raster attribute table...): `OUT.tif.aux.xml`."""
    return Path(f"{cog}.aux.xml")


def _rgba(colour: Sequence[float | int]) -> tuple[int, int, int, int]:
    """An rgb or rgba colour as 0-255 integers (alpha 255 when not given), as the colour table stores it."""
    vals = [int(v) for v in colour[:4]]
    return (vals[0], vals[1], vals[2], vals[3] if len(vals) > 3 else 255)


# GDAL's GDALRATFieldType and GDALRATFieldUsage codes (gdal.h), as a PAM file spells them
GFT_INTEGER, GFT_STRING = 0, 2
GFU_NAME, GFU_MINMAX, GFU_RED, GFU_GREEN, GFU_BLUE, GFU_ALPHA = 2, 5, 6, 7, 8, 9
RAT_COLUMNS = (
    ("Value", GFT_INTEGER, GFU_MINMAX),
    ("Class_Name", GFT_STRING, GFU_NAME),
    ("Red", GFT_INTEGER, GFU_RED),
    ("Green", GFT_INTEGER, GFU_GREEN),
    ("Blue", GFT_INTEGER, GFU_BLUE),
    ("Alpha", GFT_INTEGER, GFU_ALPHA),
)


def write_rat(
    cog: str | Path, classes: Mapping[int, tuple[Sequence[int], str]], *, band: int = 1, extra_bands: int = 0
) -> Path:
    """The raster attribute table of a class band, in GDAL's PAM file `COG.aux.xml`: one row per class value
    (Value, Class_Name, Red, Green, Blue, Alpha, with the usages GDAL, QGIS and ArcGIS read), so a map opened
    without its `.qml` still names its classes. A PAM file already there (statistics GDAL computed on this COG) is
    kept and only the band's table replaced; written atomically.

    `extra_bands` (the classify map's confidence): bands `band + 1 ...` get `<ColorInterp>Gray</ColorInterp>`. GDAL's
    COG driver writes the second sample of a paletted TIFF as alpha, so GDAL, QGIS (without the `.qml`) and
    MapServer drew the class map with the confidence (0..100 stored in 0..255) as its transparency: at most 39 %
    opaque. The PAM value overrides the TIFF's for every GDAL reader that has the `.aux.xml` beside the COG;
    `write_cog` also unmarks the alpha in the TIFF itself (`unmark_alpha`: Undefined when read without it)."""
    path = pam_path(cog)
    root = None
    if path.exists():
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            root = None  # unreadable to GDAL as well: replaced by the table alone
        if root is not None and root.tag != "PAMDataset":
            root = None
    if root is None:
        root = ET.Element("PAMDataset")
    pam_band = next((b for b in root.findall("PAMRasterBand") if b.get("band") == str(band)), None)
    if pam_band is None:
        pam_band = ET.SubElement(root, "PAMRasterBand", {"band": str(band)})
    for old in pam_band.findall("GDALRasterAttributeTable"):
        pam_band.remove(old)
    rat = ET.Element("GDALRasterAttributeTable", {"tableType": "thematic"})
    for i, (name, kind, usage) in enumerate(RAT_COLUMNS):
        field = ET.SubElement(rat, "FieldDefn", {"index": str(i)})
        for tag, text in (("Name", name), ("Type", str(kind)), ("Usage", str(usage))):
            ET.SubElement(field, tag).text = text
    for row, (value, (colour, label)) in enumerate(sorted(classes.items())):
        r = ET.SubElement(rat, "Row", {"index": str(row)})
        for text in (str(int(value)), str(label), *map(str, _rgba(colour))):
            ET.SubElement(r, "F").text = text
    pam_band.insert(0, rat)
    for extra in range(band + 1, band + 1 + extra_bands):
        other = next((b for b in root.findall("PAMRasterBand") if b.get("band") == str(extra)), None)
        if other is None:
            other = ET.SubElement(root, "PAMRasterBand", {"band": str(extra)})
        for old in other.findall("ColorInterp"):
            other.remove(old)
        ET.SubElement(other, "ColorInterp").text = "Gray"
    ET.indent(root)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(ET.tostring(root, encoding="unicode") + "\n", encoding="utf-8")
    return path


MAP_SUFFIXES = (".tif", ".tiff")  # what the raster products write: a COG
# the other outputs named by their format: option (dest), suffixes it takes (the first suggested), what is written
SIDE_FORMATS = (
    ("png", (".png",), "a PNG"),
    ("mask", MAP_SUFFIXES, "a GeoTIFF (COG)"),
    ("save_model", (".safetensors",), "a safetensors file (the fitted model, for --model)"),
)


def check_inputs_kept(command: str, outputs: Mapping[str, Any], reads: Mapping[str, Any]) -> None:
    """Refuse an output that is one of the command's inputs (one line, before anything is read): with --overwrite,
    `classify f.tif labels.gpkg --out f.tif` replaced the feature raster it had just read by the class map (and
    `zonal f.tif z.parquet --out z.parquet` the polygons). `outputs`/`reads`: option or role -> path (None, or
    anything that is not a path, such as an in-memory object, is skipped)."""
    import os

    def where(p: Any) -> Path | None:
        return Path(p).expanduser().resolve() if isinstance(p, str | os.PathLike) else None

    ins = {w: role for role, p in reads.items() if (w := where(p)) is not None}
    for label, p in outputs.items():
        w = where(p)
        if w is not None and w in ins:
            raise ConfigError(
                f"{label} {p} is the {ins[w]} that {command} reads; writing there would replace it: name the output "
                "another file"
            )


def file_name(value: Any, key: str, command: str) -> Path | None:
    """An output argument `key` of a product as a Path (None or "" -> None, for its default); anything but text or a
    path is one ConfigError naming `key` (png=True was a raw TypeError of Path())."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | os.PathLike):
        suffix = {k: suffixes[0] for k, suffixes, _ in SIDE_FORMATS}.get(key, ".tif")
        raise ConfigError(f"{key}= takes a file name (e.g. {key}={command + suffix!r}), got {value!r}")
    return Path(value)


def check_map_outputs(
    command: str, out: str | Path, *, reads: Mapping[str, Any] | None = None, **side: str | Path | None
) -> None:
    """Refuse a product `--out` that is not a GeoTIFF name, a `--png`, `--mask` or `--save-model` not named for
    what is written there (`SIDE_FORMATS`, by `io.check_suffix`), any two outputs that are one file, and an output
    that is one of the inputs named in `reads` (`check_inputs_kept`) (one line, before anything is written):
    `--out map.png` made the quick-look overwrite the COG and `change` then thresholded the PNG's pixels. `side`
    names the other outputs by their option (png, mask...)."""
    for key, value in ({"out": out} | side).items():
        file_name(value, key, command)
    out = Path(out)
    hint = " (the PNG quick-look goes next to it, or where --png says)"
    check_suffix("--out", out, MAP_SUFFIXES, command=command, writes="a GeoTIFF (COG)", hint=hint)
    named = {"out": out} | {k: Path(v) for k, v in side.items() if v is not None}
    for key, suffixes, writes in SIDE_FORMATS:
        if named.get(key) is not None:
            check_suffix(f"--{key.replace('_', '-')}", named[key], suffixes, command=command, writes=writes)
    seen: dict[Path, str] = {}
    labelled: dict[str, Path] = {}
    for key, path in named.items():
        where = path.expanduser().resolve()
        label = f"--{key.replace('_', '-')}" if key in ("out", "png", "mask", "save_model") else f"the {key} file"
        if where in seen:
            raise ConfigError(
                f"{seen[where]} and {label} are the same file {path}; give each output of {command} its own name"
            )
        seen[where], labelled[label] = label, path
    check_inputs_kept(command, labelled, reads or {})


def n_blocks(rd: EmbeddingReader, **kw: Any) -> int:
    """How many row windows `rd.blocks(**kw)` yields (for the progress bar's total)."""
    return sum(1 for _ in rd.blocks(**kw))


def cog_profile(rd: EmbeddingReader, count: int, dtype: str, nodata: Any) -> dict[str, Any]:
    return {
        "height": rd.height,
        "width": rd.width,
        "count": count,
        "dtype": dtype,
        "crs": rd.crs,
        "transform": rd.transform,
        "nodata": nodata,
    }
