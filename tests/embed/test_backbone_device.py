"""A backbone object runs where its weights are: the probe, the batches and the blending follow it."""

from __future__ import annotations

import numpy as np
import rasterio
import torch

from geodino.backbones import load_backbone
from geodino.embed import embed_raster
from geodino.embed.backbone import inference_device
from geodino.embed.time_line import time_line
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConstantBackbone


def test_an_object_on_one_device_embeds_there_whatever_device_says(tmp_path):
    """A backbone loaded on a GPU and passed with the default device='cpu' met CPU accumulators (a device mismatch
    inside the sweep); mirrored here, where the object is on the CPU and the run says cuda: the run must follow the
    weights and store what a device='cpu' run stores (the old code tried to put the run on cuda)."""
    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    bb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    opts = dict(tile=32, overlap=16, progress=False)
    a = embed_raster(src, bb, tmp_path / "a.tif", **opts)
    b = embed_raster(src, bb, tmp_path / "b.tif", device="cuda", **opts)
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert np.array_equal(x.read().view(np.uint32), y.read().view(np.uint32))
    assert next(bb.parameters()).device.type == "cpu"  # the object was not moved


def test_inference_device_rule(monkeypatch):
    module = torch.nn.Linear(2, 2, device="meta")
    assert inference_device(module, "cpu") == "meta"  # another type: the weights' device
    assert inference_device(torch.nn.Linear(2, 2), "cpu") == "cpu"
    assert inference_device(ConstantBackbone(), "cuda:1") == "cuda:1"  # no weights: the run's device
    assert inference_device(torch.nn.Identity(), "cuda") == "cuda"
    # workers: the type only, never an index (a spec loaded on "cuda" sits on cuda:0, and the parent's "cuda:0" would
    # have put every worker on GPU 0 through rank_device); each worker moves the backbone to its own
    assert inference_device(module, "meta", workers=2) == "meta"
    assert inference_device(module, "cpu", workers=2) == "meta"
    # one type, faked as two GPUs: a bare device follows the weights' index, an explicit index (a rank's) wins
    on_gpu1 = torch.nn.Linear(2, 2)
    monkeypatch.setattr(on_gpu1, "parameters", lambda: iter([_Placed(torch.device("cuda", 1))]))
    assert inference_device(on_gpu1, "cuda") == "cuda:1"
    assert inference_device(on_gpu1, "cuda:3") == "cuda:3"
    assert inference_device(on_gpu1, "cuda", workers=4) == "cuda"
    assert inference_device(on_gpu1, "cpu", workers=4) == "cuda"


class _Placed:
    """A stand-in parameter that only says where it is (no GPU here)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device


def test_a_resume_check_and_a_workers_parent_probe_where_the_weights_are(tmp_path):
    """The probe forward before a run (and before a resume) builds its input on the device the weights run on: a CPU
    object with device='cuda' probed on cuda (no GPU here: an error) before the rule reached the probe."""
    from geodino.embed.pipeline import _config, check_resume

    src = write_tif(tmp_path / "in.tif", random_image(64, 64))
    bb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    opts = dict(tile=32, overlap=16, device="cuda", progress=False)
    out = embed_raster(src, bb, tmp_path / "a.zarr", **opts)
    assert check_resume(src, _config(None, bb, out, dict(opts)), bb) is True  # finished, nothing left


def test_time_line_on_an_accelerator_rates_the_host_share():
    """On a GPU the forward only queues kernels (its time is not the device's), so the rate there counts forward,
    blending and rows out, the host's whole share of the sweep."""
    timing = {"forward": 1.0, "waiting": 0.5, "blending": 0.5, "rows": 2.5}
    assert time_line(6.0, 1.0, 4.5, 0.5, timing, 400, "cuda") == (
        "time 6.0 s: set-up 1.0, sweep 4.5 (forward 1.0 queued, 100.0 tiles/s through rows out, waiting for tiles "
        "0.5, blending 0.5, rows out 2.5), finishing 0.5"
    )
    assert "at 400.0 tiles/s" in time_line(6.0, 1.0, 4.5, 0.5, timing, 400, "cpu")


def test_the_probe_device_and_a_bare_device_type():
    """The probe runs where the weights are (before the pipeline moves an object to a rank's own GPU, and in a
    resume check, which does not move it); `place_backbone` reads a bare device type as any device of it, as
    `inference_device` does (it moved weights on cuda:1 to the current GPU, dropping their fast path)."""
    from geodino.embed.backbone import weights_device
    from geodino.embed.workers import _same_device

    assert weights_device(torch.nn.Linear(2, 2, device="meta"), "cuda:3") == "meta"
    assert weights_device(ConstantBackbone(), "cuda:1") == "cuda:1"  # no weights: the run's device
    assert _same_device(torch.device("cuda", 1), torch.device("cuda"))
    assert not _same_device(torch.device("cuda", 1), torch.device("cuda", 0))
    assert not _same_device(torch.device("cpu"), torch.device("cuda"))
