"""Inputs of a feature raster: any rasterio-readable raster (GeoTIFF, COG, VRT mosaic) or an xarray/Zarr cube.

A source answers `read(y0, y1, x0, x1) -> (data [C,h,w] float32, valid [h,w] bool)` for any pixel window,
also partly or fully outside the raster (outside is invalid and zero), so the tiler never special-cases edges.
Rasters are read through `geodino.data.rasters.read_window` (the training reader) and validity is the one rule
of `geodino.data.validity` (every band nodata, or any band NaN; the internal mask or alpha band when no nodata
value is declared); an optional user nodata value overrides a wrong declared one.
Each thread opens its own handle (GDAL handles are not thread-safe): call `open()` in the thread that reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.validity import valid_pixels
from geodino.errors import InputError


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


def _is_cube_path(path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() == ".zarr" or (p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists()))


class RasterSource:
    """A rasterio dataset (any GDAL raster: GeoTIFF, COG, VRT, JP2, Zarr v2...) read by windows."""

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
        self.bands = list(range(1, count + 1)) if not bands else [int(b) for b in bands]
        bad = [b for b in self.bands if b < 1 or b > count]
        if bad:
            raise InputError(f"band(s) {bad} not in raster {self.path}, which has bands 1..{count}")
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

    def read(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        import rasterio.errors

        from geodino.data.rasters import read_window

        h, w = y1 - y0, x1 - x0
        data = np.zeros((len(self.bands), h, w), dtype=np.float32)
        valid = np.zeros((h, w), dtype=bool)
        ry0, ry1 = max(y0, 0), min(y1, self.info.height)
        rx0, rx1 = max(x0, 0), min(x1, self.info.width)
        if ry0 >= ry1 or rx0 >= rx1:
            return data, valid
        try:  # the training reader on this thread's own handle: one read, the one validity rule
            raw, ok = read_window(
                self._src, self.bands, rx0, ry0, rx1 - rx0, ry1 - ry0, nodata=self.info.nodata, use_mask=True
            )
        except rasterio.errors.RasterioError as exc:
            raise InputError(
                f"cannot read raster {self.path} at rows {ry0}..{ry1}, columns {rx0}..{rx1}: "
                f"the file is truncated or corrupt; re-download or re-create it (`gdalinfo -checksum {self.path}` "
                f"shows whether every block reads)"
            ) from exc
        sl = (slice(ry0 - y0, ry1 - y0), slice(rx0 - x0, rx1 - x0))
        data[(slice(None), *sl)] = raw
        valid[sl] = ok
        return data, valid


class CubeSource:
    """An xarray DataArray (or a variable of a Zarr/NetCDF store) with dims (band, y, x) and a CRS via rioxarray."""

    def __init__(self, obj: Any, *, variable: str | None = None, bands: list[int] | None = None, nodata=None):
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray as xr

        where = obj if isinstance(obj, (str, Path)) else type(obj).__name__
        if isinstance(obj, (str, Path)):
            try:
                obj = xr.open_zarr(str(obj), decode_coords="all") if _is_cube_path(str(obj)) else xr.open_dataset(obj)
            except Exception as exc:
                raise InputError(f"cannot open cube {where}: {str(exc).splitlines()[0]}") from exc
        if isinstance(obj, xr.Dataset):
            names = [v for v in obj.data_vars if obj[v].ndim in (2, 3)]
            if variable is None:
                if len(names) != 1:
                    raise InputError(f"cube {where} has variables {names}; choose one with variable=NAME")
                variable = names[0]
            if variable not in obj.data_vars:
                raise InputError(f"cube {where} has no variable {variable!r}; it has {list(obj.data_vars)}")
            crs = obj.rio.crs
            da = obj[variable]
            if da.rio.crs is None and crs is not None:
                da = da.rio.write_crs(crs)
        else:
            da = obj
        if da.ndim == 2:
            da = da.expand_dims("band")
        ydim, xdim = da.rio.y_dim, da.rio.x_dim
        other = [d for d in da.dims if d not in (ydim, xdim)]
        if len(other) != 1:
            raise InputError(f"cube {where} has dims {da.dims}; select one value of the extra dims (e.g. time) first")
        da = da.transpose(other[0], ydim, xdim)
        count = da.shape[0]
        self.bands = list(range(count)) if not bands else [int(b) - 1 for b in bands]
        if any(b < 0 or b >= count for b in self.bands):
            raise InputError(f"bands {bands} not in cube {where}, which has bands 1..{count}")
        self.da = da.isel({other[0]: self.bands})
        self.user_nodata = nodata
        declared = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
        self.info = SourceInfo(
            path=str(where),
            height=int(da.shape[1]),
            width=int(da.shape[2]),
            count=len(self.bands),
            dtype=str(da.dtype),
            crs=da.rio.crs,
            transform=da.rio.transform(),
            nodata=nodata if nodata is not None else (None if declared is None else float(declared)),
            descriptions=tuple(str(v) for v in da[other[0]].values[self.bands]) if other[0] in da.coords else (),
        )

    def open(self) -> CubeSource:
        return self

    def close(self) -> None:
        pass

    def read(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = y1 - y0, x1 - x0
        data = np.zeros((len(self.bands), h, w), dtype=np.float32)
        valid = np.zeros((h, w), dtype=bool)
        ry0, ry1 = max(y0, 0), min(y1, self.info.height)
        rx0, rx1 = max(x0, 0), min(x1, self.info.width)
        if ry0 >= ry1 or rx0 >= rx1:
            return data, valid
        raw = np.asarray(self.da[:, ry0:ry1, rx0:rx1].values)
        ok = valid_pixels(raw, self.info.nodata)
        sl = (slice(ry0 - y0, ry1 - y0), slice(rx0 - x0, rx1 - x0))
        data[(slice(None), *sl)] = np.nan_to_num(raw, nan=0.0) if raw.dtype.kind == "f" else raw
        valid[sl] = ok
        return data, valid


def open_source(
    obj: Any, *, variable: str | None = None, bands: list[int] | None = None, nodata: float | None = None
) -> RasterSource | CubeSource:
    """A source for a path (raster file, VRT, Zarr/NetCDF cube) or an in-memory xarray object."""
    if isinstance(obj, (RasterSource, CubeSource)):
        return obj
    if isinstance(obj, (str, Path)):
        path = str(obj)
        if not Path(path).exists() and "://" not in path and not path.startswith("/vsi"):
            raise InputError(f"input {path} does not exist; pass a raster file, a VRT or a Zarr store")
        if _is_cube_path(path) or Path(path).suffix.lower() in (".nc", ".nc4"):
            return CubeSource(path, variable=variable, bands=bands, nodata=nodata)
        if Path(path).is_dir():
            tifs = sorted(p.name for p in Path(path).iterdir() if p.suffix.lower() in (".tif", ".tiff", ".vrt", ".jp2"))
            what = f"a folder of {len(tifs)} rasters ({', '.join(tifs[:2])}{', ...' if len(tifs) > 2 else ''})"
            raise InputError(
                f"input {path} is {what if tifs else 'a folder with no raster in it'}; embed_raster takes one raster, "
                f"a Zarr store or a VRT; for one feature raster per scene use embed_scenes (geodino embed {path} "
                f"--out FOLDER)"
            )
        return RasterSource(path, bands=bands, nodata=nodata)
    return CubeSource(obj, variable=variable, bands=bands, nodata=nodata)
