"""Any torchgeo `GeoDataset` as a geodino source (`type: torchgeo`).

For users whose archives already have a torchgeo dataset class (file-name regexes with dates, band-per-file
layouts such as `torchgeo.datasets.Sentinel2`/`Landsat8`, unions and intersections of datasets): tiles are
drawn from (seed, index) like every geodino source, inside the footprints of the dataset's GeoDataFrame index,
aligned to its resolution, and read with `dataset[x0:x1, y0:y1]` in the dataset's single CRS. That read is
torchgeo's (slow: `rasterio.merge` per query, see docs/data.md); prefer `type: raster` when files are plain
multi-band GeoTIFFs/COGs/VRTs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from geodino.data.sensors import Sensor, get_sensor
from geodino.data.tiling import least_nodata
from geodino.data.validity import valid_pixels
from geodino.errors import ConfigError, InputError, plural

__all__ = ["TorchGeoSource"]


def _dataset_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    if not module:
        module, name = "torchgeo.datasets", path
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):  # the named module itself is missing
            raise ConfigError(
                f"torchgeo dataset class {path!r}: no module {module!r} (e.g. torchgeo.datasets.Sentinel2)"
            ) from exc
        # a dependency of that module is missing: say which, not "class not found"
        raise ConfigError(
            f"importing {module!r} for {path!r} needs the missing package {exc.name!r}: pip install {exc.name}"
        ) from exc
    try:
        return getattr(mod, name)
    except AttributeError as exc:
        raise ConfigError(f"torchgeo dataset class {path!r} not found (e.g. torchgeo.datasets.Sentinel2)") from exc


def _band_take(dataset: Any, sensor: Sensor) -> tuple[int, ...] | None:
    """Indexes of the sensor's bands among the bands the dataset reads, matched by its band names (`dataset.bands`,
    as torchgeo's `RasterDataset` sets them), or None when it names none of them (then the counts must agree and
    the bands are taken in order). A dataset naming some of the sensor's bands but not all is refused."""
    names = [str(b) for b in (getattr(dataset, "bands", None) or ())]
    canon = [sensor.resolve_band(b, strict=False) for b in names]
    where: dict[str, int] = {}
    for i, c in enumerate(canon):
        if c is not None:
            where.setdefault(c, i)
    if not where:
        return None
    missing = [b for b in sensor.bands if b not in where]
    if missing:
        raise InputError(
            f"torchgeo dataset {type(dataset).__name__} reads bands {', '.join(names)}, without sensor "
            f"{sensor.name!r}'s {', '.join(missing)}; set the source's `bands:` to bands it has, or use a sensor of "
            "its bands"
        )
    return tuple(where[b] for b in sensor.bands)


def _files_nodata(dataset: Any, limit: int = 8) -> float | None:
    """The nodata value the dataset's files declare (the first of up to `limit` indexed files that declares one),
    as torchgeo's read (`rasterio.merge.merge`) fills masked cells with it; 0 (merge's fill) for files with an
    internal mask and no nodata value; None when the files declare neither or are not listed (`filepath`)."""
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    from geodino.data.rasters import own_mask

    index = getattr(dataset, "index", None)
    paths = list(dict.fromkeys(index["filepath"]))[:limit] if index is not None and "filepath" in index else []
    masked = False
    for path in paths:
        try:
            with rasterio.open(path) as src:
                if src.nodata is not None:
                    return float(src.nodata)
                masked = masked or own_mask(src, 1)
        except (RasterioError, CPLE_BaseError, OSError):  # an unreadable header: torchgeo's own read will say so
            continue
    return 0.0 if masked else None


