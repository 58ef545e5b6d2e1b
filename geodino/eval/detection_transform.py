"""The detection probe's image transform: torchvision's batching without its resize, padded with the band means.

torchvision's GeneralizedRCNNTransform normalises, then pads a batch with 0 to a multiple of the coarsest pyramid
stride. The probe leaves normalisation to the frozen backbone (image_mean 0, image_std 1 here), so that 0 was
reflectance 0 and became -mean/std once the backbone normalised it: a dark border unlike the images. Here the
batch is padded with `fill`, the backbone's band means (`dense.pad_fill`), 0 once normalised, as torchvision's own
padding after normalisation is and as the dense probes pad.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn


def _native_transform_class() -> type:
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class _NativeSize(GeneralizedRCNNTransform):
        """torchvision's batching/padding without its resize: in EO the ground sampling distance matters, so
        images keep their native size (padding goes to a multiple of the coarsest pyramid stride, with `fill`)."""

        fill: Tensor | None = None  # [C, 1, 1] reflectance the padding takes; None: 0 (torchvision)

        def resize(self, image, target=None):
            return image, target

        def batch_images(self, images: list[Tensor], size_divisible: int = 32) -> Tensor:
            if self.fill is None:
                return super().batch_images(images, size_divisible)
            h = int(math.ceil(max(img.shape[-2] for img in images) / size_divisible) * size_divisible)
            w = int(math.ceil(max(img.shape[-1] for img in images) / size_divisible) * size_divisible)
            c = images[0].shape[0]
            fill = self.fill.to(device=images[0].device, dtype=images[0].dtype)
            out = fill.expand(len(images), c, h, w).clone()
            for i, img in enumerate(images):
                out[i, :, : img.shape[-2], : img.shape[-1]].copy_(img)
            return out

    return _NativeSize


def NativeSizeTransform(*args: Any, fill: Tensor | None = None, **kwargs: Any) -> nn.Module:
    """A GeneralizedRCNNTransform that pads with `fill` (per band, [C, 1, 1]) but never rescales (torchvision
    imported lazily)."""
    t = _native_transform_class()(*args, **kwargs)
    t.fill = fill
    return t
