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


def test_a_suggestion_is_offered_once_when_names_repeat() -> None:
    """A sensor's bands then its aliases repeat names: "did you mean B11, B11?" before."""
    from geodino.data.sensors import get_sensor
    from geodino.errors import did_you_mean

    assert sorted(did_you_mean("B13", ["B11", "B12", "B11", "B12"], n=3)) == ["B11", "B12"]
    with pytest.raises(InputError, match=r"did you mean B11\?$"):
        get_sensor("sentinel2_l2a").resolve_band("B13_10m")
