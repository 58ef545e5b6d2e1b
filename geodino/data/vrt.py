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

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from geodino.data.band_files import find_band_files, scene_folders
from geodino.errors import InputError, plural

__all__ = [
    "RESAMPLING",
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

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


RESAMPLING = ("nearest", "bilinear", "cubic", "cubicspline", "lanczos", "average", "rms", "mode", "gauss")
"""The resampling names a VRT ComplexSource accepts (GDAL); anything else is refused before a VRT is written."""


def band_resampling(band: str, resampling: str) -> str:
    """The resampling of `band` in a stack: `nearest` for a QA band (`archive_bands.QA_BAND_NAMES`: SCL, QA60,
    QA_PIXEL), whose class codes / bit flags any interpolation turns into values no file holds (bilinear between
    SCL 4, vegetation, and 9, high cloud: 5 and 8); `resampling` for every other band."""
    return "nearest" if _is_qa(band) else resampling


def _is_qa(band: str) -> bool:
    from geodino.data.archive_bands import QA_BAND_NAMES

    return band.lower() in QA_BAND_NAMES


def _check_resampling(resampling: str) -> None:
    if resampling not in RESAMPLING:
        raise InputError(
            f"resampling {resampling!r} is not a GDAL resampling method; use one of {', '.join(RESAMPLING)}"
        )


def _stack_bands_xml(band_files: dict[str, str | Path], resampling: str, folder: Path | None = None) -> str:
    """The VRT XML stacking `band_files` (in order) on the finest of their grids; reads headers only. Files in or
    below `folder` (the VRT's) are referenced relative to it, as `mosaic_vrt` does, so that folder can be moved."""
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
                        "per file: name single-band files in --bands (a multi-band raster needs no stack: read it "
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
            raise InputError(f"band file {path} cannot be read ({str(exc).splitlines()[0]}); {out}") from exc
    crs = infos[0][2]
    for band, path, c, *_ in infos[1:]:
        if c != crs:
            raise InputError(
                f"band file {path} ({band}) is in {c.to_string()} but {infos[0][1]} is in {crs.to_string()}; "
                f"reproject it to that CRS (gdalwarp -t_srs {crs.to_string()}) or move its scene folder out"
            )
    finest = min(infos, key=lambda i: abs(i[3].a))
    t, width, height = finest[3], finest[4], finest[5]
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{escape(crs.to_wkt())}</SRS>",
        f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>",
    ]
    notes = []
    for k, (band, path, _, bt, bw, bh, dtype, nodata) in enumerate(infos, start=1):
        # destination window of this file on the finest grid
        x_off = (bt.c - t.c) / t.a
        y_off = (bt.f - t.f) / t.e
        x_size = bw * bt.a / t.a
        y_size = bh * bt.e / t.e
        method = band_resampling(band, resampling)
        name, relative = _local_source(path, folder)
        if bt.a != t.a or bt.e != t.e or x_off != int(x_off) or y_off != int(y_off):
            qa = " (QA band: class codes / bit flags)" if _is_qa(band) else ""
            notes.append(f"{band} {_fmt_res(abs(bt.a))} m -> {_fmt_res(abs(t.a))} m {method}{qa}")
        lines += [
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(dtype, "Float32")}" band="{k}">',
            f"    <Description>{escape(band)}</Description>",
            *([f"    <NoDataValue>{nodata!r}</NoDataValue>"] if nodata is not None else []),
            f'    <ComplexSource resampling="{method}">',
            f'      <SourceFilename relativeToVRT="{int(relative)}">{escape(name)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SrcRect xOff="0" yOff="0" xSize="{bw}" ySize="{bh}"/>',
            f'      <DstRect xOff="{x_off!r}" yOff="{y_off!r}" xSize="{x_size!r}" ySize="{y_size!r}"/>',
            *([f"      <NODATA>{nodata!r}</NODATA>"] if nodata is not None else []),
            "    </ComplexSource>",
            "  </VRTRasterBand>",
        ]
    if notes:  # what was resampled how, for gdalinfo and `geodino data stack` readers of the VRT
        lines[3:3] = ["  <Metadata>", f'    <MDI key="GEODINO_STACK_RESAMPLED">{escape("; ".join(notes))}</MDI>',
                      "  </Metadata>"]  # fmt: skip
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"


