"""CLS-to-patch attention of a timm ViT/EVA block without the [heads, N, N] attention matrix.

timm's attention modules run a fused kernel (`fused_attn`) that returns no weights. Turning it off for the pass
makes the block build the full softmax matrix [B, heads, N, N] in memory (and a copy for `attn @ v`): 2.1 GB for
a timm ViT-Tiny (3 heads) on a 1536 x 1536 px input where geodino's own ViT needed 0.16 GB, and over 100 GB at the
4096 x 4096 px `viz attention` accepts. For timm's standard `Attention` (ViT, DINOv2 with registers) and
`EvaAttention` (EVA, `vit_*_patch16_dinov3`), the fused kernel is kept (the block output is unchanged) and q and k
are read where timm normalises them (`q_norm` / `k_norm` forward hooks), the RoPE tensor from the module's call;
the CLS row softmax(q_cls kᵀ · scale) is then computed here, with timm's own `apply_rot_embed_cat` on the tokens
after the prefix, as its eager path applies it: memory linear in the token count. Other attention modules that
have a `fused_attn` switch still run their eager path for the pass (only the CLS row of its softmax is kept).
"""

from __future__ import annotations

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
def timm_capture(model: Any, layer: int, spec: str, store: dict[str, Any]):
    """Record what the CLS row of block `layer`'s attention needs, for one pass (see the module docstring);
    `timm_cls_attention` turns it into the softmax row."""
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
    kind = _light_kind(attn)
    store["kind"] = kind
    if kind is not None:

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
    fused = attn.fused_attn
    # only the CLS row is kept: the full [B, heads, N, N] matrix is the eager path's own, freed after the block
    handle = attn.attn_drop.register_forward_hook(lambda _m, _i, out: store.__setitem__("cls", out[:, :, 0].detach()))
    attn.fused_attn = False
    try:
        yield attn
    finally:
        attn.fused_attn = fused
        handle.remove()


def timm_cls_attention(attn: Any, store: dict[str, Any], spec: str, layer: int) -> Any:
    """softmax(q_cls kᵀ · scale) over all N tokens of the pass `timm_capture` recorded -> [B, heads, N]."""
    import torch

    if store.get("kind") is None:
        if "cls" not in store:
            raise InputError(f"backbone {spec}: block {layer} did not expose attention weights in this pass")
        return store["cls"]
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
