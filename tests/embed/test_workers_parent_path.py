"""A workers run's parent prepares no fast path (each worker prepares its own where it runs; a compile warm-up in
the parent was paid for nothing) and records the path the workers take, as a one-process run records it."""

from __future__ import annotations

import pytest
import rasterio

import geodino.inference as inference
from geodino.backbones import load_backbone
from geodino.embed import embed_raster
from tests.embed.conftest import random_image, write_tif


@pytest.mark.slow
def test_the_parent_records_the_workers_path_without_preparing_one(tmp_path, monkeypatch):
    src = write_tif(tmp_path / "in.tif", random_image(96, 96))
    spec = "arch:vit_tiny?seed=0&depth=1&patch_size=8"
    opts = dict(tile=32, overlap=8, progress=False)
    one = embed_raster(src, load_backbone(spec), tmp_path / "one.tif", **opts)
    prepared = []
    real = inference.prepare_embed
    monkeypatch.setattr(inference, "prepare_embed", lambda *a, **k: prepared.append(1) or real(*a, **k))
    bb = load_backbone(spec)
    eager = bb.model
    two = embed_raster(src, bb, tmp_path / "two.tif", workers=2, **opts)  # the spawned workers import afresh
    assert prepared == [] and bb.model is eager  # nothing prepared in this process
    with rasterio.open(one) as a, rasterio.open(two) as b:
        for tag in ("GEODINO_INFERENCE_PATH", "GEODINO_INFERENCE_DTYPE"):
            assert a.tags()[tag] == b.tags()[tag], tag
        assert a.tags()["GEODINO_INFERENCE_PATH"].startswith("fast-float32")
