"""Axial rotary position embedding of DINOv3 (no learned weights, any grid size without interpolation).

Periods follow the official buffer `rope_embed.periods` (`base^(2j / (D_head/2))`, j < D_head/4, or log-spaced
between `min_period` and `max_period`). Patch-centre coordinates are normalised per axis (`separate`, the
released setting; `min`/`max` normalise both axes by the shorter/longer side) and mapped to [-1, 1]. In training
mode the coordinates can be shifted (+U[-s, s] per axis), jittered (per-axis log-uniform factor in [1/j, j]) and
rescaled (one log-uniform factor in [1/r, r]); in eval mode they never are.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def rope_rotate_half(x: Tensor) -> Tensor:
    """[x1, x2] -> [-x2, x1] on the last dim (the rotate-half convention of the official code)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rope_apply(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Reference RoPE: `x·cos + rotate_half(x)·sin` (sin/cos hold each frequency twice, halves tiled)."""
    return x * cos + rope_rotate_half(x) * sin


class RopePositionEmbedding(nn.Module):
    """Produces `(sin, cos)`, each [H·W, D_head], for an H×W patch grid (official `RopePositionEmbedding`)."""

    periods: Tensor  # registered buffer (declared: nn.Module's __getattr__ is typed Tensor | Module)

    def __init__(
        self,
        embed_dim: int,
        *,
        num_heads: int,
        base: float | None = 100.0,
        min_period: float | None = None,
        max_period: float | None = None,
        normalize_coords: Literal["min", "max", "separate"] = "separate",
        shift_coords: float | None = None,
        jitter_coords: float | None = None,
        rescale_coords: float | None = None,
        dtype: str = "fp32",
    ) -> None:
        super().__init__()
        if embed_dim % (4 * num_heads):
            raise ValueError(f"embed_dim {embed_dim} must be divisible by 4 * num_heads ({4 * num_heads}) for RoPE")
        both = min_period is not None and max_period is not None
        if (base is None and not both) or (base is not None and both):
            raise ValueError("RoPE needs either `base` or both `min_period` and `max_period`")
        if normalize_coords not in ("min", "max", "separate"):
            raise ValueError(f"normalize_coords must be 'min', 'max' or 'separate', got {normalize_coords!r}")
        self.base = base
        self.min_period = min_period
        self.max_period = max_period
        self.D_head = embed_dim // num_heads
        self.normalize_coords = normalize_coords
        self.shift_coords = shift_coords
        self.jitter_coords = jitter_coords
        self.rescale_coords = rescale_coords
        self.dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        # Persistent (official): the teacher is initialised from the student's state_dict.
        self.register_buffer("periods", torch.empty(self.D_head // 4, dtype=self.dtype), persistent=True)
        self._init_weights()

    @property
    def augments(self) -> bool:
        """True when this module draws random coordinate augmentations (training mode with any of them set)."""
        augs = (self.shift_coords, self.jitter_coords, self.rescale_coords)
        return self.training and any(v is not None for v in augs)

    def _init_weights(self) -> None:
        if self.periods.device.type == "meta":
            return
        n = self.D_head // 4
        dev, dt = self.periods.device, self.dtype
        if self.base is not None:
            periods = self.base ** (2 * torch.arange(n, device=dev, dtype=dt) / (self.D_head // 2))
        else:
            # __init__ requires both periods when base is None
            assert self.min_period is not None and self.max_period is not None
            ratio = self.max_period / self.min_period
            periods = ratio ** torch.linspace(0, 1, n, device=dev, dtype=dt) / ratio * self.max_period
        self.periods.data = periods

    def coords(self, H: int, W: int) -> Tensor:
        """Patch-centre coordinates [H·W, 2] in [-1, 1] (row-major, (y, x)), augmented in training mode."""
        dev, dt = self.periods.device, self.dtype
        if self.normalize_coords == "max":
            dh = dw = max(H, W)
        elif self.normalize_coords == "min":
            dh = dw = min(H, W)
        else:
            dh, dw = H, W
        coords_h = torch.arange(0.5, H, device=dev, dtype=dt) / dh
        coords_w = torch.arange(0.5, W, device=dev, dtype=dt) / dw
        coords = torch.stack(torch.meshgrid(coords_h, coords_w, indexing="ij"), dim=-1).flatten(0, 1)
        coords = 2.0 * coords - 1.0
        if self.training and self.shift_coords is not None:
            shift = torch.empty(2, device=dev, dtype=dt).uniform_(-self.shift_coords, self.shift_coords)
            coords = coords + shift[None, :]
        if self.training and self.jitter_coords is not None:
            lim = math.log(self.jitter_coords)
            coords = coords * torch.empty(2, device=dev, dtype=dt).uniform_(-lim, lim).exp()[None, :]
        if self.training and self.rescale_coords is not None:
            lim = math.log(self.rescale_coords)
            coords = coords * torch.empty(1, device=dev, dtype=dt).uniform_(-lim, lim).exp()
        return coords

    def forward(self, *, H: int, W: int) -> tuple[Tensor, Tensor]:
        coords = self.coords(H, W)
        angles = 2 * math.pi * coords[:, :, None] / self.periods[None, None, :]  # [HW, 2, D/4]
        angles = angles.flatten(1, 2).tile(2)  # [HW, D]
        return torch.sin(angles), torch.cos(angles)


def rope_for_tokens(rope: tuple[Tensor, Tensor], n_prefix: int) -> tuple[Tensor, Tensor]:
    """Half-width (sin, cos) [N, D_head/2] covering all N tokens: prefix rows get sin 0, cos 1 (identity).

    Because the official sin/cos repeat each frequency in both halves, RoPE reduces to
    `[x1·c − x2·s, x2·c + x1·s]`, bit-identical to `x·cos + rotate_half(x)·sin`, with half the work and no
    separate prefix slicing; see `apply_rope_half`.
    """
    sin, cos = rope
    half = sin.shape[-1] // 2
    sin, cos = sin[..., :half], cos[..., :half]
    if n_prefix:
        sin = torch.cat([sin.new_zeros(n_prefix, half), sin], dim=0)
        cos = torch.cat([cos.new_ones(n_prefix, half), cos], dim=0)
    return sin, cos


def apply_rope_half(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """RoPE on x [..., N, (heads,) D] with half-width sin/cos broadcastable to [..., N, (heads,) D/2]."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def rope_qk(qk: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """`apply_rope_half` computed in the RoPE dtype (float32 for the released models) and cast back to the input
    dtype, as official. Eager without autograd, it writes into one preallocated buffer with fused multiply-adds (no
    temporaries, no cat); with autograd, or inside `torch.compile`, it uses the functional form (equal up to
    multiply-add rounding; inductor fuses it into one kernel). Dynamo cannot trace `out=` into the buffer's halves
    (non-contiguous views): under `trainer.compile=true` that broke the graph in every teacher block, and the
    teacher's `forward_list` then ran eagerly."""
    dtype = torch.promote_types(qk.dtype, sin.dtype)
    x1, x2 = qk.chunk(2, dim=-1)
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and (qk.requires_grad or sin.requires_grad)):
        x1, x2 = x1.to(dtype), x2.to(dtype)
        out = torch.cat([torch.addcmul(x1 * cos, x2, sin, value=-1), torch.addcmul(x2 * cos, x1, sin)], dim=-1)
        return out.to(qk.dtype)
    if dtype != qk.dtype:
        # bf16/fp16 q, k with float32 sin/cos (a model cast with `.to(torch.bfloat16)`): convert q, k once, compute
        # each half in float32 and round once into a buffer of the input dtype (~10 % less time than four mixed-dtype
        # kernels into a float32 buffer and a cast; the same values: every product and sum is float32 either way)
        x1, x2 = x1.to(dtype), x2.to(dtype)
        out = torch.empty(qk.shape, dtype=qk.dtype, device=qk.device)
        o1, o2 = out.chunk(2, dim=-1)
        torch.addcmul(x1 * cos, x2, sin, value=-1, out=o1)
        torch.addcmul(x2 * cos, x1, sin, out=o2)
        return out
    out = torch.empty(qk.shape, dtype=dtype, device=qk.device)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(x1, cos, out=o1)
    o1.addcmul_(x2, sin, value=-1)
    torch.mul(x2, cos, out=o2)
    o2.addcmul_(x1, sin)
    return out.to(qk.dtype)
