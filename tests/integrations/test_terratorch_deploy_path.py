"""TerraTorch's deploy config keeps backbone_ckpt_path and sets backbone_pretrained: false; geodino_vit still reads
that file for the architecture, so on another machine it failed with a bare 'checkpoint ... not found' that did not
say why a file whose weights are not used is needed. Runs without TerraTorch."""

from __future__ import annotations

import pytest

from geodino.errors import CheckpointError
from geodino.integrations.terratorch import geodino_vit


def test_a_missing_checkpoint_with_pretrained_false_says_it_is_read_for_the_architecture(tmp_path):
    missing = str(tmp_path / "exports" / "backbone.pth")
    with pytest.raises(CheckpointError, match=r"not found.*backbone_pretrained: false still reads backbone_ckpt_path"):
        geodino_vit(ckpt_path=missing, pretrained=False)
    with pytest.raises(CheckpointError, match=r"not found") as err:  # pretrained: the plain error
        geodino_vit(ckpt_path=missing)
    assert "backbone_pretrained" not in str(err.value) and "\n" not in str(err.value)
