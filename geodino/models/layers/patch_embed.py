"""Patch embedding: a conv with kernel = stride = patch size, any number of input bands, output [B, H, W, D]."""

from __future__ import annotations

import math

from torch import Tensor, nn

from geodino.errors import InputError, plural


class PatchEmbed(nn.Module):
    """Conv patchifier (official key `patch_embed.proj`). Unlike the official one, refuses inputs whose height
    or width is not a multiple of the patch size instead of silently dropping the border pixels."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def reset_parameters(self) -> None:
        """Official init: weight and bias uniform in ±sqrt(1 / (C·p²))."""
        bound = math.sqrt(1.0 / (self.in_chans * self.patch_size[0] * self.patch_size[1]))
        nn.init.uniform_(self.proj.weight, -bound, bound)
        if self.proj.bias is not None:
            nn.init.uniform_(self.proj.bias, -bound, bound)

    def check_input(self, x: Tensor) -> None:
        """Raise `InputError` naming the size, the band count and the patch size when `x` does not fit."""
        check_image_batch(x, self.in_chans, self.patch_size[0])

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = self.proj(x)  # [B, D, H, W]
        return x.permute(0, 2, 3, 1)  # [B, H, W, D] (a view; flattened by the caller)


def check_image_batch(x: Tensor, in_chans: int, patch: int) -> None:
    """`PatchEmbed.check_input` without the module (the fast path keeps the check, not the eager weights)."""
    if not isinstance(x, Tensor):  # a numpy array reached `.ndim` and failed later, inside torch
        raise InputError(f"expected a torch.Tensor image batch [B, C, H, W], got {type(x).__name__} (torch.from_numpy)")
    if not x.is_floating_point():  # raw DN: conv2d's "Input type (unsigned char) and bias type (float)" error
        raise InputError(
            f"the backbone takes normalised float input, got {x.dtype} (raw DN?); scale and standardise it first "
            "(FrozenBackbone.preprocess(x), or x.float() / 255 then the sensor's mean/std)"
        )
    if x.ndim != 4:
        one = "; add the batch axis: x[None] (or x.unsqueeze(0))" if x.ndim == 3 else ""
        raise InputError(f"expected an image batch [B, C, H, W], got a tensor of shape {tuple(x.shape)}{one}")
    _, c, h, w = x.shape
    if c != in_chans and w == in_chans:  # [B, H, W, C] from PIL / numpy: its height was read as the bands
        raise InputError(
            f"input of shape {tuple(x.shape)} has its {in_chans} bands last, but the backbone takes [B, C, H, W]; "
            "pass x.permute(0, 3, 1, 2)"
        )
    if c != in_chans:
        raise InputError(
            f"input has {plural(c, 'band')} but the backbone expects {in_chans}; select matching bands or adapt "
            f"the patch embedding (geodino.models.checkpoints.adapt_patch_embed / load_backbone(bands=...))"
        )
    if h % patch or w % patch:
        raise InputError(
            f"image size {h}x{w} is not a multiple of the patch size {patch}; crop or pad to "
            f"{(h // patch) * patch or patch}x{(w // patch) * patch or patch} "
            f"(or {-(-h // patch) * patch}x{-(-w // patch) * patch})"
        )
    if not x.shape[0]:  # torch's own reshape error ("0 elements ... ambiguous") named nothing the caller did
        raise InputError(f"expected an image batch [B, C, H, W], got an empty batch (shape {tuple(x.shape)})")


def trim_to_patch_grid(x: Tensor, patch: int) -> Tensor:
    """`x` [..., H, W] without the bottom rows and right columns past its last whole patch: exactly what the official
    patch conv (kernel = stride = patch, no padding) reads of such an image, and the RoPE grid it gets. Training
    applies it to local crops, whose size need not be a multiple (the official high-res stage draws 168 px local
    crops at patch 16); inference refuses such input instead (`check_image_batch`)."""
    h, w = x.shape[-2:]
    return x if not (h % patch or w % patch) else x[..., : h - h % patch, : w - w % patch]
