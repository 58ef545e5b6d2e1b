"""Writers of feature rasters: a chunked GeoZarr (Zarr v2) store, a COG, and the int8 quantisation.

The pipeline always writes into a Zarr v2 store made by xarray + rioxarray (dims band/y/x, CF grid mapping,
chunks holding whole pixel vectors): Zarr lets several processes write disjoint chunk-aligned blocks of one
store and a killed run rewrite only its unfinished blocks. Zarr v2 (not v3) because GDAL, hence rasterio and
QGIS, reads v2 stores with their CRS and transform and fails on v3 ("Unsupported codec: bytes").
A `.tif` output is made from the finished store in one GDAL copy through a VRT that adds band descriptions and
metadata, by the COG driver (overviews, ZSTD, NaN or -128 nodata).

int8 quantisation (AlphaEarth / Google Satellite Embedding convention, for unit-length vectors)::

    q = clip(round(127.5 * sign(v) * sqrt(|v|)), -127, 127)        (int8; -128 = nodata in every band)
    v ~= sign(q) * (q / 127.5) ** 2                                   (dequantise, then re-normalise to unit L2)

The square-root companding spends the 8 bits where unit-vector components live (near 0). For |v| <= 1 the
round-trip error is at most `(2 * sqrt(|v|) + 1/255) / 255` (<= 0.0079), and components beyond
`(127/127.5)^2 = 0.99217` are clipped to it (error <= 0.0079 as well): see `int8_error_bound`.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import InputError

VAR = "embedding"
INT8_NODATA = -128
INT8_SCALE = 127.5
DTYPES = ("float32", "float16", "int8")
DEQUANT_RULE = "v = sign(q) * (abs(q) / 127.5) ** 2; q == -128 is nodata; re-normalise v to unit L2"


def quantize_int8(v: np.ndarray) -> np.ndarray:
    """Unit-vector components in [-1, 1] -> int8 codes in [-127, 127] by square-root companding."""
    q = np.rint(INT8_SCALE * np.sign(v) * np.sqrt(np.abs(v)))
    return np.clip(q, -127, 127).astype(np.int8)


def dequantize_int8(q: np.ndarray, *, renormalize: bool = False, axis: int = 0) -> np.ndarray:
    """int8 codes -> float32 components (NaN where the code is the nodata code -128)."""
    qf = q.astype(np.float32)
    v = np.sign(qf) * (np.abs(qf) / INT8_SCALE) ** 2
    v[q == INT8_NODATA] = np.nan
    if renormalize:
        n = np.sqrt(np.sum(v * v, axis=axis, keepdims=True))
        v = v / np.where(n > 0, n, 1.0)
    return v.astype(np.float32)


def int8_error_bound(v: np.ndarray) -> np.ndarray:
    """Per-component upper bound of |dequantize(quantize(v)) - v| for |v| <= 1 (rounding plus clipping)."""
    a = np.abs(v.astype(np.float64))
    rounding = (2.0 * np.sqrt(a) + 1.0 / 255.0) / 255.0
    clipping = np.maximum(a - (127.0 / INT8_SCALE) ** 2, 0.0)
    return np.maximum(rounding, clipping) + 1e-7


def encode(features: np.ndarray, valid: np.ndarray, dtype: str) -> np.ndarray:
    """Float32 features `[D,h,w]` + validity `[h,w]` -> the stored array (nodata where invalid)."""
    if dtype == "int8":
        out = quantize_int8(features)
        out[:, ~valid] = INT8_NODATA
        return out
    out = features.astype(dtype, copy=True)
    out[:, ~valid] = np.nan
    return out


def nodata_of(dtype: str) -> float | int:
    return INT8_NODATA if dtype == "int8" else float("nan")


def _flatten_meta(metadata: Mapping[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def create_store(
    path: str | Path,
    *,
    height: int,
    width: int,
    transform: Any,
    crs: Any,
    band_names: Sequence[str],
    dtype: str,
    chunk: int,
    metadata: Mapping[str, Any],
) -> None:
    """Create an empty chunked GeoZarr v2 store (metadata only: chunks are written later, block by block)."""
    import dask.array as da
    import numcodecs
    import rioxarray  # noqa: F401
    import xarray as xr

    n = len(band_names)
    t = transform
    x = t.c + t.a * (np.arange(width) + 0.5)
    y = t.f + t.e * (np.arange(height) + 0.5)
    fill = nodata_of(dtype)
    data = da.full((n, height, width), fill, dtype=dtype, chunks=(n, chunk, chunk))
    arr = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": np.arange(1, n + 1), "y": y, "x": x}, name=VAR)
    ds = arr.to_dataset()
    ds = ds.assign_coords(band_name=("band", np.asarray(list(band_names), dtype=str)))
    if crs is not None:
        ds = ds.rio.write_crs(crs)
    ds = ds.rio.write_transform(transform)
    flat = _flatten_meta(metadata)
    ds[VAR].attrs.update(flat)
    ds[VAR].attrs["long_name"] = "geodino embedding"
    ds.attrs.update(flat)
    ds.attrs["geodino_band_names"] = json.dumps(list(band_names))
    ds[VAR].encoding.update(
        chunks=(n, chunk, chunk),
        compressors=[numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.SHUFFLE)],
        _FillValue=fill,
    )
    ds.to_zarr(str(path), zarr_format=2, mode="w", compute=False, consolidated=True)


class ZarrBlockWriter:
    """Writes `[D,h,w]` arrays at cell offsets into the `embedding` array of a store (direct zarr, no xarray)."""

    def __init__(self, path: str | Path) -> None:
        import zarr

        self.array = zarr.open_array(str(Path(path) / VAR), mode="r+", zarr_format=2)

    def write(self, r0: int, c0: int, data: np.ndarray) -> None:
        """Write one chunk column at a time: zarr decodes, merges and re-encodes every chunk a write touches
        at once (up to its async concurrency), so one wide write held several chunks' buffers together and
        the writer's memory grew with the column-block width (found by the 16k vs 4k RSS benchmark)."""
        _, h, w = data.shape
        step = int(self.array.chunks[2])
        x = c0
        while x < c0 + w:
            x1 = min((x // step + 1) * step, c0 + w)
            self.array[:, r0 : r0 + h, x:x1] = data[:, :, x - c0 : x1 - c0]
            x = x1


def finalize_store(tmp: str | Path) -> None:
    """Consolidate metadata of a finished store (so xarray and GDAL open it in one read)."""
    import zarr

    zarr.consolidate_metadata(str(tmp), zarr_format=2)


def _vrt_xml(zarr_path: Path, *, height: int, width: int, transform: Any, crs: Any, band_names, dtype, meta) -> str:
    from xml.sax.saxutils import escape

    gdal_type = {"float32": "Float32", "float16": "Float32", "int8": "Int8"}[dtype]
    nod = "nan" if dtype != "int8" else str(INT8_NODATA)
    src = escape(f'ZARR:"{zarr_path}":/{VAR}')
    parts = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">']
    if crs is not None:
        parts.append(f"<SRS>{escape(crs.to_wkt())}</SRS>")
    t = transform
    parts.append(f"<GeoTransform>{t.c!r},{t.a!r},{t.b!r},{t.f!r},{t.d!r},{t.e!r}</GeoTransform>")
    parts.append("<Metadata>" + "".join(f'<MDI key="{escape(k)}">{escape(v)}</MDI>' for k, v in meta.items()))
    parts.append("</Metadata>")
    for i, name in enumerate(band_names):
        parts.append(
            f'<VRTRasterBand dataType="{gdal_type}" band="{i + 1}"><Description>{escape(name)}</Description>'
            f"<NoDataValue>{nod}</NoDataValue><SimpleSource><SourceFilename>{src}</SourceFilename>"
            f"<SourceBand>{i + 1}</SourceBand></SimpleSource></VRTRasterBand>"
        )
    parts.append("</VRTDataset>")
    return "\n".join(parts)


def cog_blocksize(n_bands: int, itemsize: int) -> int:
    """COG tiles interleave all bands of a pixel (GDAL 3.10's COG driver has no band interleave): keep them small."""
    from geodino.embed.plan import auto_chunk

    return max(64, min(512, auto_chunk(n_bands, itemsize, budget_bytes=8 * 2**20)))


def store_to_cog(zarr_path: str | Path, out_tif: str | Path, *, cache_mb: int = 128) -> None:
    """Copy a finished store into a COG (descriptions, metadata, nodata, overviews) in one streaming GDAL copy."""
    import rasterio
    import rasterio.shutil

    zarr_path = Path(zarr_path).resolve()
    info = read_store_info(zarr_path)
    dtype = info["dtype"]
    meta = {"GEODINO_" + k.upper(): v for k, v in info["attrs"].items() if not k.startswith("_")}
    xml = _vrt_xml(
        zarr_path,
        height=info["height"],
        width=info["width"],
        transform=info["transform"],
        crs=info["crs"],
        band_names=info["band_names"],
        dtype=dtype,
        meta=meta,
    )
    vrt = Path(out_tif).with_name(Path(out_tif).name + ".src.vrt")
    vrt.write_text(xml)
    opts: dict[str, Any] = {"compress": "zstd", "level": 9, "num_threads": "all_cpus", "bigtiff": "if_safer"}
    itemsize = 1 if dtype == "int8" else (2 if dtype == "float16" else 4)
    opts["blocksize"] = cog_blocksize(len(info["band_names"]), itemsize)
    if dtype == "float16":
        opts["nbits"] = 16
    if dtype != "int8":
        opts["predictor"] = 3
    # int8 codes are square-root companded: averaging them is not averaging features, so nearest overviews
    opts["resampling"] = "nearest" if dtype == "int8" else "average"
    try:
        with rasterio.Env(GDAL_CACHEMAX=cache_mb):
            rasterio.shutil.copy(str(vrt), str(out_tif), driver="COG", overviews="auto", **opts)
    finally:
        vrt.unlink(missing_ok=True)


def read_store_info(path: str | Path) -> dict[str, Any]:
    """Shape, dtype, CRS, transform, band names and geodino attributes of a feature store."""
    import rioxarray  # noqa: F401
    import xarray as xr

    ds = xr.open_zarr(str(path), decode_coords="all", consolidated=None, mask_and_scale=False)
    try:
        var = ds[VAR]
        attrs = {k: v for k, v in ds.attrs.items() if k != "geodino_band_names"}
        names = json.loads(ds.attrs.get("geodino_band_names", "[]")) or [f"E{i:03d}" for i in range(var.shape[0])]
        return {
            "height": int(var.shape[1]),
            "width": int(var.shape[2]),
            "dtype": str(var.dtype),
            "crs": ds.rio.crs,
            "transform": ds.rio.transform(),
            "band_names": names,
            "attrs": attrs,
            "chunks": var.encoding.get("chunks"),
        }
    finally:
        ds.close()


class EmbeddingReader:
    """Read a feature raster written by geodino (COG, GeoTIFF or Zarr) as float32 features + validity.

    int8 files are dequantised (and re-normalised) with the rule stored in their metadata; NaN/-128 cells are
    invalid. Used by the products (PCA, clusters, similarity, zonal statistics).
    """

    def __init__(self, path: str | Path) -> None:
        import rasterio

        self.path = str(path)
        if not Path(self.path).exists():
            raise InputError(f"feature raster {self.path} does not exist; make one with `geodino embed`")
        gdal_path = self.path
        if Path(self.path).is_dir():
            gdal_path = f'ZARR:"{Path(self.path).resolve()}":/{VAR}'
        try:
            self.src = rasterio.open(gdal_path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"cannot read feature raster {self.path}: {str(exc).splitlines()[0]}") from exc
        if Path(self.path).is_dir():
            attrs = read_store_info(self.path)["attrs"]
        else:
            attrs = {k[len("GEODINO_") :].lower(): v for k, v in self.src.tags().items() if k.startswith("GEODINO_")}
        self.metadata: dict[str, Any] = attrs
        self.dtype = str(attrs.get("dtype", self.src.dtypes[0]))
        self.count, self.height, self.width = self.src.count, self.src.height, self.src.width
        self.crs, self.transform = self.src.crs, self.src.transform

    def close(self) -> None:
        self.src.close()

    def __enter__(self) -> EmbeddingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, window: Any = None, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(features [D,h,w] float32, valid [h,w] bool) for a rasterio window (None: everything)."""
        kw: dict[str, Any] = {"window": window}
        if out_shape is not None:
            kw["out_shape"] = (self.count, *out_shape)
        raw = self.src.read(**kw)
        if self.dtype == "int8" or raw.dtype == np.int8:
            valid = ~np.all(raw == INT8_NODATA, axis=0)
            feats = dequantize_int8(raw, renormalize=True)
        else:
            feats = raw.astype(np.float32, copy=False)
            valid = ~np.any(np.isnan(feats), axis=0)
        feats = np.where(valid[None], feats, 0.0).astype(np.float32)
        return feats, valid

    def blocks(self, budget_bytes: int = 64 * 2**20) -> Any:
        """Row windows covering the raster, each at most ~`budget_bytes` of float32 features (streaming products)."""
        from rasterio.windows import Window

        rows = max(1, min(self.height, budget_bytes // max(1, self.width * self.count * 4)))
        for r in range(0, self.height, rows):
            yield Window(0, r, self.width, min(rows, self.height - r))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to `n` valid pixel vectors `[n, D]`, spread over the raster (a decimated read, then a random draw)."""
        scale = max(1.0, math.sqrt(self.height * self.width / max(4 * n, 1)))
        shape = (max(1, int(self.height / scale)), max(1, int(self.width / scale)))
        rng = np.random.default_rng(seed)
        feats, valid = self.read(out_shape=shape) if scale > 1 else self.read()
        vecs = feats[:, valid].T
        if len(vecs) > n:
            vecs = vecs[rng.choice(len(vecs), n, replace=False)]
        return vecs


def remove_tree(path: str | Path) -> None:
    p = Path(path)
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()
