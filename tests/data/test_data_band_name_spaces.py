"""Band names written apart by spaces (`bands: red nir`) were one band named "red nir": the source failed later, at
the first file, with "has no band 'red nir'" and no word on the spelling. Text like that is now refused when the
config is read, naming the value and the comma spelling; a list item with spaces (an override `bands="red nir"`,
which the config layer turns into a list of one) still fails at the file, now saying it is one name and how to
list several."""

from __future__ import annotations

import pytest

from geodino.data.archive import RasterArchive
from geodino.data.band_args import parse_band_names
from geodino.data.config import DataConfig, SourceConfig
from geodino.errors import ConfigError, MissingBandError
from tests.data.conftest import ramp, write_tif


def test_space_separated_name_text_is_refused_with_the_comma_spelling():
    with pytest.raises(ConfigError) as e:
        parse_band_names("red nir", "data.sources[0].bands")
    msg = str(e.value)
    assert "data.sources[0].bands='red nir' cannot be used" in msg
    assert "data.sources[0].bands=red,nir" in msg and "\n" not in msg


def test_config_validation_refuses_it_too():
    cfg = DataConfig(sources=[SourceConfig(type="raster", paths=["x"], bands="B04 B08")])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"bands=B04,B08"):
        cfg.validate()


def test_commas_lists_and_names_with_spaces_in_a_list_still_pass():
    assert parse_band_names("red, nir", "bands") == ["red", "nir"]
    assert parse_band_names("[red, nir]", "bands") == ["red", "nir"]
    assert parse_band_names(["Near Infrared"], "bands") == ["Near Infrared"]
    assert parse_band_names("nir", "bands") == ["nir"]


def test_a_list_item_with_spaces_names_the_spelling_at_the_file(tmp_path):
    path = write_tif(tmp_path / "a.tif", ramp(2, 16, 16), descriptions=["red", "nir"])
    with pytest.raises(MissingBandError) as e:
        RasterArchive(path, bands=["red nir"], progress=False)
    assert "'red nir' is one name" in str(e.value) and "(red,nir)" in str(e.value)
    with pytest.raises(MissingBandError, match=r"fix `bands:`"):  # a plain missing band keeps its message
        RasterArchive(path, bands=["red blue"], progress=False)
