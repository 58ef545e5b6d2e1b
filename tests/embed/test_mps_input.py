"""A float64 raster on Apple MPS: the batch crosses to the device in its own dtype, and MPS has no float64 (the copy
raises a TypeError), so `as_float32_on` converts float64 on the host for MPS, to numpy's float32 bits.

No Mac here: `Tensor.to` is wrapped so that a copy to "mps" refuses float64 as MPS does, records what crossed and
lands on the CPU (where the rest of the conversion runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.embed.input_scaling import as_float32_on

DTYPES = ["uint8", "int16", "uint16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"]


@pytest.fixture
def fake_mps(monkeypatch):
    """Copies to "mps" recorded by dtype; float64 refused there (MPS's TypeError), others landed on the CPU."""
    crossed: list[torch.dtype] = []
    real_to = torch.Tensor.to

    def to(self: torch.Tensor, *args, **kwargs):
        target = args[0] if args and isinstance(args[0], (str, torch.device)) else kwargs.get("device")
        if target is not None and torch.device(target).type == "mps":
            crossed.append(self.dtype)
            if self.dtype == torch.float64:
                raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support it")
            args = ("cpu", *args[1:]) if args and args[0] is target else args
            kwargs = {**kwargs, "device": "cpu"} if "device" in kwargs else kwargs
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    return crossed


def _values(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    if np.dtype(dtype).kind in "iu":
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        return np.concatenate([np.array([lo, hi, 0, 1], dtype), rng.integers(lo, hi, 500, dtype=dtype, endpoint=True)])
    big, tiny = np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal
    special = np.array([-big, big, 0, -0.0, tiny, np.inf, -np.inf, np.nan], dtype)
    return np.concatenate([special, rng.normal(0, 1e3, 500).astype(dtype), (rng.random(500) * 1e-40).astype(dtype)])


@pytest.mark.parametrize("device", ["mps", torch.device("mps"), "mps:0"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_no_float64_batch_is_copied_to_mps(fake_mps, dtype, device):
    raw = _values(dtype).reshape(1, 1, 2, -1)
    with np.errstate(over="ignore"):
        expected = raw.astype(np.float32)
    got = as_float32_on(torch.from_numpy(raw), device, non_blocking=True).numpy()
    assert fake_mps and torch.float64 not in fake_mps
    if dtype in ("uint8", "int16", "int32", "int64", "float16", "float32"):
        assert fake_mps == [getattr(torch, dtype)]  # the others still cross in their own dtype
    if dtype == "float64":
        assert fake_mps == [torch.float32]  # half float64's bytes
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_float64_still_crosses_as_it_is_elsewhere(monkeypatch):
    """Off MPS nothing changes: float64 reaches the copy in its own dtype (CUDA takes it, pinned and asynchronous)."""
    crossed: list[tuple[torch.dtype, str]] = []
    real_to = torch.Tensor.to

    def to(self: torch.Tensor, *args, **kwargs):
        if args and isinstance(args[0], (str, torch.device)):
            crossed.append((self.dtype, str(args[0])))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    raw = _values("float64")
    got = as_float32_on(torch.from_numpy(raw), "cpu").numpy()
    assert crossed == [(torch.float64, "cpu")]
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got.view(np.uint32), raw.astype(np.float32).view(np.uint32))
