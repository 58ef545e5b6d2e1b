"""VRTs written by hand: one-file-per-band scenes stacked into multi-band rasters, and mosaics of many rasters.

Stacking: Sentinel-2 SAFE/COG layouts, Landsat `*_SR_B4.TIF` into multi-band VRTs (scene folders and band
files found by `geodino.data.band_files`; band files in or below the VRT's folder referenced relative to it).

Archives often store each band in its own file, at different resolutions (Sentinel-2: 10, 20 and 60 m). A VRT
with one band per file, all placed on the finest grid (GDAL resamples the coarser sources on read; a QA band,
SCL/QA60/QA_PIXEL, always with nearest: its codes must not be interpolated), turns each scene into one
multi-band raster that `RasterArchive` reads like any GeoTIFF, without copying pixels.

Mosaics (`mosaic_vrt`): many rasters of one CRS and band count side by side on the finest of their grids, each
source masked by its nodata so that overlaps show the valid one (later files win), with dataset metadata (e.g. the
`GEODINO_*` tags of feature rasters) so that tools reading the mosaic see what they see in one file.

Written by hand (a few lines of XML) because rasterio has no `gdalbuildvrt` and the GDAL CLI and Python
bindings are often absent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from geodino.data.band_files import find_band_files, scene_folders
from geodino.data.s2_product import ProductRule, stack_line, stack_rule
from geodino.data.vrt_mosaic import mosaic_vrt
from geodino.errors import InputError, one_line, plural

__all__ = [
    "RESAMPLING",
    "SourceUnreadable",
    "band_resampling",
    "find_band_files",
    "mosaic_vrt",
    "north_up",
    "stack_bands",
    "stack_files",
    "stack_files_xml",
    "stack_scenes",
    "write_vrt",
]


class SourceUnreadable(InputError):
    """A source of a stack whose header GDAL cannot open (a truncated or missing file): `label`, `path` and GDAL's
    first line `why`, so a many-scene run under --on-error skip skips that scene (`geodino.embed.scene_checks`)."""

    def __init__(self, line: str, label: str, path: str, why: str) -> None:
        super().__init__(line)
        self.label, self.path, self.why = label, path, why


_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "float32": "Float32", "float64": "Float64"}  # fmt: skip


RESAMPLING = ("nearest", "bilinear", "cubic", "cubicspline", "lanczos", "average", "rms", "mode", "gauss")
"""The resampling names a VRT ComplexSource accepts (GDAL); anything else is refused before a VRT is written."""


def band_resampling(band: str, resampling: str) -> str:
    """The resampling of `band` in a stack: `nearest` for a QA band (`archive_bands.qa_kind`: SCL, QA60, QA_PIXEL,
    also with a resolution tag as SCL_20m), whose class codes / bit flags any interpolation turns into values no
    file holds (bilinear between SCL 4, vegetation, and 9, high cloud: 5 and 8); `resampling` for every other band."""
    return "nearest" if _is_qa(band) else resampling


def _is_qa(band: str) -> bool:
    from geodino.data.archive_bands import qa_kind

    return qa_kind(band) is not None


def _check_resampling(resampling: str) -> None:
    if resampling not in RESAMPLING:
        raise InputError(
            f"resampling {resampling!r} is not a GDAL resampling method; use one of {', '.join(RESAMPLING)}"
        )


def _stack_bands_xml(
    band_files: dict[str, str | Path],
    resampling: str,
    folder: Path | None = None,
    *,
    relative: bool = False,
    product: ProductRule | None = None,
) -> str:
    """The VRT XML stacking `band_files` (in order) on the finest of their grids; reads headers only. Files in or
    below `folder` (the VRT's) are referenced relative to it, as `mosaic_vrt` does, so that folder can be moved;
    with `relative`, files elsewhere too (`../`), so a tree holding both the VRTs and the band files can be moved.
    Where a band's file does not cover the finest band's extent, a dataset mask (`_coverage_mask`) marks the
    uncovered pixels invalid: GDAL would read them as 0 (or the band's nodata), values no file holds. The
    reflectance bands of a Sentinel-2 `product` get its DN -> reflectance rule as their `<Scale>`/`<Offset>`."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from geodino.data.headers import gdal_read_errors

    _check_resampling(resampling)
    infos = []
    out = "re-download it or move its scene folder out of the root"
    for band, path in band_files.items():
        try:
            # "no geotransform" only repeats what the one-line error below says (no CRS, or a header cut short)
            with warnings.catch_warnings(), gdal_read_errors(path) as broken:
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                src = rasterio.open(path)
            with src:
                if broken:  # a header cut short opens without its CRS: say so, not "no CRS"
                    raise InputError(f"band file {path} is truncated or corrupt (GDAL: {broken[0]}); {out}")
                if src.crs is None:
                    raise InputError(
                        f"band file {path} has no CRS, so it cannot be stacked with the other bands; assign one "
                        f"(gdal_edit.py -a_srs EPSG:... {path}) or move its scene folder out of the root"
                    )
                if src.count != 1:  # SourceBand 1 alone would be stacked, silently (a 3-band TCI: its red)
                    raise InputError(
                        f"band file {path} ({band}) holds {plural(src.count, 'band')}; data stack takes one band "
                        "per file: name single-band files in --bands (bands= in Python; a multi-band raster needs no "
                        "stack: read it "
                        "as it is)"
                    )
                if not north_up(src.transform):
                    raise InputError(
                        f"band file {path} ({band}) has a rotated or south-up grid; stacking needs north-up files "
                        f"(gdalwarp {path} north_up.tif) or move its scene folder out"
                    )
                infos.append(
                    (band, Path(path), src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata)
                )
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"band file {path} cannot be read ({one_line(exc)}); {out}") from exc
    crs = infos[0][2]
    for band, path, c, *_ in infos[1:]:
        if c != crs:
            raise InputError(
                f"band file {path} ({band}) is in {c.to_string()} but {infos[0][1]} is in {crs.to_string()}; "
                f"reproject it to that CRS (gdalwarp -t_srs {crs.to_string()}) or move its scene folder out"
            )
    finest = min(infos, key=lambda i: abs(i[3].a))
    t, width, height = finest[3], finest[4], finest[5]
    bands, notes, windows = [], [], []
    rules = product.per_band([i[0] for i in infos]) if product else [None] * len(infos)
    for k, (band, path, _, bt, bw, bh, dtype, nodata) in enumerate(infos, start=1):
        window, aligned = _placed(bt, bw, bh, t)  # this file on the finest grid
        windows.append((band, path, *window))
        method = band_resampling(band, resampling)
        if not aligned:
            notes.append(_resampled_note(band, bt, t, method))
        source = _local_source(path, folder, always=relative)
        bands += _vrt_band(k, band, dtype, nodata, method, source, (bw, bh), window, rules[k - 1])
    mask = _coverage_mask(windows, width, height, _local_source(finest[1], folder, always=relative))
    said = product.said(list(band_files)) if product else ""
    return _vrt_text(crs, t, (width, height), notes, bands + mask, said)


def _placed(bt: Any, bw: int, bh: int, t: Any) -> tuple[tuple[float, float, float, float], bool]:
    """Where a source of transform `bt` and `bw` x `bh` pixels lands on the VRT's grid (transform `t`): its window
    (x_off, y_off, x_size, y_size) in the grid's pixels, fractional where the grids do not align, and whether it
    is aligned (same pixel size, whole-pixel offsets: GDAL then copies it, no resampling)."""
    x_off, y_off = (bt.c - t.c) / t.a, (bt.f - t.f) / t.e
    x_size, y_size = bw * bt.a / t.a, bh * bt.e / t.e
    aligned = bt.a == t.a and bt.e == t.e and x_off == int(x_off) and y_off == int(y_off)
    return (x_off, y_off, x_size, y_size), aligned


def _resampled_note(label: str, bt: Any, t: Any, method: str) -> str:
    """What a source not aligned with the grid is resampled by, e.g. "B11 20 m -> 10 m bilinear" (QA bands say
    why they are nearest)."""
    qa = " (QA band: class codes / bit flags)" if _is_qa(label) else ""
    return f"{label} {_fmt_res(abs(bt.a))} m -> {_fmt_res(abs(t.a))} m {method}{qa}"


def _vrt_band(
    k: int,
    label: str,
    dtype: str,
    nodata: float | None,
    method: str,
    source: tuple[str, bool],
    size: tuple[int, int],
    window: tuple[float, float, float, float],
    rule: tuple[float, float] | None = None,
) -> list[str]:
    """The XML of VRT band `k`: band 1 of the file `source` ((name, relative to the VRT)), `size` (w, h) pixels, read
    into `window` of the grid by `method` (no attribute when empty: GDAL's default, for aligned sources); `rule`:
    its declared (scale, offset), DN -> physical value."""
    x_off, y_off, x_size, y_size = window
    no = _xml_number(nodata) if nodata is not None else None
    return [
        f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(dtype, "Float32")}" band="{k}">',
        f"    <Description>{escape(label)}</Description>",
        *([f"    <Offset>{rule[1]!r}</Offset>", f"    <Scale>{rule[0]!r}</Scale>"] if rule else []),
        *([f"    <NoDataValue>{no}</NoDataValue>"] if no is not None else []),
        f"    <ComplexSource{f' resampling={chr(34)}{method}{chr(34)}' if method else ''}>",
        f'      <SourceFilename relativeToVRT="{int(source[1])}">{escape(source[0])}</SourceFilename>',
        "      <SourceBand>1</SourceBand>",
        f'      <SrcRect xOff="0" yOff="0" xSize="{size[0]}" ySize="{size[1]}"/>',
        f'      <DstRect xOff="{x_off!r}" yOff="{y_off!r}" xSize="{x_size!r}" ySize="{y_size!r}"/>',
        *([f"      <NODATA>{no}</NODATA>"] if no is not None else []),
        "    </ComplexSource>",
        "  </VRTRasterBand>",
    ]


