"""CLS-to-patch attention of a timm ViT/EVA block without the [heads, N, N] attention matrix.

timm's attention modules run a fused kernel (`fused_attn`) that returns no weights. Turning it off for the pass
makes the block build the full softmax matrix [B, heads, N, N] in memory (and a copy for `attn @ v`): 2.1 GB for
a timm ViT-Tiny (3 heads) on a 1536 x 1536 px input where geodino's own ViT needed 0.16 GB, and over 100 GB at the
4096 x 4096 px `viz attention` accepts. For timm's standard `Attention` (ViT, DINOv2 with registers) and
`EvaAttention` (EVA, `vit_*_patch16_dinov3`), the fused kernel is kept (the block output is unchanged) and q and k
are read where timm normalises them (`q_norm` / `k_norm` forward hooks), the RoPE tensor from the module's call;
the CLS row softmax(q_cls kᵀ · scale) is then computed here, with timm's own `apply_rot_embed_cat` on the tokens
after the prefix, as its eager path applies it: memory linear in the token count. Other attention modules with a
`fused_attn` switch (a forward of their own: BEiT's relative position bias, subclasses) run their fused branch
too: the q, k, mask and scale they give `torch.nn.functional.scaled_dot_product_attention` during that module's
call are recorded and the CLS row computed from them, again linear. Only a module whose fused branch never calls
that function runs its eager path (a second pass; the full matrix is then its own).
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from typing import Any

from geodino.errors import InputError


def _light_kind(attn: Any) -> str | None:
    """'vit' or 'eva' when `attn` runs the forward of timm's `Attention` / `EvaAttention` (whose q and k can be read
    at `q_norm` / `k_norm`), else None (a subclass with its own forward, another module: the eager path)."""
    try:
        from timm.layers.attention import Attention
        from timm.models.eva import EvaAttention
    except ImportError:  # an older timm layout: the eager path works everywhere
        return None
    forward = type(attn).forward
    if not (hasattr(attn, "q_norm") and hasattr(attn, "k_norm") and hasattr(attn, "scale")):
        return None
    if forward is Attention.forward:
        return "vit"
    if forward is EvaAttention.forward and hasattr(attn, "num_prefix_tokens"):
        return "eva"
    return None


@contextmanager
def timm_capture(model: Any, layer: int, spec: str, store: dict[str, Any], *, eager: bool = False):
    """Record what the CLS row of block `layer`'s attention needs, for one pass (see the module docstring);
    `timm_cls_attention` turns it into the softmax row. `eager` runs the module's eager path (see `needs_eager`)."""
    blocks = getattr(model, "blocks", None)
    attn = getattr(blocks[layer], "attn", None) if blocks is not None else None
    if attn is None:
        raise InputError(
            f"backbone {spec} ({type(model).__name__}) has no attention blocks, so it has no attention maps; use a "
            "ViT: a geodino, official or HF checkpoint, or a timm ViT/EVA"
        )
    if not hasattr(attn, "fused_attn") or not hasattr(attn, "attn_drop"):
        raise InputError(
            f"backbone {spec}: {type(attn).__name__} computes attention in a fused kernel and exposes no attention "
            "weights; use a geodino, official or HF checkpoint, or a timm ViT/EVA"
        )
    if getattr(model, "cls_token", None) is None:
        raise InputError(f"backbone {spec} has no CLS token, so there is no CLS-to-patch attention to show")
    kind = None if eager else _light_kind(attn)
    if kind is not None:
        store["kind"] = kind

        def call(_m: Any, args: tuple, kwargs: dict) -> None:  # forward(x, attn_mask) / forward(x, rope, attn_mask)
            at = 2 if kind == "eva" else 1
            store["rope"] = kwargs.get("rope", args[1] if kind == "eva" and len(args) > 1 else None)
            mask = kwargs.get("attn_mask", args[at] if len(args) > at else None)
            store["masked"] = mask is not None or bool(kwargs.get("is_causal", False))

        handles = [
            attn.register_forward_pre_hook(call, with_kwargs=True),
            attn.q_norm.register_forward_hook(lambda _m, _i, out: store.__setitem__("q", out.detach())),
            attn.k_norm.register_forward_hook(lambda _m, _i, out: store.__setitem__("k", out.detach())),
        ]
        try:
            yield attn
        finally:
            for h in handles:
                h.remove()
        return
    with _sdpa_capture(attn, store) if not eager else _eager_capture(attn, store):
        yield attn


@contextmanager
def _eager_capture(attn: Any, store: dict[str, Any]):
    """The module's eager path for the pass; the CLS row of its softmax read at `attn_drop` (the full matrix is the
    module's own, freed after the block)."""
    store["kind"] = "eager"
    fused = attn.fused_attn
    handle = attn.attn_drop.register_forward_hook(lambda _m, _i, out: store.__setitem__("cls", out[:, :, 0].detach()))
    attn.fused_attn = False
    try:
        yield
    finally:
        attn.fused_attn = fused
        handle.remove()


