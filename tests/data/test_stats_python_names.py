"""`compute_stats` / `write_stats` called from Python name the keyword their caller passed (`scale=`, `tile_size=`,
`plot=`) beside the `geodino data stats` flag, in one line, before any file is read or written."""

from __future__ import annotations

import pytest

from geodino.data.stats import compute_stats, write_stats
from geodino.errors import InputError


def test_stats_refusals_name_the_python_keyword(tmp_path):
    with pytest.raises(InputError, match=r"^--scale -1 \(scale= in Python\) must be a positive DN -> reflectance"):
        compute_stats(str(tmp_path), scale=-1.0, progress=False)
    with pytest.raises(InputError, match=r"^--tile-size 16 \(tile_size= in Python\) does not apply to image folders"):
        compute_stats(str(tmp_path), type="images", tile_size=16, progress=False)
    out = tmp_path / "s.png"
    with pytest.raises(InputError, match=r"^--plot .*s\.png is the --out file \(plot= and out= in Python\); give"):
        write_stats(str(tmp_path), out, plot=out, progress=False)
    assert not out.exists()