def _vrt_text(crs: Any, t: Any, size: tuple[int, int], notes: list[str], body: list[str], radiometry: str = "") -> str:
    """A VRT document on the grid (`crs`, transform `t`, `size` (w, h)): the resampling `notes` and where its bands'
    scale/offset came from (`radiometry`) as metadata (for gdalinfo and `geodino data stack` readers), then `body`
    (its bands, and a mask band)."""
    head = [
        f'<VRTDataset rasterXSize="{size[0]}" rasterYSize="{size[1]}">',
        f"  <SRS>{escape(crs.to_wkt())}</SRS>",
        f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>",
    ]
    tags = {"GEODINO_STACK_RESAMPLED": "; ".join(notes), "GEODINO_STACK_RADIOMETRY": radiometry}
    if any(tags.values()):
        mdi = [f'    <MDI key="{k}">{escape(v)}</MDI>' for k, v in tags.items() if v]
        head += ["  <Metadata>", *mdi, "  </Metadata>"]
    return "\n".join([*head, *body, "</VRTDataset>"]) + "\n"


def _coverage_mask(
    windows: list[tuple[str, Any, float, float, float, float]],
    width: int,
    height: int,
    grid_source: tuple[str, bool],
    fix: str = "is it another tile's file? Move its scene folder out",
) -> list[str]:
    """The VRT's dataset `<MaskBand>` (255 valid, 0 not) when some band's file covers only part of the finest grid
    (`windows`: (band, path, x_off, y_off, x_size, y_size) in its pixels), else nothing: valid is the rectangle
    every band covers in full (a pixel a band covers only in part is left out). GDAL reads a band's uncovered
    pixels as 0 (or its nodata), which `valid_pixels`' every-band-nodata rule would take as data; the mask
    (per_dataset, read by `file_mask`) drops them whatever the nodata. Its source is the grid's own file
    (`grid_source`: name, relative) scaled to the constant 255 (ScaleRatio 0) on the covered window. A file
    covering no pixel of the grid is refused, `fix` saying what to do."""
    import math

    c0, r0, c1, r1 = 0, 0, width, height
    for band, path, x_off, y_off, x_size, y_size in windows:
        c0, r0 = max(c0, math.ceil(round(x_off, 6))), max(r0, math.ceil(round(y_off, 6)))
        c1 = min(c1, math.floor(round(x_off + x_size, 6)))
        r1 = min(r1, math.floor(round(y_off + y_size, 6)))
        if c1 <= c0 or r1 <= r0:
            raise InputError(
                f"band file {path} ({band}) does not overlap the other bands' extent (not one pixel of the "
                f"{width} x {height} grid holds every band); {fix}"
            )
    if (c0, r0, c1, r1) == (0, 0, width, height):
        return []
    name, relative = grid_source
    return [
        "  <MaskBand>",
        '    <VRTRasterBand dataType="Byte">',
        "      <ComplexSource>",
        f'        <SourceFilename relativeToVRT="{int(relative)}">{escape(name)}</SourceFilename>',
        "        <SourceBand>1</SourceBand>",
        "        <ScaleOffset>255</ScaleOffset>",
        "        <ScaleRatio>0</ScaleRatio>",
        f'        <SrcRect xOff="{c0}" yOff="{r0}" xSize="{c1 - c0}" ySize="{r1 - r0}"/>',
        f'        <DstRect xOff="{c0}" yOff="{r0}" xSize="{c1 - c0}" ySize="{r1 - r0}"/>',
        "      </ComplexSource>",
        "    </VRTRasterBand>",
        "  </MaskBand>",
    ]


