"""A partly declared raster (band 1 GDAL scale 1e-4, bands 2-3 nothing) met by a probe or `embed images`: the
refusal names that caller's own settings (the probe's data_scale / data.scale and file_scale, embed images' --scale
and --no-file-scale), not `geodino embed`'s --scale and band_scale, which a probe does not read."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.errors import InputError
from geodino.eval.scaling import InputScaling
from tests.data.test_partly_declared import _tif


def _no_read(path):
    raise AssertionError(f"{path}: settle needs no pixels here")


@pytest.mark.parametrize(
    ("keys", "fix"),
    [
        (("data_scale", "data_offset"), "set data_scale, one DN -> reflectance factor for all bands that overrides "
         "the files', or leave the files' own unread with file_scale false"),
        (("data.scale", "data.offset"), "set data.scale, one DN -> reflectance factor for all bands that overrides "
         "the files', or leave the files' own unread with data.file_scale false"),
        (("--scale", "--offset"), "pass --scale FACTOR (scale= in Python), one rule for all bands that overrides the "
         "files', or leave the files' own unread with --no-file-scale, file_scale=False in Python"),
    ],
)  # fmt: skip
def test_the_refusal_names_the_callers_settings(tmp_path, keys, fix):
    part = _tif(tmp_path / "part.tif", (1e-4, 1.0, 1.0))
    with pytest.raises(InputError) as err:
        InputScaling(keys=keys).settle([part], _no_read)
    line = str(err.value)
    assert line.startswith(f"raster {part} declares physical value = DN * 0.0001 + 0 for band 1") and line.endswith(
        fix
    ), line
    assert "band_scale" not in line


def test_the_ways_out_read_the_file(tmp_path):
    part = _tif(tmp_path / "part.tif", (1e-4, 1.0, 1.0))
    data = np.full((3, 2, 2), 5000, np.uint16)
    for scaling in (InputScaling(file_scale=False), InputScaling(scale=1e-4)):
        scaling.settle([part], _no_read)
        assert float(scaling.apply(data, str(part)).max()) == pytest.approx(0.5)
