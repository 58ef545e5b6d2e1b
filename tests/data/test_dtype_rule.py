"""The dtype rule (`geodino.data.dtype_rule`), the one default DN -> reflectance rule every command reads: uint8
/ 255, uint16 and int16 / 10000, floats as given; int8 and 32/64-bit integers have no default and are refused in
one line naming the data, its type and the caller's way to give a scale (before: embed divided them by 10000
while the probes read them as reflectance, silently)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.dtype_rule import DTYPE_DEFAULTS, DTYPE_RULE, dtype_divisor, has_dtype_default
from geodino.errors import InputError


@pytest.mark.parametrize(
    ("dtype", "divisor"),
    [("uint8", 255.0), ("uint16", 10000.0), ("int16", 10000.0), ("float16", 1.0), ("float32", 1.0), ("float64", 1.0)],
)
def test_types_with_a_default_get_their_divisor(dtype, divisor):
    assert dtype_divisor(dtype) == divisor and has_dtype_default(dtype)
    assert dtype_divisor(np.dtype(dtype)) == divisor  # a numpy dtype as well as its name


@pytest.mark.parametrize("dtype", ["int8", "int32", "uint32", "int64", "uint64", "bool"])
def test_other_types_are_refused_in_one_line_naming_the_data_and_the_fix(dtype):
    assert not has_dtype_default(dtype)
    with pytest.raises(InputError) as err:
        dtype_divisor(dtype, "input /data/x.tif", "pass --scale FACTOR")
    line = str(err.value)
    assert line.startswith(f"input /data/x.tif is {np.dtype(dtype).name}: ") and line.endswith("; pass --scale FACTOR")
    assert "\n" not in line and DTYPE_DEFAULTS in line
    if dtype == "int8":
        assert "codes" in line
    elif dtype != "bool":
        assert f"{np.dtype(dtype).itemsize * 8}-bit integers" in line


def test_the_rule_text_says_what_the_function_does():
    for name, divisor in (("uint8", 255), ("uint16", 10000), ("int16", 10000)):
        assert f"{name} / {divisor}" in DTYPE_RULE and dtype_divisor(name) == divisor
    assert "floats as given" in DTYPE_RULE and "refused" in DTYPE_RULE


@pytest.mark.parametrize(("dtype", "divisor"), [(">u2", 10000.0), (">i2", 10000.0), (">f4", 1.0), ("|u1", 255.0)])
def test_byte_order_does_not_change_the_rule(dtype, divisor):
    # big-endian 16-bit DN (an in-memory xarray cube of np.fromfile('>i2') data, a raw big-endian memmap) are the
    # same DN: refused as "uint16: 16-bit integers have no common DN scale" before, beside a default for uint16
    assert dtype_divisor(dtype) == divisor and has_dtype_default(dtype)


@pytest.mark.parametrize("dtype", ["complex64", "complex128", ">c8"])
def test_complex_data_is_refused_without_asking_for_a_scale(dtype):
    # a DN factor cannot make complex numbers reflectance (a cast drops the imaginary part): the line embed and data
    # stats give (`validity.check_real`), not "it is not numeric imagery ... set data_scale (=1 reads the values)"
    with pytest.raises(InputError) as err:
        dtype_divisor(dtype, "image a/0.tif", "set data_scale to its DN -> reflectance factor")
    line = str(err.value)
    assert line.startswith("image a/0.tif holds complex numbers (complex") and "real-valued bands" in line
    assert "data_scale" not in line and "\n" not in line


def test_complex_int16_of_rasterio_is_refused_in_one_line():
    # GDAL's CInt16, which rasterio names 'complex_int16' (no numpy dtype): `geodino embed` ended in a TypeError
    from geodino.data.validity import check_real

    with pytest.raises(InputError, match=r"^raster s\.tif holds complex numbers \(complex_int16\), which a model"):
        check_real("complex_int16", "raster s.tif")
    check_real("int16", "raster s.tif")  # real data passes


def test_a_cint16_raster_is_named_complex_by_data_stats(tmp_path, capsys):
    # the archive's index read 'complex_int16' with np.dtype: "cannot be read (TypeError ...); re-download it"
    import rasterio
    from rasterio.transform import from_origin

    from geodino.cli import main

    src = tmp_path / "slc.tif"
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "complex_int16", "crs": "EPSG:32633"}
    with rasterio.open(src, "w", transform=from_origin(500000, 0, 10, 10), **profile) as dst:
        dst.write(np.full((1, 8, 8), 3 + 4j, np.complex64))
    assert main(["data", "stats", str(src), "--out", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"raster {src} holds complex numbers (complex64)" in err and "TypeError" not in err
