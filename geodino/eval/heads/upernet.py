"""Feature2Pyramid neck + UPerNet decoder: the PANGAEA frozen-encoder segmentation protocol.

PANGAEA (`pangaea/decoders/upernet.py`, after mmseg) turns four same-scale ViT maps into a fake pyramid
(x4, x2, x1, x0.5) and decodes it with UPerNet: 512 channels, pyramid pooling (1, 2, 3, 6), dropout 0.1.
Written here in plain torch (mmseg/mmcv do not install with this torch); SyncBN becomes BatchNorm2d
(convert with `nn.SyncBatchNorm.convert_sync_batchnorm` under DDP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geodino.eval.heads.pyramid import HalfMaxPool


def conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class Feature2Pyramid(nn.Module):
    """Four maps at patch stride -> strides patch/4, patch/2, patch, 2*patch (transposed convs, max-pool)."""

    def __init__(self, dim: int, scales: tuple[float, ...] = (4, 2, 1, 0.5)):
        super().__init__()
        ops: list[nn.Module] = []
        for s in scales:
            if s == 4:
                ops.append(
                    nn.Sequential(
                        nn.ConvTranspose2d(dim, dim, 2, 2),
                        nn.BatchNorm2d(dim),
                        nn.GELU(),
                        nn.ConvTranspose2d(dim, dim, 2, 2),
                    )
                )
            elif s == 2:
                ops.append(nn.ConvTranspose2d(dim, dim, 2, 2))
            elif s == 1:
                ops.append(nn.Identity())
            elif s == 0.5:
                ops.append(HalfMaxPool())  # nn.MaxPool2d(2, 2) that also takes a 1-token map
            else:
                raise ValueError(f"Feature2Pyramid scale {s} not in (4, 2, 1, 0.5)")
        self.ops = nn.ModuleList(ops)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        if len(feats) != len(self.ops):
            raise ValueError(f"Feature2Pyramid expects {len(self.ops)} maps, got {len(feats)}")
        return [op(f) for op, f in zip(self.ops, feats)]


class PPM(nn.Module):
    """Pyramid pooling: adaptive average pools at several grid sizes, 1x1 conv, upsampled back."""

    def __init__(self, cin: int, channels: int, scales: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), conv_bn_relu(cin, channels, 1)) for s in scales
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        size = x.shape[-2:]
        return [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]


class UPerNetHead(nn.Module):
    """Feature2Pyramid + UPerNet (PPM on the coarsest level, FPN top-down, fused 3x3 bottleneck, 1x1 classes).

    Input: four patch maps [B,D,h,w]; output logits [B,K,4h,4w] (stride patch/4; the caller upsamples).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        channels: int = 512,
        pool_scales: tuple[int, ...] = (1, 2, 3, 6),
        dropout: float = 0.1,
        n_levels: int = 4,
    ):
        super().__init__()
        self.neck = Feature2Pyramid(in_dim, (4, 2, 1, 0.5)[:n_levels])
        self.ppm = PPM(in_dim, channels, pool_scales)
        self.ppm_bottleneck = conv_bn_relu(in_dim + len(pool_scales) * channels, channels, 3)
        self.lateral = nn.ModuleList(conv_bn_relu(in_dim, channels, 1) for _ in range(n_levels - 1))
        self.fpn = nn.ModuleList(conv_bn_relu(channels, channels, 3) for _ in range(n_levels - 1))
        self.fpn_bottleneck = conv_bn_relu(n_levels * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.cls = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[Tensor], cls_tokens: list[Tensor] | None = None) -> Tensor:
        levels = self.neck(feats)
        lat = [conv(x) for conv, x in zip(self.lateral, levels[:-1])]
        top = levels[-1]
        lat.append(self.ppm_bottleneck(torch.cat([top, *self.ppm(top)], dim=1)))
        for i in range(len(lat) - 1, 0, -1):  # top-down
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="bilinear")
        outs = [conv(x) for conv, x in zip(self.fpn, lat[:-1])] + [lat[-1]]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [F.interpolate(o, size=size, mode="bilinear") for o in outs[1:]]
        return self.cls(self.dropout(self.fpn_bottleneck(torch.cat(outs, dim=1))))
