"""A raster whose band 1 declares a DN -> physical rule (GDAL scale 1e-4) and whose other integer bands declare
nothing: GDAL reports 1/0 for those, so they were read raw (uint16 DN 0..10000 taken for reflectance beside a
scaled band) by `geodino embed`, `embed images` and the probes, with only the scale line to say it. Refused in one
line naming the file and the bands without a rule (`geodino.data.headers.declared_rule`); float bands without a
rule hold physical values already and pass."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.data.headers import declared_rule
from geodino.errors import InputError
from tests.embed.conftest import random_image
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1"]


def _tif(path, scales, dtype="uint16"):
    data = random_image(32, 32, len(scales), dtype=dtype)
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=len(scales), dtype=dtype,
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write(data)
        ds.scales = scales
    return path


def test_rasterio_reports_an_undeclared_band_as_1_and_0(tmp_path):
    """What the refusal rests on: GDAL does not store a scale of 1 and reports 1/0 for a band without tags."""
    with rasterio.open(_tif(tmp_path / "p.tif", (1e-4, 1.0, 1.0))) as ds:
        assert ds.scales == (1e-4, 1.0, 1.0) and ds.offsets == (0.0, 0.0, 0.0)


def test_embed_refuses_integer_bands_without_a_rule_beside_a_declaring_one(tmp_path, capsys):
    src = _tif(tmp_path / "p.tif", (1e-4, 1.0, 1.0))
    line = one_line_exit_2(capsys, tmp_path, "embed", src, "-b", SPEC, "--out", tmp_path / "o.tif", *RUN)
    assert line == (
        f"geodino: error: raster {src} declares physical value = DN * 0.0001 + 0 for band 1 (GDAL scale/offset) but "
        "nothing for bands 2, 3 (uint16), which would be read raw, DN as physical values; write every band's "
        "scale/offset into the file (gdal_edit.py -scale/-offset, or a VRT), or give one rule for all bands, which "
        "overrides the file's (--scale FACTOR, scale= in Python, or band_scale=[...] band_offset=[...]), or ignore "
        "the file's with file_scale=false"
    ), line


def test_the_ways_out_run(tmp_path):
    from geodino import cli

    src = _tif(tmp_path / "p.tif", (1e-4, 1.0, 1.0))
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "o.tif"), "--scale", "0.0001", *RUN]) == 0
    with pytest.warns(UserWarning, match="is uint16: assuming reflectance = DN / 10000"):  # the dtype's rule
        assert (
            cli.main(["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "f.tif"), "file_scale=false", *RUN]) == 0
        )


def test_what_passes_and_the_probes_wording(tmp_path):
    every = _tif(tmp_path / "all.tif", (1e-4, 1e-4, 2e-4))
    assert declared_rule(every) == ((1e-4, 1e-4, 2e-4), (0.0, 0.0, 0.0))
    part = _tif(tmp_path / "part.tif", (1e-4, 1.0, 1.0))
    assert declared_rule(part, [1]) == ((1e-4,), (0.0,))  # the bands read all declare theirs
    assert declared_rule(part, [2, 3]) is None  # nothing declared for the bands read: the dtype's or sensor's rule
    floats = _tif(tmp_path / "f.tif", (2.0, 1.0, 1.0), dtype="float32")  # physical values need no rule
    assert declared_rule(floats) == ((2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(InputError, match=r"for band 1 .* nothing for bands 2, 3 \(uint16\).*a probe's data\.scale"):
        declared_rule(part)
    np.testing.assert_equal(declared_rule(part, [1, 1]), ((1e-4, 1e-4), (0.0, 0.0)))
