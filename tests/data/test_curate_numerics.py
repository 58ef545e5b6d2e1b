"""The curation's embedding cache follows the numerics: chunks computed in float32 (CPU) are not reused by a run in
bf16 (a GPU's autocast, or `amp=True`), and the other way round; a run in the same numerics resumes from them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodino.backbones import FrozenBackbone, load_backbone
from geodino.data.config import SourceConfig
from geodino.data.curate import CurateConfig
from geodino.data.curate.clouds import cloud_rule
from geodino.data.curate.embed import _cache_key, embed_tiles
from geodino.data.curate.tiles import Tiles

SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0"
CFG = CurateConfig(chunk=4, batch_size=4)


@pytest.fixture
def tiles(tmp_path):
    """Six 32 px tiles (two chunks of 4 and 2)."""
    from PIL import Image

    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return Tiles([SourceConfig(type="images", paths=[str(root)])])


@pytest.fixture
def calls(monkeypatch):
    """The number of tiles each `FrozenBackbone.features` call embedded."""
    seen: list[int] = []
    original = FrozenBackbone.features

    def counted(self, x, *a, **k):
        seen.append(len(x))
        return original(self, x, *a, **k)

    monkeypatch.setattr(FrozenBackbone, "features", counted)
    return seen


def _embed(tiles, backbone, folder):
    return embed_tiles(tiles, backbone, folder, CFG, progress=False)


def test_the_key_differs_between_float32_and_bf16(tiles):
    rules = [cloud_rule(s, CFG.cloud_rule, CFG.cloud_threshold) for s in tiles.sensors]
    bb = load_backbone(SPEC)  # CPU, amp unset: float32
    float32 = _cache_key(tiles, bb, rules, CFG)
    bb.amp = True  # bf16 autocast, as on a GPU by default
    assert _cache_key(tiles, bb, rules, CFG) != float32
    bb.amp = False
    assert _cache_key(tiles, bb, rules, CFG) == float32


def test_chunks_are_reused_in_the_same_numerics_only(tiles, calls, tmp_path):
    folder = tmp_path / "embeddings"
    bb = load_backbone(SPEC)
    first = _embed(tiles, bb, folder)
    assert sum(calls) == 6
    (folder / "part_00001.npz").unlink()  # an interrupted run: the last chunk missing
    calls.clear()
    assert np.array_equal(_embed(tiles, bb, folder)["emb"], first["emb"])
    assert sum(calls) == 2  # resumed: the first chunk came from the cache
    bb.amp = True  # resumed where the features run in bf16: every chunk again, none mixed in
    calls.clear()
    bf16 = _embed(tiles, bb, folder)["emb"]
    assert sum(calls) == 6
    assert json.loads((folder / "meta.json").read_text())["dtype"] == "bfloat16"
    assert not np.array_equal(bf16, first["emb"])
    calls.clear()
    _embed(tiles, bb, folder)
    assert calls == []  # the same numerics again: all from the cache
