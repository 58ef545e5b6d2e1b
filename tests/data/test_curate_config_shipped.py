"""`CurateConfig(config="configs/pretrain/small_vit_tiny.yaml")` (the Python API of `data curate`) resolves the
shipped pretraining configs from any folder, as `data curate --config` does since 6f12875: it refused them outside
a checkout ("--config ... does not exist"). A path that is no file and names no shipped config is still refused."""

from __future__ import annotations

import pytest

from geodino.config import CONFIGS
from geodino.errors import InputError


@pytest.mark.parametrize("spec", ["configs/pretrain/small_vit_tiny.yaml", "small_vit_tiny"])
def test_curate_config_finds_a_shipped_config_from_another_folder(tmp_path, monkeypatch, spec):
    from geodino.data.curate import CurateConfig

    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    src = f"data.sources=[{{type: images, paths: [{tmp_path}], sensor: imagenet}}]"
    cfg = CurateConfig(config=spec, overrides=[src], backbone="arch:vit_tiny", size=1)
    assert cfg.config == str(CONFIGS / "pretrain" / "small_vit_tiny.yaml")
    sources, where = cfg.source_configs()
    assert [s.paths for s in sources] == [[str(tmp_path)]] and where == [f"{cfg.config}: data.sources[0]"]


def test_an_unknown_config_is_still_refused(tmp_path, monkeypatch):
    from geodino.data.curate import CurateConfig

    monkeypatch.chdir(tmp_path)
    cfg = CurateConfig(config="configs/pretrain/no_such.yaml", backbone="arch:vit_tiny", size=1)
    with pytest.raises(InputError, match=r"--config configs/pretrain/no_such\.yaml does not exist"):
        cfg.source_configs()
