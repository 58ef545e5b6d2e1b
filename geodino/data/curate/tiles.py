"""The tiles of an archive, by index: what curation embeds and what its tables describe."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geodino.data.curate.config import CurateConfig
from geodino.data.curate.tilelist import WINDOW_COLUMNS

__all__ = ["Tiles"]


class Tiles:
    """Index -> (reflectance image [C,H,W], valid [H,W]) for an image folder or a raster grid; picklable for
    DataLoader workers (the raster archive re-opens its handles per process)."""

    def __init__(self, cfg: CurateConfig) -> None:
        from geodino.data.sensors import get_sensor

        self.type = cfg.type
        if cfg.type == "images":
            from geodino.data.paths import IMAGE_EXTS, resolve_paths

            self.files = resolve_paths(cfg.paths, IMAGE_EXTS, what="image")
            self.sensor = get_sensor(cfg.sensor or "imagenet")
            self.windows = None
            self.table = {"path": [str(Path(f).resolve()) for f in self.files]}
        else:
            from geodino.data.archive import RasterArchive
            from geodino.data.tiling import TileSampler

            self.archive = RasterArchive(cfg.paths, sensor=cfg.sensor, bands=cfg.bands, progress=False)
            self.sensor = self.archive.sensor
            grid = TileSampler(self.archive.scenes, cfg.tile_size, sampling="grid")
            self.windows = [grid.grid_tile(k) for k in range(len(grid))]
            scenes = self.archive.scenes
            self.table = {
                "path": [str(Path(scenes[w[0]].path).resolve()) for w in self.windows],
                **{name: [int(w[i + 1]) for w in self.windows] for i, name in enumerate(WINDOW_COLUMNS)},
            }
        self.n = len(self.table["path"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.type == "images":
            from geodino.data.images import decode_image

            path = self.files[k]
            data = decode_image(Path(path).read_bytes(), path)
            image = self.sensor.to_reflectance(data.astype(np.float32)).astype(np.float32)
            return image, np.ones(image.shape[1:], bool)
        s = self.archive.sample(*self.windows[k])
        return s["image"], s["valid"]
