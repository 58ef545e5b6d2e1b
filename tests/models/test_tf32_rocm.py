"""Which GPUs get 3xTF32 projections: on ROCm the capability is the gfx version, not a TF32 capability.

An MI250 (gfx90a) reports (9, 0) and has no TF32; torch's `torch.cuda.is_tf32_supported()` decides there. CUDA and
ROCm are faked (no GPU here)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from geodino.models.fast_choice import choose_path
from geodino.models.tf32x3 import _tensor_core_tf32


@pytest.fixture
def gpu(monkeypatch):
    """A faked GPU: set `capability`, `tf32` (torch's ROCm answer); `current` lists the devices made current."""
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    state = {"capability": (9, 0), "tf32": False, "current": []}

    @contextlib.contextmanager
    def device(d):
        state["current"].append(torch.device(d))
        yield

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: state["capability"])
    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "is_tf32_supported", lambda: state["tf32"])
    return state


def test_rocm_without_tf32_gets_no_3xtf32_whatever_its_gfx_version(gpu, monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")
    gpu["capability"] = (9, 0)  # MI250, gfx90a
    gpu["tf32"] = False
    assert not _tensor_core_tf32(torch.device("cuda:1"))
    assert gpu["current"] == [torch.device("cuda:1")]  # torch's check asked about this device, not the current one
    assert not choose_path("cuda", "float32", compile=False).tf32x3
    assert choose_path("cuda", "float32", compile=False).name == "fast-float32"


def test_rocm_with_tf32_gets_3xtf32(gpu, monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")
    gpu["capability"] = (9, 4)  # MI300, gfx942
    gpu["tf32"] = True
    assert _tensor_core_tf32(torch.device("cuda"))
    assert choose_path("cuda", "float32", compile=False).name == "fast-float32-3xtf32"


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_cuda_decides_by_compute_capability(gpu, monkeypatch, capability, expected):
    monkeypatch.setattr(torch.version, "hip", None)
    gpu["capability"] = capability
    gpu["tf32"] = not expected  # not asked on CUDA
    assert _tensor_core_tf32(torch.device("cuda")) is expected
    assert gpu["current"] == []