def _local_source(path: Path, folder: Path | None, *, always: bool = False) -> tuple[str, bool]:
    """(name, relative): `path` relative to `folder` when in or below it (gdalbuildvrt's rule), else absolute;
    with `always`, relative wherever it is (`../../s2/B02.tif`; absolute only where no relative path exists, as
    between Windows drives), through links as named (not their targets): the links travel with a moved tree; from
    the folder's real place when it is reached through a link (`..` leaves a folder where it really is)."""
    import os

    full = Path(path).resolve()
    if folder is not None:
        try:
            if always:
                rel = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
                if os.path.realpath(os.path.join(real := os.path.realpath(folder), rel)) != str(full):  # elsewhere
                    rel = os.path.relpath(os.path.abspath(path), real)  # the file's own links kept, if that leads
                    rel = rel if os.path.realpath(os.path.join(real, rel)) == str(full) else os.path.relpath(full, real)
            else:
                rel = os.path.relpath(full, Path(folder).resolve())
        except ValueError:  # another drive
            return str(full), False
        if always or not rel.startswith(".."):
            return Path(rel).as_posix(), True
    return str(full), False


def stack_bands(
    band_files: dict[str, str | Path],
    out: str | Path,
    *,
    resampling: str = "bilinear",
    overwrite: bool = True,
    relative: bool = False,
) -> Path:
    """Write a VRT stacking `band_files` (in order) on the finest of their grids (atomically); returns its path.
    Files in or below the VRT's folder are referenced relative to it; with `relative`, all files are. Files of a
    Sentinel-2 SAFE get its MTD's reflectance rule as their scale/offset (`s2_product.stack_rule`)."""
    from geodino.io import atomic_path

    out = Path(out)
    product = stack_rule(band_files)
    text = _stack_bands_xml(band_files, resampling, folder=out.parent, relative=relative, product=product)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return out


