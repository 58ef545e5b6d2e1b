"""A checkpoint that records no band names cannot be adapted to a band subset by `load_backbone`: the refusal names
the way that exists (`geodino.models.checkpoints.load_model(..., src_bands=[...])`), not an option that does not
(it used to suggest `--src-bands`, which no command has)."""

from __future__ import annotations

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import GeoDinoError
from geodino.models import build_model
from geodino.models.checkpoints import load_model


def test_an_unnamed_five_band_file_names_the_way_to_name_its_bands(tmp_path):
    path = tmp_path / "five.pth"
    torch.save(build_model("vit_tiny", depth=1, in_chans=5).state_dict(), path)
    with pytest.raises(GeoDinoError) as err:
        load_backbone(str(path), bands=["red", "nir"])
    message = str(err.value)
    assert "--src-bands" not in message and "\n" not in message
    assert "records no band names" in message and "load_model(..., src_bands=[...])" in message
    # and that way works: the file's bands named, two of them picked
    model = load_model(path, bands=["red", "nir"], src_bands=["blue", "green", "red", "nir", "swir16"])
    assert model.patch_embed.proj.weight.shape[1] == 2
