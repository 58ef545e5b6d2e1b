"""glibc heap thresholds of a feature-raster run (geodino.embed.memory): bounded growth, sized to the forward."""

from __future__ import annotations

import sys

import pytest
from affine import Affine

import geodino.embed.memory as memory
from geodino.embed import embed_raster
from geodino.embed.config import EmbedConfig
from geodino.embed.plan import make_plan
from tests.embed.conftest import random_image, write_tif

MiB = 1 << 20


def test_heap_thresholds_cover_the_largest_activation_and_twice_the_working_set():
    # ViT-S/16, 8 tiles of 512 px: 1029 tokens; largest activation (MLP hidden) 8 * 1029 * 1536 * 4 bytes,
    # working set (estimate_memory's activations) 8 * 1029 * 384 * 4 * 12 bytes
    largest, acts = 8 * 1029 * 1536 * 4, 8 * 1029 * 384 * 4 * 12
    assert memory.heap_thresholds(acts, largest) == (101_154_816, 303_464_448)
    assert memory.heap_thresholds(MiB, MiB) == (32 * MiB, 64 * MiB)  # never below glibc's own 32 MiB ceiling
    assert memory.heap_thresholds(8 << 30, 4 << 30) == (1 << 30, 16 << 30)  # mmap threshold capped at 1 GiB


def _record(monkeypatch) -> list:
    calls: list = []
    monkeypatch.setattr(memory, "_mallopt", lambda mmap, trim=None: calls.append((mmap, trim)) or True)
    return calls


def test_heap_for_forward_sizes_the_thresholds_on_cpu_only(monkeypatch):
    calls = _record(monkeypatch)
    plan = make_plan(3072, 3072, Affine.identity(), patch=16, tile=512, overlap=128)
    cfg = EmbedConfig(batch_size=8)
    assert memory.forward_buffers(plan, cfg, 384) == (8 * 1029 * 384 * 4 * 12, 8 * 1029 * 1536 * 4)
    assert memory.heap_for_forward(plan, cfg, 384) == (101_154_816, 303_464_448)
    assert calls == [(101_154_816, 303_464_448)]
    gpu = EmbedConfig(batch_size=8, device="cuda")
    assert memory.heap_for_forward(plan, gpu, 384) is None and len(calls) == 1  # activations on the GPU


def test_embed_resets_then_sizes_the_heap(monkeypatch, tmp_path, conv_bb):
    """A run first fixes both thresholds at their bounded defaults (so a second run starts where the first did),
    then sizes them to its forward once the plan is known."""
    calls = _record(monkeypatch)
    src = write_tif(tmp_path / "in.tif", random_image(96, 96))
    embed_raster(src, conv_bb, tmp_path / "a.zarr", tile=48, overlap=16, batch_size=2, progress=False)
    assert calls[0] == (32 * MiB, 128 << 10)
    assert len(calls) == 2 and calls[1][0] == 32 * MiB and calls[1][1] == 64 * MiB  # a toy forward: the floors


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_mallopt_is_accepted_by_glibc():
    assert memory._mallopt(memory.MMAP_THRESHOLD_MIN, memory.TRIM_THRESHOLD_DEFAULT)
