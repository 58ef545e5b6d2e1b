"""Float32 projections of the CPU fast path through oneDNN, with the FFN's GELU fused into its first product.

Hand-written because neither torch nor inductor offers it for float32: inductor's weight freezing packs float32
linears for MKL (`mkl._mkl_linear`) and fuses no activation into them (it takes oneDNN, with fused activations,
only for bf16 / fp16 weights). `_OneDnnLinear` calls oneDNN's linear (`torch.ops.mkldnn._linear_pointwise`, the op
inductor itself emits for bf16) on the float32 weights, which inductor then keeps as an extern kernel in the
compiled graph. The products stay IEEE float32 (no reduced-precision setting is touched): within 1e-4 of eager,
tested. Measured on the 2-core AMD EPYC VM (ViT-S/16, batch 16, 224 px, compiled, interleaved): 17.6 img/s
against 14.1 for the MKL route (docs/fast_inference.md). The MKL route stays one mode away
(`float32-mkl`), and any input oneDNN cannot take (not a CPU float32 tensor) runs `F.linear`.
"""

from __future__ import annotations

import functools
import platform
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from geodino.models.fast_core import _Core

__all__ = ["onednn_linears_available", "use_onednn_linears"]


@functools.cache
def onednn_linears_available() -> bool:
    """True on x86-64 when this torch build runs oneDNN's float32 linear and it agrees with `F.linear` (checked once
    on a small product with a fused GELU): builds without oneDNN, or where the op is missing, keep MKL. Other CPUs
    (Arm: oneDNN there may lack its Compute Library kernels) keep the route inductor picks; nothing was measured
    there."""
    try:
        if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(s, generator=g) for s in ((5, 8), (3, 8), (3,)))
        got = torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "none")
        return bool(torch.allclose(got, F.gelu(F.linear(x, w, b)), atol=1e-5))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


class _OneDnnLinear(nn.Module):
    """`F.linear(x, W, b)` (then exact GELU when `gelu`) as one oneDNN call on CPU float32 inputs."""

    def __init__(self, lin: nn.Linear, *, gelu: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = lin.in_features, lin.out_features
        self.weight = nn.Parameter(lin.weight.detach(), requires_grad=False)
        self.bias = None if lin.bias is None else nn.Parameter(lin.bias.detach(), requires_grad=False)
        self.gelu = gelu

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or self.weight.dtype != torch.float32:
            y = F.linear(x, self.weight, self.bias)
            return F.gelu(y) if self.gelu else y
        lead = x.shape[:-1]
        attr, algorithm = ("gelu", "none") if self.gelu else ("none", "")  # "none": exact (erf) GELU, as eager
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), self.weight, self.bias, attr, [], algorithm)
        return y.view(*lead, self.out_features)


def use_onednn_linears(core: _Core) -> _Core:
    """Every projection of `core`'s blocks as a `_OneDnnLinear`; a GELU FFN's first product carries its GELU (the
    block then skips its own, `gelu_fused`). SwiGLU FFNs keep their gate in the block."""
    for blk in core.block_list():
        for name in ("qkv", "proj", "fc2"):
            setattr(blk, name, _OneDnnLinear(getattr(blk, name)))
        fuse = not blk.swiglu
        assert isinstance(blk.fc1, nn.Linear)  # a freshly prepared core: its projections are still nn.Linear
        blk.fc1 = _OneDnnLinear(blk.fc1, gelu=fuse)
        blk.gelu_fused = fuse
    return core
