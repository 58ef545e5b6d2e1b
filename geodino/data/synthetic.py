"""A synthetic source (`type: synthetic`): deterministic, structured multi-band tiles for smoke tests and demos.

Each sample is a smooth random field per band (bicubic-upsampled coarse noise at two scales plus a few
"parcels"), scaled to the sensor's mean/std, with a georeference on a fake UTM grid, so the whole pipeline
(crops, masks, training, probes) runs with no data on disk. Not for real training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geodino.data.sensors import Sensor, get_sensor

__all__ = ["SyntheticSource"]


class SyntheticSource:
    """`length` synthetic tiles of `tile_size` px with the sensor's bands and statistics."""

    def __init__(
        self, *, sensor: str | Sensor = "sat493m", tile_size: int = 256, length: int = 10_000, name: str = "synthetic"
    ) -> None:
        from geodino.data.rasters import stream_id

        self.sensor = get_sensor(sensor)
        self.band_names = list(self.sensor.bands)
        self.tile = int(tile_size)
        self.length = int(length)
        self.name = name
        self.stream = stream_id(name)

    def __len__(self) -> int:
        return self.length

    def get(self, index: int, seed: int) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F
        from affine import Affine

        rng = np.random.default_rng([int(seed), self.stream, int(index) % self.length])
        c, t = self.sensor.n_bands, self.tile
        field = np.zeros((c, t, t), dtype=np.float32)
        for cells, weight in ((4, 1.0), (16, 0.5)):
            coarse = torch.from_numpy(rng.standard_normal((1, c, cells, cells)).astype(np.float32))
            field += weight * F.interpolate(coarse, size=(t, t), mode="bicubic", align_corners=False)[0].numpy()
        for _ in range(int(rng.integers(2, 6))):  # parcels: sharp-edged rectangles with their own spectrum
            y0, x0 = rng.integers(0, t, size=2)
            h, w = rng.integers(t // 8, t // 2, size=2)
            field[:, y0 : y0 + h, x0 : x0 + w] += rng.standard_normal((c, 1, 1)).astype(np.float32)
        field /= max(float(field.std()), 1e-6)
        mean = np.asarray(self.sensor.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.sensor.std, dtype=np.float32)[:, None, None]
        image = field * std + mean
        if self.sensor.rgb_like:
            image = np.clip(image, 0.0, 1.0)
        x0m, y0m = 500_000.0 + 10.0 * t * (index % 1000), 5_000_000.0 - 10.0 * t * (index // 1000)
        return {
            "image": image.astype(np.float32),
            "valid": np.ones((t, t), dtype=bool),
            "crs": "EPSG:32633",
            "transform": Affine(10.0, 0.0, x0m, 0.0, -10.0, y0m),
            "bands": self.band_names,
            "path": f"synthetic:{index}",
        }
