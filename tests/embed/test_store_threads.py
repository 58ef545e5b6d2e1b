"""A CPU sweep sizes zarr's codec thread pool to one thread (`memory.store_threads`): each of zarr's default
min(32, cores + 4) threads kept, in its own malloc arena, the largest chunks it had compressed (~120 MiB resident
and free at the peak of a 16384 px sweep). An accelerator run, a pool already made, or the user's own size: left."""

from __future__ import annotations

import pytest
import zarr
from zarr.core import sync

from geodino.embed.config import EmbedConfig
from geodino.embed.memory import store_threads


@pytest.fixture
def fresh_pool(monkeypatch):
    monkeypatch.setattr(sync, "_executor", None)
    with zarr.config.set({"threading.max_workers": None}):
        yield


def test_a_cpu_run_gives_zarr_one_codec_thread(fresh_pool):
    assert store_threads(EmbedConfig(device="cpu")) == 1
    assert zarr.config.get("threading.max_workers") == 1


def test_an_accelerator_run_keeps_zarrs_pool(fresh_pool):
    assert store_threads(EmbedConfig(device="cuda")) is None
    assert zarr.config.get("threading.max_workers") is None


def test_the_users_pool_size_is_kept(fresh_pool):
    with zarr.config.set({"threading.max_workers": 4}):
        assert store_threads(EmbedConfig(device="cpu")) is None
        assert zarr.config.get("threading.max_workers") == 4


def test_a_pool_already_made_is_kept(fresh_pool, monkeypatch):
    monkeypatch.setattr(sync, "_executor", object())
    assert store_threads(EmbedConfig(device="cpu")) is None
    assert zarr.config.get("threading.max_workers") is None


def test_a_cpu_embed_run_sets_it(tmp_path, fresh_pool):
    from geodino.embed import embed_raster
    from tests.embed.conftest import random_image, write_tif
    from tests.embed.toy_backbones import ConvBackbone

    src = write_tif(tmp_path / "in.tif", random_image(64, 64, c=3))
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    embed_raster(src, bb, tmp_path / "o.zarr", tile=32, overlap=8, progress=False, sensor=None, scale=1 / 300)
    assert zarr.config.get("threading.max_workers") == 1
