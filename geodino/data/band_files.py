"""Finding one-file-per-band scenes on disk: which folders are scenes and which file holds each band.

Used by `geodino data stack` (`geodino.data.vrt.stack_scenes`). A band is found by its name as a whole token of
a file stem (`B02.tif`, `T33UUP_20240101T100031_B02_10m.jp2`, `LC08_..._SR_B4.TIF`; `B8` does not match `B8A`).
Sentinel-2 SAFE products are read as they are unpacked:

- L2A keeps each resolution in its own folder (`IMG_DATA/R10m`, `R20m`, `R60m`); such a folder is not a scene,
  its parent (`IMG_DATA`) is, and a band present at several resolutions is taken at the finest (`B02_10m`);
- `QI_DATA` holds per-band quality masks named after the bands (`MSK_DETFOO_B02.jp2`, `MSK_QUALIT_B02.jp2`, or
  `.gml` before processing baseline 04.00): never band files, so that folder is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from geodino.data.paths import TIFF_EXTS
from geodino.errors import InputError

__all__ = ["BAND_EXTS", "band_pattern", "find_band_files", "scene_folders"]

BAND_EXTS = (*TIFF_EXTS, ".jp2")
"""The suffixes of band files (any case)."""

_RESOLUTION_DIR = re.compile(r"^R\d+m$", re.IGNORECASE)  # SAFE L2A IMG_DATA/R10m, R20m, R60m
_SKIPPED_DIRS = {"qi_data"}  # SAFE quality masks named after the bands (MSK_DETFOO_B02.jp2)
_RES_TAG = re.compile(r"_(\d+(?:\.\d+)?)m$", re.IGNORECASE)  # T33UUP_..._B02_10m


def band_pattern(band: str) -> re.Pattern[str]:
    """The band name as a whole token of a file stem: B02.tif, T33UUP_20240101_B02_10m.jp2, LC08_..._SR_B4.TIF."""
    return re.compile(rf"(^|[_\-.]){re.escape(band)}($|[_\-.])", re.IGNORECASE)


def _band_files(folder: Path, exts: Sequence[str]) -> list[Path]:
    """Raster files under `folder` (recursive, following links to folders as raster and image sources do:
    `paths._folder_files`; Python 3.11's rglob skipped a scene folder linked into the root, which then read as 'no
    file is named after any of the bands'), outside SAFE quality-mask folders."""
    from geodino.data.paths import _folder_files

    exts = tuple(e.lower() for e in exts)
    return [
        p
        for p in map(Path, _folder_files(folder, exts, recursive=True))
        if not any(part.lower() in _SKIPPED_DIRS for part in p.relative_to(folder).parts[:-1])
    ]


def _resolution(path: Path) -> float:
    """The metres of a `_10m`-style stem tag; inf when the stem has none."""
    m = _RES_TAG.search(path.stem)
    return float(m.group(1)) if m else float("inf")


def find_band_files(folder: str | Path, bands: Sequence[str], exts: Sequence[str] = BAND_EXTS) -> dict:
    """{band: file} for one scene folder (recursive); each band must match a file. Where several match, the one of
    the finest resolution tag is taken (`B02_10m` over `B02_20m`, `B02_60m`), else the first by path."""
    folder = Path(folder)
    files = _band_files(folder, exts)
    out = {}
    for band in bands:
        pat = band_pattern(band)
        hits = sorted((p for p in files if pat.search(p.stem)), key=lambda p: (_resolution(p), p))
        if not hits:
            raise InputError(
                f"scene folder {folder} has no file for band {band!r} (looked for *{band}* in {tuple(exts)}); add "
                "it or move the folder out (no VRT is written while a scene folder is incomplete)"
            )
        out[band] = hits[0]
    return out


def scene_folders(root: Path, bands: Sequence[str], exts: Sequence[str] = BAND_EXTS) -> list[Path]:
    """The scene folders under `root`: the folders holding a band file named after any of `bands`, a SAFE L2A
    resolution folder (`R10m`) standing for its parent; sorted."""
    pats = [band_pattern(b) for b in bands]
    out = set()
    for p in _band_files(root, exts):
        if any(pt.search(p.stem) for pt in pats):
            d = p.parent
            while d != root and _RESOLUTION_DIR.match(d.name):
                d = d.parent
            out.add(d)
    return sorted(out)
