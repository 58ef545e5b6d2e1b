"""An override or YAML section under a misnamed section (`trainer.max_steps=3` on `geodino distill`, whose length
is `train.max_steps`) was matched on the section name alone: 'did you mean 'train', 'train.export', 'train.seed'?',
never the key that fixes it. The message now names the full key and the closest full keys."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.train.distill.config import DistillConfig
from geodino.train.pretrain import PretrainConfig


@pytest.mark.parametrize("override", ["trainer.max_steps=3", "trainer={max_steps: 3}"])
def test_a_misnamed_section_suggests_the_full_key(override: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(DistillConfig, None, [override])
    assert "unknown config key 'trainer.max_steps'" in str(err.value)
    assert "did you mean 'train.max_steps'" in str(err.value)


def test_the_other_way_round_and_in_a_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"'train\.max_steps'.*did you mean 'trainer\.max_steps'"):
        load_config(PretrainConfig, None, ["train.max_steps=3"])
    path = tmp_path / "c.yaml"
    path.write_text("ssl:\n  dinoo:\n    head_n_prototypes: 8\n")
    with pytest.raises(ConfigError, match=r"'ssl\.dinoo\.head_n_prototypes'.*mean 'ssl\.dino\.head_n_prototypes'"):
        load_config(PretrainConfig, path)


def test_keys_without_a_section_typo_keep_their_message() -> None:
    with pytest.raises(ConfigError, match=r"key 'trainer\.max_step' .*did you mean 'trainer\.max_steps'"):
        load_config(PretrainConfig, None, ["trainer.max_step=5"])
    with pytest.raises(ConfigError, match=r"unknown config key 'foo' .*run with --help"):
        load_config(PretrainConfig, None, ["foo=1"])


def test_a_whole_pretraining_file_read_as_its_ssl_section_says_which_class_reads_it():
    """recipe.md's `load_config(SSLConfig, FILE)` on a pretraining file (a shipped name) said "unknown config key
    'name' ...; run with --help to list the keys": no help for a Python caller. Now the section that fits and how."""
    from geodino.train.recipe import SSLConfig

    with pytest.raises(ConfigError) as err:
        load_config(SSLConfig, "small_vit_tiny")
    text = str(err.value)
    assert "\n" not in text and "small_vit_tiny.yaml" in text
    assert "its 'ssl' section fits SSLConfig" in text and "load_config(PretrainConfig, ...).ssl" in text
    assert isinstance(load_config(PretrainConfig, "small_vit_tiny").ssl, SSLConfig)  # the way it names works
