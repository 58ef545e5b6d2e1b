"""`geodino data stats` on edge inputs: +/-inf pixels follow the one validity rule, a --nodata the data type cannot
hold and complex data are refused naming the file, alpha bands are left out (said in one line), and constant bands
or too few valid pixels are warned about, naming the bands and their valid pixel counts."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from geodino import cli
from geodino.data.stats import compute_stats
from tests.embed.conftest import write_tif
from tests.helpers import write_rgba
from tests.test_bad_inputs import one_line_exit_2


def _stats(tmp_path, src, *extra: str) -> dict:
    out = tmp_path / "s.yaml"
    assert cli.main(["data", "stats", str(src), "--out", str(out), "--overwrite", *extra]) == 0
    return yaml.safe_load(out.read_text())


def test_inf_pixels_are_invalid_in_every_band(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((3, 64, 64)).astype(np.float32)
    a[0, 3, 3], a[1, 20, 20] = np.inf, -np.inf
    got = _stats(tmp_path, write_tif(tmp_path / "inf.tif", a))
    keep = np.ones((64, 64), bool)
    keep[3, 3] = keep[20, 20] = False  # the whole pixel, as embed and training read it
    assert got["stats"]["pixels"] == [64 * 64 - 2] * 3
    np.testing.assert_allclose(got["mean"], a[:, keep].astype(np.float64).mean(1), atol=2e-6)
    np.testing.assert_allclose(got["stats"]["p99"], np.percentile(a[:, keep], 99, axis=1), atol=2e-6)


@pytest.mark.parametrize(
    ("value", "why"), [("300", "nodata 300 is out of range"), ("-1", "nodata -1 is out of range"),
                       ("2.5", "nodata 2.5 is not an integer")]
)  # fmt: skip
def test_nodata_outside_the_dtype_is_refused_naming_the_file(capsys, tmp_path, value, why):
    src = write_tif(tmp_path / "u8.tif", np.random.default_rng(0).integers(1, 255, (3, 40, 40)).astype(np.uint8))
    one_line_exit_2(capsys, tmp_path, "data", "stats", src, "--out", tmp_path / "s.yaml", "--nodata", value,
                    expect=(why, "raster", "u8.tif", "uint8 holds integers 0..255"))  # fmt: skip


def test_complex_data_is_refused(capsys, tmp_path):
    rng = np.random.default_rng(0)
    src = write_tif(tmp_path / "cplx.tif", (rng.random((2, 40, 40)) + 1j).astype(np.complex64))
    one_line_exit_2(capsys, tmp_path, "data", "stats", src, "--out", tmp_path / "s.yaml",
                    expect=("raster", "cplx.tif", "complex numbers (complex64)"))  # fmt: skip


def test_alpha_bands_are_left_out_unless_selected(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(1, 255, (3, 64, 64)).astype(np.uint8)
    alpha = np.full((64, 64), 255, np.uint8)
    alpha[:16, :16] = 0
    src = write_rgba(tmp_path / "rgba.tif", rgb, alpha, origin=(0, 0))
    with pytest.warns(UserWarning, match=r"band 4 is an alpha band .* left out of the statistics") as rec:
        got = _stats(tmp_path, src)
    assert len([w for w in rec if "alpha" in str(w.message)]) == 1
    # GDAL marks a 4-band uint8 GeoTIFF RGBA: its colour interpretation names the data bands
    assert got["bands"] == ["red", "green", "blue"] and got["stats"]["pixels"] == [64 * 64 - 256] * 3
    np.testing.assert_allclose(got["mean"], rgb[:, alpha > 0].astype(np.float64).mean(1) / 255, atol=2e-6)
    # named explicitly, it is read (and its mask still applies)
    with pytest.warns(UserWarning, match=r"band alpha \(3,840 valid pixels\) is constant or nearly"):  # alpha 255
        got = _stats(tmp_path, src, "--bands", "b1", "b2", "b3", "b4")  # positions still select them,
    # and the YAML names each by the file's colour interpretation (b4 of an RGBA file is its alpha band)
    assert got["bands"] == ["red", "green", "blue", "alpha"] and got["mean"][3] == pytest.approx(1.0)
    # a sensor gets the three data bands
    with pytest.warns(UserWarning, match=r"band 4 is an alpha band .* left out of the statistics"):
        got = _stats(tmp_path, src, "--sensor", "maxar")
    assert got["bands"] == ["R", "G", "B"]


def test_a_constant_band_is_warned_about_by_name_and_count(tmp_path):
    rng = np.random.default_rng(0)
    a = np.stack([rng.integers(1, 255, (64, 64)), np.full((64, 64), 77)]).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"band b2 \(4,096 valid pixels\) is constant or nearly") as rec:
        got = _stats(tmp_path, write_tif(tmp_path / "c.tif", a))
    lines = [str(w.message) for w in rec if "constant" in str(w.message) or "valid pixels" in str(w.message)]
    assert len(lines) == 1 and "b1" not in lines[0] and "--bands" in lines[0] and "1,000,000" in lines[0]
    assert got["std"][1] < 1e-4  # written (STD_FLOOR), with the warning


def test_too_few_valid_pixels_are_warned_about(tmp_path):
    a = np.zeros((3, 64, 64), np.uint16)
    a[:, 5, 5] = [100, 200, 300]
    with pytest.warns(UserWarning, match=r"bands b1, b2, b3 \(1 valid pixel\): fewer than 1,000 valid"):
        _stats(tmp_path, write_tif(tmp_path / "one.tif", a, nodata=0))


def test_good_statistics_warn_nothing(tmp_path, recwarn):
    rng = np.random.default_rng(0)
    compute_stats(str(write_tif(tmp_path / "g.tif", rng.random((2, 64, 64)).astype(np.float32))), progress=False)
    assert not [w for w in recwarn if "valid pixels" in str(w.message) or "constant" in str(w.message)]


def test_datacube_nodata_and_complex_are_refused_too(tmp_path):
    import rioxarray  # noqa: F401
    import xarray as xr

    from geodino.errors import InputError

    y, x = 5 + np.arange(32) * -10.0, 5 + np.arange(32) * 10.0
    data = np.random.default_rng(0).integers(1, 255, (2, 32, 32)).astype(np.uint8)
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["a", "b"], "y": y, "x": x}, name="v")
    da.rio.write_crs("EPSG:32633").to_dataset().to_zarr(tmp_path / "u8.zarr", zarr_format=2)
    with pytest.raises(InputError, match=r"nodata 300 is out of range for datacube .*u8\.zarr"):
        compute_stats(str(tmp_path / "u8.zarr"), type="cube", nodata=300, progress=False)
    da.astype(np.complex64).rio.write_crs("EPSG:32633").to_dataset().to_zarr(tmp_path / "c.zarr", zarr_format=2)
    with pytest.raises(InputError, match=r"datacube .*c\.zarr holds complex numbers \(complex64\)"):
        compute_stats(str(tmp_path / "c.zarr"), type="cube", progress=False)


def test_a_training_sources_nodata_that_the_files_cannot_hold_is_one_line(tmp_path):
    """A raster source's `nodata:` override of 300 on uint8 files matched no pixel, silently (training, preview
    and curate read through the archive): refused when the scenes are indexed, naming the file and the key."""
    from geodino.data.archive import RasterArchive
    from geodino.errors import InputError
    from tests.helpers import write_tif

    write_tif(tmp_path / "a.tif", np.full((3, 16, 16), 7, np.uint8))
    with pytest.raises(InputError, match=r"^nodata 300 is out of range for raster .*a\.tif, whose data type uint8 "
                       r"holds integers 0\.\.255; set the source's `nodata:` in that range"):  # fmt: skip
        RasterArchive([str(tmp_path / "a.tif")], nodata=300)
    assert RasterArchive([str(tmp_path / "a.tif")], nodata=7).scenes[0].nodata == 7.0
