"""A workers run's parent touches no GPU: it loads a backbone spec on the host (it only probes and fingerprints the
weights it sends; each worker moves them to its own GPU) and leaves the GPU memory check to each worker. Loaded
on the run's GPU, or asking it for its free memory, the parent held a CUDA context on GPU 0 for the whole run,
which GPUs in exclusive-process mode answer by refusing worker 0.

No GPU is needed: the spec's load and the GPU memory queries are recorded, and `spawn_workers` is replaced by one
that records what it would send and stops the run."""

from __future__ import annotations

import pytest
import torch

from geodino.embed import backbone as embed_backbone
from geodino.embed import embed_raster, pipeline, workers
from tests.embed.conftest import random_image, write_tif

SPEC = "arch:vit_small?depth=1&embed_dim=32&num_heads=2&patch_size=8&in_chans=3&seed=0"


class _Stop(Exception):
    """Raised by the recording stand-ins once they have seen what the test checks."""


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """Run `embed_raster(device='cuda', workers=n)` on a faked 2-GPU machine; return what the parent did."""
    src = write_tif(tmp_path / "in.tif", random_image(48, 48, c=3))
    seen: dict = {"loaded_on": [], "mem_queries": []}
    real_resolve = embed_backbone.resolve_backbone

    def resolve(spec, *, device="cpu", amp=False):
        seen["loaded_on"].append(device)
        return real_resolve(spec, device="cpu", amp=amp)  # no GPU here: the weights stay on the host either way

    def mem_get_info(device=None):
        seen["mem_queries"].append(device)
        raise _Stop

    def spawn(input, bb, cfg, work, prep, *, fresh=False):
        seen.update(device=cfg.device, weights=next(bb.parameters()).device)
        raise _Stop

    monkeypatch.setattr(pipeline, "resolve_backbone", resolve)
    monkeypatch.setattr(workers, "spawn_workers", spawn)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)

    def run(n: int) -> dict:
        try:
            embed_raster(
                src, SPEC, tmp_path / "out.zarr", device="cuda", workers=n, progress=False, sensor=None, scale=1 / 300
            )
        except _Stop:
            seen["stopped"] = True
        return seen

    return run


def test_the_parent_of_workers_loads_on_the_host_and_asks_no_gpu(recorded):
    seen = recorded(2)
    assert seen["stopped"] and seen["loaded_on"] == ["cpu"]
    assert seen["mem_queries"] == []
    assert seen["device"] == "cuda" and seen["weights"] == torch.device("cpu")  # the workers still run on the GPUs


def test_a_single_process_loads_where_it_runs(recorded):
    # the stand-in load keeps the weights on the host, so the run then follows them there (and asks no GPU)
    assert recorded(1)["loaded_on"] == ["cuda"]
