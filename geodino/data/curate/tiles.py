"""The tiles of an archive, by index: what curation embeds and what its tables describe.

Tiles come from the same source objects pretraining reads (`geodino.data.loaders.build_source`), so a curated
list names exactly the tiles pretraining would draw: raster and cube sources are enumerated on their grid
(`tile_size`, `tile_units`, `stride`, `roi`, `crs`/`res` of the source; a cube's "random" time sampling gives one
tile per (window, time step); first/last one tile per window at the date the source reads: the nearest with a
valid pixel there where the chosen one is missing), image folders and tar shards one tile per image. Sources that
only draw random windows (torchgeo, synthetic) have no tile list to curate.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.config import SourceConfig
from geodino.data.curate.tilelist import WINDOW_COLUMNS
from geodino.errors import InputError
from geodino.io import content_stamp

__all__ = ["CURATABLE", "Tiles"]

CURATABLE = ("images", "tar", "raster", "cube")


def _grid_config(cfg: SourceConfig, where: str) -> SourceConfig:
    """The source config as curation reads it: every grid tile once (no nodata pre-scan: curation counts
    nodata itself), in archive order."""
    if cfg.type not in CURATABLE:
        raise InputError(
            f"{where} (type {cfg.type}) draws random windows and has no fixed tile list to curate; curate the "
            "files behind it as a raster source instead"
        )
    if cfg.type == "cube" and cfg.time_sampling == "stack":
        raise InputError(
            f"{where}: time_sampling stack gives time series, not tiles a backbone embeds; curate with "
            "time_sampling random (one tile per time step), first or last"
        )
    if cfg.type in ("raster", "cube"):
        return dataclasses.replace(cfg, sampling="grid", max_nodata_fraction=1.0)
    return cfg


def _cube_time(src: Any, tile: tuple[int, int, int, int, int], t_pos: int, skip: bool) -> int:
    """The time step the cube source reads for grid tile `tile` (scene, col, row, width, height); -1: the cube has
    no time dimension. first/last read the window (`CubeSource.dated_read`) to find the date the source falls back
    to where its own has no valid pixel there, so the list never names a missing acquisition. A failed read under
    on_error skip (`skip`) keeps the first/last date: the tile's own read fails again and drops it as nodata."""
    scene = src.scenes[tile[0]]
    if scene.time_dim is None:
        return -1
    if src.time_sampling == "random":
        return int(t_pos)
    first_or_last = 0 if src.time_sampling == "first" else int(scene.array.sizes[scene.time_dim]) - 1
    try:
        return int(src.dated_read(*tile, first_or_last)[0])
    except InputError:
        if not skip:
            raise
        return first_or_last


