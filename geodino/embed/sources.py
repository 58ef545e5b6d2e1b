"""Inputs of a feature raster: any rasterio-readable raster (GeoTIFF, COG, VRT mosaic) or an xarray/Zarr cube.

A source answers `read(y0, y1, x0, x1) -> (data [C,h,w] float32, valid [h,w] bool)` for any pixel window,
also partly or fully outside the raster (outside is invalid and zero), so the tiler never special-cases edges.
Rasters are read through `geodino.data.rasters.read_window` and cubes are opened by `geodino.data.cubes.open_cube`
(the training readers); validity is the one rule of `geodino.data.validity` (every band nodata, or any band
NaN; the internal mask or alpha band when no nodata value is declared); an optional user nodata value overrides a
wrong declared one.
Each thread opens its own handle (GDAL handles are not thread-safe): call `open()` in the thread that reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.validity import valid_pixels
from geodino.errors import InputError, plural


@dataclasses.dataclass
class SourceInfo:
    """What the pipeline needs to know about an input before reading pixels."""

    path: str
    height: int
    width: int
    count: int
    dtype: str
    crs: Any  # rasterio CRS or None
    transform: Any  # affine.Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]


def _bands_not_in(bad: list[int]) -> str:
    """The band numbers a message says are not in the input, in their number: "1 band (5) is", "2 bands (5, 6) are"."""
    return f"{plural(len(bad), 'band')} ({', '.join(map(str, bad))}) {'is' if len(bad) == 1 else 'are'}"


class WindowedSource:
    """What both sources share: a window partly or fully outside the raster reads as zeros, marked invalid."""

    bands: list[int]
    info: SourceInfo
    kind: str  # what messages call it: "raster", "datacube"
    input_count: int  # bands of the input itself (info.count: those selected)

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        """(data [C,h,w], valid [h,w]) of a window inside the raster; each source reads its own way."""
        raise NotImplementedError

    def read(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        """(data [C,h,w] float32, valid [h,w] bool) of any window; outside the raster is zero and invalid."""
        h, w = y1 - y0, x1 - x0
        data = np.zeros((len(self.bands), h, w), dtype=np.float32)
        valid = np.zeros((h, w), dtype=bool)
        ry0, ry1 = max(y0, 0), min(y1, self.info.height)
        rx0, rx1 = max(x0, 0), min(x1, self.info.width)
        if ry0 >= ry1 or rx0 >= rx1:
            return data, valid
        raw, ok = self.read_inside(ry0, ry1, rx0, rx1)
        sl = (slice(ry0 - y0, ry1 - y0), slice(rx0 - x0, rx1 - x0))
        data[(slice(None), *sl)] = raw
        valid[sl] = ok
        return data, valid


class RasterSource(WindowedSource):
    """A rasterio dataset (any GDAL raster: GeoTIFF, COG, VRT, JP2, Zarr v2...) read by windows."""

    kind = "raster"

    def __init__(self, path: str, *, bands: list[int] | None = None, nodata: float | None = None) -> None:
        import rasterio

        self.path = str(path)
        self.user_nodata = nodata
        try:
            with rasterio.open(self.path) as src:
                count, dtype = src.count, src.dtypes[0]
                self.info = SourceInfo(
                    path=self.path,
                    height=src.height,
                    width=src.width,
                    count=count,
                    dtype=dtype,
                    crs=src.crs,
                    transform=src.transform,
                    nodata=src.nodata if nodata is None else nodata,
                    descriptions=tuple(src.descriptions),
                )
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"cannot read raster {self.path}: {str(exc).splitlines()[0]}") from exc
        if count == 0:
            raise InputError(f"raster {self.path} has no bands")
        self.input_count = count  # bands of the file, before `bands` selects some
        self.bands = list(range(1, count + 1)) if not bands else [int(b) for b in bands]
        bad = [b for b in self.bands if b < 1 or b > count]
        if bad:
            raise InputError(f"{_bands_not_in(bad)} not in raster {self.path}, which has bands 1..{count}")
        self.info.count = len(self.bands)
        self.info.descriptions = tuple(self.info.descriptions[b - 1] for b in self.bands)
        self._src: Any = None

    def open(self) -> RasterSource:
        """A copy with its own open handle (use one per thread)."""
        import rasterio

        other = object.__new__(RasterSource)
        other.__dict__.update(self.__dict__)
        other._src = rasterio.open(self.path)
        return other

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        import rasterio.errors

        from geodino.data.rasters import read_window

        try:  # the training reader on this thread's own handle: one read, the one validity rule
            return read_window(self._src, self.bands, x0, y0, x1 - x0, y1 - y0, nodata=self.info.nodata, use_mask=True)
        except rasterio.errors.RasterioError as exc:
            raise InputError(
                f"cannot read raster {self.path} at rows {y0}..{y1}, columns {x0}..{x1}: "
                f"the file is truncated or corrupt; re-download or re-create it (`gdalinfo -checksum {self.path}` "
                f"shows whether every block reads)"
            ) from exc


class CubeSource(WindowedSource):
    """A Zarr/NetCDF store or an in-memory xarray Dataset/DataArray with dims (band, y, x), opened by the training
    reader (`geodino.data.cubes.open_cube`: variable choice, dim order, CRS, transform and nodata from the store);
    values are read raw (no CF scale/offset decoding), as rasterio reads a GeoTIFF."""

    kind = "datacube"

    def __init__(self, obj: Any, *, variable: str | None = None, bands: list[int] | None = None, nodata=None):
        from rasterio.crs import CRS

        from geodino.data.cubes import open_cube

        where = str(obj) if isinstance(obj, (str, Path)) else type(obj).__name__
        scene = open_cube(obj, variable=variable, nodata=nodata, require_crs=False)
        if scene.time_dim is not None:
            raise InputError(
                f"cube {where} has dims {scene.array.dims}; select one value of the extra dims (e.g. time) first"
            )
        count = scene.array.shape[0]
        self.input_count = count  # bands of the cube, before `bands` selects some
        self.bands = list(range(count)) if not bands else [int(b) - 1 for b in bands]
        bad = [b + 1 for b in self.bands if b < 0 or b >= count]
        if bad:
            raise InputError(f"{_bands_not_in(bad)} not in cube {where}, which has bands 1..{count}")
        self.da = scene.array.isel({scene.array.dims[0]: self.bands})
        self.user_nodata = nodata
        self.info = SourceInfo(
            path=where,
            height=scene.height,
            width=scene.width,
            count=len(self.bands),
            dtype=str(scene.array.dtype),
            crs=CRS.from_wkt(scene.crs) if scene.crs else None,
            transform=scene.affine,
            nodata=scene.nodata,
            descriptions=tuple(scene.band_names[b] for b in self.bands),
        )

    def open(self) -> CubeSource:
        return self

    def close(self) -> None:
        pass

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        raw = np.asarray(self.da[:, y0:y1, x0:x1].values)
        ok = valid_pixels(raw, self.info.nodata)
        return (np.nan_to_num(raw, nan=0.0) if raw.dtype.kind == "f" else raw), ok


def open_source(
    obj: Any, *, variable: str | None = None, bands: list[int] | None = None, nodata: float | None = None
) -> RasterSource | CubeSource:
    """A source for a path (raster file, VRT, Zarr/NetCDF cube) or an in-memory xarray object."""
    from geodino.data.cubes import is_zarr_store

    if isinstance(obj, (RasterSource, CubeSource)):
        return obj
    if isinstance(obj, (str, Path)):
        path = str(obj)
        if not Path(path).exists() and "://" not in path and not path.startswith("/vsi"):
            raise InputError(f"input {path} does not exist; pass a raster file, a VRT or a Zarr store")
        if is_zarr_store(path) or Path(path).suffix.lower() in (".nc", ".nc4"):
            return CubeSource(path, variable=variable, bands=bands, nodata=nodata)
        if Path(path).is_dir():
            tifs = sorted(p.name for p in Path(path).iterdir() if p.suffix.lower() in (".tif", ".tiff", ".vrt", ".jp2"))
            more = ", ..." if len(tifs) > 2 else ""
            what = f"a folder of {plural(len(tifs), 'raster')} ({', '.join(tifs[:2])}{more})"
            raise InputError(
                f"input {path} is {what if tifs else 'a folder with no raster in it'}; embed_raster takes one raster, "
                f"a Zarr store or a VRT; for one feature raster per scene use embed_scenes (geodino embed {path} "
                f"--out FOLDER)"
            )
        return RasterSource(path, bands=bands, nodata=nodata)
    return CubeSource(obj, variable=variable, bands=bands, nodata=nodata)
