"""3xTF32 float32 projections for the fast path on CUDA GPUs with TF32 tensor cores (compute capability >= 8.0).

Each float32 operand is split into a TF32 high part and a TF32 low part and three tensor-core products are summed in
float32 (`_Tf32x3Linear`), the float32 emulation PyTorch's own float32 memory-efficient attention kernel uses on those
GPUs. Plain float32 matrix products there run on the CUDA cores at a fraction of the tensor cores' rate; plain TF32
keeps 11 of float32's 24 significand bits and breaks the 1e-4 fidelity. `GEODINO_FAST=float32-ieee` keeps plain
float32 products.

Its own module: the numerics (TF32 rounding on the bit pattern, the split products, the matmul-precision switch) are
one concept with their own tests; `geodino.models.frozen.FastViT` applies them to its prepared core.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from geodino.models.fast_core import _Core

__all__ = ["tf32_matmuls", "tf32_round"]


def tf32_round(x: Tensor) -> Tensor:
    """float32 `x` rounded to the nearest TF32 value (10 stored significand bits, ties to even), still float32.

    On the bit pattern: add half a TF32 unit (minus one when the kept last bit is even) and clear the 13 dropped
    bits; the same for either sign, since the sign bit is untouched. Finite values only (a ViT has no others)."""
    i = x.contiguous().view(torch.int32)
    i = (i + (0x0FFF + ((i >> 13) & 1))) & -0x2000
    return i.view(torch.float32)


class _Tf32x3Linear(nn.Module):
    """A float32 linear as three TF32 tensor-core products: x W^T ≈ xh Wh^T + xh Wl^T + xl Wh^T, where xh is x
    rounded to TF32 and xl the rounded rest (likewise W). The dropped xl Wl^T is ~2^-22 of the product, so the
    result is within a few float32 roundings of the float32 one; TF32 alone (xh Wh^T) is off by ~2^-11.

    They run as two matrix products, prepared once: the large xh Wh^T alone, and the two small ones as one product
    over a doubled inner dimension ([xh, xl] against [Wl, Wh]), added in float32 after. Kept apart because tensor
    cores accumulate with less than IEEE float32 precision (their running sum is truncated, not rounded): summed in
    one product over a tripled inner dimension, the small terms are added to a running sum of the full product's
    size and each addition costs up to a unit of that sum. Measured on an H200 (session 52, ViT-L/16 shapes, 12,608
    rows, against float64): one tripled product 6.8e-5 / 2.6e-4 max error for fc1 / fc2, two products 1.8e-5 /
    6.7e-5 (IEEE float32 on the CUDA cores 9.3e-6 / 1.4e-5), at about the same speed; the ViT-L/16 forward came
    within 4.6e-5 of eager float32 instead of 1.9e-4. The operands are exact TF32 values, so the hardware's own
    float32 -> TF32 conversion changes nothing, and on a CPU (float32 products of 11-bit significands are exact)
    the same module computes the GPU's numerics up to summation order and that accumulation, which is how the tests
    check it.
    Hand-written: PyTorch runs float32 matrix products as either IEEE or plain TF32; its 3xTF32 is inside the
    memory-efficient attention kernel only (CUTLASS `OpMultiplyAddFastF32`)."""

    def __init__(self, lin: nn.Linear) -> None:
        super().__init__()
        w = lin.weight.detach().float()
        wh = tf32_round(w)
        wl = tf32_round(w - wh)
        self.weight_hi = nn.Parameter(wh.contiguous(), requires_grad=False)
        self.weight_lo = nn.Parameter(torch.cat([wl, wh], dim=1).contiguous(), requires_grad=False)
        b = lin.bias
        self.bias = None if b is None else nn.Parameter(b.detach().float().clone(), requires_grad=False)
        self.in_features, self.out_features = lin.in_features, lin.out_features

    def forward(self, x: Tensor) -> Tensor:
        xh = tf32_round(x)
        xl = tf32_round(x - xh)
        return F.linear(xh, self.weight_hi) + F.linear(torch.cat([xh, xl], dim=-1), self.weight_lo, self.bias)


def _split_tf32x3(core: _Core) -> _Core:
    """Every float32 projection of the blocks as a `_Tf32x3Linear` (the patch embedding stays a convolution, which
    cuDNN already runs in TF32 by default, as in the eager model)."""
    for blk in core.block_list():
        for name in ("qkv", "proj", "fc1", "fc2"):
            setattr(blk, name, _Tf32x3Linear(getattr(blk, name)))
    return core


# `tf32_matmuls` changes a process-global switch: the threads inside it share one setting, made by the first to
# enter and restored to what it found by the last to leave (each thread restoring what it saw itself left TF32 on
# for the rest of the process when two blocks interleaved: A enters, B enters and sees A's TF32, A leaves, B
# leaves and "restores" TF32).
_LOCK = threading.Lock()
_depth = 0
_saved: tuple[str, bool | str] | None = None  # (switch, value) found by the first entry


@contextmanager
def tf32_matmuls(device: torch.device) -> Iterator[None]:
    """TF32 tensor cores for float32 matrix products on `device` (CUDA) inside the block, the previous setting
    restored after: what the 3xTF32 products need (their operands are exact TF32 values, so nothing else changes for
    them). A no-op elsewhere: on a CPU the products are float32 and exact for such operands.

    Safe to nest and to use from several threads at once: a module lock and a depth count make the first entry set
    TF32 and the last exit restore the setting found before the first (meanwhile every thread, inside the block or
    not, sees TF32: the switch is per process).

    Set and restored with the legacy `allow_tf32` switch, which keeps every precision getter readable: setting the
    per-backend `fp32_precision = "tf32"` instead makes `torch.get_float32_matmul_precision()` raise (mixed APIs),
    and inductor calls it while compiling matrix products. Only when the caller's own settings already mix the two
    APIs (the legacy getter raises) is the per-backend switch used both ways."""
    if device.type != "cuda":
        yield
        return
    _enter_tf32()
    try:
        yield
    finally:
        _exit_tf32()


def _enter_tf32() -> None:
    """Count one more block; the first sets TF32 and keeps the setting it replaced."""
    global _depth, _saved
    with _LOCK:
        if _depth == 0:
            matmul = torch.backends.cuda.matmul
            try:
                before, attr = matmul.allow_tf32, "allow_tf32"
            except RuntimeError:
                before, attr = matmul.fp32_precision, "fp32_precision"
            setattr(matmul, attr, True if attr == "allow_tf32" else "tf32")
            _saved = (attr, before)
        _depth += 1


def _exit_tf32() -> None:
    """Count one block less; the last restores the setting the first found."""
    global _depth, _saved
    with _LOCK:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            attr, before = _saved
            _saved = None
            setattr(torch.backends.cuda.matmul, attr, before)


def _tensor_core_tf32(device: torch.device) -> bool:
    """Whether `device` is a GPU with TF32 tensor cores: on CUDA compute capability 8.0 and later; on ROCm torch's
    own `torch.cuda.is_tf32_supported()` asked with `device` current (ROCm reports the gfx version as the
    capability, e.g. (9, 0) for an MI250's gfx90a, which has no TF32; torch accepts only some gfx families)."""
    if device.type != "cuda" or not torch.cuda.is_available():  # no GPU here: the caller meets that error later
        return False
    if torch.version.hip is not None:
        with torch.cuda.device(device):
            return bool(torch.cuda.is_tf32_supported())
    return torch.cuda.get_device_capability(device) >= (8, 0)
