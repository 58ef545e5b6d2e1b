"""Small generated fixtures: GeoTIFFs/COGs in several CRSs with nodata, Zarr stores, image folders, tar shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import helpers


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    origin: tuple[float, float] = (500000.0, 4650000.0),
    res: float = 10.0,
    nodata: float | None = 0,
    cog: bool = False,
    descriptions: list[str] | None = None,
) -> Path:
    """Write [C,H,W] `data` as a GeoTIFF (or a COG with overviews) and return its path."""
    from affine import Affine

    transform = Affine(res, 0.0, origin[0], 0.0, -res, origin[1])
    return helpers.write_tif(
        path, data, crs=crs, transform=transform, nodata=nodata, cog=cog, descriptions=descriptions
    )


def ramp(c: int, h: int, w: int, dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    """Distinct values per pixel and band (never 0), so window mix-ups show."""
    rng = np.random.default_rng(seed)
    base = (np.arange(h * w).reshape(h, w) % 1000 + 1).astype(np.float64)
    data = np.stack([base + 1000 * b for b in range(c)]) + rng.integers(0, 3, size=(c, h, w))
    return data.astype(dtype)


def band_cube(data: np.ndarray, bands: list[str] | tuple[str, ...] = ("B02", "B03", "B04"), name: str = "refl"):
    """An xarray Dataset of one variable `name` holding [C,H,W] `data` on a `band` coordinate, in UTM 33N with 10 m
    pixels whose top-left corner is (500000, 4500000) (coordinates at pixel centres), ready for to_zarr/to_netcdf."""
    import rioxarray  # noqa: F401
    import xarray as xr

    _, h, w = data.shape
    coords = {"band": list(bands), "y": 4500000 - 10 * np.arange(h) - 5.0, "x": 500000 + 10 * np.arange(w) + 5.0}
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name=name).rio.write_crs("EPSG:32633")
    return da.to_dataset()


def tif_folder(tmp_path: Path, n: int, cut: bool = True) -> tuple[Path, Path]:
    """(folder, t1.tif): `n` 3-band 64 x 64 uint8 GeoTIFFs side by side (10 km apart, no nodata) under tmp_path/tifs,
    the second cut to a third of its bytes when `cut` (its header reads, its pixels stop)."""
    folder = tmp_path / "tifs"
    folder.mkdir()
    for i in range(n):
        write_tif(
            folder / f"t{i}.tif", ramp(3, 64, 64, dtype="uint8", seed=i), nodata=None, origin=(5e5 + i * 1e4, 4.65e6)
        )
    bad = folder / "t1.tif"
    if cut:
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    return folder, bad


@pytest.fixture
def scenes(tmp_path: Path) -> dict[str, Path]:
    """Three 4-band scenes: UTM 33N (nodata corner), UTM 32N COG, WGS84 geographic; plus a 13-band one."""
    import rasterio  # noqa: F401

    d = tmp_path / "scenes"
    d.mkdir()
    a = ramp(4, 120, 160, seed=1)
    a[:, :60, :80] = 0  # nodata quarter
    out = {"utm33": write_tif(d / "a_utm33.tif", a, crs="EPSG:32633")}
    out["utm32_cog"] = write_tif(d / "b_utm32.tif", ramp(4, 100, 100, seed=2), crs="EPSG:32632", cog=True)
    out["wgs84"] = write_tif(
        d / "c_wgs84.tif", ramp(4, 90, 110, seed=3), crs="EPSG:4326", origin=(12.0, 45.0), res=0.0001
    )
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead on the shared 2-core CI machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def curate_refuses(capsys, tmp_path: Path):
    """`refuses(flags, expect)`: `geodino data curate` of a small image archive with `flags` exits 2 with one line
    holding `expect`, leaves tmp_path as it was and writes no output folder (the option checks' shared set-up)."""
    from tests.data.test_curate import SPEC, _image_archive
    from tests.test_bad_inputs import one_line_exit_2

    def refuses(flags: list[str], expect: str) -> None:
        root = tmp_path / "imgs"
        _image_archive(root)
        out = tmp_path / "out"
        one_line_exit_2(capsys, tmp_path, "data", "curate", root, "-b", SPEC, "--size", "4", "-o", out,
                        "--no-progress", *flags, expect=(expect,))  # fmt: skip
        assert not out.exists()

    return refuses
