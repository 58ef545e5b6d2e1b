"""RasterArchive `res`: one number for both axes or [x, y]; another count is refused in one line naming `res`."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.archive import RasterArchive
from geodino.errors import InputError
from tests.data.conftest import write_tif


@pytest.fixture(scope="module")
def tif(tmp_path_factory):
    return write_tif(tmp_path_factory.mktemp("res") / "a.tif", np.ones((3, 16, 16), "uint8"))


@pytest.mark.parametrize(
    ("res", "pair"), [(10, (10.0, 10.0)), ([10, 20], (10.0, 20.0)), ("10", (10.0, 10.0)), ([10], (10.0, 10.0))]
)
def test_one_number_or_x_y(tif, res, pair):
    """[10] is one number too: it was blamed on the file ("cannot be read (IndexError ...)", re-download it)."""
    assert RasterArchive([str(tif)], crs="EPSG:3857", res=res, progress=False).res == pair


@pytest.mark.parametrize("res", [[], [10.0, 10.0, 10.0]])
def test_another_count_is_refused_naming_res(tif, res):
    """[10, 10, 10] passed on to the reprojection; [] was blamed on the file."""
    with pytest.raises(InputError) as err:
        RasterArchive([str(tif)], crs="EPSG:3857", res=res, progress=False)
    assert str(err.value) == f"res={res!r}: give one resolution for both axes or [x, y], in the units of `crs`"