class Tiles:
    """Index -> (reflectance image [C,H,W], valid [H,W]) over one or more sources, with a table of what each
    tile is (`source`, `path`, and per type `member` (tar), `col/row/width/height` (raster, cube), `time`
    (cube)). Picklable for DataLoader workers (the sources re-open their handles per process)."""

    def __init__(
        self, configs: list[SourceConfig], where: list[str] | None = None, skip_hint: str | None = None
    ) -> None:
        """`skip_hint` replaces "set on_error: skip" in an image source's decode error (e.g. a CLI flag)."""
        from geodino.data.loaders import build_source

        where = where or [f"data.sources[{i}]" for i in range(len(configs))]
        self.configs = [_grid_config(c, w) for c, w in zip(configs, where)]
        self.names = [c.name or f"source{i}" for i, c in enumerate(self.configs)]
        self.sources = [build_source(c, index=i, shuffle=False, progress=False) for i, c in enumerate(self.configs)]
        for s in self.sources:
            if skip_hint and hasattr(s, "skip_hint"):
                s.skip_hint = skip_hint
        bands = {len(s.band_names) for s in self.sources}
        if len(bands) > 1:
            desc = ", ".join(f"{n}: {len(s.band_names)}" for n, s in zip(self.names, self.sources))
            raise InputError(f"the sources give different band counts ({desc}); one backbone embeds them all")
        self.sensors = [s.sensor for s in self.sources]
        self.sensor = self.sensors[0]
        self.types = [c.type for c in self.configs]
        rows = [self._rows(i) for i in range(len(self.sources))]
        self.counts = np.array([len(r["path"]) for r in rows], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        self.n = int(self.starts[-1])
        self.source_of = np.repeat(np.arange(len(self.sources)), self.counts)
        self.table: dict[str, Any] = {"source": [self.names[i] for i in self.source_of]}
        for key in ("path", "member", *WINDOW_COLUMNS, "time"):
            if any(key in r for r in rows):
                fill: Any = "" if key in ("path", "member") else -1
                self.table[key] = [v for r in rows for v in r.get(key, [fill] * len(r["path"]))]

    def _rows(self, i: int) -> dict[str, list]:
        """The identity columns of source `i`'s tiles, in its (unshuffled) index order."""
        src, kind = self.sources[i], self.types[i]
        if kind == "images":
            return {"path": [str(Path(f).resolve()) for f in src.files]}
        if kind == "tar":
            return {
                "path": [str(Path(src.shards[s]).resolve()) for s in src.shard_ids],
                "member": list(src.names),
            }
        scenes = src.archive.scenes if kind == "raster" else src.scenes
        n_times, skip = getattr(src, "_n_times", 1), self.configs[i].on_error == "skip"
        rows: dict[str, list] = {"path": [], **{c: [] for c in WINDOW_COLUMNS}}
        if kind == "cube":
            rows["time"] = []
        for k in range(len(src)):
            sid, col, row, w, h = src.tiles.grid_tile(k // n_times)
            rows["path"].append(str(Path(scenes[sid].path).resolve()))
            for name, v in zip(WINDOW_COLUMNS, (col, row, w, h)):
                rows[name].append(int(v))
            if kind == "cube":
                listed = getattr(src, "grid_times", None)  # a curated list's own time steps
                t = int(listed[k]) if listed is not None else _cube_time(src, (sid, col, row, w, h), k % n_times, skip)
                rows["time"].append(t)
        if kind == "cube" and src.time_sampling in ("first", "last"):  # one tile per window: read at the listed date
            src.grid_times = np.asarray(rows["time"], dtype=np.int64)
        return rows

    def __len__(self) -> int:
        return self.n

    def locate(self, k: int) -> tuple[int, int]:
        """(source index, index within that source) of tile `k`."""
        i = int(self.source_of[k])
        return i, int(k - self.starts[i])

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Tile `k`; one whose read failed under on_error skip comes back with no valid pixel, so that the nodata
        filter drops it rather than keep it under another tile's pixels: an image source reads the next image
        instead (caught by its path), a raster source would draw the next grid tile (so its window is read here
        directly), a cube read raises."""
        i, j = self.locate(k)
        src, kind = self.sources[i], self.types[i]
        if kind in ("raster", "cube"):
            return (*self._grid_read(i, j), int(k))
        s = src.get(j, 0)
        valid = s["valid"]
        if s.get("path") != src.label(j):
            valid = np.zeros_like(valid)
        return s["image"], valid, int(k)

    def _grid_read(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, valid) of grid tile `j` of raster or cube source `i`, exactly that window (no retry on another
        tile); a failed read is all nodata under on_error skip (warned) and raises under stop."""
        import warnings

        src = self.sources[i]
        tile = src.tiles.grid_tile(j // getattr(src, "_n_times", 1))
        try:
            s = src.archive.sample(*tile) if self.types[i] == "raster" else src.get(j, 0)
        except InputError as exc:
            if self.configs[i].on_error != "skip":
                raise
            warnings.warn(f"{exc}; the tile is dropped as nodata (on_error: skip)", stacklevel=2)
            _, _, _, w, h = tile
            return np.zeros((len(src.band_names), h, w), dtype=np.float32), np.zeros((h, w), dtype=bool)
        return s["image"], s["valid"]

    def identity(self) -> Iterator[str]:
        """One string per tile naming it (source, path and member or window and time step), streamed."""
        keys = [k for k in ("source", "path", "member", *WINDOW_COLUMNS, "time") if k in self.table]
        return ("|".join(str(self.table[c][k]) for c in keys) for k in range(self.n))

    def fingerprint(self) -> str:
        """A hash of every tile's identity and of each distinct file's size and mtime_ns (tar shards and cubes
        by their path): cached embeddings apply only while neither the tile list nor any file changed."""
        h = hashlib.sha256()
        for line in self.identity():
            h.update(line.encode() + b"\n")
        for path in dict.fromkeys(self.table["path"]):
            h.update(f"{path}|{content_stamp(str(path))}\n".encode())
        return h.hexdigest()

    def footprints(self) -> list | None:
        """Tile footprints (EPSG:4326 shapely polygons; None for images and tar members), or None when no tile
        is georeferenced."""
        if not any(t in ("raster", "cube") for t in self.types):
            return None
        import shapely
        from rasterio.warp import transform_geom

        geoms: list = []
        for k in range(self.n):
            i, j = self.locate(k)
            if self.types[i] not in ("raster", "cube"):
                geoms.append(None)
                continue
            src = self.sources[i]
            scenes = src.archive.scenes if self.types[i] == "raster" else src.scenes
            sid, col, row, w, h = src.tiles.grid_tile(j // getattr(src, "_n_times", 1))
            s = scenes[sid]
            t = s.affine
            corners = [t @ (col, row), t @ (col + w, row), t @ (col + w, row + h), t @ (col, row + h)]
            poly = shapely.Polygon(corners)
            geoms.append(
                shapely.geometry.shape(transform_geom(s.crs, "EPSG:4326", shapely.geometry.mapping(poly)))
                if s.crs
                else poly
            )
        return geoms
