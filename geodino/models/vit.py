"""DinoVisionTransformer: the DINOv3 ViT with the official state_dict layout, for any number of input bands.

Parameter and buffer names equal the official ones (`cls_token`, `storage_tokens`, `mask_token`,
`patch_embed.proj`, `rope_embed.periods`, `blocks.{i}.{norm1,attn.qkv,attn.qkv.bias_mask,attn.proj,ls1,norm2,
mlp.*,ls2}`, `norm`, optional `cls_norm` and `local_cls_norm`), so official checkpoints load with strict=True.
Outputs follow the official `forward_features` / `get_intermediate_layers`. Differences, all numerically neutral:
RoPE sin/cos are computed once per forward unless per-block random sampling is active (training with
coordinate augmentation and `rope_sampling="per_block"`), and crop groups share one concatenated token tensor
for the norms, projections and FFN in eval mode too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from geodino.errors import InputError, plural
from geodino.models.layers import (
    LayerScale,
    LinearKMaskedBias,
    PatchEmbed,
    RMSNorm,
    RopePositionEmbedding,
    SelfAttentionBlock,
    make_norm,
)
from geodino.models.layers.ffn import ffn_hidden_dim
from geodino.models.layers.rope import rope_for_tokens

Rope = tuple[Tensor, Tensor]


def init_weights_vit(module: nn.Module) -> None:
    """Official per-module init: Linear trunc-normal(0.02) and zero bias (+ k-bias mask), norms reset,
    LayerScale to its init value, patch embedding uniform(±sqrt(1/(C·p²)))."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, LinearKMaskedBias):
            module.reset_bias_mask()
    elif isinstance(module, nn.LayerNorm | RMSNorm | LayerScale | PatchEmbed):
        module.reset_parameters()