def stack_scenes(
    root: str | Path,
    bands: Sequence[str],
    out_dir: str | Path,
    *,
    resampling: str = "bilinear",
    overwrite: bool = False,
    relative: bool = False,
    say: Callable[[str], None] | None = None,
) -> list[Path]:
    """One VRT per scene folder under `root` (a folder holding a file for every band); returns the VRT paths.

    Coarser bands are resampled with `resampling`, except QA bands (SCL, QA60, QA_PIXEL: nearest, whatever
    `resampling`; see `band_resampling`); the VRT's `GEODINO_STACK_RESAMPLED` metadata lists each resampled band.
    Band files in or below `out_dir` (VRTs written into `root`) are referenced relative to it, so `root` can be
    moved; others by absolute path, or with `relative` by relative ones too (`../root/s1/B02.tif`: move the tree
    holding `root` and `out_dir` as a whole). A band whose file covers only part of the finest band's extent gets
    the VRT a dataset mask, invalid where any band has no data (`_coverage_mask`). Every folder is checked (each
    band's file found, one band each, north-up, headers read, CRSs agree, no two folders giving one VRT name) and
    every output is free (or `overwrite`) before the first VRT is written, so an incomplete folder leaves no
    partial set of VRTs. The reflectance bands of a Sentinel-2 SAFE get the DN -> reflectance rule its
    MTD_MSIL2A.xml / MTD_MSIL1C.xml declares (processing baseline >= 04.00: (DN - 1000) / 10000) as their
    `<Scale>`/`<Offset>` (`s2_product`), said in one line through `say` (and the VRT's GEODINO_STACK_RADIOMETRY)."""
    from geodino.io import atomic_path, check_writable

    _check_resampling(resampling)
    root = Path(root)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise InputError(
            f"{root} is not a folder of scene folders (it {what}); pass the folder that holds the scene folders "
            "(each with one file per band)"
        )
    seen: dict[str, str] = {}
    for b in bands:  # {band: file} would keep one of B02 B02 (a band short), B1 b1 would stack one file twice
        if b.lower() in seen:
            raise InputError(f"band {b} is named twice in the bands ({seen[b.lower()]}, {b}); name each band once")
        seen[b.lower()] = b
    scene_dirs = scene_folders(root, bands)
    if not scene_dirs:
        raise InputError(
            f"no file under {root} is named after any of the bands {', '.join(bands)} (e.g. "
            f"T33UUP_{bands[0]}_10m.jp2); pass --bands (bands= in Python) as the band names appear in the file names, "
            "or the folder "
            "that holds the scene folders"
        )
    planned: list[tuple[Path, str]] = []
    named: dict[Path, Path] = {}
    products: list[tuple[ProductRule | None, dict]] = []  # each scene's SAFE rule, and its band files
    for d in scene_dirs:
        name = "_".join(d.relative_to(root).parts) or root.name
        out = Path(out_dir) / f"{name}.vrt"
        if out in named:  # a_b/ and a/b/ would both be a_b.vrt: the second would replace the first
            raise InputError(
                f"scene folders {named[out]} and {d} would both be written as {out}; rename one of them (no VRT "
                "is written)"
            )
        named[out] = d
        files = find_band_files(d, bands)
        products.append((stack_rule(files), files))
        xml = _stack_bands_xml(files, resampling, folder=out.parent, relative=relative, product=products[-1][0])
        planned.append((out, xml))
    for out, _ in planned:
        check_writable(out, overwrite=overwrite)
    for out, text in planned:
        with atomic_path(out) as tmp:
            tmp.write_text(text)
    if say is not None and (line := stack_line(products, bands, root)):
        say(line)
    return [out for out, _ in planned]