@contextmanager
def _sdpa_capture(attn: Any, store: dict[str, Any]):
    """The module's fused branch for the pass; what it gives `F.scaled_dot_product_attention` during its own call
    (on this thread) is recorded: q, k, the mask's CLS row, the scale. Every other caller goes straight through."""
    import torch.nn.functional as F

    store["kind"] = "sdpa"
    original = F.scaled_dot_product_attention
    fused, thread = attn.fused_attn, threading.get_ident()

    def spy(query: Any, key: Any, value: Any, attn_mask: Any = None, *args: Any, **kwargs: Any) -> Any:
        if store.get("inside") and threading.get_ident() == thread:
            names = ("dropout_p", "is_causal", "scale", "enable_gqa")
            given = dict(zip(names, args)) | kwargs
            store["calls"] = store.get("calls", 0) + 1
            store["q"], store["k"] = query.detach(), key.detach()
            store["mask"] = None if attn_mask is None else attn_mask.detach()[..., 0, :]  # the CLS row's part only
            store["masked"] = bool(given.get("is_causal", False))  # a causal CLS row sees itself only: refused
            store["scale"] = given.get("scale")
        return original(query, key, value, attn_mask, *args, **kwargs)

    def enter(*_: Any) -> None:
        store["inside"] = True

    def leave(*_: Any) -> None:  # returns None: a forward hook's return value replaces the module's output
        store["inside"] = False

    handles = [attn.register_forward_pre_hook(enter), attn.register_forward_hook(leave)]
    F.scaled_dot_product_attention = spy
    attn.fused_attn = True
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
        attn.fused_attn = fused
        for h in handles:
            h.remove()


def needs_eager(store: dict[str, Any]) -> bool:
    """Whether the fused pass `timm_capture` recorded gave nothing to read (the module's fused branch does not call
    `F.scaled_dot_product_attention`): the caller runs the pass again with `timm_capture(..., eager=True)`."""
    return store.get("kind") == "sdpa" and "q" not in store


def timm_cls_attention(attn: Any, store: dict[str, Any], spec: str, layer: int) -> Any:
    """softmax(q_cls kᵀ · scale) over all N tokens of the pass `timm_capture` recorded -> [B, heads, N]."""
    import torch

    kind = store.get("kind")
    if kind == "eager":
        if "cls" not in store:
            raise InputError(f"backbone {spec}: block {layer} did not expose attention weights in this pass")
        return store["cls"]
    if kind == "sdpa":
        return _sdpa_row(store, spec, layer)
    if "q" not in store or "k" not in store:
        raise InputError(f"backbone {spec}: block {layer} did not expose its queries and keys in this pass")
    if store.get("masked"):
        raise InputError(f"backbone {spec}: block {layer} ran with an attention mask, which attention maps do not show")
    q, k = store["q"], store["k"]  # [B, heads, N, d], after q_norm / k_norm
    rope = store.get("rope")
    if rope is not None:  # as EvaAttention applies it: the tokens after the prefix, then cast back to the input dtype
        from timm.layers import apply_rot_embed_cat

        n, half = int(attn.num_prefix_tokens), bool(getattr(attn, "rotate_half", False))
        q = torch.cat([q[:, :, :n], apply_rot_embed_cat(q[:, :, n:], rope, half=half)], dim=2).type_as(store["q"])
        k = torch.cat([k[:, :, :n], apply_rot_embed_cat(k[:, :, n:], rope, half=half)], dim=2).type_as(store["k"])
    logits = torch.einsum("bhd,bhnd->bhn", q[:, :, 0].float() * float(attn.scale), k.float())
    return logits.softmax(dim=-1)


def _sdpa_row(store: dict[str, Any], spec: str, layer: int) -> Any:
    """softmax(q_cls kᵀ · scale + mask row) from the recorded `scaled_dot_product_attention` call -> [B, heads, N]."""
    import torch

    if store.get("calls", 0) != 1:
        raise InputError(
            f"backbone {spec}: block {layer}'s attention made {store.get('calls', 0)} fused attention calls in one "
            "pass, not one, so its CLS row is not defined here; use a geodino, official or HF checkpoint, or a timm "
            "ViT/EVA"
        )
    if store.get("masked"):
        raise InputError(f"backbone {spec}: block {layer} ran causal attention, which attention maps do not show")
    q, k = store["q"], store["k"]  # [B, heads, N, d] (k may have fewer heads: grouped-query attention)
    if k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    scale = store.get("scale")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    logits = torch.einsum("bhd,bhnd->bhn", q[:, :, 0].float() * scale, k.float())
    mask = store.get("mask")
    if mask is not None:  # bool: True takes part; float: added to the logits (BEiT's relative position bias)
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask.float()
    return logits.softmax(dim=-1)
