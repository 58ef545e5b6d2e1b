"""The cell grid a many-scene run's output folder is embedded on, kept in `OUT/cell_grid.json`.

Scenes of one pixel grid are embedded on the cells of one reference scene (`scene_grid`): the first readable scene
listed. Ranks of `--world-size N` started at different times, or a `--resume`, could see another first readable
scene (the first one unreadable for the later rank, or readable again after a fix) and put their scenes on other
cells: two cell grids in one mosaic, half a cell apart. So the first run (or rank) of a folder records its
reference grid here (CRS, geotransform, patch size: the cells), created once (written whole under a temporary name,
then linked into place, which fails when another rank was first), and every later rank or resume embeds on the
recorded cells. A record that does not fit the run (cells of another patch size, its reference scene's file now on
other cells, or none of the run's scenes on its pixel grid) is refused in one line while the folder holds scene
outputs, and replaced by `--overwrite` or when the folder holds none yet (a run that failed before its first
scene)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from geodino.embed.scene_grid import offset_on, reference_scene, scene_grid
from geodino.embed.stac import Scene
from geodino.errors import InputError

__all__ = ["GRID_FILE", "SharedGrid", "forget_grid", "shared_grid"]

GRID_FILE = "cell_grid.json"  # OUT/cell_grid.json: the cells the scenes of the folder are embedded on
_KIND = "geodino embed cell grid"  # the record's "kind": a file geodino wrote


class SharedGrid(NamedTuple):
    """The cells a run's scenes share (`shared_grid`): their CRS and transform, and whether this run recorded them."""

    crs: Any
    transform: Any
    recorded: bool


def shared_grid(
    folder: Path,
    scenes: list[Scene],
    patch: int,
    *,
    outputs: Iterable[Path],
    skip: Iterable[str] = (),
    grids: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> SharedGrid | None:
    """The CRS and transform of the cells the run's scenes are put on: the record in `folder` (`GRID_FILE`) when
    there is one that fits, else this run's first readable scene's (`scene_grid.reference_scene`), recorded for
    the ranks and resumes after it. None: no scene with a grid (cubes, nothing readable); nothing recorded.

    `scenes`: every scene listed (before --bbox); `outputs`: the scenes' output paths (whether the folder holds any
    of them, finished or partial, or another feature raster decides between refusing and replacing a record that
    does not fit); `skip`: scenes whose header could not be read; `grids`: the headers the checks read
    (`scene_grid.grid_offsets`)."""
    path, left = folder / GRID_FILE, set(skip)
    try:
        found = _read(path)
    except InputError:  # not a record geodino wrote: refused as one that does not fit
        if not overwrite and _started(folder, outputs):
            raise
        found = {}  # replaced below
    if found:
        why = _misfit(found, scenes, patch, left, grids)
        if why is None:
            return SharedGrid(found["crs"], found["transform"], False)
        if not overwrite and _started(folder, outputs):
            _refuse(path, found, why)
    first = reference_scene(scenes, skip=left, grids=grids)
    if first is None:
        return None
    scene, head = first
    text = _text(scene, head, patch)
    if found is None and not _create(path, text):  # another rank was first: its record wins
        found = _read(path)
        assert found is not None  # a record is whole once it is in place
        why = _misfit(found, scenes, patch, left, grids)
        if why is not None:
            _refuse(path, found, why)
        return SharedGrid(found["crs"], found["transform"], False)
    if found is not None:  # one that did not fit: replaced (--overwrite, or no scene output in the folder yet)
        from geodino.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return SharedGrid(head.crs, head.transform, True)


def forget_grid(folder: Path, grid: SharedGrid | None, outputs: Iterable[Path]) -> None:
    """After a refused run: remove the record it made (`grid.recorded`) while no scene output is in the folder, so
    bad input leaves no file behind (and the folder it created is removed as empty)."""
    if grid is not None and grid.recorded and not _started(folder, outputs):
        with contextlib.suppress(OSError):
            (folder / GRID_FILE).unlink()


def _text(scene: Scene, head: Any, patch: int) -> str:
    """The record of `scene`'s grid (`head`: its CRS and transform) as JSON: the CRS as WKT, the transform as GDAL's
    geotransform, the cell size in pixels, and the scene it came from (for the refusals)."""
    return json.dumps(
        {
            "kind": _KIND,
            "scene": scene.name,
            "file": _file(scene),
            "crs": head.crs.to_wkt() if head.crs else "",
            "geotransform": list(head.transform.to_gdal()),
            "patch": patch,
        },
        indent=1,
    )


def _read(path: Path) -> dict[str, Any] | None:
    """The record at `path` (CRS and transform as rasterio/affine objects), or None when there is none; a file that
    is not geodino's record is refused, naming it (InputError)."""
    import time

    from affine import Affine
    from rasterio.crs import CRS

    try:
        text = path.read_text()
        for _ in range(20):  # created with O_EXCL by another rank (`_create`), not written yet: a moment
            if text:
                break
            time.sleep(0.05)
            text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror}); check the output folder's permissions") from exc
    try:
        rec = json.loads(text)
        if rec.get("kind") != _KIND:
            raise ValueError("not a cell grid record")
        rec["crs"] = CRS.from_wkt(rec["crs"]) if rec["crs"] else None
        rec["transform"] = Affine.from_gdal(*rec["geotransform"])
        rec["patch"] = int(rec["patch"])
    except Exception as exc:  # JSON, keys, CRS or numbers: one line whatever broke
        raise InputError(
            f"{path} is not the cell grid record geodino writes ({type(exc).__name__}: {exc}); it records which "
            "cells the scenes of the folder are embedded on: pass --overwrite (overwrite=True in Python) to redo "
            "the scenes there and write it anew, or embed into another --out"
        ) from exc
    return rec


