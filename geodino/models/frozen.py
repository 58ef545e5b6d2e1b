"""Fast inference path for a frozen DinoVisionTransformer: prepared weights, optional bf16 / int8, torch.compile.

`FastViT(model)` reads the weights of a `DinoVisionTransformer` once and runs an inference-only forward with the
same outputs (`forward_features`, `get_intermediate_layers`, official semantics; no masks, no training):

- weights prepared once: the key-bias mask and LayerScale folded into the qkv / output / FFN projections
  (`x + γ·(W y + b) = x + (γW) y + γb`), SwiGLU's two input projections fused into one matmul;
- `dtype=torch.bfloat16` stores the matmul weights in bf16 (no per-call autocast casts) while the residual stream,
  the norms and RoPE stay float32, as under autocast;
- `compile=True` runs the forward through `torch.compile` (inductor; on CPU with weight freezing, which constant-
  folds RoPE tables and prepacks weights for oneDNN). Shapes are static: each new (batch, H, W) is compiled once
  (the warm-up), and a batch smaller than one already compiled for the same tile size is zero-padded to it instead
  of compiling again (a partial last batch costs a padded forward, not a compile), or on CPU, when it fills less
  than `PAD_MIN_SHARE` of it, runs uncompiled;
- `dtype="int8"`: opt-in dynamic int8 quantisation of the projections (torch.ao, eager; fidelity measured by
  the feature cosine to float32, see docs/fast_inference.md);
- float32 on CUDA GPUs with TF32 tensor cores (compute capability >= 8.0): the projections run as "3xTF32" (each
  float32 operand split into a TF32 high part and a TF32 low part, three tensor-core products summed in float32,
  `_Tf32x3Linear`), the float32 emulation PyTorch's own float32 memory-efficient attention kernel uses on those
  GPUs. Plain float32 matrix products there run on the CUDA cores at a fraction of the tensor cores' rate; plain
  TF32 keeps 11 of float32's 24 significand bits and breaks the 1e-4 fidelity. `GEODINO_FAST=float32-ieee`
  keeps plain float32 products.

`fast_path(model, device=..., mode=...)` chooses the path (see `choose_path`) and returns a `FastViT`, or the model
unchanged when the fast path is off: `mode="off"` or the environment variable `GEODINO_FAST=0`.

Hand-written rather than a library because the official layout (storage tokens, RoPE on patch tokens only,
masked k-bias, untied norms) is what must be reproduced; `torch.compile` does the kernel fusion.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import types
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.errors import ConfigError, InputError
from geodino.models.layers.patch_embed import check_image_batch
from geodino.models.layers.rope import rope_for_tokens
from geodino.models.vit import block_indices, layer_outputs

__all__ = [
    "MODES",
    "FastPath",
    "FastViT",
    "choose_path",
    "env_mode",
    "fast_mode",
    "fast_path",
    "tf32_matmuls",
    "tf32_round",
]

MODES = ("auto", "off", "float32", "float32-ieee", "bfloat16", "int8")
ENV_SWITCH = "GEODINO_FAST"  # "0" / "off" turns the fast path off everywhere; a mode name forces that mode


# A batch smaller than the compiled one runs that graph zero-padded when it fills at least this share of it, else
# through the prepared weights without the compiler: padding pays when the share exceeds compiled / uncompiled time.
# CPU, ViT-S float32 at embed's 512 px tiles: the uncompiled prepared weights run at eager's speed
# (benchmarks/backbone.py --no-compile, batch 4: 2.32 against 2.42 img/s) and the compiled forward at 1.11-1.31x
# eager (backbone.py batch 4 and 8: 1.11, 1.18; profile_forward.py: 1.31), so the break-even share is 0.76-0.90.
# CUDA: always padded (compiled bf16 is ~2x eager, and a small batch leaves the GPU mostly idle anyway).
PAD_MIN_SHARE: dict[str, float] = {"cpu": 0.85, "cuda": 0.0}


@dataclass(frozen=True)
class FastPath:
    """Which inference path runs: `name` as printed and recorded (e.g. 'fast-bfloat16-compiled' or 'eager')."""

    enabled: bool
    dtype: str = "float32"  # float32 | bfloat16 | int8
    compile: bool = False
    # a description for the console, not part of what runs: paths that compute the same compare equal (the key
    # under which `geodino.inference.accelerate` keeps its prepared models)
    reason: str = field(default="", compare=False)
    tf32x3: bool = False  # float32 projections as three TF32 tensor-core products (`_Tf32x3Linear`)

    @property
    def name(self) -> str:
        if not self.enabled:
            return "eager"
        return f"fast-{self.dtype}" + ("-3xtf32" if self.tf32x3 else "") + ("-compiled" if self.compile else "")


def _compiler_available(device: torch.device) -> bool:
    """Inductor needs a C++ compiler on CPU and triton on CUDA; without them the fast path runs eagerly."""
    if device.type == "cpu":
        return shutil.which(os.environ.get("CXX", "g++")) is not None or shutil.which("c++") is not None
    if device.type == "cuda":
        import importlib.util

        return importlib.util.find_spec("triton") is not None
    return False


def _tensor_core_tf32(device: torch.device) -> bool:
    """Whether `device` is a CUDA GPU with TF32 tensor cores (compute capability 8.0 and later)."""
    if device.type != "cuda" or not torch.cuda.is_available():  # no GPU here: the caller meets that error later
        return False
    return torch.cuda.get_device_capability(device) >= (8, 0)


_OFF_WORDS = ("0", "false", "no", "off")
_ON_WORDS = ("1", "true", "yes", "on")


def fast_mode(value: Any, key: str = "fast path mode") -> str:
    """`value` as one of `MODES`, or a ConfigError naming `key`. YAML reads `off` as false and `on` as true (a config
    then holds 'False' / 'True'), so booleans and their spellings mean 'off' and 'auto'."""
    word = str(value).strip().lower()
    mode = "off" if word in _OFF_WORDS else "auto" if word in _ON_WORDS else word
    if mode not in MODES:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(MODES)}")
    return mode


def env_mode() -> str | None:
    """The mode `GEODINO_FAST` forces ('off' for 0 / off / false / no; a mode name), or None when it is unset or
    asks for the default (1 / on / auto); a ConfigError for anything else. It overrides every setting in code or
    config. Commands that write a run folder check it up front (a bad value otherwise failed after set-up)."""
    env = os.environ.get(ENV_SWITCH, "").strip().lower()
    if not env or env in (*_ON_WORDS, "auto"):
        return None
    if env in _OFF_WORDS:
        return "off"
    if env not in MODES:
        raise ConfigError(f"{ENV_SWITCH}={env!r} is not a fast-path mode; use one of {', '.join(MODES)} or 0")
    return env


def choose_path(
    device: str | torch.device = "cpu", mode: str = "auto", compile: bool | None = None, amp: bool | None = None
) -> FastPath:
    """The path for `device`: `mode` 'auto' keeps today's numerics (float32 on CPU, bf16 on CUDA where the eager
    path autocasts) with prepared weights and compilation when a compiler is present (callers with small jobs pass
    `compile=False`: see `geodino.inference.COMPILE_MIN_IMAGES`); 'float32' / 'bfloat16' /
    'int8' force the dtype (int8: CPU only, eager); 'off' (or GEODINO_FAST=0) is the eager model as it is.
    float32 on a GPU with TF32 tensor cores runs its projections as 3xTF32 (`_Tf32x3Linear`); 'float32-ieee'
    keeps plain float32 products there. `amp` (the FrozenBackbone setting) picks bf16 in auto mode when set."""
    device = torch.device(device)
    env = env_mode()
    if env == "off":
        return FastPath(False, reason=f"{ENV_SWITCH}={os.environ[ENV_SWITCH].strip().lower()}")
    mode = fast_mode(env or mode)
    if mode == "off":
        return FastPath(False, reason="mode=off")
    if mode == "auto":
        bf16 = amp if amp is not None else device.type == "cuda"
        mode = "bfloat16" if bf16 else "float32"
    tf32x3 = mode == "float32" and _tensor_core_tf32(device)
    mode = "float32" if mode == "float32-ieee" else mode
    if mode == "int8":
        if device.type != "cpu":
            raise ConfigError(f"fast path int8 runs on CPU only (torch.ao dynamic quantisation), not on {device}")
        return FastPath(True, "int8", False, reason="int8 dynamic quantisation (eager)")
    can = _compiler_available(device)
    use = can if compile is None else (compile and can)
    why = "compiled" if use else ("compile off" if compile is False else "no compiler found: eager")
    return FastPath(True, mode, use, reason=why, tf32x3=tf32x3)


# ----------------------------------------------------------------------------------------------------------------
# prepared weights
# ----------------------------------------------------------------------------------------------------------------


def _linear(weight: Tensor, bias: Tensor | None, dtype: torch.dtype) -> nn.Linear:
    """An inference nn.Linear holding `weight` / `bias` in `dtype` (an nn.Linear so that torch.ao can quantise it)."""
    out_f, in_f = weight.shape
    # skip_init: no random initialisation that the copy overwrites anyway (it also drew from the caller's global
    # generator, so merely preparing the fast path moved a notebook's random stream)
    lin = torch.nn.utils.skip_init(nn.Linear, in_f, out_f, bias=bias is not None, device=weight.device, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(weight)
        if bias is not None:
            lin.bias.copy_(bias)
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

    def __init__(self, norm: nn.Module) -> None:
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

    The three products are one matrix product over a tripled inner dimension ([xh, xh, xl] against
    [Wh, Wl, Wh], prepared once), accumulated in float32 as tensor cores do. The operands are exact TF32 values, so
    the hardware's own float32 -> TF32 conversion changes nothing, and on a CPU (float32 products of 11-bit
    significands are exact) the same module computes the GPU's numerics up to summation order, which is how the
    tests check it. Hand-written: PyTorch runs float32 matrix products as either IEEE or plain TF32; its 3xTF32 is
    inside the memory-efficient attention kernel only (CUTLASS `OpMultiplyAddFastF32`)."""

    def __init__(self, lin: nn.Linear) -> None:
        super().__init__()
        w = lin.weight.detach().float()
        wh = tf32_round(w)
        wl = tf32_round(w - wh)
        self.weight3 = nn.Parameter(torch.cat([wh, wl, wh], dim=1).contiguous(), requires_grad=False)
        b = lin.bias
        self.bias = None if b is None else nn.Parameter(b.detach().float().clone(), requires_grad=False)
        self.in_features, self.out_features = lin.in_features, lin.out_features

    def forward(self, x: Tensor) -> Tensor:
        xh = tf32_round(x)
        xl = tf32_round(x - xh)
        return F.linear(torch.cat([xh, xh, xl], dim=-1), self.weight3, self.bias)


