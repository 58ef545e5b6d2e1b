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
from geodino.data.curate.qaband import QaBand, read_qa_window, resolve_qa_band, warped_model_qa
from geodino.data.curate.tilelist import WINDOW_COLUMNS
from geodino.errors import InputError
from geodino.io import content_stamp

__all__ = ["CURATABLE", "Tiles"]

CURATABLE = ("images", "tar", "raster", "cube")
MAX_IMAGE_PIXELS = 8192 * 8192
"""The largest image file curated as one tile (it is embedded whole): a 30000 x 30000 px PNG of 0.9 MB was decoded
(2.7 GB, torchvision's decoder has no decompression-bomb guard) and the run killed for memory. Checked from the
header before the image is decoded."""
_BLANK = 224  # the side of the all-nodata stand-in of an image dropped under on_error skip (whole patches of 8-32)


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


def _chosen_time(src: Any, scene_i: int) -> int:
    """The time step a cube source chooses for a grid tile of scene `scene_i` under first/last (before any fallback:
    `CubeSource.dated_read` finds the date it reads when the tile is read); -1: the cube has no time dimension."""
    scene = src.scenes[scene_i]
    if scene.time_dim is None:
        return -1
    return 0 if src.time_sampling == "first" else int(scene.array.sizes[scene.time_dim]) - 1


