"""Overrides of one entry of a list (`data.sources[0].paths=...`, `students.0.arch=...`) set that key and keep the
rest of the list. OmegaConf merges lists whole: the first was refused as an unknown key (while the 'did you mean'
line offered `data.sources[i].roi`), the second failed with OmegaConf's 'Cannot merge DictConfig with ListConfig'."""

from __future__ import annotations

import pytest

from geodino.config import is_override, load_config
from geodino.errors import ConfigError
from geodino.train.config import PretrainConfig
from geodino.train.distill.config import DistillConfig

TWO = "data.sources=[{name: a, type: raster, paths: [x]}, {name: b, type: raster, paths: [y], tile_size: 128}]"


def test_one_source_of_two_is_changed_and_the_other_kept() -> None:
    cfg = load_config(PretrainConfig, "demo", [TWO, "data.sources[1].paths=[z, w]", "data.sources.0.tile_size=32"])
    a, b = cfg.data.sources
    assert (a.name, a.paths, a.tile_size) == ("a", ["x"], 32)
    assert (b.name, b.paths, b.tile_size) == ("b", ["z", "w"], 128)


def test_an_entry_of_a_yaml_list_and_the_order_of_overrides() -> None:
    cfg = load_config(PretrainConfig, "demo", ["data.sources[0].weight=3", TWO])  # the whole list comes after
    assert [s.weight for s in cfg.data.sources] == [1.0, 1.0]
    demo = load_config(PretrainConfig, "demo")
    cfg = load_config(PretrainConfig, "demo", ["data.sources[0].weight=3"])
    assert cfg.data.sources[0].weight == 3 and cfg.data.sources[0].paths == demo.data.sources[0].paths


def test_a_distillation_student_is_changed_by_its_index() -> None:
    cfg = load_config(DistillConfig, "small_vit_tiny_half", ["students.0.drop_path_rate=0.05"])
    assert cfg.students[0].drop_path_rate == 0.05
    assert cfg.students[0].name == load_config(DistillConfig, "small_vit_tiny_half").students[0].name


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.sources[5].paths=[z]", "data.sources has entries data.sources[0]..data.sources[1]; set the whole list"),
        ("data.sources[0].nope=1", "unknown config key 'data.sources[i].nope'"),
        ("data.sources[0].tile_size=big", "config key 'data.sources[0].tile_size' in override"),
        ("seed[0]=1", "'seed' is not a list"),
    ],
)
def test_bad_entries_are_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, "demo", [TWO, override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_one_entry_is_named_as_one() -> None:
    with pytest.raises(ConfigError, match=r"data.sources has one entry, data.sources\[0\]; set the whole list"):
        load_config(PretrainConfig, "demo", ["data.sources[1].weight=2"])


def test_the_cli_takes_them_as_overrides() -> None:
    assert is_override("data.sources[0].paths=[x]") and is_override("students.1.arch=vit_small")
    assert not is_override("data.sources[0]/x=1") and not is_override("--x[0]=1")
