"""A backbone pretrained with a `geodino data stats` YAML of rasters without band descriptions records its bands
as positions (b1..bN). Asked for red, green, blue, band adaptation read b4, b3, b2 as Sentinel-2's B04, B03, B02
and silently gave a Landsat-7 backbone's NIR kernel (its b4) to red: positions now match only as written, and a
request that matches none of them is refused in one line that says to name the bands by position."""

from __future__ import annotations

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.models.checkpoints.bands import band_matches, resolve_bands

POSITIONS = [f"b{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def positional_file(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vit_small", in_chans=6, depth=1, embed_dim=32, num_heads=2, patch_size=8)
    rec = {"sensor": "l7", "bands": POSITIONS, "mean": [0.1 * i for i in range(1, 7)], "std": [0.2] * 6}
    return save_backbone(model, tmp_path_factory.mktemp("p") / "l7.safetensors", normalization=rec)


def test_colour_names_are_not_matched_to_positions_through_sentinel2():
    state = {"patch_embed.proj.weight": torch.randn(4, 6, 2, 2)}
    with pytest.raises(ConfigError, match=r"only by position \(b1, .*b6.*\[b3, b2, b1\]"):
        resolve_bands(state, ["red", "green", "blue"], src_bands=POSITIONS, source="l7.pth")
    # the same with a sensor named: Sentinel-2 does not make b4 its red either
    with pytest.raises(ConfigError, match="only by position"):
        resolve_bands(state, ["red", "green", "blue"], src_bands=POSITIONS, sensor="sentinel2_l2a")
    assert band_matches(POSITIONS, ["red", "green", "blue"]) == {}


def test_positions_match_as_written():
    w = torch.randn(4, 6, 2, 2)
    out, names = resolve_bands({"patch_embed.proj.weight": w}, ["b3", "b2", "b1"], src_bands=POSITIONS)
    torch.testing.assert_close(out["patch_embed.proj.weight"], w[:, [2, 1, 0]])
    assert names == ["b3", "b2", "b1"]
    assert band_matches(POSITIONS, ["b4", "b1"]) == {0: 3, 1: 0}


def test_named_sentinel2_bands_still_resolve_colour_names():
    w = torch.randn(4, 3, 2, 2)
    out, _ = resolve_bands({"patch_embed.proj.weight": w}, ["red"], src_bands=["B02", "B03", "B04"])
    torch.testing.assert_close(out["patch_embed.proj.weight"], w[:, [2]])


def test_load_backbone_takes_positions_and_their_statistics(positional_file):
    with pytest.raises(ConfigError, match="only by position"):
        load_backbone(str(positional_file), bands=["red", "green", "blue"])
    b = load_backbone(str(positional_file), bands=["b3", "b2", "b1"])
    assert list(b.bands) == ["b3", "b2", "b1"]
    torch.testing.assert_close(b.mean.flatten(), torch.tensor([0.3, 0.2, 0.1]))
