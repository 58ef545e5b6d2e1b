"""A feature store's shape, dtype, grid, band names and attributes, read with zarr and rasterio alone.

`reader.read_store_info` reads the same through xarray + rioxarray, whose import (with dask, pandas, scipy and
pyarrow behind it: ~0.6 s on a quiet 2-core machine, 2-3 s loaded) was a fixed cost of every `geodino embed` to a
`.tif` (the store is copied into the COG after the sweep) and of the STAC item of a `.zarr`, while the store
`store_create.create_store` writes needs no decoding: the CRS is the WKT on `spatial_ref`, the grid its
`GeoTransform`. tests/embed/test_store_create.py checks both readers agree on the stores geodino writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geodino.embed.encoding import VAR
from geodino.embed.store_create import GRID_MAPPING


def read_store_info(path: str | Path) -> dict[str, Any]:
    """Shape, dtype, CRS, transform, band names and geodino attributes of a feature store (the keys and values of
    `reader.read_store_info`)."""
    import zarr
    from affine import Affine
    from rasterio.crs import CRS

    if not Path(path).exists():  # zarr words it per version (3.1.0: "No group found in store ...")
        raise FileNotFoundError(f"feature store {path} does not exist")
    root = zarr.open_group(str(path), mode="r", zarr_format=2)
    var = root[VAR]
    if not isinstance(var, zarr.Array):
        raise KeyError(f"{VAR} in {path} is not an array")
    root_attrs: dict[str, Any] = dict(root.attrs.asdict())
    attrs = {k: v for k, v in root_attrs.items() if k != "geodino_band_names"}
    names = json.loads(str(root_attrs.get("geodino_band_names", "[]"))) or [f"E{i:03d}" for i in range(var.shape[0])]
    grid: dict[str, Any] = dict(root[GRID_MAPPING].attrs.asdict()) if GRID_MAPPING in root else {}
    wkt = grid.get("spatial_ref") or grid.get("crs_wkt")
    gdal = grid.get("GeoTransform")
    return {
        "height": int(var.shape[1]),
        "width": int(var.shape[2]),
        "dtype": str(var.dtype),
        "crs": CRS.from_user_input(wkt) if wkt else None,
        "transform": Affine.from_gdal(*(float(v) for v in str(gdal).split())) if gdal else Affine.identity(),
        "band_names": names,
        "attrs": attrs,
        "chunks": tuple(int(c) for c in var.chunks),
    }
