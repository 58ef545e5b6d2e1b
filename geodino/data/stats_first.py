"""The first raster `geodino data stats` reads its bands, names, dtype, alpha bands and declared DN rule from, before
the archive is indexed; with on_error=skip, the first one whose header reads intact.

Why: the statistics' sensor is settled from the first raster's header before the archive (which skips unreadable
files with a one-line warning under on_error=skip) is built, so a first file cut short inside its header (its first
directory, IFD) stopped the whole run with on_error=skip ("raster a.tif is truncated or corrupt"); the files before
the first readable one are now left to the archive, which skips each with its one-line warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodino.errors import InputError

__all__ = ["first_bands", "first_declared", "first_named", "readable_from"]


def _intact(path: str) -> bool:
    """Whether the raster opens with rasterio, without a GDAL read error (a header cut short) and with a CRS: the
    files the raster archive keeps (it requires a CRS for statistics) under on_error=skip."""
    import warnings

    import rasterio

    from geodino.data.headers import gdal_read_errors

    try:
        with warnings.catch_warnings(), gdal_read_errors(path) as broken:
            warnings.simplefilter("ignore")
            with rasterio.open(path) as src:
                crs = src.crs
    except Exception:  # GDAL raises many types for corrupt or unsupported files
        return False
    return not broken and crs is not None


def readable_from(paths: Any, type: str, on_error: str) -> Any:
    """`paths` as the header reads take them: for rasters under on_error=skip, the resolved files from the first one
    that opens intact (the ones before it are the archive's to skip, each with its warning); else `paths`, also when
    none is intact (the first file's read error is then the message)."""
    if type != "raster" or on_error != "skip":
        return paths
    from geodino.data.paths import RASTER_EXTS, resolve_paths

    files = resolve_paths(paths, RASTER_EXTS, what="raster")
    for i, f in enumerate(files):
        if _intact(f):
            return files[i:]
    return paths


def first_bands(paths: Any) -> tuple[int, tuple[str, ...] | None, str, tuple[int, ...]]:
    """(bands, their descriptions when every band has one, dtype, 1-based alpha bands) of the first raster, from
    its header as rasterio reads it (`geodino.data.headers`, cached: asked up to four times a run)."""
    from geodino.data.headers import HeaderError, read_error, read_header
    from geodino.data.paths import RASTER_EXTS, resolve_paths

    files = resolve_paths(paths, RASTER_EXTS, what="raster")
    try:
        head = read_header(files[0], reader="rasterio")
    except HeaderError as err:
        cut = read_error(str(exc := err.__cause__ or err), files[0])
        why = f"is truncated or corrupt (GDAL: {cut}); re-download or re-copy it" if cut else "cannot be read"
        fix = f" ({type(exc).__name__}: {str(exc).rstrip('.')}); check it with gdalinfo; re-download or re-copy it, "
        fix += "or remove it"
        raise InputError(f"raster {files[0]} {why}" + ("" if cut else fix)) from exc
    return head.count, head.band_names, head.dtype, head.alpha


def first_declared(paths: Any, alpha: tuple[int, ...]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The DN -> physical rule (scales, offsets per band, alpha bands left out) the first raster declares in its
    GDAL scale/offset tags, or None. `data stats` without --sensor or --scale takes it, so the YAML's statistics are
    in the units the file declares (Sentinel-2 L2A of baseline >= 04.00: DN * 0.0001 - 0.1) and the YAML reads the
    archive as its tags say; the raster archive refuses later files that declare another rule, naming both."""
    from geodino.data.headers import read_header
    from geodino.data.paths import RASTER_EXTS, resolve_paths

    head = read_header(resolve_paths(paths, RASTER_EXTS, what="raster")[0], reader="rasterio")
    if not head.scales:
        return None
    keep = [i for i in range(head.count) if i + 1 not in alpha]
    scales, offsets = tuple(head.scales[i] for i in keep), tuple(head.offsets[i] for i in keep)
    if all(v == 1.0 for v in scales) and not any(offsets):
        return None
    return scales, offsets


def first_named(paths: Any, type: str) -> str:
    """The file whose bands were read (the first one), as a message names it: "raster a.tif", or "the first of 3
    rasters, a.tif," (the others are checked as they are read)."""
    if type == "raster":
        from geodino.data.paths import RASTER_EXTS, resolve_paths

        files = [str(f) for f in resolve_paths(paths, RASTER_EXTS, what="raster")]
    else:  # the stores a folder, glob or .txt list names, as the cube source reads them
        from geodino.data.cube_open import cube_paths

        items = [paths] if isinstance(paths, (str, Path)) else list(paths)
        files = cube_paths(items) if all(isinstance(p, (str, Path)) for p in items) else [str(p) for p in items]
    what = "raster" if type == "raster" else "datacube"
    return f"{what} {files[0]}" if len(files) == 1 else f"the first of {len(files)} {what}s, {files[0]},"
