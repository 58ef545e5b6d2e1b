"""A list key given as YAML text (`asset_bands: red nir`, `ks: 10,20`) is one line saying it is a list and how to
write one; OmegaConf's own words were "Invalid value assigned: AnyNode is not a ListConfig, list or tuple"."""

from __future__ import annotations

import pytest

from geodino.config import from_mapping, load_config
from geodino.embed.config import EmbedConfig
from geodino.errors import ConfigError
from geodino.eval.classification import ClassificationConfig


@pytest.mark.parametrize("text", ["red nir", "red,nir"])
def test_list_key_as_text_in_a_file_names_key_value_and_the_list_spelling(tmp_path, text):
    f = tmp_path / "embed.yaml"
    f.write_text(f"backbone: x.pth\nasset_bands: {text}\n")
    with pytest.raises(ConfigError) as info:
        load_config(EmbedConfig, f, [])
    assert str(info.value) == (
        f"config key 'asset_bands' in {f} is a list but is given as text ({text!r}): write it in brackets, "
        "asset_bands: [a, b], or one '- item' per line"
    )


def test_nested_list_key_as_text_names_its_full_key():
    with pytest.raises(
        ConfigError, match=r"^config key 'knn.ks' in suite.yaml is a list but is given as text \('10,20'\)"
    ):
        from_mapping(ClassificationConfig, {"knn": {"ks": "10,20"}}, "suite.yaml")


def test_a_list_in_brackets_and_a_bad_scalar_keep_their_behaviour(tmp_path):
    f = tmp_path / "embed.yaml"
    f.write_text("backbone: x.pth\nasset_bands: [red, nir]\n")
    assert list(load_config(EmbedConfig, f, []).asset_bands) == ["red", "nir"]
    with pytest.raises(ConfigError, match=r"has a bad value"):
        from_mapping(ClassificationConfig, {"knn": {"temperature": "warm"}}, "suite.yaml")
