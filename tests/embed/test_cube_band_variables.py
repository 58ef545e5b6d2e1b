"""`geodino embed` on a datacube of one variable per band (B02, B03, B04, B08 each a (y, x) array), as the training
readers stack them (`geodino.data.cube_variables`): by name with `--sensor` (its band order) or `--bands` (names, or
numbers in the store's order). Before, embed read the store's first variable alone ("input has 1 band"), and with a
1-band backbone embedded that one band without a word; with neither flag the run is refused in one line now (nothing
orders the variables: a Zarr store lists them alphabetically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from geodino import cli
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=4&seed=0"
RUN = ["--tile", "32", "--overlap", "0", "--no-progress", "--threads", "1"]
NAMES = ("B02", "B03", "B04", "B08")


def _grid(h: int, w: int) -> dict:
    return {"y": 4000000.0 - 10 * (np.arange(h) + 0.5), "x": 500000.0 + 10 * (np.arange(w) + 0.5)}


def _stores(tmp_path: Path) -> tuple[Path, Path]:
    """The same 4 bands as a store of per-band variables (written B08, B02, B04, B03: not the sensor's order) and
    as one (band, y, x) array in the sensor's order."""
    import rioxarray  # noqa: F401
    import xarray as xr

    dn = random_image(32, 32, c=4, seed=5, dtype="uint16")
    per = xr.Dataset({b: (("y", "x"), dn[NAMES.index(b)]) for b in ("B08", "B02", "B04", "B03")}, coords=_grid(32, 32))
    per.rio.write_crs("EPSG:32633", inplace=True).to_zarr(tmp_path / "per.zarr", zarr_format=2)
    one = xr.DataArray(dn, dims=("band", "y", "x"), coords={"band": list(NAMES), **_grid(32, 32)}, name="refl")
    one.rio.write_crs("EPSG:32633", inplace=True).to_dataset().to_zarr(tmp_path / "one.zarr", zarr_format=2)
    return tmp_path / "per.zarr", tmp_path / "one.zarr"


def _embed(src: Path, out: Path, *flags: str) -> np.ndarray:
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), *RUN, *flags]) == 0
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform.c == 500000.0 and ds.transform.f == 4000000.0
        return ds.read()


def test_per_band_variables_are_stacked_by_name(tmp_path: Path) -> None:
    per, one = _stores(tmp_path)
    want = _embed(one, tmp_path / "ref.tif", "--scale", "1e-4")
    got = _embed(per, tmp_path / "names.tif", "--scale", "1e-4", "--bands", ",".join(NAMES))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # numbers pick among the variables in the store's order (listed B02, B03, B04, B08)
    np.testing.assert_allclose(_embed(per, tmp_path / "n.tif", "--scale", "1e-4", "--bands", "1,2,3,4"), want,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    # another order is another input: the names decide which variable feeds which channel
    swapped = _embed(per, tmp_path / "swap.tif", "--scale", "1e-4", "--bands", "B08,B04,B03,B02")
    assert not np.allclose(swapped, want, atol=1e-3)


def test_per_band_variables_in_the_sensor_order(tmp_path: Path) -> None:
    per, one = _stores(tmp_path)
    want = _embed(one, tmp_path / "ref.tif", "--sensor", "sentinel2_l2a")
    got = _embed(per, tmp_path / "sensor.tif", "--sensor", "sentinel2_l2a")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    aliases = _embed(per, tmp_path / "alias.tif", "--sensor", "sentinel2_l2a", "--bands", "blue,green,red,nir")
    np.testing.assert_allclose(aliases, want, rtol=1e-5, atol=1e-6)


def test_per_band_variables_with_nothing_ordering_them_are_one_line(capsys, tmp_path: Path) -> None:
    per, _ = _stores(tmp_path)
    one_line_exit_2(
        capsys, tmp_path, "embed", per, "-b", SPEC, "--out", tmp_path / "f.tif", *RUN,
        expect=("4 single-band variables (B02, B03, B04, B08)", "--sensor NAME", "--bands", "variable=NAME"),
    )  # fmt: skip
    # one of them, by name, is still read alone
    one = _embed(per, tmp_path / "b08.tif", "variable=B08", "--scale", "1e-4", "-b", SPEC.replace("bands=4", "bands=1"))
    assert one.shape[0] == 192


def test_a_raster_naming_some_of_the_sensor_bands_takes_their_scale(tmp_path: Path) -> None:
    """The same rule for a GeoTIFF: bands described B02, B03, B04, B08 with --sensor sentinel2_l2a (12 bands) were
    refused ('sensor has 12 bands but input has 4'); now the sensor is narrowed to them by name, as for the cube."""
    from rasterio.transform import from_origin

    from tests import helpers

    per, _ = _stores(tmp_path)
    dn = random_image(32, 32, c=4, seed=5, dtype="uint16")
    tif = helpers.write_tif(tmp_path / "named.tif", dn, transform=from_origin(500000.0, 4000000.0, 10, 10),
                            descriptions=list(NAMES))  # fmt: skip
    got = _embed(tif, tmp_path / "tif.tif", "--sensor", "sentinel2_l2a")  # was refused: 12 bands vs 4
    want = _embed(per, tmp_path / "cube.tif", "--sensor", "sentinel2_l2a")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_per_band_variables_with_an_openeo_time_dim(tmp_path: Path, capsys) -> None:
    """Variables of dims (t, y, x) (openEO's time dim name, a time dim since 0403cb1) are single-band planes too."""
    import rioxarray  # noqa: F401
    import xarray as xr

    dn = random_image(32, 32, c=4, seed=5, dtype="uint16")
    t = np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]")
    per = xr.Dataset({b: (("t", "y", "x"), np.stack([dn[i], dn[i]])) for i, b in enumerate(NAMES)},
                     coords={"t": t, **_grid(32, 32)})  # fmt: skip
    per.rio.write_crs("EPSG:32633", inplace=True).to_zarr(tmp_path / "t.zarr", zarr_format=2)
    _, one = _stores(tmp_path)
    want = _embed(one, tmp_path / "ref.tif", "--scale", "1e-4")
    got = _embed(tmp_path / "t.zarr", tmp_path / "t.tif", "--scale", "1e-4", "--bands", ",".join(NAMES), "time=-1")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
