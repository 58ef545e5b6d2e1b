"""The curated tile list as a data source: `data.sources` reads its `path` column, and restricts a source to the
listed tiles: raster and cube windows (`col/row/width/height`, a cube's `time` step), tar members (`member`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import InputError

__all__ = [
    "GRID_KEY",
    "WINDOW_COLUMNS",
    "apply_members",
    "apply_windows",
    "cube_grid_record",
    "curated_members",
    "curated_windows",
    "is_tile_list",
    "read_paths",
]

WINDOW_COLUMNS = ("col", "row", "width", "height")
GRID_KEY = "geodino:grid"
"""Parquet metadata key of a list's grid: a raster list's `crs`/`res` its windows were cut on (None: native grids);
a cube list's `north_up` marker and the `transforms` of the stores as read (`cube_grid_record`)."""


def is_tile_list(paths: Any) -> bool:
    items = [paths] if isinstance(paths, str | Path) else list(paths or [])
    return len(items) == 1 and str(items[0]).lower().endswith(".parquet")


def read_paths(path: str | Path) -> list[str]:
    """The `path` column of a curated list (relative paths are relative to the list's folder)."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path, columns=["path"])
    except Exception as exc:
        raise InputError(
            f"{path} is not a tile list with a `path` column ({type(exc).__name__}); write one with "
            "`geodino data curate`"
        ) from exc
    files = [str(p) for p in table.column("path").to_pylist()]
    if not files:
        raise InputError(f"tile list {path} is empty; curate with a larger --size (size= in Python)")
    return [f if Path(f).is_absolute() else str(path.parent / f) for f in files]


def _list_columns(paths: Any, needed: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """The `path` and `needed` (+ present `optional`) columns of a curated list given as a source's `paths`; None
    when `paths` is not a tile list or lacks a needed column."""
    if not is_tile_list(paths):
        return None
    import pyarrow.parquet as pq

    path = Path(str(paths if isinstance(paths, str | Path) else paths[0]))
    try:
        names = pq.read_schema(path).names
    except Exception as exc:
        what = f"tile list {path} does not exist" if not path.exists() else f"{path} is not a Parquet tile list"
        what += "" if not path.exists() else f" ({type(exc).__name__})"
        raise InputError(f"{what}; check the path, or write one with `geodino data curate`") from exc
    if not all(c in names for c in needed):
        return None
    cols = [*needed, *(c for c in optional if c in names)]
    t = pq.read_table(path, columns=["path", *cols])
    out: dict[str, Any] = {"path": np.asarray(read_paths(path))}
    out |= {c: t.column(c).to_numpy(zero_copy_only=False) for c in cols}
    grid = (pq.read_schema(path).metadata or {}).get(GRID_KEY.encode())
    if grid is not None:  # lists written before it have none: not checked
        import json

        out["_grid"] = {**json.loads(grid), "list": str(path)}
    out["_list"] = str(path)
    return out


def curated_windows(paths: Any) -> dict[str, np.ndarray] | None:
    """The raster/cube windows (and cube `time` steps) of a curated list given as a source's `paths` (None when
    `paths` is not one)."""
    return _list_columns(paths, WINDOW_COLUMNS, ("time",))


def curated_members(paths: Any) -> dict[str, np.ndarray] | None:
    """The (shard `path`, `member`) pairs of a curated tar list given as a source's `paths` (None otherwise)."""
    return _list_columns(paths, ("member",))


def apply_windows(source: Any, windows: dict[str, Any]) -> Any:
    """Restrict a grid `RasterSource` or `CubeSource` to the listed windows (the tiles a curated list kept)."""
    if "_grid" in windows and hasattr(source, "archive"):
        _check_grid(windows["_grid"], source.archive)
    if not hasattr(source, "archive") and hasattr(source, "scenes"):  # a cube source
        check_cube_grid(windows.get("_grid"), source.scenes, str(windows.get("_list", "")))
    tiles = source.tiles
    scenes = source.archive.scenes if hasattr(source, "archive") else source.scenes
    scene_of = {str(Path(s.path).resolve()): i for i, s in enumerate(scenes)}
    k_of = {sid: k for k, sid in enumerate(tiles.scene_ids)}
    ks = []
    for p in windows["path"]:
        sid = scene_of.get(str(Path(p).resolve()))
        if sid is None or sid not in k_of:
            raise InputError(f"tile list names {p}, which the archive could not read; re-run `geodino data curate`")
        ks.append(k_of[sid])
    tiles.grid_scene = np.asarray(ks, dtype=np.int32)
    tiles.grid_col = np.asarray(windows["col"], dtype=np.int64)
    tiles.grid_row = np.asarray(windows["row"], dtype=np.int64)
    if "time" in windows and hasattr(source, "grid_times"):  # a cube: one listed time step per window
        source.grid_times = np.asarray(windows["time"], dtype=np.int64)
        source._n_times = 1
    return source


