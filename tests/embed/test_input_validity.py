"""What `geodino embed` accepts as input pixels: non-finite pixels are invalid like NaN (one +/-inf pixel wiped a
whole feature raster), a nodata value the data type cannot hold or complex data is refused before anything is
written, an alpha band is named as the validity mask, and the margin message lists the margins that work."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.errors import ConfigError, InputError
from tests.embed.conftest import read_all, write_tif
from tests.helpers import write_rgba
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress"]


def _random(dtype: str = "float32", shape=(3, 32, 32), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        return rng.integers(1, 255, shape).astype(np.uint8)
    return rng.random(shape).astype(dtype)


def _embed(capsys, src, out, *extra: str) -> np.ndarray:
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), *RUN, *extra]) == 0, capsys.readouterr().err
    return read_all(out)[0]


# -- +/-inf pixels ---------------------------------------------------------------------------------------------------


def test_inf_pixels_are_invalid_like_declared_nodata(capsys, tmp_path):
    a = _random()
    a[0, 3, 3], a[1, 20, 20] = np.inf, -np.inf
    got = _embed(capsys, write_tif(tmp_path / "inf.tif", a), tmp_path / "inf_emb.tif")
    # every cell is valid: the two pixels are masked, not spread through attention to the whole tile
    assert np.isfinite(got).all()
    b = a.copy()
    b[:, 3, 3] = b[:, 20, 20] = -9999.0
    ref = _embed(capsys, write_tif(tmp_path / "nd.tif", b, nodata=-9999.0), tmp_path / "nd_emb.tif")
    np.testing.assert_array_equal(got, ref)


def test_a_cell_of_inf_pixels_is_nodata_and_only_that_cell(capsys, tmp_path):
    a = _random()
    a[2, 8:16, 16:24] = np.inf  # one band of every pixel of cell (1, 2)
    got = _embed(capsys, write_tif(tmp_path / "inf.tif", a), tmp_path / "o.tif")
    nodata = np.isnan(got).all(axis=0)
    expected = np.zeros((4, 4), bool)
    expected[1, 2] = True
    np.testing.assert_array_equal(nodata, expected)
    assert np.isfinite(got[:, ~expected]).all()


def test_valid_pixels_rule():
    from geodino.data.validity import valid_pixels

    x = np.ones((2, 2, 3), np.float32)
    x[0, 0, 0], x[1, 0, 1], x[0, 1, 2] = np.inf, -np.inf, np.nan
    np.testing.assert_array_equal(valid_pixels(x), [[False, False, True], [True, True, False]])
    u = np.full((2, 2, 2), 44, np.uint8)
    assert valid_pixels(u, 300).all() and valid_pixels(u, 44.5).all()  # no uint8 pixel holds them (GDAL's mask)
    assert not valid_pixels(u, 44).any()


# -- nodata outside the data type --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"), [("300", "nodata 300 is out of range"), ("-1", "nodata -1 is out of range"),
                       ("2.5", "nodata 2.5 is not an integer")]
)  # fmt: skip
def test_nodata_outside_the_dtype_is_refused_before_anything_is_written(capsys, tmp_path, value, why):
    src = write_tif(tmp_path / "u8.tif", _random("uint8"))
    out = tmp_path / "nd.tif"
    one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", out, *RUN, "--nodata", value,
                    expect=(why, "raster", "u8.tif", "uint8", "integers 0..255", "--nodata"))  # fmt: skip
    assert not (tmp_path / ".nd.tif.partial").exists()
    _embed(capsys, src, out)  # the next run without --nodata is not refused as a partial output


def test_nodata_checks_in_python_and_for_floats(capsys, tmp_path):
    from geodino.embed import embed_raster

    src = write_tif(tmp_path / "u8.tif", _random("uint8"))
    with pytest.raises(InputError, match=r"nodata 300 is out of range for raster .*u8\.tif.*0\.\.255"):
        embed_raster(src, SPEC, tmp_path / "o.tif", nodata=300, tile=32, overlap=8, progress=False)
    f32 = write_tif(tmp_path / "f.tif", _random())
    with pytest.raises(InputError, match="nodata 1e\\+40 is out of range"):
        embed_raster(f32, SPEC, tmp_path / "o.tif", nodata=1e40, tile=32, overlap=8, progress=False)
    assert not list(tmp_path.glob(".*partial"))
    # NaN matches no pixel of any type: the way to switch off a wrong declared nodata value
    _embed(capsys, src, tmp_path / "nan.tif", "--nodata", "nan")


# -- complex data ----------------------------------------------------------------------------------------------------


def test_complex_input_is_refused(capsys, tmp_path):
    import warnings

    c = (_random() + 1j * _random(seed=1)).astype(np.complex64)
    src = write_tif(tmp_path / "cplx.tif", c)
    with warnings.catch_warnings():  # refused before any cast: numpy never says "discards the imaginary part"
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "c.tif", *RUN,
                        expect=("raster", "cplx.tif", "complex64", "real-valued bands"))  # fmt: skip


# -- alpha bands, band adaptation hints -------------------------------------------------------------------------------


def test_an_alpha_band_is_named_as_the_mask_and_bands_1_2_3_keep_it_as_one(capsys, tmp_path):
    alpha = np.full((32, 32), 255, np.uint8)
    alpha[:8, :8] = 0
    src = write_rgba(tmp_path / "alpha.tif", _random("uint8"), alpha)
    line = one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "a.tif", *RUN,
                           expect=("has 4 bands", "band 4 is an alpha band", "--bands 1,2,3"))  # fmt: skip
    # an RGBN file GDAL wrote as RGBA: the way out is said, and the adapted spec never repeats bands=
    assert "if it is data" in line and "gdal_edit.py -colorinterp_4 undefined" in line
    assert "bands=3&bands" not in line and line.index("--bands 1,2,3") < line.index("bands=4")
    got = _embed(capsys, src, tmp_path / "a.tif", "--bands", "1,2,3")
    assert np.isnan(got[:, 0, 0]).all() and np.isfinite(got[:, 1:, :]).all()  # the alpha mask is honoured


def test_an_alpha_band_fed_as_data_is_said(capsys, tmp_path):
    src = write_rgba(tmp_path / "alpha.tif", _random("uint8"), np.full((32, 32), 255, np.uint8))
    spec4 = "arch:vit_tiny?depth=1&patch_size=8&bands=4"
    with pytest.warns(UserWarning, match=r"band 4 of input .*alpha\.tif is an alpha band .*--bands 1,2,3"):
        assert cli.main(["embed", str(src), "-b", spec4, "--out", str(tmp_path / "a.tif"), *RUN]) == 0


def test_band_adaptation_hint_replaces_the_specs_bands_option(capsys, tmp_path):
    src = write_tif(tmp_path / "u8.tif", _random("uint8"))
    spec4 = "arch:vit_tiny?depth=1&patch_size=8&bands=4"
    line = one_line_exit_2(capsys, tmp_path, "embed", src, "-b", spec4, "--out", tmp_path / "o.tif", *RUN,
                           expect=("--backbone 'arch:vit_tiny?depth=1&patch_size=8&bands=3'",))  # fmt: skip
    assert line.count("bands=") == 2  # the backbone it names, and the one suggested: never twice in one spec


def test_with_spec_option():
    from geodino.embed.sources import with_spec_option

    assert with_spec_option("arch:vit_tiny?bands=3&depth=1", "bands", "4") == "arch:vit_tiny?bands=4&depth=1"
    assert with_spec_option("arch:vit_tiny", "bands", "4") == "arch:vit_tiny?bands=4"
    assert with_spec_option("arch:x?in_chans=3&bands=3&bands=5", "bands", "4", drop=("in_chans",)) == "arch:x?bands=4"


# -- margin ------------------------------------------------------------------------------------------------------------


def test_margin_message_names_the_margins_that_work(capsys, tmp_path):
    src = write_tif(tmp_path / "u8.tif", _random("uint8"))
    argv = ["embed", src, "-b", SPEC, "--out", tmp_path / "m.tif", "--tile", "16", "--overlap", "8", "--no-progress"]
    one_line_exit_2(capsys, tmp_path, *argv, "--margin", "8",
                    expect=("margin=8 must be a multiple of the patch size 8 between 0 and overlap/2 (4): only 0",
                            "--margin 0"))  # fmt: skip
    one_line_exit_2(capsys, tmp_path, *argv, "--margin", "4", expect=("only 0",))  # fmt: skip
    from geodino.embed.config import check_margin

    check_margin(8, 32, 8)
    with pytest.raises(ConfigError, match=r"\(16\): 0, 8, 16; pass one of them with --margin"):
        check_margin(4, 32, 8)


def test_an_all_inf_raster_is_refused_like_an_all_nan_one(capsys, tmp_path):
    src = write_tif(tmp_path / "inf.tif", np.full((3, 32, 32), np.inf, np.float32))
    one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", *RUN,
                    expect=("inf.tif", "has no valid pixel", "+/-inf"))  # fmt: skip