def _misfit(rec: dict[str, Any], scenes: list[Scene], patch: int, left: set[str], grids: Any) -> str | None:
    """Why the recorded grid does not fit this run, or None when it does: the same cell size, and its reference
    scene unreadable now (skipped), or still on the recorded cells; a reference scene not listed any more fits
    when a readable scene of the run lies on its pixel grid."""
    if rec["patch"] != patch:
        return f"this run's backbone has {patch} px cells (patch size), the record {rec['patch']} px"
    by_name = {s.name: s for s in scenes}
    ref = by_name.get(rec["scene"])
    if ref is not None:
        head = None if ref.name in left else scene_grid(ref, grids)
        if head is None or (head.crs == rec["crs"] and offset_on(rec["transform"], head.transform, patch) == (0, 0)):
            return None
        now = _grid_text(head.crs, head.transform)
        return f"that scene ({_file(ref)}) now lies on other cells ({now}): its file changed"
    for s in scenes:
        head = None if s.name in left else scene_grid(s, grids)
        if (
            head is not None
            and head.crs == rec["crs"]
            and offset_on(rec["transform"], head.transform, patch) is not None
        ):
            return None
    return f"scene {rec['scene']} is not among this run's scenes, and none of them lies on its pixel grid"


def _refuse(path: Path, rec: dict[str, Any], why: str) -> None:
    """The one line refusing a record that does not fit (`_misfit`), naming the file and the ways out."""
    grid = _grid_text(rec["crs"], rec["transform"])
    raise InputError(
        f"{path} records the cells the scenes in {path.parent} are embedded on (those of scene {rec['scene']}: "
        f"{grid}, {rec['patch']} px cells), but {why}; embed into another --out, or pass --overwrite (overwrite=True "
        "in Python) to redo the scenes there on this run's cells"
    )


def _grid_text(crs: Any, t: Any) -> str:
    """A grid in a few words: CRS, pixel size and origin."""
    name = crs.to_string() if crs else "no CRS"
    return f"{name}, {abs(t.a):.10g} x {abs(t.e):.10g} pixels, origin {t.c:.10g}, {t.f:.10g}"


def _file(scene: Scene) -> str:
    """The file a scene's grid is read from: its raster, or a STAC stack's first asset."""
    return scene.sources[0][1] if scene.sources else scene.path


def _started(folder: Path, outputs: Iterable[Path]) -> bool:
    """Whether `folder` holds scene outputs, finished or partial (a work folder): the run's scenes' (`outputs`), or
    any feature raster (scenes are never taken from inside the output folder: `scene_list.list_scenes`)."""
    from geodino.embed.pipeline import work_dir_for

    if any(p.exists() or work_dir_for(p).exists() for p in outputs):
        return True
    return folder.is_dir() and any(p.suffix.lower() in (".tif", ".tiff") for p in folder.iterdir())


def _create(path: Path, text: str) -> bool:
    """Write `text` at `path` unless a file is there (another rank's record): written whole under a temporary name
    and hard-linked into place, which fails when `path` exists, so no rank reads half a record (a filesystem
    without hard links: created with O_EXCL and written at once). False: another rank's record was there."""
    from geodino.io import fsync_path, make_dirs
    from geodino.io_temps import temp_name

    make_dirs(path.parent)
    tmp = temp_name(path)
    try:
        tmp.write_text(text)
        fsync_path(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some FUSE and SMB mounts)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_path(path.parent)
    return True