def _xml_number(v: float) -> str:
    """A nodata value as GDAL parses it (`nan` for NaN)."""
    return "nan" if v != v else repr(float(v))


def north_up(t: Any) -> bool:
    """Whether a geotransform has no rotation and rows running south: what a VRT mosaic or band stack (and
    `geodino embed`'s scene mosaic) can place; the one home of that rule."""
    return t.b == 0 and t.d == 0 and t.e < 0


def _fmt_res(v: float) -> str:
    return f"{v:g}"


def stack_files(sources: Sequence[tuple[str, str]], out: str | Path, *, where: str = "") -> tuple[Path, list[str]]:
    """Write the VRT of `stack_files_xml(sources, where=where)` at `out`; returns (its path, the resampling notes)."""
    text, notes = stack_files_xml(sources, where=where)
    return write_vrt(text, out), notes


def _differ(infos: list[tuple], k: int, show: Callable[[Any], str], where: str, what: str, fix: str) -> InputError:
    """The error for sources that do not share field `k` of their header tuples: each source's value, and the fix."""
    listed = ", ".join(f"{i[0]} {show(i[k])}" for i in infos)
    return InputError(f"cannot stack {where or 'these files'}: different {what} ({listed}); {fix}")


def stack_files_xml(
    sources: Sequence[tuple[str, str]], *, where: str = "", headers: Mapping[str, Any] | None = None
) -> tuple[str, list[str]]:
    """The XML of a VRT stacking single-band `sources` ((label, path) pairs, in order) on the first one's grid.

    For one-band-per-asset STAC items (Sentinel-2, Landsat on Earth Search / Planetary Computer). Paths may be
    local or GDAL virtual file system paths (`/vsicurl/https://...`, `/vsis3/...`): they are written as given, so
    the VRT is read window by window like any raster and remote COGs are fetched by range requests. The grid
    (CRS, transform, size) is the first source's: list a 10 m band first for a 10 m scene. A source of another
    resolution is resampled on read by GDAL: bilinear when it is coarser (a 20 m band on a 10 m grid), average
    when it is finer (a 10 m band on a 20 m grid), nearest for a QA band (`band_resampling`: SCL, QA60,
    QA_PIXEL). Sources of another CRS or data type, rotated grids and multi-band files are refused (one line
    naming them; `where` says whose sources, e.g. the STAC item). A source covering only part of the first one's
    grid gives the VRT a dataset mask, invalid where it has no data (`_coverage_mask`, as `data stack`).
    Returns the XML and one note per resampled source ("swir16 20 m -> 10 m bilinear"). Only headers are read;
    `headers` (path -> an object with `crs`, `transform`, `width`, `height`, `count`, `dtypes`, `nodata`): those a
    caller read already (`geodino embed --bbox` reads each item's first asset for its overlap test), not opened again.
    """
    import rasterio

    at = f" of {where}" if where else ""
    if not sources:
        raise InputError(f"nothing to stack{at}")
    infos = []
    for label, path in sources:
        try:
            known = (headers or {}).get(path)
            with rasterio.open(path) if known is None else contextlib.nullcontext(known) as src:
                infos.append((label, str(path), src.crs, src.transform, src.width, src.height, src.count,
                              src.dtypes[0], src.nodata))  # fmt: skip
        except rasterio.errors.RasterioIOError as exc:
            why = one_line(exc)
            raise SourceUnreadable(f"cannot read {label!r} ({path}){at}: {why}", label, str(path), why) from exc
    ref = infos[0]
    for label, path, crs, t, _w, _h, count, dtype, _nd in infos:
        if count != 1:
            raise InputError(
                f"{label!r}{at} has {count} bands; stacking takes single-band files (pass a multi-band asset alone, "
                "choosing its bands with --asset-bands, asset_bands= in Python)"
            )
        if crs is None:
            raise InputError(f"{label!r} ({path}){at} has no CRS; cannot stack it with the others")
        if crs != ref[2]:
            fix = "pass assets of one CRS, or embed them apart"
            raise _differ(infos, 2, lambda c: c.to_string() if c else "no CRS", where, "CRS", fix)
        if not north_up(t):
            raise InputError(f"{label!r} ({path}){at} has a rotated or south-up grid; stacking needs north-up files")
        if dtype != ref[7]:
            fix = "the DN scale comes from the type, so pass reflectance bands of one type"
            raise _differ(infos, 7, str, where, "data types", fix)
    t, width, height = ref[3], ref[4], ref[5]
    bands, notes, windows = [], [], []
    for k, (label, path, _, bt, bw, bh, _c, dtype, nodata) in enumerate(infos, start=1):
        window, aligned = _placed(bt, bw, bh, t)  # this source on the first one's grid
        windows.append((label, path, *window))
        method = "" if aligned else band_resampling(label, "average" if abs(bt.a) < abs(t.a) else "bilinear")
        if method:
            notes.append(_resampled_note(label, bt, t, method))
        bands += _vrt_band(k, label, dtype, nodata, method, (_source_name(path), False), (bw, bh), window)
    fix = f"pass assets of one footprint{at}"
    mask = _coverage_mask(windows, width, height, (_source_name(ref[1]), False), fix)  # as `stack_bands`
    return _vrt_text(ref[2], t, (width, height), notes, bands + mask), notes


def write_vrt(text: str, out: str | Path) -> Path:
    """Write VRT XML at `out` atomically, unless the file already holds exactly this text; returns `out`."""
    from geodino.io import atomic_path

    out = Path(out)
    if out.exists() and out.read_text() == text:  # a rerun or another rank wrote the same stack
        return out
    # atomic_path's temporary is per process (`temp_name`), so ranks of an array may write the same stack; a killed
    # writer's is swept (`sweep_temps`) when the next write of `out` starts
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return out


def _source_name(path: str) -> str:
    """A VRT source name: GDAL virtual paths as given (resolving would fold `https://`), local files absolute."""
    return path if path.startswith("/vsi") or "://" in path else str(Path(path).resolve())
