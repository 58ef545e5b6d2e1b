"""The prepared network of the fast inference path: a DinoVisionTransformer's weights read once into `_Core`.

- the key-bias mask and LayerScale folded into the qkv / output / FFN projections
  (`x + γ·(W y + b) = x + (γW) y + γb`), SwiGLU's two input projections fused into one matmul;
- `dtype=torch.bfloat16` stores the matmul weights in bf16 (no per-call autocast casts) while the residual stream,
  the norms and RoPE stay float32, as under autocast.

Its own module: these weights and their forward are what `torch.compile` traces; choosing the path, padding batches
and keeping the compiled graphs is `geodino.models.frozen.FastViT`'s.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.models.layers.attention import LinearKMaskedBias
from geodino.models.layers.ffn import SwiGLUFFN
from geodino.models.layers.norm import RMSNorm
from geodino.models.layers.rope import rope_for_tokens

if TYPE_CHECKING:
    from geodino.models.layers.block import SelfAttentionBlock
    from geodino.models.vit import DinoVisionTransformer


def _linear(weight: Tensor, bias: Tensor | None, dtype: torch.dtype) -> nn.Linear:
    """An inference nn.Linear holding `weight` / `bias` in `dtype` (an nn.Linear so that torch.ao can quantise it)."""
    out_f, in_f = weight.shape
    # built on the meta device and given fresh tensors: no random initialisation that the copy would overwrite (it
    # also drew from the caller's global generator, so merely preparing the fast path moved a notebook's random
    # stream). Not torch.nn.utils.skip_init: its `to_empty` goes through torch's Python refs, which import sympy and
    # torch.fx's symbolic shapes (0.65 s here, more on a cold disk) on a path that compiles nothing
    lin = nn.Linear(in_f, out_f, bias=bias is not None, device="meta")
    lin.weight = nn.Parameter(torch.empty(out_f, in_f, dtype=dtype, device=weight.device).copy_(weight))
    if bias is not None:
        lin.bias = nn.Parameter(torch.empty(out_f, dtype=dtype, device=bias.device).copy_(bias))
    return lin.requires_grad_(False)


def _ls(block_ls: nn.Module, dim: int, ref: Tensor) -> Tensor:
    gamma = getattr(block_ls, "gamma", None)
    return gamma.detach().float() if gamma is not None else torch.ones(dim, device=ref.device)


def _fold(lin: nn.Linear, gamma: Tensor, dtype: torch.dtype) -> nn.Linear:
    """`γ ⊙ (W y + b)` as one linear: rows of W and b scaled by γ (exact up to float rounding)."""
    w = lin.weight.detach().float() * gamma[:, None]
    b = lin.bias.detach().float() * gamma if lin.bias is not None else None
    return _linear(w, b, dtype)


class _Norm(nn.Module):
    """LayerNorm / RMSNorm computed in float32 on the float32 residual stream."""

    def __init__(self, norm: nn.LayerNorm | RMSNorm) -> None:
        super().__init__()
        self.rms = not isinstance(norm, nn.LayerNorm)
        self.eps = float(norm.eps)
        self.weight = nn.Parameter(norm.weight.detach().float().clone(), requires_grad=False)
        b = getattr(norm, "bias", None)
        self.bias = nn.Parameter(b.detach().float().clone(), requires_grad=False) if b is not None else None

    def forward(self, x: Tensor) -> Tensor:
        if self.rms:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


class _Block(nn.Module):
    """One pre-norm block with folded LayerScale; matmul inputs in `dtype`, residual stream float32."""

    # nn.Linear when built; tf32x3 / onednn_linear swap in their own projection modules afterwards
    qkv: nn.Module
    proj: nn.Module
    fc1: nn.Module
    fc2: nn.Module

    def __init__(self, blk: SelfAttentionBlock, dtype: torch.dtype) -> None:
        super().__init__()
        attn = blk.attn
        dim = attn.qkv.in_features
        self.num_heads = attn.num_heads
        self.head_dim = dim // attn.num_heads
        self.dtype = dtype
        self.gelu_fused = False  # set by `onednn_linear.use_onednn_linears` when fc1 applies the GELU itself
        self.norm1 = _Norm(blk.norm1)
        self.norm2 = _Norm(blk.norm2)
        qkv_b: Tensor | None = attn.qkv.bias
        if qkv_b is not None and isinstance(attn.qkv, LinearKMaskedBias):  # with a bias it has the mask buffer
            qkv_b = qkv_b * attn.qkv.bias_mask.to(qkv_b.dtype)
        self.qkv = _linear(attn.qkv.weight.detach().float(), None if qkv_b is None else qkv_b.detach().float(), dtype)
        g1 = _ls(blk.ls1, dim, attn.qkv.weight)
        g2 = _ls(blk.ls2, dim, attn.qkv.weight)
        self.proj = _fold(attn.proj, g1, dtype)
        mlp = blk.mlp
        self.swiglu = isinstance(mlp, SwiGLUFFN)
        if isinstance(mlp, SwiGLUFFN):
            w12 = torch.cat([mlp.w1.weight.detach(), mlp.w2.weight.detach()]).float()
            b12 = None if mlp.w1.bias is None else torch.cat([mlp.w1.bias.detach(), mlp.w2.bias.detach()]).float()
            self.fc1 = _linear(w12, b12, dtype)
            self.fc2 = _fold(mlp.w3, g2, dtype)
        else:
            self.fc1 = _linear(mlp.fc1.weight.detach().float(), _opt(mlp.fc1.bias), dtype)
            self.fc2 = _fold(mlp.fc2, g2, dtype)

    def forward(self, x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
        B, N, D = x.shape
        qkv = self.qkv(self.norm1(x).to(self.dtype)).view(B, N, 3, self.num_heads, self.head_dim)
        qk = qkv[:, :, :2].float()  # RoPE in float32 (the released RoPE dtype), as official
        q1, q2 = qk.chunk(2, dim=-1)
        qk = torch.cat([q1 * cos - q2 * sin, q2 * cos + q1 * sin], dim=-1).to(self.dtype)
        q, k, v = qk[:, :, 0], qk[:, :, 1], qkv[:, :, 2]
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.proj(a.transpose(1, 2).reshape(B, N, D)).float()
        h = self.fc1(self.norm2(x).to(self.dtype))
        if self.swiglu:
            h1, h2 = h.chunk(2, dim=-1)
            h = F.silu(h1) * h2
        elif not self.gelu_fused:
            h = F.gelu(h)
        return x + self.fc2(h).float()


def _opt(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().float()


class _Core(nn.Module):
    """The prepared network: tokens -> outputs of the chosen blocks (normed or not) and the final pre-norm tokens."""

    def __init__(self, model: DinoVisionTransformer, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        pe = model.patch_embed.proj
        self.patch_w = nn.Parameter(pe.weight.detach().to(dtype).clone(), requires_grad=False)
        self.patch_b = (
            nn.Parameter(pe.bias.detach().float().clone(), requires_grad=False) if pe.bias is not None else None
        )
        self.patch_size = int(model.patch_size)
        # [1, D]: replaces the patch tokens a mask selects (the teacher-head warm-up's masked views), as official
        self.mask_token = nn.Parameter(model.mask_token.detach().float().clone(), requires_grad=False)
        prefix = [model.cls_token.detach().float()]
        if model.n_storage_tokens > 0:
            prefix.append(model.storage_tokens.detach().float())
        self.prefix = nn.Parameter(torch.cat(prefix, dim=1).clone(), requires_grad=False)  # [1, 1+R, D]
        self.rope_embed = copy.deepcopy(model.rope_embed).eval()  # eval: deterministic sin/cos (no augmentation)
        self.n_prefix = int(model.n_prefix_tokens)
        # model.blocks holds SelfAttentionBlocks (ModuleList yields them typed as nn.Module)
        self.blocks = nn.ModuleList(_Block(cast("SelfAttentionBlock", b), dtype) for b in model.blocks)
        self.norm = _Norm(model.norm)
        cls_norm = getattr(model, "cls_norm", None)
        self.cls_norm = _Norm(cls_norm) if cls_norm is not None else None

    def block_list(self) -> list[_Block]:
        """The prepared blocks, typed (iterating the ModuleList yields them as nn.Module)."""
        return [cast(_Block, b) for b in self.blocks]

    def apply_norm(self, x: Tensor) -> Tensor:
        if self.cls_norm is None:
            return self.norm(x)
        k = self.n_prefix
        return torch.cat([self.cls_norm(x[:, :k]), self.norm(x[:, k:])], dim=1)

    def rope_tables(self, H: int, W: int) -> tuple[Tensor, Tensor]:
        """(sin, cos) for an H x W patch grid, shaped to broadcast over (tokens, q|k, heads, head_dim)."""
        sin, cos = rope_for_tokens(self.rope_embed(H=H, W=W), self.n_prefix)
        return sin[:, None, None, :].float().contiguous(), cos[:, None, None, :].float().contiguous()

    def forward(
        self, x: Tensor, take: tuple[int, ...], norm: bool, sin: Tensor, cos: Tensor, masks: Tensor | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """`sin` / `cos` from `rope_tables`, passed in rather than computed here: inside a compiled graph inductor
        fused the table computation (arange, sin, cos) into every block's RoPE kernel instead of folding it.
        `masks` [B, patches] (bool): those patch tokens become the mask token (official `prepare_tokens_with_masks`).
        Returns (the `take` blocks' outputs, the output of the last block run): with `take` empty every block runs and
        that is the final block's output; otherwise the blocks after the last taken are skipped (they feed nothing)."""
        p = self.patch_size
        t = F.conv2d(x.to(self.dtype), self.patch_w, None, stride=p).flatten(2).transpose(1, 2).float()
        if self.patch_b is not None:
            t = t + self.patch_b
        if masks is not None:
            t = torch.where(masks.unsqueeze(-1), self.mask_token.unsqueeze(0), t)
        t = torch.cat([self.prefix.expand(t.shape[0], -1, -1), t], dim=1)
        taken = []
        stop = max(take) if take else len(self.blocks) - 1  # blocks after the last taken feed no output: not run
        for i, blk in enumerate(self.blocks):
            t = blk(t, sin, cos)
            if i in take:
                taken.append(self.apply_norm(t) if norm else t)
            if i >= stop:
                break
        return taken, t
