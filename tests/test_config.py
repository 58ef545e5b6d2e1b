"""Config loading: defaults, YAML, _base_ inheritance, overrides and the errors users see."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from geodino.config import describe, load_config, options_for, save_config
from geodino.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class Schema:
    name: str = "run"
    max_steps: int = 10
    optim: Optim = field(default_factory=Optim)


def test_defaults_yaml_and_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("max_steps: 50\noptim:\n  lr: 0.01\n")
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.yaml\nname: child\n")
    cfg = load_config(Schema, child, ["optim.lr=0.5", "optim.betas=[0.8,0.9]"])
    assert isinstance(cfg, Schema) and isinstance(cfg.optim, Optim)
    assert (cfg.name, cfg.max_steps, cfg.optim.lr, cfg.optim.betas) == ("child", 50, 0.5, [0.8, 0.9])


def test_unknown_key_names_close_match(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'optim.lrr' in .*c.yaml; did you mean 'optim.lr'"):
        load_config(Schema, p)
    with pytest.raises(ConfigError, match=r"unknown config key 'max_step' in override.*did you mean 'max_steps'"):
        load_config(Schema, None, ["max_step=3"])


def test_bad_type_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"'max_steps'.*bad value"):
        load_config(Schema, None, ["max_steps=abc"])
    with pytest.raises(ConfigError, match=r"nope.yaml not found"):
        load_config(Schema, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML"):
        load_config(Schema, bad)
    with pytest.raises(ConfigError, match=r"must look like key=value"):
        load_config(Schema, None, ["max_steps"])


def test_a_bare_override_is_answered_with_a_key_of_the_commands_own_config(tmp_path):
    """The example in the error is a key of the config being loaded (pretraining's `trainer.max_steps`; it said
    `train.max_steps`, distillation's key, for every command), and a data path given bare gets the source key."""
    from geodino.train.config import PretrainConfig
    from geodino.train.distill import DistillConfig

    with pytest.raises(ConfigError, match=r"\(for example trainer\.max_steps=100\)$"):
        load_config(PretrainConfig, None, ["max_steps"])
    with pytest.raises(ConfigError, match=r"\(for example train\.max_steps=100\)$"):
        load_config(DistillConfig, None, ["max_steps"])
    with pytest.raises(ConfigError, match=r"\(for example max_steps=100\)$"):
        load_config(Schema, None, ["max_steps"])
    with pytest.raises(ConfigError, match=r"pass it as a source: 'data\.sources=\[\{type: raster, paths: \["):
        load_config(PretrainConfig, None, [str(tmp_path)])


def test_describe_and_save_round_trip(tmp_path):
    text = describe(Schema)
    assert "optim.lr=0.001" in text and "max_steps=10" in text
    cfg = load_config(Schema, None, ["name=x"])
    out = tmp_path / "saved.yaml"
    save_config(cfg, out)
    assert load_config(Schema, out) == cfg


def test_options_for_passes_keyword_only_parameters_by_name():
    import argparse

    def run(path, out=None, *, lr=0.0, steps=1, name="x"):
        return path, out, lr, steps, name

    ns = argparse.Namespace(path="p", out="o", lr=0.5, steps=7, unused=1)
    # only keyword-only parameters are taken (path/out stay positional), `values` override and add
    assert options_for(run, ns) == {"lr": 0.5, "steps": 7}
    assert options_for(run, ns, steps=9, name="y") == {"lr": 0.5, "steps": 9, "name": "y"}
    assert run("p", **options_for(run, Schema(), name="z")) == ("p", None, 0.0, 1, "z")  # a dataclass works alike


def test_a_typo_inside_a_list_entry_suggests_the_entry_key(tmp_path):
    """Keys of data.sources entries reach OmegaConf without their path; the suggestion names the entry's key."""
    from geodino.train.config import PretrainConfig

    with pytest.raises(
        ConfigError, match=r"unknown config key 'tile_sise' .*did you mean 'data.sources\[i\].tile_size'"
    ):
        load_config(PretrainConfig, None, ["data.sources=[{type: raster, paths: [x], tile_sise: 64}]"])


def test_help_lists_empty_dict_keys_and_the_keys_of_list_entries():
    """`--help` promises every key: empty-dict keys (ssl.student.overrides, trainer.logger_options) were dropped and
    a source's own keys (data.sources[i].on_error, ...) were not listed."""
    from geodino.train.config import PretrainConfig
    from geodino.train.distill import DistillConfig

    lines = describe(PretrainConfig).splitlines()
    keys = ["ssl.student.overrides={}", "trainer.logger_options={}", "data.sources=[]"]
    keys += ["data.sources[i].on_error=by type (images, tar: skip; else stop)", "data.sources[i].recursive=True"]
    keys += ["crops.crop_sets[i].gram_size=2 x global_size"]  # None defaults: the word for what they do
    for key in keys:
        assert f"  {key}" in lines, key
    assert "  students[i].overrides={}" in describe(DistillConfig).splitlines()


def test_shipped_configs_are_found_from_any_folder_and_by_name(tmp_path, monkeypatch):
    """The configs ship inside the package (a pip install has them; `geodino pretrain -c small_vit_tiny` said
    'config file small_vit_tiny not found' outside a checkout): the README's `configs/...` paths resolve from any
    folder, and a bare name resolves in the command's own folder of configs."""
    from geodino.config import CONFIGS, find_config
    from geodino.eval.runner import SuiteConfig
    from geodino.train.config import PretrainConfig

    monkeypatch.chdir(tmp_path)  # no configs/ here
    assert find_config("configs/pretrain/demo.yaml") == CONFIGS / "pretrain" / "demo.yaml"
    assert find_config("small_vit_tiny", PretrainConfig) == CONFIGS / "pretrain" / "small_vit_tiny.yaml"
    assert find_config("demo", SuiteConfig) == CONFIGS / "eval" / "demo.yaml"  # not pretrain/demo.yaml
    assert find_config("demo.yaml", PretrainConfig) == CONFIGS / "pretrain" / "demo.yaml"
    assert load_config(PretrainConfig, "small_vit_tiny").ssl.student.arch == "vit_tiny"
    (tmp_path / "demo.yaml").write_text(
        "_base_: " + str(CONFIGS / "pretrain" / "demo.yaml") + "\ntrainer:\n  max_steps: 7\n"
    )
    assert load_config(PretrainConfig, "demo.yaml").trainer.max_steps == 7  # a file of the user's wins
    with pytest.raises(
        ConfigError, match=r"^config file nothere not found; .* a shipped one by name: demo, demo_gram, "
    ):
        load_config(PretrainConfig, "nothere")
    from geodino.data.sensors import get_sensor  # a data source's `sensor: configs/sensors/X.yaml` too

    assert get_sensor("configs/sensors/sentinel2_l2a_10m.yaml").name == "sentinel2_l2a_10m"


def test_the_package_data_pattern_ships_every_config():
    """pyproject's package-data pattern matches every file under geodino/configs (a config in a deeper folder, or
    with another suffix, would be missing from a wheel)."""
    import tomllib
    from pathlib import Path

    from geodino.config import CONFIGS

    data = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["geodino"]
    shipped = {p for pattern in patterns for p in CONFIGS.parent.glob(pattern)}
    every = {p for p in CONFIGS.rglob("*") if p.is_file()}
    assert every and every <= shipped, sorted(str(p) for p in every - shipped)


def test_a_users_config_extends_a_shipped_one_by_name(tmp_path, monkeypatch):
    """`_base_: sat_vits16.yaml` in a user's file (what the shipped recipes tell users to write) resolved only next to
    the file; it now also finds the shipped config (by name or configs/... path), and a missing one names the file
    that asks for it."""
    from geodino.train.config import PretrainConfig

    monkeypatch.chdir(tmp_path)
    for i, base in enumerate(("sat_vits16.yaml", "configs/pretrain/small_vit_tiny.yaml")):
        (tmp_path / f"mine{i}.yaml").write_text(f"_base_: {base}\nbatch_size: 7\n")
        cfg = load_config(PretrainConfig, tmp_path / f"mine{i}.yaml")
        assert cfg.batch_size == 7
    assert cfg.ssl.student.arch == "vit_tiny"  # small_vit_tiny's
    (tmp_path / "bad.yaml").write_text("_base_: nope.yaml\n")
    with pytest.raises(ConfigError, match=r"^config file nope\.yaml, the _base_ of .*bad\.yaml, not found next to it"):
        load_config(PretrainConfig, tmp_path / "bad.yaml")
