"""`InputScale.apply_` copies its scale/offset to a batch's device once per run, not once per batch (on CUDA each
copy of a pageable host array is a blocking wait in the sweep's thread: `benchmarks/device_checks.py`
embed-input-syncs), and still gives numpy's float32 bits."""

from __future__ import annotations

import numpy as np
import torch

from geodino.embed.input_scaling import InputScale


def test_scale_and_offset_are_made_on_a_device_once_and_give_numpys_bits(monkeypatch) -> None:
    scale = InputScale(np.full((3, 1, 1), 2.75e-5, np.float32), np.full((3, 1, 1), -0.2, np.float32))
    made: list[int] = []
    real = torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda a: made.append(1) or real(a))
    raw = np.random.default_rng(0).integers(0, 60000, (2, 3, 5, 4)).astype(np.float32)
    out = [scale.apply_(torch.from_numpy(raw.copy())) for _ in range(3)]
    assert len(made) == 3 + 2  # three batches, scale and offset once
    want = raw * scale.scale + scale.offset
    for o in out:
        assert np.array_equal(o.numpy(), want)


def test_identity_and_scale_only() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(1, 1, 2, 3)
    assert torch.equal(InputScale().apply_(x.clone()), x)
    got = InputScale(np.float32(1 / 255)).apply_(x.clone())
    assert np.array_equal(got.numpy(), x.numpy() * np.float32(1 / 255))