def _local_source(path: Path, folder: Path | None) -> tuple[str, bool]:
    """(name, relative): `path` relative to `folder` when in or below it (gdalbuildvrt's rule), else absolute."""
    import os

    full = Path(path).resolve()
    if folder is not None:
        rel = os.path.relpath(full, Path(folder).resolve())
        if not rel.startswith(".."):
            return Path(rel).as_posix(), True
    return str(full), False


def stack_bands(
    band_files: dict[str, str | Path], out: str | Path, *, resampling: str = "bilinear", overwrite: bool = True
) -> Path:
    """Write a VRT stacking `band_files` (in order) on the finest of their grids (atomically); returns its path.
    Files in or below the VRT's folder are referenced relative to it."""
    from geodino.io import atomic_path

    out = Path(out)
    text = _stack_bands_xml(band_files, resampling, folder=out.parent)
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
) -> list[Path]:
    """One VRT per scene folder under `root` (a folder holding a file for every band); returns the VRT paths.

    Coarser bands are resampled with `resampling`, except QA bands (SCL, QA60, QA_PIXEL: nearest, whatever
    `resampling`; see `band_resampling`); the VRT's `GEODINO_STACK_RESAMPLED` metadata lists each resampled band.
    Band files in or below `out_dir` (VRTs written into `root`) are referenced relative to it, so `root` can be
    moved; others by absolute path. Every folder is checked (each band's file found, one band each, north-up,
    headers read, CRSs agree, no two folders giving one VRT name) and every output is free (or
    `overwrite`) before the first VRT is written, so an incomplete folder leaves no partial set of VRTs."""
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
            f"T33UUP_{bands[0]}_10m.jp2); pass --bands as the band names appear in the file names, or the folder "
            "that holds the scene folders"
        )
    planned: list[tuple[Path, str]] = []
    named: dict[Path, Path] = {}
    for d in scene_dirs:
        name = "_".join(d.relative_to(root).parts) or root.name
        out = Path(out_dir) / f"{name}.vrt"
        if out in named:  # a_b/ and a/b/ would both be a_b.vrt: the second would replace the first
            raise InputError(
                f"scene folders {named[out]} and {d} would both be written as {out}; rename one of them (no VRT "
                "is written)"
            )
        named[out] = d
        planned.append((out, _stack_bands_xml(find_band_files(d, bands), resampling, folder=out.parent)))
    for out, _ in planned:
        check_writable(out, overwrite=overwrite)
    for out, text in planned:
        with atomic_path(out) as tmp:
            tmp.write_text(text)
    return [out for out, _ in planned]


def _xml_number(v: float) -> str:
    """A nodata value as GDAL parses it (`nan` for NaN)."""
    return "nan" if v != v else repr(float(v))


def north_up(t: Any) -> bool:
    """Whether a geotransform has no rotation and rows running south: what a VRT mosaic or band stack (and
    `geodino embed`'s scene mosaic) can place; the one home of that rule."""
    return t.b == 0 and t.d == 0 and t.e < 0