class DinoVisionTransformer(nn.Module):
    """DINOv3 ViT. Build it with `geodino.models.build_model(arch, ...)`; `config` holds the build kwargs."""

    def __init__(
        self,
        *,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        ffn_ratio: float = 4.0,
        ffn_hidden_dim: int | None = None,
        ffn_layer: str = "mlp",
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        drop_path_rate: float = 0.0,
        layerscale_init: float | None = 1e-5,
        norm_layer: str = "layernormbf16",
        n_storage_tokens: int = 4,
        mask_k_bias: bool = True,
        untie_cls_and_patch_norms: bool = False,
        untie_global_and_local_cls_norm: bool = False,
        pos_embed_rope_base: float | None = 100.0,
        pos_embed_rope_min_period: float | None = None,
        pos_embed_rope_max_period: float | None = None,
        pos_embed_rope_normalize_coords: str = "separate",
        pos_embed_rope_shift_coords: float | None = None,
        pos_embed_rope_jitter_coords: float | None = None,
        pos_embed_rope_rescale_coords: float | None = 2.0,
        pos_embed_rope_dtype: str = "fp32",
        rope_sampling: str = "per_block",
        arch: str | None = None,
    ) -> None:
        super().__init__()
        if rope_sampling not in ("per_block", "per_forward"):
            raise ValueError(f"rope_sampling must be 'per_block' or 'per_forward', got {rope_sampling!r}")
        hidden = ffn_hidden_dim or ffn_hidden_dim_for(ffn_layer, embed_dim, ffn_ratio)
        self.config: dict[str, Any] = {
            "arch": arch,
            "patch_size": patch_size,
            "in_chans": in_chans,
            "embed_dim": embed_dim,
            "depth": depth,
            "num_heads": num_heads,
            "ffn_ratio": ffn_ratio,
            "ffn_hidden_dim": hidden,
            "ffn_layer": ffn_layer,
            "qkv_bias": qkv_bias,
            "proj_bias": proj_bias,
            "ffn_bias": ffn_bias,
            "drop_path_rate": drop_path_rate,
            "layerscale_init": layerscale_init,
            "norm_layer": norm_layer,
            "n_storage_tokens": n_storage_tokens,
            "mask_k_bias": mask_k_bias,
            "untie_cls_and_patch_norms": untie_cls_and_patch_norms,
            "untie_global_and_local_cls_norm": untie_global_and_local_cls_norm,
            "pos_embed_rope_base": pos_embed_rope_base,
            "pos_embed_rope_min_period": pos_embed_rope_min_period,
            "pos_embed_rope_max_period": pos_embed_rope_max_period,
            "pos_embed_rope_normalize_coords": pos_embed_rope_normalize_coords,
            "pos_embed_rope_shift_coords": pos_embed_rope_shift_coords,
            "pos_embed_rope_jitter_coords": pos_embed_rope_jitter_coords,
            "pos_embed_rope_rescale_coords": pos_embed_rope_rescale_coords,
            "pos_embed_rope_dtype": pos_embed_rope_dtype,
            "rope_sampling": rope_sampling,
        }
        self.num_features = self.embed_dim = embed_dim
        self.n_blocks = depth
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.n_storage_tokens = n_storage_tokens
        self.rope_sampling = rope_sampling

        self.patch_embed = PatchEmbed(patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        if n_storage_tokens > 0:
            self.storage_tokens = nn.Parameter(torch.empty(1, n_storage_tokens, embed_dim))
        self.rope_embed = RopePositionEmbedding(
            embed_dim,
            num_heads=num_heads,
            base=pos_embed_rope_base,
            min_period=pos_embed_rope_min_period,
            max_period=pos_embed_rope_max_period,
            normalize_coords=pos_embed_rope_normalize_coords,  # type: ignore[arg-type]
            shift_coords=pos_embed_rope_shift_coords,
            jitter_coords=pos_embed_rope_jitter_coords,
            rescale_coords=pos_embed_rope_rescale_coords,
            dtype=pos_embed_rope_dtype,
        )
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(
                embed_dim,
                num_heads,
                ffn_layer=ffn_layer,
                ffn_hidden_dim=hidden,
                qkv_bias=qkv_bias,
                proj_bias=proj_bias,
                ffn_bias=ffn_bias,
                drop_path=drop_path_rate,
                norm_layer=norm_layer,
                init_values=layerscale_init,
                mask_k_bias=mask_k_bias,
            )
            for _ in range(depth)
        )
        # `norm` is applied to everything, or, when untied, to patch tokens only.
        self.norm = make_norm(norm_layer, embed_dim)
        self.untie_cls_and_patch_norms = untie_cls_and_patch_norms
        self.cls_norm = make_norm(norm_layer, embed_dim) if untie_cls_and_patch_norms else None
        self.untie_global_and_local_cls_norm = untie_global_and_local_cls_norm
        # Used only in training for the list entry at index 1 (local crops), as official.
        self.local_cls_norm = make_norm(norm_layer, embed_dim) if untie_global_and_local_cls_norm else None
        self.head = nn.Identity()
        self.mask_token = nn.Parameter(torch.empty(1, embed_dim))
        if self.cls_token.device.type != "meta":
            self.init_weights()

    # ------------------------------------------------------------------ init
    def init_weights(self) -> None:
        """Official initialisation (also call after `to_empty()` on a meta-built model)."""
        self.rope_embed._init_weights()
        nn.init.normal_(self.cls_token, std=0.02)
        if self.n_storage_tokens > 0:
            nn.init.normal_(self.storage_tokens, std=0.02)
        nn.init.zeros_(self.mask_token)
        for m in self.modules():
            init_weights_vit(m)

    # ------------------------------------------------------------------ tokens
    @property
    def n_prefix_tokens(self) -> int:
        """CLS + storage tokens, which precede the patch tokens and get no RoPE."""
        return 1 + self.n_storage_tokens

    def prepare_tokens_with_masks(self, x: Tensor, masks: Tensor | None = None) -> tuple[Tensor, tuple[int, int]]:
        """Patch-embed, replace masked patches by `mask_token`, prepend CLS and storage tokens."""
        x = self.patch_embed(x)
        B, H, W, _ = x.shape
        x = x.flatten(1, 2)
        if masks is not None:
            masks = masks.reshape(B, -1)
            if masks.shape[1] != H * W:
                raise InputError(f"masks have {masks.shape[1]} entries per image but the input has {H * W} patches")
            x = torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype).unsqueeze(0), x)
            cls_token: Tensor = self.cls_token
        else:
            # Keeps mask_token in the graph (zero gradient) so DDP/FSDP see every parameter used, as official.
            cls_token = self.cls_token + 0 * self.mask_token
        parts = [cls_token.expand(B, -1, -1)]
        if self.n_storage_tokens > 0:
            parts.append(self.storage_tokens.expand(B, -1, -1))
        parts.append(x)
        return torch.cat(parts, dim=1), (H, W)

    def rope(self, H: int, W: int) -> Rope:
        """Half-width RoPE (sin, cos) over all tokens of an H×W grid (prefix rows are the identity)."""
        return rope_for_tokens(self.rope_embed(H=H, W=W), self.n_prefix_tokens)

    def _run_blocks(
        self, xs: list[Tensor], grids: list[tuple[int, int]], take: set[int] | None = None, stop: int | None = None
    ):
        """Run the blocks over the groups; returns the last groups computed and, if `take`, the outputs of those
        blocks. `stop`: the last block to run (None: all), for a caller that reads only intermediate outputs."""
        per_block = self.rope_sampling == "per_block" and self.rope_embed.augments
        ropes = [] if per_block else [self.rope(H, W) for H, W in grids]  # per block: drawn in the loop
        taken: list[list[Tensor]] = []
        for i, blk in enumerate(self.blocks):
            if per_block:
                ropes = [self.rope(H, W) for H, W in grids]
            # self.blocks holds SelfAttentionBlocks only (built above); ModuleList yields them typed as nn.Module
            xs = cast(SelfAttentionBlock, blk).forward_list(xs, ropes)
            if take is not None and i in take:
                taken.append(xs)
            if stop is not None and i >= stop:
                break
        return xs, taken

    # ------------------------------------------------------------------ forward
    def forward_features_list(self, x_list: list[Tensor], masks_list: Sequence[Tensor | None]) -> list[dict[str, Any]]:
        """Official list-of-crops forward: groups may differ in size; returns one dict per group."""
        if len(masks_list) != len(x_list):
            raise InputError(f"got {len(x_list)} crop groups but {len(masks_list)} mask entries")
        xs, grids = [], []
        for x, m in zip(x_list, masks_list):
            t, hw = self.prepare_tokens_with_masks(x, m)
            xs.append(t)
            grids.append(hw)
        xs, _ = self._run_blocks(xs, grids)
        n = self.n_prefix_tokens
        out = []
        for idx, (x, masks) in enumerate(zip(xs, masks_list)):
            if self.untie_cls_and_patch_norms or self.untie_global_and_local_cls_norm:
                if self.untie_global_and_local_cls_norm and self.training and idx == 1:
                    cls_reg = self.local_cls_norm(x[:, :n])  # type: ignore[misc]
                elif self.untie_cls_and_patch_norms:
                    cls_reg = self.cls_norm(x[:, :n])  # type: ignore[misc]
                else:
                    cls_reg = self.norm(x[:, :n])
                patch = self.norm(x[:, n:])
            else:
                x_norm = self.norm(x)
                cls_reg, patch = x_norm[:, :n], x_norm[:, n:]
            out.append(
                {
                    "x_norm_clstoken": cls_reg[:, 0],
                    "x_storage_tokens": cls_reg[:, 1:],
                    "x_norm_patchtokens": patch,
                    "x_prenorm": x,
                    "masks": masks,
                }
            )
        return out

    def forward_features(
        self, x: Tensor | list[Tensor], masks: Tensor | Sequence[Tensor | None] | None = None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """`x` [B, C, H, W] -> dict; a list of crop groups -> list of dicts (masks: None or one per group)."""
        if isinstance(x, Tensor):
            return self.forward_features_list([x], [masks])[0]  # type: ignore[list-item]
        if not isinstance(x, list | tuple):  # a numpy batch was iterated as crop groups: "got shape (C, H, W)"
            raise InputError(
                f"forward_features takes a torch.Tensor [B, C, H, W] or a list of them, got {type(x).__name__}"
            )
        if masks is None:
            masks = [None] * len(x)
        return self.forward_features_list(list(x), list(masks))

    def forward(self, *args: Any, is_training: bool = False, **kwargs: Any) -> Any:
        """CLS token [B, D] (the head is Identity), or the full `forward_features` output when `is_training`."""
        ret = self.forward_features(*args, **kwargs)
        if is_training:
            return ret
        return self.head(ret["x_norm_clstoken"])  # type: ignore[call-overload]

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
        """Outputs of the `n` last blocks (or of the block indices in `n`), official semantics and return form."""
        take = block_indices(n, len(self.blocks))
        tokens, (H, W) = self.prepare_tokens_with_masks(x)
        # blocks after the last one taken feed no output: in eval mode they are skipped (the official runs them all;
        # the outputs are the same). In training mode they still run, as the official does, so that drop path and
        # RoPE augmentation draw the same random numbers and a seeded run stays reproducible against it.
        stop = None if self.training else max(take)
        _, taken = self._run_blocks([tokens], [(H, W)], take=set(take), stop=stop)
        outputs = [t[0] for t in taken]
        k = self.n_prefix_tokens
        if norm:
            normed = []
            for out in outputs:
                if self.untie_cls_and_patch_norms:
                    normed.append(torch.cat((self.cls_norm(out[:, :k]), self.norm(out[:, k:])), dim=1))  # type: ignore[misc]
                else:
                    normed.append(self.norm(out))
            outputs = normed
        return layer_outputs(outputs, k, (H, W) if reshape else None, return_class_token, return_extra_tokens)


def block_indices(n: int | Sequence[int], depth: int) -> list[int]:
    """Block indices of `get_intermediate_layers(n=...)`: the `n` last blocks, or the indices in `n` (checked)."""
    take = list(range(depth - n, depth)) if isinstance(n, int) else [int(i) for i in n]
    if not take or any(i < 0 or i >= depth for i in take):
        raise InputError(
            f"layers {n!r} out of range for a backbone with {plural(depth, 'block')} (valid 0..{depth - 1})"
        )
    return take


def layer_outputs(
    outputs: list[Tensor], k: int, grid: tuple[int, int] | None, class_token: bool, extra_tokens: bool
) -> tuple[Any, ...]:
    """Split token sequences [B, k + HW, D] into the official `get_intermediate_layers` return form: patch tokens
    ([B, D, H, W] when `grid` is given, else [B, HW, D]), with the class token and the storage tokens on request."""
    cls = [out[:, 0] for out in outputs]
    extra = [out[:, 1:k] for out in outputs]
    patches = [out[:, k:] for out in outputs]
    if grid is not None:
        H, W = grid
        patches = [o.reshape(o.shape[0], H, W, -1).permute(0, 3, 1, 2).contiguous() for o in patches]
    if class_token and extra_tokens:
        return tuple(zip(patches, cls, extra))
    if class_token:
        return tuple(zip(patches, cls))
    if extra_tokens:
        return tuple(zip(patches, extra))
    return tuple(patches)


def ffn_hidden_dim_for(ffn_layer: str, dim: int, ratio: float) -> int:
    """Hidden width of the FFN for (ffn_layer, dim, ratio), as official."""
    return ffn_hidden_dim(ffn_layer, dim, ratio)
