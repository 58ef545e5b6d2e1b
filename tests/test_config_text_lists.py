"""A YAML list in a config file is read as the same list given as an override: embed's text key `layers` took
`layers=[4,8]` on the command line, yet a file's `layers: [4, 8]` was "Cannot convert 'ListConfig' to string"."""

from __future__ import annotations

import dataclasses

import pytest

from geodino.config import load_config, to_dict
from geodino.config_lists import LIST_AS_TEXT, text_lists
from geodino.embed.config import EmbedConfig
from geodino.errors import ConfigError
from geodino.eval.runner import SuiteConfig
from geodino.train.config import PretrainConfig
from geodino.train.distill.config import DistillConfig


@pytest.mark.parametrize(
    ("yaml", "want"), [("layers: [4, 8]", "4,8"), ("layers:\n  - -2\n  - -1", "-2,-1"), ("layers: ['3']", "3")]
)
def test_a_layers_list_in_a_file_is_the_flags_text(tmp_path, yaml: str, want: str) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(yaml + "\n")
    assert load_config(EmbedConfig, f).layers == want
    assert load_config(EmbedConfig, None, [f"layers=[{want}]"]).layers == want  # the override, also from Python


@pytest.mark.parametrize("value", ["[]", "[a, 2]", "[1.5]", "{a: 1}"])
def test_a_layers_list_naming_no_blocks_is_one_line_naming_the_file(tmp_path, value: str) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(f"layers: {value}\n")
    with pytest.raises(ConfigError, match=r"^layers: .* in .*e\.yaml is not a list of block indices; use last, ") as e:
        load_config(EmbedConfig, f)
    assert "layers: [4, 8, 11]" in str(e.value) and "ListConfig" not in str(e.value)


# the list keys of embed's schema and some of each other command's (pretrain, distill, probe): all read by one merge
SOURCE = ["data.sources=[{type: raster, paths: [x.tif]}]"]  # pretraining and distillation need one
LISTS = [
    (EmbedConfig, "layers", "[4, 8]"),
    (EmbedConfig, "bands", "[1, 2]"),
    (EmbedConfig, "bands", "[red, nir]"),
    (EmbedConfig, "bbox", "[10.1, 59.9, 10.3, 60.0]"),
    (EmbedConfig, "window", "[0, 0, 64, 64]"),
    (EmbedConfig, "asset_bands", "[red, '4']"),
    (EmbedConfig, "band_scale", "[0.0001, 1]"),
    (PretrainConfig, "trainer.loggers", "[csv]"),
    (PretrainConfig, "crops.global_scale", "[0.4, 1]"),
    (PretrainConfig, "ssl.ibot.mask_ratio_min_max", "[0.1, 0.4]"),
    (DistillConfig, "teacher.head_warmup_momentum", "[0.9, 0.99]"),
    (DistillConfig, "train.loggers", "[csv, tensorboard]"),
    (SuiteConfig, "backbone_bands", "[red, nir, blue]"),
    (SuiteConfig, "tasks.demo_landcover.knn.ks", "[5]"),
]


@pytest.mark.parametrize(("schema", "key", "value"), LISTS, ids=[f"{k}={v}" for _, k, v in LISTS])
def test_a_list_in_a_file_reads_as_the_override(tmp_path, schema: type, key: str, value: str) -> None:
    *sections, leaf = key.split(".")
    f = tmp_path / "c.yaml"
    base, extra = ("demo", []) if schema is SuiteConfig else (None, SOURCE if schema is not EmbedConfig else [])
    nested = "".join(f"{'  ' * i}{s}:\n" for i, s in enumerate(sections)) + f"{'  ' * len(sections)}{leaf}: {value}\n"
    f.write_text((f"_base_: {base}\n" if base else "") + nested)
    from_file = to_dict(load_config(schema, f, extra))
    from_override = to_dict(load_config(schema, base, [*extra, f"{key}={value}"]))
    assert from_file == from_override
    got, default = from_file, to_dict(load_config(schema, base, extra))
    for part in key.split("."):
        got, default = got[part], default[part]
    assert isinstance(got, str if key == "layers" else list) and got != default  # set, not left at the default


def test_text_lists_reaches_nested_sections_and_leaves_text_alone() -> None:
    @dataclasses.dataclass
    class Inner:
        pick: str = dataclasses.field(default="a", metadata={LIST_AS_TEXT: lambda v, where: "+".join(map(str, v))})

    @dataclasses.dataclass
    class Outer:
        inner: Inner = dataclasses.field(default_factory=Inner)
        other: list[int] = dataclasses.field(default_factory=list)

    got = text_lists(Outer, {"inner": {"pick": [1, 2]}, "other": [3]}, "x.yaml")
    assert got == {"inner": {"pick": "1+2"}, "other": [3]}
    assert text_lists(Outer, {"inner": {"pick": "b"}}, "x.yaml") == {"inner": {"pick": "b"}}