class TorchGeoSource:
    """Deterministic random tiles (pixel size `tile_size`) of a torchgeo GeoDataset."""

    def __init__(
        self,
        dataset: Any,
        *,
        sensor: str | Sensor,
        tile_size: int = 256,
        kwargs: Mapping[str, Any] | None = None,
        name: str = "torchgeo",
        max_nodata_fraction: float = 0.5,
        max_tries: int = 10,
        bands: list[str] | None = None,
        nodata: float | None = None,
    ) -> None:
        from geodino.data.rasters import stream_id

        if isinstance(dataset, str):
            try:
                dataset = _dataset_class(dataset)(**dict(kwargs or {}))
            except ConfigError:
                raise
            except Exception as exc:  # torchgeo raises DatasetNotFoundError and others for missing files
                raise InputError(f"torchgeo dataset {dataset} could not be built: {exc}") from exc
        self.dataset = dataset
        self.sensor = get_sensor(sensor).select(list(bands)) if bands else get_sensor(sensor)
        self.band_names = list(self.sensor.bands)
        # the source's nodata, else the sensor's, else the files' own (torchgeo's read fills masked cells with it:
        # without it fully-nodata tiles passed as valid); no nodata when none declares one: 0 would mask legitimate
        # all-zero pixels
        self.nodata = nodata if nodata is not None else self.sensor.nodata
        if self.nodata is None:
            self.nodata = _files_nodata(dataset)
        self._take = _band_take(dataset, self.sensor)
        self.tile = int(tile_size)
        self.name = name
        self.stream = stream_id(name)
        self.max_nodata_fraction = float(max_nodata_fraction)
        self.max_tries = max(1, int(max_tries))
        index = dataset.index
        self.res = tuple(float(r) for r in dataset.res)
        bounds = np.asarray(index.geometry.bounds.values, dtype=np.float64)  # minx, miny, maxx, maxy
        span_x = bounds[:, 2] - bounds[:, 0] - self.tile * self.res[0]
        span_y = bounds[:, 3] - bounds[:, 1] - self.tile * self.res[1]
        keep = (span_x >= 0) & (span_y >= 0)
        if not keep.any():
            raise InputError(f"tile size {tile_size} px is larger than every file of the torchgeo dataset")
        self.bounds = bounds[keep]
        area = (span_x[keep] + self.res[0]) * (span_y[keep] + self.res[1])
        self._cum = np.cumsum(area / area.sum())
        self.crs = dataset.crs

    def __len__(self) -> int:
        w = (self.bounds[:, 2] - self.bounds[:, 0]) * (self.bounds[:, 3] - self.bounds[:, 1])
        return max(1, int(w.sum() / (self.tile**2 * self.res[0] * self.res[1])))

    def get(self, index: int, seed: int) -> dict[str, Any]:
        from affine import Affine

        rng = np.random.default_rng([int(seed), self.stream, int(index)])

        def draw() -> dict[str, Any]:
            k = min(int(np.searchsorted(self._cum, rng.random(), side="right")), len(self.bounds) - 1)
            x0b, y0b, x1b, y1b = self.bounds[k]
            rx, ry = self.res
            nx = int((x1b - x0b) / rx) - self.tile
            ny = int((y1b - y0b) / ry) - self.tile
            x0 = x0b + int(rng.integers(0, max(nx, 0) + 1)) * rx
            y1 = y1b - int(rng.integers(0, max(ny, 0) + 1)) * ry
            x1, y0 = x0 + self.tile * rx, y1 - self.tile * ry
            out = self.dataset[x0:x1, y0:y1]
            raw = np.asarray(out["image"], dtype=np.float32)
            if self._take is not None:  # the sensor's bands, by the dataset's band names
                raw = raw[list(self._take)]
            elif raw.shape[0] != self.sensor.n_bands:
                raise InputError(
                    f"torchgeo dataset gives {plural(raw.shape[0], 'band')} but sensor {self.sensor.name!r} has "
                    f"{self.sensor.n_bands} ({', '.join(self.sensor.bands)}) and {type(self.dataset).__name__} "
                    "names none of its bands; set the source's `bands:` (or bands= in dataset_kwargs) or use a "
                    "sensor of its bands"
                )
            valid = valid_pixels(raw, self.nodata)  # the one rule: every band nodata, or any band NaN
            return {
                "image": self.sensor.to_reflectance(raw).astype(np.float32, copy=False),
                "valid": valid,
                "crs": self.crs.to_wkt() if hasattr(self.crs, "to_wkt") else str(self.crs),
                "transform": Affine(rx, 0.0, x0, 0.0, -ry, y1),
                "bands": self.band_names,
                "path": f"torchgeo:{type(self.dataset).__name__}",
            }

        return least_nodata(draw, self.max_tries, self.max_nodata_fraction)[0]
