"""A spawned `embed --workers N` worker runs its backbone on its own device (cuda:<worker> on a machine with several
GPUs): the object the parent sends arrives on the parent's device (GPU 0), so `worker_main` moves it to the
worker's `cfg.device`, dropping a fast path prepared on the parent's device, and leaves one already there as it is.

No GPU here: the "other device" is torch's `meta` device (the only one besides the CPU that a CPU build moves to),
and `worker_main`'s run is replaced by one that records the backbone it would have run."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.embed import pipeline, workers
from geodino.embed.config import EmbedConfig
from geodino.embed.workers import place_backbone
from geodino.inference import accelerate
from geodino.models.frozen import FastViT

SPEC = "arch:vit_tiny?seed=0&depth=1"


def _devices(bb: torch.nn.Module) -> set[torch.device]:
    return {t.device for t in (*bb.parameters(), *bb.buffers())}


def test_a_backbone_elsewhere_is_moved_to_the_target():
    bb = load_backbone(SPEC)
    assert _devices(bb) == {torch.device("cpu")}
    placed = place_backbone(bb, "meta")
    assert _devices(placed) == {torch.device("meta")}
    assert placed.patch_size == bb.patch_size and placed.spec == SPEC


def test_a_backbone_on_the_target_is_left_as_it_is():
    bb = load_backbone(SPEC)
    before = [(t, t.data_ptr()) for t in bb.parameters()]
    assert place_backbone(bb, "cpu") is bb
    assert [(t, t.data_ptr()) for t in bb.parameters()] == before  # the same tensors, not copies


def test_a_fast_path_prepared_on_another_device_is_dropped_not_kept():
    """The parent's prepared copy of the weights (and its compiled graphs) belongs to the parent's device: the
    worker gets the eager model back on its own device, to prepare the fast path there."""
    bb = load_backbone(SPEC)
    eager = bb.model
    path = accelerate(bb, mode="float32", compile=False)
    if not path.enabled:
        pytest.skip(f"no fast path here ({path.reason})")
    fast = bb.model
    assert isinstance(fast, FastViT) and bb.__dict__.get("_fast_models")
    assert place_backbone(bb, "cpu").model is fast  # on its device: the prepared path is kept
    placed = place_backbone(bb, "meta")
    assert placed.model is eager and not isinstance(placed.model, FastViT)
    assert "_fast_models" not in placed.__dict__ and "_eager_model" not in placed.__dict__
    assert _devices(placed) == {torch.device("meta")}


def test_an_object_without_weights_is_returned_as_given():
    class NoWeights:
        patch_size = 4

    obj = NoWeights()
    assert place_backbone(obj, "cuda:1") is obj
    module = torch.nn.Identity()
    assert place_backbone(module, "cuda:1") is module


def test_worker_main_runs_the_backbone_on_the_workers_device(monkeypatch, tmp_path):
    """The spawned worker's entry point: the run it starts sees the backbone on the worker's device (meta standing
    in for cuda:1), not where the parent had it."""
    seen: list[set[torch.device]] = []

    def recorded_run(input: Any, cfg: EmbedConfig, *, finalize: bool, prep: Any = None) -> None:
        assert cfg.device == "meta" and not finalize
        seen.append(_devices(cfg.backbone))

    monkeypatch.setattr(pipeline, "_run", recorded_run)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # the worker's SIGTERM handler: not in pytest's process
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    bb = load_backbone(SPEC)  # the parent's object, on its device
    cfg = EmbedConfig(backbone=SPEC, out=str(tmp_path / "out.zarr"), device="meta", world_size=2, rank=1)
    workers.worker_main(str(tmp_path / "in.tif"), bb, cfg)
    assert seen == [{torch.device("meta")}]
