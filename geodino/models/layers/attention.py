"""Self-attention with a fused qkv projection, RoPE on patch tokens and `scaled_dot_product_attention`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.models.layers.rope import rope_qk


class LinearKMaskedBias(nn.Linear):
    """qkv projection whose key bias is multiplied by the buffer `bias_mask` (1 on q and v, 0 on k).

    The buffer is part of the official state_dict (`attn.qkv.bias_mask`), so it is kept as is.
    """

    bias_mask: Tensor  # registered buffer when bias=True (declared: nn.Module's __getattr__ is typed Tensor | Module)

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if out_features % 3:
            raise ValueError(f"qkv out_features {out_features} must be divisible by 3")
        if self.bias is not None:
            self.register_buffer("bias_mask", torch.full_like(self.bias, float("nan")))
            self.reset_bias_mask()

    def reset_bias_mask(self) -> None:
        if self.bias is None or self.bias_mask.device.type == "meta":
            return
        o = self.out_features
        with torch.no_grad():
            self.bias_mask.fill_(1)
            self.bias_mask[o // 3 : 2 * o // 3].fill_(0)

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_mask.to(self.bias.dtype) if self.bias is not None else None
        return F.linear(x, self.weight, bias)


class SelfAttention(nn.Module):
    """Multi-head self-attention (official keys `qkv`, `proj`). RoPE (half-width sin/cos covering all N tokens,
    prefix rows = identity, see `rope.rope_for_tokens`) is applied to q and k in the RoPE dtype (float32 for
    the released models) and cast back, as official."""

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True, mask_k_bias: bool = False
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        linear = LinearKMaskedBias if mask_k_bias else nn.Linear
        self.qkv = linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def compute_attention(self, qkv: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """qkv [B, N, 3·D] -> attention output [B, N, D] (before `proj`).

        q, k and v stay in the token-major layout [B, N, heads, d] and reach SDPA as transposed views: the CPU
        and CUDA kernels then return the output token-major too, so the final reshape is free (no copy). RoPE
        writes q and k into one buffer with two fused multiply-adds per half instead of a cat of products.
        """
        B, N, _ = qkv.shape
        qkv = qkv.view(B, N, 3, self.num_heads, self.head_dim)
        if rope is not None:
            sin, cos = rope  # [N, d/2]
            qk = rope_qk(qkv[:, :, :2], sin[:, None, None, :], cos[:, None, None, :])
            q, k = qk[:, :, 0], qk[:, :, 1]
        else:
            q, k = qkv[:, :, 0], qkv[:, :, 1]
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), qkv[:, :, 2].transpose(1, 2))
        return x.transpose(1, 2).reshape(B, N, -1)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        return self.proj(self.compute_attention(self.qkv(x), rope))