def _split_tf32x3(core: nn.Module) -> nn.Module:
    """Every float32 projection of the blocks as a `_Tf32x3Linear` (the patch embedding stays a convolution, which
    cuDNN already runs in TF32 by default, as in the eager model)."""
    for blk in core.blocks:
        for name in ("qkv", "proj", "fc1", "fc2"):
            setattr(blk, name, _Tf32x3Linear(getattr(blk, name)))
    return core


@contextmanager
def tf32_matmuls(device: torch.device) -> Iterator[None]:
    """TF32 tensor cores for float32 matrix products on `device` (CUDA) inside the block, the previous setting
    restored after: what the 3xTF32 products need (their operands are exact TF32 values, so nothing else changes for
    them). A no-op elsewhere: on a CPU the products are float32 and exact for such operands.

    Set and restored with the legacy `allow_tf32` switch, which keeps every precision getter readable: setting the
    per-backend `fp32_precision = "tf32"` instead makes `torch.get_float32_matmul_precision()` raise (mixed APIs),
    and inductor calls it while compiling matrix products. Only when the caller's own settings already mix the two
    APIs (the legacy getter raises) is the per-backend switch used both ways."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    try:
        before, attr = matmul.allow_tf32, "allow_tf32"
    except RuntimeError:
        before, attr = matmul.fp32_precision, "fp32_precision"
    setattr(matmul, attr, True if attr == "allow_tf32" else "tf32")
    try:
        yield
    finally:
        setattr(matmul, attr, before)


class _Block(nn.Module):
    """One pre-norm block with folded LayerScale; matmul inputs in `dtype`, residual stream float32."""

    def __init__(self, blk: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        attn = blk.attn
        dim = attn.qkv.in_features
        self.num_heads = attn.num_heads
        self.head_dim = dim // attn.num_heads
        self.dtype = dtype
        self.norm1 = _Norm(blk.norm1)
        self.norm2 = _Norm(blk.norm2)
        qkv_b = attn.qkv.bias
        if qkv_b is not None and hasattr(attn.qkv, "bias_mask"):
            qkv_b = qkv_b * attn.qkv.bias_mask.to(qkv_b.dtype)
        self.qkv = _linear(attn.qkv.weight.detach().float(), None if qkv_b is None else qkv_b.detach().float(), dtype)
        g1 = _ls(blk.ls1, dim, attn.qkv.weight)
        g2 = _ls(blk.ls2, dim, attn.qkv.weight)
        self.proj = _fold(attn.proj, g1, dtype)
        mlp = blk.mlp
        self.swiglu = hasattr(mlp, "w3")
        if self.swiglu:
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
        else:
            h = F.gelu(h)
        return x + self.fc2(h).float()


def _opt(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().float()


class _Core(nn.Module):
    """The prepared network: tokens -> outputs of the chosen blocks (normed or not) and the final pre-norm tokens."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
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
        self.blocks = nn.ModuleList(_Block(b, dtype) for b in model.blocks)
        self.norm = _Norm(model.norm)
        self.cls_norm = _Norm(model.cls_norm) if getattr(model, "cls_norm", None) is not None else None

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
        `masks` [B, patches] (bool): those patch tokens become the mask token (official `prepare_tokens_with_masks`)."""
        p = self.patch_size
        t = F.conv2d(x.to(self.dtype), self.patch_w, None, stride=p).flatten(2).transpose(1, 2).float()
        if self.patch_b is not None:
            t = t + self.patch_b
        if masks is not None:
            t = torch.where(masks.unsqueeze(-1), self.mask_token.unsqueeze(0), t)
        t = torch.cat([self.prefix.expand(t.shape[0], -1, -1), t], dim=1)
        taken = []
        for i, blk in enumerate(self.blocks):
            t = blk(t, sin, cos)
            if i in take:
                taken.append(self.apply_norm(t) if norm else t)
        return taken, t


# ----------------------------------------------------------------------------------------------------------------
# public wrapper
# ----------------------------------------------------------------------------------------------------------------


class FastViT(nn.Module):
    """Inference-only stand-in for a DinoVisionTransformer (same attributes, `forward_features` and
    `get_intermediate_layers`); outputs are float32 whatever the internal dtype."""

    def __init__(self, model: nn.Module, path: FastPath | None = None) -> None:
        super().__init__()
        if not hasattr(model, "blocks") or not hasattr(model, "rope_embed"):
            raise ConfigError(f"{type(model).__name__} is not a geodino DinoVisionTransformer; the fast path needs one")
        self.path = path or FastPath(True)
        if self.path.tf32x3 and self.path.dtype != "float32":
            raise ConfigError(f"3xTF32 projections are a float32 path; {self.path.dtype} weights cannot use them")
        dtype = torch.bfloat16 if self.path.dtype == "bfloat16" else torch.float32
        for name in ("patch_size", "embed_dim", "in_chans", "n_blocks", "num_heads", "n_storage_tokens", "config"):
            setattr(self, name, getattr(model, name))
        self.num_features = self.embed_dim
        self.n_prefix_tokens = int(model.n_prefix_tokens)
        # the check alone, not `model.patch_embed.check_input`: a bound method kept the eager patch embedding (and
        # its weights) alive after a caller dropped the eager model (the distillation teacher)
        self._check_input = functools.partial(
            check_image_batch, in_chans=int(model.patch_embed.in_chans), patch=int(model.patch_embed.patch_size[0])
        )
        with torch.no_grad():
            self.core = _Core(model, dtype).eval()
        if self.path.dtype == "int8":
            self.core = _quantize_int8(self.core)
        elif self.path.tf32x3:
            self.core = _split_tf32x3(self.core)
        self._compiled: Any = None
        self._rope_cache: dict[tuple[int, int, torch.device], tuple[Tensor, Tensor]] = {}
        self._graphs: set[tuple[Any, ...]] = set()  # (batch, H, W, take, norm) of every compiled call made
        self.eval()

    @property
    def path_name(self) -> str:
        return self.path.name

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawned workers, torch.save) without its compiled graphs, which cannot be pickled: the copy
        compiles again on its first call."""
        return {**super().__getstate__(), "_compiled": None, "_graphs": set()}

    def train(self, mode: bool = True) -> FastViT:
        """Always in eval mode (inference only)."""
        return super().train(False)

    def _run(
        self,
        x: Tensor,
        take: tuple[int, ...],
        norm: bool,
        new_graph: bool = False,
        masks: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        """The forward: a compiled graph that serves the call (`_graph_batch`), else a new one when no larger graph
        of the call exists (or `new_graph`: the warm-up), else the prepared weights uncompiled (a partial batch too
        small to pad). Never under autocast: the path's weights carry its dtype (a float32 path called inside a
        caller's bf16 autocast, such as a bf16-mixed training step, would otherwise compute in bf16)."""
        self._check_input(x)
        x = x.float()
        if masks is not None:
            n = (x.shape[-2] // self.patch_size) * (x.shape[-1] // self.patch_size)
            masks = masks.reshape(x.shape[0], -1).bool()
            if masks.shape[1] != n:
                raise InputError(f"masks have {masks.shape[1]} entries per image but the input has {n} patches")
        with torch.autocast(x.device.type, enabled=False):
            if self.path.tf32x3:
                with tf32_matmuls(x.device):
                    return self._run_prepared(x, take, norm, new_graph, masks)
            return self._run_prepared(x, take, norm, new_graph, masks)

    def _run_prepared(
        self, x: Tensor, take: tuple[int, ...], norm: bool, new_graph: bool, masks: Tensor | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """`_run` after the input check, under the matmul precision the path needs."""
        sin, cos = self._rope(x)
        if not self.path.compile:
            with torch.no_grad():
                return self.core(x, take, norm, sin, cos, masks)
        if self._compiled is None:
            self._compiled = _compile(self.core, x.device)
        B, _, H, W = x.shape
        masked = masks is not None
        run_b = self._graph_batch(B, H, W, take, norm, masked)
        if run_b is None:
            if not new_graph and self._graph_batches(B, H, W, take, norm, masked):
                # well short of the compiled batch: its own tiles through the prepared weights cost less than a
                # padded compiled forward, and compiling its shape costs a warm-up
                with torch.no_grad():
                    return self.core(x, take, norm, sin, cos, masks)
            run_b = B
        pad = run_b > B
        outside = not torch.is_inference_mode_enabled()
        # the graph always runs in inference mode on an inference tensor: dynamo guards on the input's dispatch
        # keys, so a warm-up on a plain tensor then calls under torch.inference_mode() (or the reverse) compiled twice
        with torch.inference_mode():
            if pad:  # reuse the graph compiled for the larger batch rather than compiling (minutes) for this one
                x = torch.cat([x, x.new_zeros((run_b - B, *x.shape[1:]))])
                masks = None if masks is None else torch.cat([masks, masks.new_zeros((run_b - B, masks.shape[1]))])
            else:
                x = x if x.is_inference() else x.clone()
                masks = masks if masks is None or masks.is_inference() else masks.clone()
            taken, last = self._compiled(x, take, norm, sin, cos, masks)
        self._graphs.add((run_b, H, W, take, norm, masked))
        if pad:
            taken, last = [t[:B] for t in taken], last[:B]
        if outside:  # plain tensors for callers outside inference mode (they may update them in place)
            taken, last = [t.clone() for t in taken], last.clone()
        return taken, last

    def _rope(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """RoPE tables for the patch grid of `x`, computed once per (H, W, device) and kept."""
        p = self.patch_size
        key = (x.shape[-2] // p, x.shape[-1] // p, x.device)
        if key not in self._rope_cache:
            with torch.inference_mode():  # the same kind of tensor whichever mode the first call ran in
                self._rope_cache[key] = self.core.rope_tables(key[0], key[1])
        return self._rope_cache[key]

    def warmup(
        self,
        batch: int,
        height: int,
        width: int,
        layers: Sequence[int] | None = None,
        norm: bool = True,
        masked: bool = False,
    ) -> bool:
        """Compile for a call shape ahead of the timed work (`layers`, `norm` and whether masks are passed as the
        caller will call: they are part of the graph). Nothing to do, and False, when a graph that serves the call
        exists already (this shape, or a larger batch of it that `_run` pads to, see `PAD_MIN_SHARE`) or the path is
        not compiled: a second job on the same `FastViT` must not pay a forward for nothing (on a 16-tile raster that
        was a fifth of the run)."""
        take = tuple(sorted(set(layers))) if layers is not None else (self.n_blocks - 1,)
        if not self.path.compile or self.compiled_for(batch, height, width, take, norm, masked):
            return False
        x = torch.zeros(batch, self.in_chans, height, width, device=self.core.prefix.device)
        n = (height // self.patch_size) * (width // self.patch_size)
        masks = torch.zeros(batch, n, dtype=torch.bool, device=x.device) if masked else None
        self._run(x, take, norm, new_graph=True, masks=masks)
        return True

    def compiled_for(
        self, batch: int, height: int, width: int, take: tuple[int, ...], norm: bool, masked: bool = False
    ) -> bool:
        """Whether a call of this shape runs a graph already compiled (its own or, padded, a larger batch)."""
        return self._graph_batch(batch, height, width, take, norm, masked) is not None

    def _graph_batches(
        self, batch: int, height: int, width: int, take: tuple[int, ...], norm: bool, masked: bool = False
    ) -> list[int]:
        """Compiled batches >= `batch` for the same tile shape, layers, norm and masking."""
        want = (height, width, take, norm, masked)
        return [b for b, *rest in self._graphs if tuple(rest) == want and b >= batch]

    def _graph_batch(
        self, batch: int, height: int, width: int, take: tuple[int, ...], norm: bool, masked: bool = False
    ) -> int | None:
        """The compiled batch a call runs at: the smallest one >= `batch` that it fills at least `PAD_MIN_SHARE` of
        (zero-padded to it), or None when no compiled graph serves it."""
        share = PAD_MIN_SHARE.get(self.core.prefix.device.type, 0.0)
        sizes = [b for b in self._graph_batches(batch, height, width, take, norm, masked) if batch >= share * b]
        return min(sizes, default=None)

    @torch.no_grad()
    def forward_features(
        self, x: Tensor | Sequence[Tensor], masks: Tensor | Sequence[Tensor | None] | None = None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Official `forward_features`: one batch -> a dict; a list of crop groups (sizes may differ) -> one dict
        per group, `masks` None or one entry per group (masked patches become the mask token, as the teacher-head
        warm-up asks; each group runs on its own, which is what the official list forward computes)."""
        if not isinstance(x, Tensor):
            groups = list(x)
            group_masks = [None] * len(groups) if masks is None else list(masks)  # type: ignore[arg-type]
            if len(group_masks) != len(groups):
                raise InputError(f"got {len(groups)} crop groups but {len(group_masks)} mask entries")
            return [self._features(g, m) for g, m in zip(groups, group_masks)]
        if masks is not None and not isinstance(masks, Tensor):
            raise InputError("one image batch takes one mask tensor (or None), not a list")
        return self._features(x, masks)

    def _features(self, x: Tensor, masks: Tensor | None) -> dict[str, Any]:
        """The official output dict of one batch."""
        _, last = self._run(x, (), False, masks=masks)
        normed = self.core.apply_norm(last)
        n = self.n_prefix_tokens
        return {
            "x_norm_clstoken": normed[:, 0],
            "x_storage_tokens": normed[:, 1:n],
            "x_norm_patchtokens": normed[:, n:],
            "x_prenorm": last,
            "masks": masks,
        }

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)["x_norm_clstoken"]

    @torch.no_grad()
    def get_intermediate_layers(
        self,
        x: Tensor,
        *,
        n: int | Sequence[int] = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        return_extra_tokens: bool = False,
        norm: bool = True,
    ) -> tuple[Any, ...]:
        """As `DinoVisionTransformer.get_intermediate_layers` (official semantics and return form: the blocks in
        block order, each once, whatever order `n` lists them in)."""
        taken, _ = self._run(x, tuple(sorted(set(block_indices(n, self.n_blocks)))), norm)
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size) if reshape else None
        return layer_outputs(taken, self.n_prefix_tokens, grid, return_class_token, return_extra_tokens)


def _compile(core: nn.Module, device: torch.device) -> Any:
    """torch.compile of the core, static shapes. CPU: inductor weight freezing (constant folding of the RoPE tables
    and weight prepacking for MKL / oneDNN; needs no-grad, which `_run` guarantees). CUDA: default inductor options
    (SDPA keeps its flash / memory-efficient kernels, nothing CPU-specific applies).

    Freezing is set with `torch._inductor.config.patch` around every call (a call may compile a new shape), not with
    `torch.compile(options={"freezing": True})`: torch 2.14 silently ignores it there (the graph kept plain `addmm`
    on unfrozen weights; measured in docs/fast_inference.md)."""
    compiled = torch.compile(_own_forward(core), dynamic=False)
    if device.type != "cpu":
        return compiled

    def run(*args: Any) -> Any:
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return compiled(*args)

    run.compiled = compiled  # type: ignore[attr-defined]
    return run


def _own_forward(core: nn.Module) -> Any:
    """`core.forward` bound through a copy of its code object. Dynamo keeps compiled graphs, and counts them against
    its recompile limit (8), per code object: with the class's one `forward` shared by every FastViT, the ninth
    backbone or tile shape of a process silently ran uncompiled while reporting a compiled path."""
    fn = type(core).forward
    own = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    return types.MethodType(own, core)


def _quantize_int8(core: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of every projection (weights int8 per tensor, activations quantised per call)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated in favour of torchao (not a dependency)
        warnings.simplefilter("ignore")
        return quantize_dynamic(core, {nn.Linear}, dtype=torch.qint8)


def fast_path(
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    mode: str = "auto",
    compile: bool | None = None,
    amp: bool | None = None,
) -> nn.Module:
    """`model` behind the path `choose_path` picks: a `FastViT` (attribute `path_name`), or `model` itself when the
    fast path is off or the model is not a geodino ViT in eval use (e.g. a timm baseline)."""
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    path = choose_path(device, mode, compile, amp)
    if not path.enabled or not hasattr(model, "rope_embed"):
        return model
    return FastViT(model, path).to(device)


def path_name(model: nn.Module) -> str:
    """'fast-…' for a FastViT, 'eager' otherwise (what embed and probes print and record)."""
    return getattr(model, "path_name", "eager")
