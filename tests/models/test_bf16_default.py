"""The bf16 default on CUDA follows native bf16: GPUs of compute capability 7.x (T4, V100) default to float32.

bf16 there is emulated (slow matrix products, SDPA's math fallback, inductor skipping bf16 graphs) while the fast
path reported 'fast-bfloat16-compiled'. One helper, `bf16_default`, decides for the fast path's 'auto' mode, the
eager autocast and `geodino.inference.runs_in`; an explicit bf16 request is kept. The GPU is faked (none here)."""

from __future__ import annotations

import contextlib
import types

import pytest
import torch

import geodino.models.fast_choice as fast_choice
from geodino.backbones import load_backbone
from geodino.inference import job_path, runs_in
from geodino.models.fast_choice import choose_path


@pytest.fixture
def gpu(monkeypatch):
    """A faked CUDA GPU: `native` says whether it has native bf16 (capability 8.0+); emulated bf16 is always there,
    as torch's `is_bf16_supported()` answers on a T4. `current` lists the devices made current."""
    monkeypatch.delenv("GEODINO_FAST", raising=False)
    state = {"native": False, "current": []}

    @contextlib.contextmanager
    def device(d):
        state["current"].append(torch.device(d))
        yield

    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or state["native"]
    )
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0) if state["native"] else (7, 5))
    monkeypatch.setattr(torch.cuda, "device", device)
    return state


def _on_cuda(amp=None):
    """A duck-typed eager backbone whose weights are on a CUDA GPU (what `runs_in` reads)."""
    weight = types.SimpleNamespace(device=torch.device("cuda"))
    return types.SimpleNamespace(amp=amp, kind="geodino", model=None, parameters=lambda: iter([weight]))


def test_gpus_without_native_bf16_default_to_float32(gpu):
    """The fast path, the eager autocast and the recorded dtype all say float32 (checked one by one: each place
    had its own default)."""
    bb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    assert bb.amp is None
    found = {
        "autocast": bb._autocast(torch.device("cuda"))._enabled,
        "runs_in": runs_in(_on_cuda()),
        "choose_path": choose_path("cuda", compile=False).name,  # plain float32: no TF32 tensor cores on 7.x
        "job_path": job_path(torch.device("cuda"), compile=False).dtype,
    }
    assert found == {"autocast": False, "runs_in": "float32", "choose_path": "fast-float32", "job_path": "float32"}
    assert fast_choice.bf16_default("cuda") is False


def test_gpus_with_native_bf16_keep_the_bf16_default(gpu):
    gpu["native"] = True
    assert fast_choice.bf16_default("cuda") is True
    assert choose_path("cuda", compile=False).name == "fast-bfloat16"
    assert runs_in(_on_cuda()) == "bfloat16"
    ac = load_backbone("arch:vit_tiny?seed=0&depth=1")._autocast(torch.device("cuda"))
    assert ac._enabled and ac.fast_dtype == torch.bfloat16


def test_an_explicit_bf16_request_is_kept_without_native_bf16(gpu, monkeypatch):
    assert choose_path("cuda", amp=True, compile=False).dtype == "bfloat16"
    assert choose_path("cuda", "bfloat16", compile=False).dtype == "bfloat16"
    assert runs_in(_on_cuda(amp=True)) == "bfloat16"
    assert load_backbone("arch:vit_tiny?seed=0&depth=1", amp=True)._autocast(torch.device("cuda"))._enabled
    monkeypatch.setenv("GEODINO_FAST", "bfloat16")
    assert choose_path("cuda", compile=False).dtype == "bfloat16"


def test_the_check_asks_about_the_given_gpu(gpu):
    gpu["native"] = True
    assert fast_choice.bf16_default("cuda:1") is True
    assert gpu["current"] == [torch.device("cuda:1")]


def test_other_devices_and_no_visible_gpu(monkeypatch):
    assert fast_choice.bf16_default("cpu") is False and fast_choice.bf16_default("meta") is False
    assert choose_path("cpu", compile=False).dtype == "float32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert fast_choice.bf16_default("cuda") is True  # as before: nothing to ask, the run fails on the missing GPU later
