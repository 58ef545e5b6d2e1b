"""The feature store made and read without xarray: the same files as the xarray + rioxarray writer, the same info
as the xarray reader, and neither pulls xarray, dask or pandas in (their import was a fixed cost of each embed)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine

from geodino.embed.store_create import create_store
from geodino.embed.store_info import read_store_info

CASES = {
    "utm-float16": (CRS.from_epsg(32618), "float16", Affine(16.5, 0, 101985.0, 0, -16, 2826915.0)),
    "lonlat-float32": (CRS.from_epsg(4326), "float32", Affine(0.001, 0, -3.5, 0, -0.001, 41.25)),
    "nocrs-int8": (None, "int8", Affine(1, 0, 0, 0, 1, 0)),
    "epsg-text-float16": ("EPSG:32633", "float16", Affine(10, 0, 500000.0, 0, -10, 4100000.0)),
    "local-south-up": (CRS.from_wkt('LOCAL_CS["arbitrary",UNIT["metre",1]]'), "float32", Affine(2, 0, 10, 0, 2, 20)),
    "usfeet-float32": (CRS.from_epsg(2229), "float32", Affine(50, 0, 6400000.0, 0, -50, 1900000.0)),
}


def _kwargs(crs, dtype: str, transform: Affine) -> dict:
    return dict(
        height=5,
        width=7,
        transform=transform,
        crs=crs,
        band_names=["E000", "band é", "E0010"],  # unequal lengths and a non-ASCII name: the <U coordinate
        dtype=dtype,
        chunk=4,
        metadata={"model_spec": "arch:vit_tiny", "layers": [11], "nested": {"a": 1.5}, "l2": True},
    )


def xarray_create(
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
    """The store as xarray + rioxarray write it (geodino's writer before store_create): the files' oracle."""
    import json

    import dask.array as da
    import numcodecs
    import numpy as np
    import rioxarray  # noqa: F401
    import xarray as xr

    from geodino.embed.encoding import VAR, flatten_meta, nodata_of

    n = len(band_names)
    t = transform
    x = t.c + t.a * (np.arange(width) + 0.5)
    y = t.f + t.e * (np.arange(height) + 0.5)
    fill = nodata_of(dtype)
    data = da.full((n, height, width), fill, dtype=dtype, chunks=(n, chunk, chunk))
    # the band coordinate holds the names: GDAL's Zarr driver shows them as each band's DIM_band_VALUE
    names = np.asarray(list(band_names), dtype=str)
    arr = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": names, "y": y, "x": x}, name=VAR)
    ds = arr.to_dataset()
    ds = ds.assign_coords(band_name=("band", names))  # kept for readers of earlier stores
    if crs is not None:
        ds = ds.rio.write_crs(crs)
    ds = ds.rio.write_transform(transform)
    ds = ds.rio.write_coordinate_system()  # CF axis, standard_name and units on x and y (GeoZarr)
    flat = flatten_meta(metadata)
    ds[VAR].attrs.update(flat)
    ds[VAR].attrs["long_name"] = "geodino embedding"
    ds.attrs.update(flat)
    ds.attrs["geodino_band_names"] = json.dumps(list(band_names))
    ds[VAR].encoding.update(
        chunks=(n, chunk, chunk),
        # lz4 + bit shuffle: float features barely compress (ratio 1.15 against 1.19 for zstd-3 + byte shuffle on
        # ViT-S features) but encode 6.7x faster (1.7 vs 0.26 GB/s on one core), which the backbone's cores feel
        compressors=[numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)],
        _FillValue=fill,
    )
    if "spatial_ref" in ds.coords:
        # CF/GeoZarr: the variable lists its grid-mapping variable among its coordinates, so plain
        # `xr.open_zarr(...)` keeps `spatial_ref` (and `.rio.crs`); xarray lists only band_name by itself
        # (rioxarray already puts grid_mapping=spatial_ref into the variable's encoding)
        ds[VAR].encoding["coordinates"] = "band_name spatial_ref"
    ds.to_zarr(str(path), zarr_format=2, mode="w", compute=False, consolidated=True)


def xarray_info(path: Path) -> dict:
    """The store's info as xarray + rioxarray read it (`reader.read_store_info` before store_info): the oracle."""
    import json

    import rioxarray  # noqa: F401
    import xarray as xr

    with xr.open_zarr(str(path), decode_coords="all", consolidated=None, mask_and_scale=False) as ds:
        var = ds["embedding"]
        return {
            "height": int(var.shape[1]),
            "width": int(var.shape[2]),
            "dtype": str(var.dtype),
            "crs": ds.rio.crs,
            "transform": ds.rio.transform(),
            "band_names": json.loads(ds.attrs["geodino_band_names"]),
            "attrs": {k: v for k, v in ds.attrs.items() if k != "geodino_band_names"},
            "chunks": var.encoding.get("chunks"),
        }


def _files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_store_has_the_xarray_writers_bytes_and_info(tmp_path: Path, case: str) -> None:
    kwargs = _kwargs(*CASES[case])
    xarray_create(tmp_path / "xr.zarr", **kwargs)
    create_store(tmp_path / "direct.zarr", **kwargs)
    old, new = _files(tmp_path / "xr.zarr"), _files(tmp_path / "direct.zarr")
    assert ".zmetadata" in new and "band/0" in new and "embedding/.zarray" in new
    assert sorted(new) == sorted(old)
    assert [name for name in old if old[name] != new[name]] == []

    want, got = xarray_info(tmp_path / "direct.zarr"), read_store_info(tmp_path / "direct.zarr")
    assert got == want
    assert (got["crs"] and got["crs"].to_wkt()) == (want["crs"] and want["crs"].to_wkt())
    assert got["transform"] == kwargs["transform"] and got["band_names"] == kwargs["band_names"]


def test_missing_store_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_store_info(tmp_path / "nothing.zarr")


def test_store_is_made_and_read_without_xarray(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from rasterio.crs import CRS\n"
        "from rasterio.transform import Affine\n"
        "from geodino.embed.store_create import create_store\n"
        "from geodino.embed.store_info import read_store_info\n"
        f"create_store({str(tmp_path / 's.zarr')!r}, height=3, width=3, transform=Affine(1, 0, 0, 0, -1, 3),\n"
        "    crs=CRS.from_epsg(32633), band_names=['a'], dtype='float32', chunk=2, metadata={})\n"
        f"assert read_store_info({str(tmp_path / 's.zarr')!r})['crs'].to_epsg() == 32633\n"
        "print([m for m in ('xarray', 'rioxarray', 'dask', 'pandas', 'scipy') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
