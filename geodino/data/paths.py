"""Turn a folder, glob, file list or list-file into a sorted list of input files, with clear errors when empty."""

from __future__ import annotations

import glob as _glob
from collections.abc import Sequence
from pathlib import Path

from geodino.errors import InputError

__all__ = ["IMAGE_EXTS", "RASTER_EXTS", "resolve_paths"]

RASTER_EXTS = (".tif", ".tiff", ".vrt", ".jp2", ".img")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")


def _has_magic(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def resolve_paths(
    paths: str | Path | Sequence[str | Path],
    exts: Sequence[str],
    *,
    recursive: bool = True,
    what: str = "raster",
    hint: str | None = None,
) -> list[str]:
    """Expand folders (recursively), globs, `.txt` lists and curated `.parquet` tile lists (`geodino data curate`)
    into the sorted, de-duplicated files with `exts`.

    A name that does not exist, a folder or glob that matches nothing and an empty result each raise
    InputError naming the input and the extensions looked for,
    ending with `hint` (what to do; by default it speaks of a config's `paths:`).
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise InputError(f"no {what} paths given; {hint or 'set `paths:` to a folder, a glob or a list of files'}")
    exts = tuple(e.lower() for e in exts)
    found: list[str] = []
    for item in items:
        text = str(Path(str(item)).expanduser()) if not str(item).startswith(("/vsi", "http")) else str(item)
        if str(item).startswith(("/vsi", "http://", "https://", "s3://", "gs://")):
            found.append(str(item))
            continue
        p = Path(text)
        if _has_magic(text):
            hits = sorted(h for h in _glob.glob(text, recursive=True) if h.lower().endswith(exts))
            if not hits:
                raise InputError(
                    f"glob {text!r} matched no {what} files ({', '.join(exts)}); check the pattern"
                    + (f" or {hint}" if hint else "")
                )
            found.extend(hits)
        elif p.is_dir():
            pattern = "**/*" if recursive else "*"
            hits = sorted(str(h) for h in p.glob(pattern) if h.is_file() and h.suffix.lower() in exts)
            if not hits:
                raise InputError(
                    f"folder {p} holds no {what} files ({', '.join(exts)}"
                    f"{', searched recursively' if recursive else ''}); {hint or 'point `paths` at the files'}"
                )
            found.extend(hits)
        elif p.is_file() and p.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
            base = p.parent
            listed = [ln if Path(ln).is_absolute() or ln.startswith("/vsi") else str(base / ln) for ln in lines]
            if not listed:
                raise InputError(f"file list {p} is empty; put one {what} path per line")
            found.extend(listed)
        elif p.is_file() and p.suffix.lower() == ".parquet":  # a tile list written by `geodino data curate`
            from geodino.data.curate import read_paths

            found.extend(read_paths(p))
        elif p.is_file():
            found.append(str(p))
        else:
            raise InputError(f"{what} path {text} does not exist; {hint or 'give a folder, a glob or existing files'}")
    seen: set[str] = set()
    unique = [f for f in found if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
    return unique
