"""MissingBandError: the fields a caller words its own fix from, and a pickle round trip (worker processes)."""

from __future__ import annotations

import pickle

import pytest

from geodino.errors import InputError, MissingBandError


def test_fields_build_the_same_line_with_another_fix_and_pickling_keeps_the_line():
    err = MissingBandError(
        "raster a.tif has no band 'nir' (its bands: R, G, B); fix `bands:`",
        source="raster a.tif",
        band="nir",
        names=["R", "G", "B"],
    )
    assert isinstance(err, InputError) and err.names == ("R", "G", "B")
    assert str(err.with_fix("pass bands= names among those")) == (
        "raster a.tif has no band 'nir' (its bands: R, G, B); pass bands= names among those"
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is MissingBandError and str(back) == str(err)
    with pytest.raises(InputError, match="fix `bands:`"):
        raise back
