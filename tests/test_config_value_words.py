"""A config value of the wrong type is refused in words, not OmegaConf's class names: a list given to a text key was
"Cannot convert 'ListConfig' to string: '['a', 'b']'", a word given to a number "Value 'three' of type 'str' could
not be converted to Integer"."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

import pytest

from geodino import cli
from geodino.config import from_mapping, load_config
from geodino.errors import ConfigError
from geodino.eval.segmentation import SegmentationProbeConfig
from geodino.train.config import PretrainConfig


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"mask_column": ["a", "b"]}, "'mask_column' in s.yaml has a bad value: a list (['a', 'b']) where one text "
         "value goes; give one, e.g. mask_column: NAME"),
        ({"mask_column": {"a": 1}}, "a mapping ({'a': 1}) where one text value goes"),
        ({"num_classes": "three"}, "bad value: Value 'three' is not a whole number; give one, e.g. num_classes: 3"),
        ({"num_classes": 2.5}, "Value '2.5' is not a whole number"),
        ({"val_fraction": "a fifth"}, "Value 'a fifth' is not a number; give one, e.g. val_fraction: 0.5"),
        ({"progress": "maybe"}, "Value 'maybe' is not true or false; give one, e.g. progress: true"),
    ],
)  # fmt: skip
def test_a_file_value_of_the_wrong_type_is_said_in_words(data, line):
    with pytest.raises(ConfigError) as info:
        from_mapping(SegmentationProbeConfig, data, "s.yaml")
    assert line in str(info.value) and "ListConfig" not in str(info.value) and "converted to" not in str(info.value)


def test_an_override_of_a_list_entry_says_it_alike():
    with pytest.raises(
        ConfigError, match=r"has a bad value: Value 'abc' is not a number; give one, e.g. tile_size: 256$"
    ):
        load_config(
            PretrainConfig, None, ["data.sources=[{type: raster, paths: [x.tif]}]", "data.sources[0].tile_size=abc"]
        )


def test_the_cli_line(tmp_path, capsys):
    args = ["probe", "-b", "arch:vit_tiny", "-o", str(tmp_path / "o"), "tasks.s.type=segmentation"]
    assert cli.main([*args, "tasks.s.mask_column=[a,b]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "geodino: error: config key 'mask_column' in tasks.s has a bad value: a list (['a', 'b']) where one text "
        "value goes; give one, e.g. mask_column: NAME"
    ), err


class Point(enum.Enum):
    """An enum whose name holds "int": the hint text 'Union[Point, bool]' was read as a number key."""

    centre = 1
    corner = 2


@dataclass
class _Keys:
    where: Union[Point, bool] = True  # noqa: UP007 (OmegaConf reads typing.Union)
    size: Union[int, float] = 256  # noqa: UP007


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"where": "middle"}, "bad value: Value 'middle' is not one of centre, corner or true or false"),
        ({"size": "big"}, "bad value: Value 'big' is not a number; give one, e.g. size: 256"),
    ],
)
def test_a_union_key_is_said_by_its_declared_types_not_by_letters_of_its_name(data, line):
    with pytest.raises(ConfigError) as info:
        from_mapping(_Keys, data, "k.yaml")
    assert str(info.value).endswith(line), str(info.value)


def test_the_words_come_from_the_type_not_the_hint_text():
    from geodino.config_value_words import value_words

    msg = "Value 'x' of type 'str' is incompatible with type hint 'Union[Point, bool]'"
    assert value_words(msg, "k", Union[Point, bool]) == "Value 'x' is not one of centre, corner or true or false"  # noqa: UP007
    assert value_words(msg, "k", None) == "Value 'x' is not a Union[Point, bool]"  # no type: OmegaConf's hint
    whole = "Value 'x' of type 'str' is incompatible with type hint 'Optional[int]'"
    assert value_words(whole, "a.n", Union[int, None]) == "Value 'x' is not a whole number; give one, e.g. n: 3"  # noqa: UP007
