"""Reading a feature raster written by `geodino embed` (COG, GeoTIFF or Zarr store): `EmbeddingReader` (float32
features + validity, int8 dequantised) and `read_store_info` (a store's shape, dtype, grid, band names, attributes).

The products, classify and change read through it. Kept apart from the writers (`geodino.embed.writers`), which
use only `read_store_info` (to copy a store into a COG); the stored encoding is `geodino.embed.encoding`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.embed.encoding import INT8_NODATA, VAR, dequantize_int8
from geodino.errors import InputError, plural


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


def _missing_raster(path: Path) -> str:
    """Why a feature raster is not there: scenes in several CRSs get one mosaic per CRS (`mosaic_EPSG_32633.vrt`
    next to the `mosaic.vrt` the user asked for), so name those when they exist."""
    siblings = sorted(path.parent.glob(f"{path.stem}_*{path.suffix}")) if path.suffix and path.parent.is_dir() else []
    if siblings:
        names = ", ".join(p.name for p in siblings[:6]) + (" ..." if len(siblings) > 6 else "")
        return (
            f"feature raster {path} does not exist, but {path.parent} holds {names}: scenes in several CRSs get one "
            f"mosaic per CRS; pass one of them (e.g. {siblings[0]})"
        )
    return f"feature raster {path} does not exist; make one with `geodino embed`"


FEATURE_MARKERS = ("model_spec", "model_fingerprint")  # metadata keys every `geodino embed` output records


class EmbeddingReader:
    """Read a feature raster written by geodino (COG, GeoTIFF or Zarr) as float32 features + validity.

    int8 files are dequantised (and re-normalised) with the rule stored in their metadata; a cell with NaN (or
    -128) in any band is invalid. Used by the products (PCA, clusters, similarity, zonal statistics, classify,
    change), which open it with `require_features` so that a raster `geodino embed` did not write is refused.
    """

    def __init__(self, path: str | Path) -> None:
        import rasterio

        self.path = str(path)
        if not Path(self.path).exists():
            raise InputError(_missing_raster(Path(self.path)))
        gdal_path = self.path
        if Path(self.path).is_dir():
            gdal_path = f'ZARR:"{Path(self.path).resolve()}":/{VAR}'
        try:
            with warnings.catch_warnings():  # a store one cell wide or high: placed from `spatial_ref` below
                if gdal_path != self.path:
                    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.src = rasterio.open(gdal_path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"cannot read feature raster {self.path}: {str(exc).splitlines()[0]}") from exc
        self.crs, self.transform = self.src.crs, self.src.transform
        if Path(self.path).is_dir():
            info = read_store_info(self.path)
            attrs = info["attrs"]
            # the store's own record (`spatial_ref`): for a store one cell wide or high, written before such outputs
            # were refused, GDAL gives the identity transform (see `check_zarr_grid`)
            self.transform = info["transform"]
            self.crs = info["crs"] if info["crs"] is not None else self.src.crs
        else:
            attrs = {k[len("GEODINO_") :].lower(): v for k, v in self.src.tags().items() if k.startswith("GEODINO_")}
        self.metadata: dict[str, Any] = attrs
        self.dtype = str(attrs.get("dtype", self.src.dtypes[0]))
        self.count, self.height, self.width = self.src.count, self.src.height, self.src.width

    def require_features(self) -> EmbeddingReader:
        """This reader, or (closed) a one-line InputError when the raster was not written by `geodino embed`: the
        products would map a plain RGB GeoTIFF or a DEM as if its pixel values were features and say nothing.
        Every feature raster, Zarr store and scene mosaic carries the backbone record (GEODINO_MODEL_SPEC and
        GEODINO_MODEL_FINGERPRINT tags, `model_spec` attributes); one of the two is enough."""
        if any(self.metadata.get(k) not in (None, "") for k in FEATURE_MARKERS):
            return self
        self.close()
        raise InputError(
            f"{self.path} is not a feature raster from `geodino embed` "
            f"({plural(self.count, self.src.dtypes[0] + ' band')}, no "
            f"GEODINO_MODEL_SPEC metadata); run `geodino embed {self.path} --backbone SPEC --out features.tif` first "
            "and pass features.tif"
        )

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
            valid = ~np.any(raw == INT8_NODATA, axis=0)  # -128 is no code (codes are -127..127)
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
        """Up to `n` valid cell vectors `[n, D]`, spread over the raster: each cell drawn with probability
        4n / cells (read at full resolution in row blocks), then a random draw of `n` of the valid ones.

        Not a decimated read (`out_shape`): GDAL serves that from the COG's overviews, whose float levels are 2x2
        means of the vectors (`writers.downsample2`), so PCA and k-means were fitted on blurred vectors no cell
        holds (a two-class checkerboard sampled as its mean only: every PCA value saturated), and a COG gave other
        products than the same features in Zarr. Random cells, not every k-th: a lattice aliases periodic
        patterns (crop rows, orchards; every other cell of a checkerboard is one class)."""
        share = min(1.0, 4 * n / max(self.height * self.width, 1))
        rng = np.random.default_rng(seed)
        parts = []
        for win in self.blocks():
            f, valid = self.read(win)
            pick = valid & (rng.random(valid.shape) < share) if share < 1 else valid
            parts.append(f[:, pick].T)
        vecs = np.concatenate(parts) if parts else np.zeros((0, self.count), np.float32)
        if len(vecs) > n:
            vecs = vecs[rng.choice(len(vecs), n, replace=False)]
        return vecs
