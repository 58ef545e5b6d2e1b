"""`loveda_upernet` reads PANGAEA's UPerNet blocks, as its comment says, mapped by depth.

The config said "PANGAEA protocol" but read `four_even` ([2, 5, 8, 11] on 12 blocks) where PANGAEA's encoder
configs list output_layers [3, 5, 7, 11] (ViT-S/B, 12 blocks) and [7, 11, 15, 23] (ViT-L, 24 blocks).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.config import load_config
from geodino.eval import runner
from geodino.eval.layer_choice import LayerError, resolve_layers
from geodino.eval.runner import SuiteConfig

CONFIGS = Path(__file__).resolve().parents[2] / "geodino" / "configs" / "eval"


def test_pangaea_layers_are_its_encoder_configs_output_layers():
    from geodino.eval.layer_choice import pangaea_layers

    assert pangaea_layers(12) == [3, 5, 7, 11]  # configs/encoder/vit.yaml, dofa, prithvi, ssl4eo_*
    assert pangaea_layers(24) == [7, 11, 15, 23]  # configs/encoder/scalemae.yaml, terramind_large
    assert pangaea_layers(4) == [0, 1, 2, 3] and pangaea_layers(5) == [1, 2, 3, 4]  # distinct when shallow
    assert resolve_layers("pangaea", 12, True) == [3, 5, 7, 11]
    with pytest.raises(LayerError, match="needs four layers"):
        resolve_layers("pangaea", 3, False)


def test_loveda_upernet_reads_pangaeas_blocks():
    from types import SimpleNamespace

    from geodino.eval.segmentation import head_layers

    cfg = load_config(SuiteConfig, CONFIGS / "loveda_upernet.yaml")
    task = runner.parse_tasks(cfg, Path("out"))["loveda_upernet"]
    assert task.cfg.head == "upernet"
    for depth, want in ((12, [3, 5, 7, 11]), (24, [7, 11, 15, 23])):
        assert head_layers(SimpleNamespace(n_blocks=depth, spec="vit"), task.cfg) == want  # before: four_even
    assert "20 epochs" in (CONFIGS / "loveda_upernet.yaml").read_text() and task.cfg.epochs == 20
