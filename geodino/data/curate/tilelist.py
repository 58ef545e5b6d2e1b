"""The curated tile list as a data source: `data.sources` reads its `path` column (and raster windows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import InputError

__all__ = ["WINDOW_COLUMNS", "apply_windows", "curated_windows", "is_tile_list", "read_paths"]

WINDOW_COLUMNS = ("col", "row", "width", "height")


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
        raise InputError(f"tile list {path} is empty; curate with a larger --size")
    return [f if Path(f).is_absolute() else str(path.parent / f) for f in files]


def curated_windows(paths: Any) -> dict[str, np.ndarray] | None:
    """The raster windows of a curated list given as a source's `paths` (None when `paths` is not one)."""
    if not is_tile_list(paths):
        return None
    import pyarrow.parquet as pq

    path = Path(str(paths if isinstance(paths, str | Path) else paths[0]))
    names = pq.read_schema(path).names
    if not all(c in names for c in WINDOW_COLUMNS):
        return None
    t = pq.read_table(path, columns=["path", *WINDOW_COLUMNS])
    return {"path": np.asarray(read_paths(path)), **{c: t.column(c).to_numpy() for c in WINDOW_COLUMNS}}


def apply_windows(source: Any, windows: dict[str, np.ndarray]) -> Any:
    """Restrict a grid `RasterSource` to the listed windows (the tiles a curated list kept)."""
    tiles = source.tiles
    scene_of = {str(Path(s.path).resolve()): i for i, s in enumerate(source.archive.scenes)}
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
    return source