def _check_grid(grid: dict[str, Any], archive: Any) -> None:
    """Refuse a raster list whose windows were cut on another grid than `archive` reads (a curation with `crs:`/
    `res:` read without them, or the reverse): the same col/row then name other pixels, partly past the scene."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    def same_crs(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is None and b is None
        try:
            return CRS.from_user_input(a) == CRS.from_user_input(b)
        except CRSError:  # an unreadable text: compare it as written
            return str(a) == str(b)

    def text(crs: Any, res: Any) -> str:
        if crs is None:
            return "the scenes' native grids (no crs:/res:)"
        return f"crs: {crs}" + (f", res: {res[0]:g}" if res else " at the scenes' own resolution")

    res = archive.res and list(archive.res)
    listed = grid.get("res")
    same_res = (listed is None and res is None) or (
        listed is not None and res is not None and np.allclose(listed, res, rtol=1e-9, atol=0)
    )
    if not (same_crs(grid.get("crs"), archive.crs) and same_res):
        raise InputError(
            f"tile list {grid['list']} holds windows on {text(grid.get('crs'), listed)}, but this source reads "
            f"{text(archive.crs, res)}; set the source's crs:/res: as the curation had them (its config.yaml does)"
        )


def apply_members(source: Any, members: dict[str, np.ndarray]) -> Any:
    """Restrict a `TarShardSource` to the listed (shard, member) pairs, in the list's order."""
    shard_of = {str(Path(p).resolve()): i for i, p in enumerate(source.shards)}
    k_of = {(int(s), n): k for k, (s, n) in enumerate(zip(source.shard_ids, source.names))}
    ks = []
    for p, m in zip(members["path"], members["member"]):
        k = k_of.get((shard_of.get(str(Path(p).resolve()), -1), str(m)))
        if k is None:
            raise InputError(f"tile list names {m} in {p}, which the shard does not hold; re-run `geodino data curate`")
        ks.append(k)
    ks_arr = np.asarray(ks, dtype=np.int64)
    source.shard_ids, source.offsets, source.sizes = (
        source.shard_ids[ks_arr],
        source.offsets[ks_arr],
        source.sizes[ks_arr],
    )
    source.names = [source.names[k] for k in ks]
    source._n = len(ks)
    return source


def cube_grid_record(source: Any) -> dict[str, Any]:
    """The `GRID_KEY` record of a cube list: `north_up` (its windows are rows/cols of the stores read north-up, as
    geodino reads them since south-up/east-west stores are mirrored on read) and each store's affine as read, by
    resolved path; a reader compares it with the stores as it reads them (`check_cube_grid`)."""
    return {
        "north_up": True,
        "transforms": {str(Path(sc.path).resolve()): [float(v) for v in sc.transform[:6]] for sc in source.scenes},
    }


def check_cube_grid(grid: dict[str, Any] | None, scenes: Any, list_path: str) -> None:
    """Refuse a cube list whose record (`cube_grid_record`) differs from the stores as now read: windows cut on rows
    that have since been mirrored (a list from before north-up reading) or on another affine name other pixels.
    A list without a record (older geodino) is read, with one warning when a store it reads is mirrored (south-up
    or east-west), since such a list may predate north-up reading and then point at mirrored rows."""
    if grid is None:
        flipped = [sc for sc in scenes if getattr(sc, "mirrored", ())]
        if flipped:
            import warnings

            sc = flipped[0]
            how = " and ".join({"y": "south-up (ascending y)", "x": "east-west (descending x)"}[d] for d in sc.mirrored)
            warnings.warn(
                f"tile list {list_path} records no grid and datacube {sc.path} is stored {how}, which geodino "
                "reads north-up (mirrored); a list cut before geodino did so points at mirrored rows/columns: "
                "re-run `geodino data curate` if it may predate that",
                stacklevel=3,
            )
        return
    name = grid.get("list", list_path)
    if not grid.get("north_up"):
        raise InputError(
            f"tile list {name} was cut on stores read as stored, not north-up as they are read now; re-run "
            "`geodino data curate`"
        )
    recorded = grid.get("transforms") or {}
    from geodino.data.cube_open import recorded_for

    for sc in scenes:
        listed = recorded_for(recorded, sc.path, f"tile list {name}")
        if listed is None:
            continue
        now = [float(v) for v in sc.transform[:6]]
        if not np.allclose(listed[:6], now, rtol=1e-9, atol=1e-9):
            fmt = ", ".join
            raise InputError(
                f"tile list {name} was cut on datacube {sc.path} with affine ({fmt(f'{v:g}' for v in listed[:6])}) "
                f"but it is read now with ({fmt(f'{v:g}' for v in now)}); its windows name other pixels: re-run "
                "`geodino data curate`"
            )
