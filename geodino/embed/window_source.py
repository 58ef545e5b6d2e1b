"""A pixel window of a source read as a raster of its own (`WindowSource`), the reader of a run's `bbox`/`window`
(`geodino.embed.extent.windowed`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from geodino.embed.sources import WindowedSource

__all__ = ["WindowSource"]


class WindowSource(WindowedSource):
    """A pixel window of a source read as a raster of its own: `info` has the window's size and transform, and
    pixels outside the window read as outside the raster (zero, invalid), as in a file cut out with gdal_translate.
    """

    def __init__(self, base: WindowedSource, window: tuple[int, int, int, int]) -> None:
        from geodino.data.rasters import window_affine

        c, r, w, h = window
        self.base, self.window = base, (int(c), int(r), int(w), int(h))
        self.bands, self.kind = base.bands, base.kind
        self.input_count = base.input_count
        self.path = getattr(base, "path", base.info.path)
        self.user_nodata = getattr(base, "user_nodata", None)
        self.info = dataclasses.replace(
            base.info, height=int(h), width=int(w), transform=window_affine(base.info.transform, c, r)
        )

    def open(self) -> WindowSource:
        """A copy on its own open handle of the source (one per thread)."""
        return WindowSource(self.base.open(), self.window)

    def close(self) -> None:
        self.base.close()

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        c, r, _, _ = self.window
        return self.base.read_inside(y0 + r, y1 + r, x0 + c, x1 + c)
