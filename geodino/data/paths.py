"""Turn a folder, glob, file list or list-file into a sorted list of input files, with clear errors when empty."""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from geodino.errors import InputError, plural

__all__ = ["IMAGE_EXTS", "RASTER_EXTS", "TIFF_EXTS", "one_listed", "read_list", "resolve_paths", "walk_once"]

TIFF_EXTS = (".tif", ".tiff", ".gtif", ".gtiff")
"""The suffixes GeoTIFFs are written with (compared lower-cased): GDAL's GTiff driver opens a file by its content,
so `.gtif`/`.GTiff` files written by GDAL users and older tools are GeoTIFFs like `.tif` ones."""
RASTER_EXTS = (*TIFF_EXTS, ".vrt", ".jp2", ".img")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", *TIFF_EXTS, ".bmp")


def _has_magic(text: str) -> bool:
    return any(ch in text for ch in "*?[")


REMOTE_PREFIXES = ("/vsi", "http://", "https://", "s3://", "gs://")


def read_list(path: str | Path, what: str = "raster") -> list[str]:
    """The entries of a `.txt` file list, one path per line (blank lines and `#` comments skipped; relative paths
    from the list's folder). Local entries must exist: a missing one is named with the list and its line number
    (it used to surface later as "raster hello: cannot be read"); remote ones (/vsi..., s3://, gs://, http(s)://)
    are passed on unchecked, as written."""
    p = Path(path)
    base = p.parent
    listed: list[tuple[int, str]] = []
    for number, raw in enumerate(p.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(REMOTE_PREFIXES):
            listed.append((number, line))
            continue
        entry = Path(line).expanduser()
        listed.append((number, str(entry if entry.is_absolute() else base / entry)))
    if not listed:
        raise InputError(f"file list {p} is empty; put one {what} path per line")
    missing = [(n, e) for n, e in listed if not e.startswith(REMOTE_PREFIXES) and not Path(e).exists()]
    if missing:
        n, missed = missing[0]
        more = f" (and {plural(len(missing) - 1, 'more line')} like it)" if len(missing) > 1 else ""
        where = (
            ""
            if Path(missed).is_absolute()
            else f" (relative entries are read from the list's folder, {base.resolve()})"
        )
        raise InputError(
            f"file list {p}, line {n}: {what} {missed} does not exist{where}{more}; fix the line or remove it"
        )
    return [e for _, e in listed]


def one_listed(inputs: Sequence[str | Path], what: str = "raster") -> list[str]:
    """`inputs` with a lone `.txt` list that names one path replaced by that path, for callers that treat one
    input and many differently (`geodino embed`: one feature raster, or a folder of them and a mosaic): a list
    with one entry is that one path. The list's entries are checked (`read_list`) either way."""
    items = [str(i) for i in inputs]
    if len(items) == 1 and items[0].lower().endswith(".txt") and Path(items[0]).expanduser().is_file():
        listed = read_list(Path(items[0]).expanduser(), what)
        if len(listed) == 1:
            return listed
    return items


def walk_once(folder: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk(folder, followlinks=True)` with sorted subfolders, entering a folder reached twice (a link back up
    the tree, two links to one folder) once: the file listings and the datacube search share it. A caller may prune
    the yielded `dirs` in place, as with `os.walk`."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()  # a folder reached twice keeps the same (first sorted) path on every machine
        yield root, dirs, files


APPLE_DOUBLE = "._"  # macOS resource-fork files beside each copied file: never data
MAC_ZIP_DIR = "__MACOSX"  # the folder of AppleDouble files a zip made on a Mac holds


def _folder_files(folder: Path, exts: tuple[str, ...], recursive: bool, hidden: bool = True) -> list[str]:
    """The sorted files with `exts` in `folder` (and, with `recursive`, its subfolders), following symbolic links
    to folders as torchvision's ImageFolder does (`os.walk(followlinks=True)`): an ImageNet subset made of links to
    class folders was read as empty (Python 3.11's `Path.glob("**")` does not enter linked folders). A folder
    reached twice (a link back up the tree, two links to one folder) is listed once. The temporaries of geodino's
    atomic writes (`.STEM.tmp-TAG-PID.SUFFIX`, `io.temp_name`) are no inputs: a live writer's is incomplete, and a
    killed run's is cut off; a folder of outputs (feature rasters, chips) read as input listed them. `hidden` False:
    files and folders under `folder` whose name starts with a dot are left out too (`images` sources, as `embed
    images` and the image-folder probes list photos: a macOS `._photo.jpg` beside each photo is no image). macOS's
    AppleDouble files (`._scene.tif`, the resource fork a copy from a Mac leaves beside each file, and the
    `__MACOSX/` folder of a Mac zip) are never inputs, hidden kept or not: a raster folder copied from a Mac stopped
    at its first `._scene.tif` ("not recognized as being in a supported file format")."""
    from geodino.io_temps import temp_target

    def wanted(name: str) -> bool:
        return (
            os.path.splitext(name)[1].lower() in exts
            and temp_target(name) is None
            and not name.startswith(APPLE_DOUBLE)
            and (hidden or name[:1] != ".")
        )

    if not recursive:
        return sorted(str(h) for h in folder.iterdir() if h.is_file() and wanted(h.name))
    hits: list[str] = []
    for root, dirs, files in walk_once(folder):
        dirs[:] = [d for d in dirs if d != MAC_ZIP_DIR and (hidden or not d.startswith("."))]
        hits.extend(os.path.join(root, f) for f in files if wanted(f) and os.path.isfile(os.path.join(root, f)))
    return sorted(hits)


def resolve_paths(
    paths: str | Path | Sequence[str | Path],
    exts: Sequence[str],
    *,
    recursive: bool = True,
    what: str = "raster",
    hint: str | None = None,
    hidden: bool = True,
) -> list[str]:
    """Expand folders (recursively), globs, `.txt` lists and curated `.parquet` tile lists (`geodino data curate`)
    into the sorted, de-duplicated files with `exts`.

    A name that does not exist, a folder or glob that matches nothing and an empty result each raise
    InputError naming the input and the extensions looked for,
    ending with `hint` (what to do; by default it speaks of a config's `paths:`). `hidden` False leaves out the
    hidden files and folders found under a folder (files named or matched by a glob are kept).
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
            hits = _folder_files(p, exts, recursive, hidden)
            if not hits:
                # a folder of class subfolders read with recursive: false: say why the images were not found
                flat = not recursive and any(c.is_dir() for c in p.iterdir())
                raise InputError(
                    f"folder {p} holds no {what} files ({', '.join(exts)}"
                    f"{', searched recursively' if recursive else ''})"
                    f"{' (subfolders not searched: recursive is false)' if flat else ''}; "
                    f"{hint or 'point `paths` at the files'}"
                )
            found.extend(hits)
        elif p.is_file() and p.suffix.lower() == ".txt":
            found.extend(read_list(p, what))
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