def mosaic_vrt(paths: Sequence[str | Path], out: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write a VRT mosaic of `paths` (same CRS, band count and data type; north-up) at `out`; returns its path.

    The mosaic covers the union of the rasters on the finest of their resolutions, aligned on the first one's
    origin. Band descriptions come from the first raster; `metadata` becomes the VRT's dataset metadata. Files in
    or below the VRT's folder are referenced relative to it, so the folder can be moved or shared as a whole.
    """
    import math
    import os

    import rasterio

    out = Path(out)
    if not paths:
        raise InputError(f"no rasters to mosaic into {out}")
    infos = []
    for path in paths:
        try:
            with rasterio.open(path) as src:
                infos.append(
                    (
                        str(path),
                        src.crs,
                        src.transform,
                        src.width,
                        src.height,
                        src.count,
                        src.dtypes[0],
                        src.nodata,
                        src.descriptions,
                    )
                )
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"cannot read {path} for the mosaic {out}: {str(exc).splitlines()[0]}") from exc
    first = infos[0]
    for path, crs, t, _, _, count, dtype, *_ in infos:
        if crs != first[1] or count != first[5] or dtype != first[6]:
            raise InputError(
                f"{path} ({crs}, {plural(count, 'band')}, {dtype}) cannot join the mosaic {out} of {first[0]} "
                f"({first[1]}, {plural(first[5], 'band')}, {first[6]}); mosaic rasters of one CRS, band count and type"
            )
        if not north_up(t):
            raise InputError(f"{path} has a rotated or south-up geotransform; a mosaic needs north-up rasters")
    res_x = min(i[2].a for i in infos)
    res_y = min(-i[2].e for i in infos)
    x0 = min(i[2].c for i in infos)
    y0 = max(i[2].f for i in infos)
    x1 = max(i[2].c + i[3] * i[2].a for i in infos)
    y1 = min(i[2].f + i[4] * i[2].e for i in infos)
    # align on the first raster's origin so that a mosaic of one raster (or of tiles of one grid) is pixel-exact
    t0 = first[2]
    x0 = t0.c - math.ceil(round((t0.c - x0) / res_x, 6)) * res_x
    y0 = t0.f + math.ceil(round((y0 - t0.f) / res_y, 6)) * res_y
    width = math.ceil(round((x1 - x0) / res_x, 6))
    height = math.ceil(round((y0 - y1) / res_y, 6))
    folder = out.parent.resolve()
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{escape(first[1].to_wkt())}</SRS>" if first[1] is not None else "",
        f"  <GeoTransform>{x0!r}, {res_x!r}, 0.0, {y0!r}, 0.0, {-res_y!r}</GeoTransform>",
    ]
    if metadata:
        lines.append("  <Metadata>")
        lines += [f'    <MDI key="{escape(str(k))}">{escape(str(v))}</MDI>' for k, v in metadata.items()]
        lines.append("  </Metadata>")
    sources = []
    for path, _, t, w, h, *_rest in infos:
        full = Path(path).resolve()
        rel = os.path.relpath(full, folder)
        relative = not rel.startswith("..")
        sources.append((escape(rel if relative else str(full)), int(relative), t, w, h, _rest[2]))
    for b in range(1, first[5] + 1):
        nodata = first[7]
        desc = first[8][b - 1] if first[8] else None
        lines += [
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(first[6], "Float32")}" band="{b}">',
            *([f"    <Description>{escape(desc)}</Description>"] if desc else []),
            *([f"    <NoDataValue>{_xml_number(nodata)}</NoDataValue>"] if nodata is not None else []),
        ]
        for name, relative, t, w, h, src_nodata in sources:
            lines += [
                "    <ComplexSource>",
                f'      <SourceFilename relativeToVRT="{relative}">{name}</SourceFilename>',
                f"      <SourceBand>{b}</SourceBand>",
                f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                f'      <DstRect xOff="{(t.c - x0) / res_x!r}" yOff="{(y0 - t.f) / res_y!r}" '
                f'xSize="{w * t.a / res_x!r}" ySize="{h * -t.e / res_y!r}"/>',
                *([f"      <NODATA>{_xml_number(src_nodata)}</NODATA>"] if src_nodata is not None else []),
                "    </ComplexSource>",
            ]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    from geodino.io import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(line for line in lines if line) + "\n")
    return out


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


def stack_files_xml(sources: Sequence[tuple[str, str]], *, where: str = "") -> tuple[str, list[str]]:
    """The XML of a VRT stacking single-band `sources` ((label, path) pairs, in order) on the first one's grid.

    For one-band-per-asset STAC items (Sentinel-2, Landsat on Earth Search / Planetary Computer). Paths may be
    local or GDAL virtual file system paths (`/vsicurl/https://...`, `/vsis3/...`): they are written as given, so
    the VRT is read window by window like any raster and remote COGs are fetched by range requests. The grid
    (CRS, transform, size) is the first source's: list a 10 m band first for a 10 m scene. A source of another
    resolution is resampled on read by GDAL: bilinear when it is coarser (a 20 m band on a 10 m grid), average
    when it is finer (a 10 m band on a 20 m grid), nearest for a QA band (`band_resampling`: SCL, QA60,
    QA_PIXEL). Sources of another CRS or data type, rotated grids and multi-band files are refused (one line
    naming them; `where` says whose sources, e.g. the STAC item).
    Returns the XML and one note per resampled source ("swir16 20 m -> 10 m bilinear"). Only headers are read.
    """
    import rasterio

    at = f" of {where}" if where else ""
    if not sources:
        raise InputError(f"nothing to stack{at}")
    infos = []
    for label, path in sources:
        try:
            with rasterio.open(path) as src:
                infos.append((label, str(path), src.crs, src.transform, src.width, src.height, src.count,
                              src.dtypes[0], src.nodata))  # fmt: skip
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"cannot read {label!r} ({path}){at}: {str(exc).splitlines()[0]}") from exc
    ref = infos[0]
    for label, path, crs, t, _w, _h, count, dtype, _nd in infos:
        if count != 1:
            raise InputError(
                f"{label!r}{at} has {count} bands; stacking takes single-band files (pass a multi-band asset alone, "
                f"choosing its bands with --asset-bands)"
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
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{escape(ref[2].to_wkt())}</SRS>",
        f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>",
    ]
    notes = []
    for k, (label, path, _, bt, bw, bh, _c, dtype, nodata) in enumerate(infos, start=1):
        x_off, y_off = (bt.c - t.c) / t.a, (bt.f - t.f) / t.e  # this source's place on the first one's grid
        x_size, y_size = bw * bt.a / t.a, bh * bt.e / t.e
        same = bt.a == t.a and bt.e == t.e and x_off == int(x_off) and y_off == int(y_off)
        method = "" if same else band_resampling(label, "average" if abs(bt.a) < abs(t.a) else "bilinear")
        if method:
            qa = " (QA band: class codes / bit flags)" if _is_qa(label) else ""
            notes.append(f"{label} {_fmt_res(abs(bt.a))} m -> {_fmt_res(abs(t.a))} m {method}{qa}")
        lines += [
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(dtype, "Float32")}" band="{k}">',
            f"    <Description>{escape(label)}</Description>",
            *([f"    <NoDataValue>{_xml_number(nodata)}</NoDataValue>"] if nodata is not None else []),
            f"    <ComplexSource{f' resampling={chr(34)}{method}{chr(34)}' if method else ''}>",
            f'      <SourceFilename relativeToVRT="0">{escape(_source_name(path))}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SrcRect xOff="0" yOff="0" xSize="{bw}" ySize="{bh}"/>',
            f'      <DstRect xOff="{x_off!r}" yOff="{y_off!r}" xSize="{x_size!r}" ySize="{y_size!r}"/>',
            *([f"      <NODATA>{_xml_number(nodata)}</NODATA>"] if nodata is not None else []),
            "    </ComplexSource>",
            "  </VRTRasterBand>",
        ]
    if notes:
        lines[3:3] = ["  <Metadata>", f'    <MDI key="GEODINO_STACK_RESAMPLED">{escape("; ".join(notes))}</MDI>',
                      "  </Metadata>"]  # fmt: skip
    return "\n".join(lines) + "\n</VRTDataset>\n", notes


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