class Tiles:
    """Index -> (reflectance image [C,H,W], valid [H,W]) over one or more sources, with a table of what each
    tile is (`source`, `path`, and per type `member` (tar), `col/row/width/height` (raster, cube), `time`
    (cube)). Picklable for DataLoader workers (the sources re-open their handles per process).

    A cube under time_sampling first/last reads the nearest date with a valid pixel where its own has none, which
    only the tile's read finds: until `set_times` is given the dates `read` returned, `table["time"]` holds the
    first/last date itself (`dated`: those rows), and the identity, fingerprint and cache key are of that list, so
    building the list reads nothing and each tile is read once, by the embedding pass."""

    def __init__(
        self,
        configs: list[SourceConfig],
        where: list[str] | None = None,
        skip_hint: str | None = None,
        qa_band: str | None = None,
    ) -> None:
        """`skip_hint` replaces "set on_error: skip" in an image source's decode error (e.g. a CLI flag); `qa_band`
        names a band of every raster read apart from the image, for the cloud screen only (`read_qa`)."""
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
        self.qa_bands: list[QaBand | None] = [None] * len(self.sources)
        if qa_band:
            self.qa_bands = [self._qa_band(qa_band, i, w) for i, w in enumerate(where)]
        # without --qa-band: a QA band among the bands read, reprojected, is read apart with nearest for the qa rule
        self._warped_qa = [
            warped_model_qa(s.archive) if t == "raster" and not qa_band else None
            for s, t in zip(self.sources, self.types)
        ]
        self._dated = [False] * len(self.sources)  # per source: cube first/last rows whose date `set_times` records
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
        n_times = getattr(src, "_n_times", 1)
        rows: dict[str, list] = {"path": [], **{c: [] for c in WINDOW_COLUMNS}}
        if kind == "cube":
            rows["time"] = []
        listed = getattr(src, "grid_times", None)  # a curated list's own time steps
        dated = kind == "cube" and listed is None and src.time_sampling in ("first", "last")
        for k in range(len(src)):
            sid, col, row, w, h = src.tiles.grid_tile(k // n_times)
            rows["path"].append(str(Path(scenes[sid].path).resolve()))
            for name, v in zip(WINDOW_COLUMNS, (col, row, w, h)):
                rows[name].append(int(v))
            if kind == "cube":
                if listed is not None:
                    t = int(listed[k])
                elif dated:  # the date the tile's read falls back to is set by `set_times`
                    t = _chosen_time(src, sid)
                else:
                    t = int(k % n_times) if scenes[sid].time_dim is not None else -1
                rows["time"].append(t)
        self._dated[i] = dated
        return rows

    def _qa_band(self, name: str, i: int, where: str) -> QaBand:
        """Source `i`'s screening QA band `name` (resolved in each of its files), refused for other than rasters."""
        if self.types[i] != "raster":
            raise InputError(
                f"--qa-band {name} (qa_band= in Python) reads a band of raster files, but {where} is a source of type "
                f"{self.configs[i].type}; curate rasters with it, or drop --qa-band"
            )
        return resolve_qa_band(name, self.sources[i].archive.scenes, where)

    def read_qa(self, k: int) -> np.ndarray | None:
        """The raw QA band values [h, w] of tile `k`'s window (None: its source has no --qa-band, nor a QA band among
        the bands of reprojected scenes: `qaband.warped_model_qa`), read apart from the image, so that a --qa-band never
        reaches the backbone and a reprojected QA band is warped with nearest, not the image's resampling. A failed
        read is all zeros under on_error skip (the tile's image read fails too and drops it as nodata) and raises
        under stop."""
        i, j = self.locate(k)
        qa = self.qa_bands[i] or self._warped_qa[i]
        if qa is None:
            return None
        src = self.sources[i]
        sid, col, row, w, h = src.tiles.grid_tile(j)
        try:
            return read_qa_window(src.archive, qa, sid, col, row, w, h)
        except Exception as exc:
            if self.configs[i].on_error == "skip":
                return np.zeros((h, w), dtype=np.uint16)
            what = f"--qa-band {qa.name}" if self.qa_bands[i] else f"QA band {qa.name} (read with nearest resampling)"
            raise InputError(f"{what}: window read of {src.archive.scenes[sid].path} failed ({exc})") from exc

    def set_times(self, times: Any) -> None:
        """Record the time step each tile was read at (`read`'s fourth value, per tile in index order) for the
        rows of cubes under first/last, and read those tiles at it from then on (`CubeSource.grid_times`: the
        exemplars, a curated list); other rows keep theirs."""
        times = np.asarray(times, dtype=np.int64)
        column = np.asarray(self.table["time"], dtype=np.int64) if "time" in self.table else None
        for i, dated in enumerate(self._dated):
            if not dated or column is None:
                continue
            lo, hi = int(self.starts[i]), int(self.starts[i + 1])
            column[lo:hi] = times[lo:hi]
            self.sources[i].grid_times = column[lo:hi].copy()
            self._dated[i] = False
        if column is not None:
            self.table["time"] = column.tolist()

    def __len__(self) -> int:
        return self.n

    def locate(self, k: int) -> tuple[int, int]:
        """(source index, index within that source) of tile `k`."""
        i = int(self.source_of[k])
        return i, int(k - self.starts[i])

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Tile `k` as (image, valid, k): `read` without the time step."""
        return self.read(k)[:3]

    def read(self, k: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Tile `k` as (image, valid, k, time step read; -1 without one). One whose read failed under on_error skip
        comes back with no valid pixel, so that the nodata filter drops it rather than keep it under another tile's
        pixels: an image source reads the next image instead (caught by its path), a raster source would draw the
        next grid tile (so its window is read here directly), a cube read raises."""
        i, j = self.locate(k)
        src, kind = self.sources[i], self.types[i]
        if kind in ("raster", "cube"):
            image, valid, t = self._grid_read(i, j)
            return image, valid, int(k), t
        if kind == "images" and self._too_large(i, j):  # dropped as nodata (on_error: skip), as a corrupt image
            blank = np.zeros((len(src.band_names), _BLANK, _BLANK), dtype=np.float32)
            return blank, np.zeros((_BLANK, _BLANK), dtype=bool), int(k), -1
        s = src.get(j, 0)
        valid = s["valid"]
        if s.get("path") != src.label(j):
            valid = np.zeros_like(valid)
        return s["image"], valid, int(k), -1

    def _too_large(self, i: int, j: int) -> bool:
        """Whether image file `j` of source `i` is larger than `MAX_IMAGE_PIXELS` by its header (read before the
        pixels; one beyond Pillow's decompression-bomb limit counts, its size unread): raises under on_error stop,
        warns under skip (True: drop it). Any other header that does not read is left to the decoder, which says
        what is wrong."""
        import warnings

        from PIL import Image

        from geodino.data.headers import HeaderError, read_header

        path = self.sources[i].label(j)
        try:
            head = read_header(path)
        except HeaderError as exc:
            if not isinstance(exc.__cause__, Image.DecompressionBombError):
                return False
            size = "larger than Pillow's decompression-bomb limit"
        else:
            if head.width * head.height <= MAX_IMAGE_PIXELS:
                return False
            size = f"{head.width} x {head.height} px"
        what = (
            f"image {path} is {size}, more than curate embeds as one tile ({MAX_IMAGE_PIXELS // 1_000_000} Mpx, "
            "8192 x 8192; it would be decoded and embedded whole)"
        )
        if self.configs[i].on_error != "skip":
            raise InputError(
                f"{what}; cut it into tiles (a georeferenced file as --type raster with --tile-size; type='raster' and "
                "tile_size= in Python), move it out of the folder, or pass --on-error skip (on_error='skip' in Python; "
                "it is then dropped as nodata)"
            )
        warnings.warn(f"{what}; it is dropped as nodata (on_error: skip)", stacklevel=2)
        return True

    def _grid_read(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(image, valid, time step) of grid tile `j` of raster or cube source `i`, exactly that window (no retry on
        another tile); a failed read is all nodata under on_error skip (warned) and raises under stop. A cube tile
        under first/last whose date `set_times` has not recorded is read by `CubeSource.dated_read`, which falls
        back to the nearest date with data, and its time step is the one read (a failed read keeps first/last's)."""
        import warnings

        src = self.sources[i]
        tile = src.tiles.grid_tile(j // getattr(src, "_n_times", 1))
        t = int(self.table["time"][int(self.starts[i]) + j]) if "time" in self.table else -1
        try:
            if self._dated[i]:
                read, s = src.dated_read(*tile, t if t >= 0 else None)
                return s["image"], s["valid"], t if read is None else int(read)
            # a cube tile at its listed time step, read as is: `CubeSource.get` would warn that a tile without a
            # valid pixel trains as constant crops ('check ... max_tries'), which the nodata filter drops here
            s = src.archive.sample(*tile) if self.types[i] == "raster" else src.read(*tile, t if t >= 0 else None)
        except InputError as exc:
            if self.configs[i].on_error != "skip":
                raise
            warnings.warn(f"{exc}; the tile is dropped as nodata (on_error: skip)", stacklevel=2)
            _, _, _, w, h = tile
            return np.zeros((len(src.band_names), h, w), dtype=np.float32), np.zeros((h, w), dtype=bool), t
        return s["image"], s["valid"], t

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
