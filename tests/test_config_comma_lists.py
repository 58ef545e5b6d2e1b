"""`key=1,2` overrides of list-valued keys: YAML reads `1,2` as text and OmegaConf refused it ("AnyNode is not a
ListConfig"; only `bands=[1,2]` worked). A list key now takes comma text and one value as its items, alike for every
list key (embed's bands, bbox, window, band_scale, asset_bands; a training source's paths and bands); a trailing
comma is one line; keys that are not lists (layers is text) keep the text."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.embed.config import EmbedConfig
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig


@pytest.mark.parametrize(
    ("item", "want"),
    [
        ("bands=1,2", [1, 2]),
        ("bands=red, nir", ["red", "nir"]),
        ("bands=3", [3]),
        ("bbox=10.1,59.9,10.3,60", [10.1, 59.9, 10.3, 60.0]),
        ("window=0,0,64,32", [0, 0, 64, 32]),
        ("band_scale=1e-4,2e-4", [1e-4, 2e-4]),
        ("asset_bands=red,nir", ["red", "nir"]),
    ],
)
def test_comma_text_of_a_list_key_is_its_items(item: str, want: list) -> None:
    key = item.split("=")[0]
    got = getattr(load_config(EmbedConfig, None, [item]), key)
    assert got == want
    brackets = f"{key}=[{item.split('=', 1)[1]}]"
    assert getattr(load_config(EmbedConfig, None, [brackets]), key) == got  # the same as the bracket form


def test_a_trailing_comma_is_one_line_and_text_keys_keep_their_commas() -> None:
    with pytest.raises(ConfigError, match=r"override 'bands=1,2,': bands has an empty value in '1,2,'.*bands=1,2"):
        load_config(EmbedConfig, None, ["bands=1,2,"])
    assert load_config(EmbedConfig, None, ["layers=4,8"]).layers == "4,8"
    assert load_config(EmbedConfig, None, ["bands=null"]).bands is None


def test_list_keys_inside_list_entries_take_commas_too() -> None:
    cfg = load_config(
        PretrainConfig,
        None,
        ["data.sources=[{type: raster, paths: [a.tif]}]", "data.sources[0].paths=a.tif,b.tif",
         "data.sources.0.bands=B02,B03"],
    )  # fmt: skip
    assert cfg.data.sources[0].paths == ["a.tif", "b.tif"]
    assert cfg.data.sources[0].bands == ["B02", "B03"]


def test_numbers_apart_by_spaces_and_an_empty_value() -> None:
    """`window="0 0 64 32"` (the flags' spelling) was "'0 0 64 32' could not be converted to Integer"; `bands=` was
    "AnyNode is not a ListConfig"."""
    assert load_config(EmbedConfig, None, ["window=0 0 64 32"]).window == [0, 0, 64, 32]
    assert load_config(EmbedConfig, None, ["bbox=-120.5 37 -119.5 38"]).bbox == [-120.5, 37.0, -119.5, 38.0]
    with pytest.raises(ConfigError, match=r"override 'bands=': bands is given no value.*bands=null for none"):
        load_config(EmbedConfig, None, ["bands="])
