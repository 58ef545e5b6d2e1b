"""DPT head (Ranftl et al. 2021) as DINOv3 uses it for depth and canopy height (CHMv2).

Reassemble four ViT layers (CLS readout `project`: concat CLS to every token, Linear + GELU; 1x1 conv to
[128, 256, 512, 1024] channels; resample x4, x2, x1, x0.5), 3x3 convs to 256 channels, four fusion blocks
(pre-activation residual units, x2 upsampling each) and an up-conv head (3x3, x2 up, 3x3 to hidden, ReLU,
1x1), so the output is at input resolution for any patch size. Hand-written in torch because the reference
implementations live in mmseg/dinov3 trees that are not pip-installable libraries.

For segmentation (`seg_dropout` set) the up-conv head is replaced as DINOv3's maintainers describe their GEO-Bench
DPT (dinov3 issue #95, on HighResCanopyHeight's `dpt_head.py`): a 3x3 conv + ReLU after the fusion blocks
(`project_after_fusion`), then 3x3 conv, BatchNorm, ReLU, Dropout2d and a 1x1 conv to the classes, at the last
fusion block's resolution (8x the token grid); the caller upsamples the logits to the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Readout(nn.Module):
    """CLS readout: `project` (concat CLS, Linear+GELU), `add` (add CLS) or `ignore`."""

    def __init__(self, dim: int, mode: str = "project"):
        super().__init__()
        if mode not in ("project", "add", "ignore"):
            raise ValueError(f"readout {mode!r} not in project/add/ignore")
        self.mode = mode
        self.proj = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU()) if mode == "project" else None

    def forward(self, x: Tensor, cls: Tensor | None) -> Tensor:
        if self.mode == "ignore" or cls is None:
            return x
        if self.mode == "add":
            return x + cls[:, :, None, None]
        b, d, h, w = x.shape
        assert self.proj is not None  # mode "project" (checked in __init__)
        tokens = x.flatten(2).transpose(1, 2)  # [B,N,D]
        tokens = self.proj(torch.cat([tokens, cls[:, None, :].expand(-1, tokens.shape[1], -1)], dim=-1))
        return tokens.transpose(1, 2).reshape(b, d, h, w)


class ResidualConvUnit(nn.Module):
    """Pre-activation residual unit: ReLU, 3x3 conv, ReLU, 3x3 conv, plus the input.

    `bias` of the two convs: None = without BatchNorm only (CHMv2's `use_bias=True` layout); DINOv3's `DPTHead`
    default (`use_bias=False`) and HighResCanopyHeight's unit have no bias."""

    def __init__(self, ch: int, bn: bool = False, bias: bool | None = None):
        super().__init__()
        bias = not bn if bias is None else bias
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(ch) if bn else nn.Identity()
        self.bn2 = nn.BatchNorm2d(ch) if bn else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn1(self.conv1(F.relu(x)))
        y = self.bn2(self.conv2(F.relu(y)))
        return x + y


class FusionBlock(nn.Module):
    """Adds a residual-refined skip map, refines, upsamples x2 (bilinear, aligned corners), 1x1 projection."""

    def __init__(self, ch: int, bn: bool = False, res_bias: bool | None = None):
        super().__init__()
        self.res1 = ResidualConvUnit(ch, bn, res_bias)
        self.res2 = ResidualConvUnit(ch, bn, res_bias)
        self.project = nn.Conv2d(ch, ch, 1)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = x + self.res1(skip)
        x = self.res2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.project(x)


class DPTHead(nn.Module):
    """Four (patch map, CLS) pairs -> [B, out_channels, 16h, 16w] (8h, 8w with the segmentation head).

    `out_channels` is the number of classes (segmentation), of bins (binned regression) or 1 (direct).
    The final size is 16x the token grid for any patch size: the caller resizes to the image when it differs.
    `seg_dropout` (not None) selects the segmentation head (see the module docstring) with that dropout;
    `project_after_fusion` adds DPT's 3x3 conv + ReLU between the fusion blocks and the head (CHMv2: off).
    `res_bias`: bias in the fusion blocks' residual convs; None (default) = without `use_bn`, as CHMv2
    (`use_bias=True`, the canopy head); False = DINOv3's `DPTHead` default and HighResCanopyHeight (segmentation).
    """

    def __init__(
        self,
        in_dim: int,
        out_channels: int,
        post_channels: tuple[int, ...] = (128, 256, 512, 1024),
        channels: int = 256,
        hidden: int = 32,
        readout: str = "project",
        use_bn: bool = False,
        project_after_fusion: bool = False,
        seg_dropout: float | None = None,
        res_bias: bool | None = None,
    ):
        super().__init__()
        if len(post_channels) != 4:
            raise ValueError("DPTHead needs four post_channels, one per layer")
        self.readouts = nn.ModuleList(Readout(in_dim, readout) for _ in post_channels)
        self.projects = nn.ModuleList(nn.Conv2d(in_dim, c, 1) for c in post_channels)
        self.resize = nn.ModuleList(
            [
                nn.ConvTranspose2d(post_channels[0], post_channels[0], 4, 4),
                nn.ConvTranspose2d(post_channels[1], post_channels[1], 2, 2),
                nn.Identity(),
                nn.Conv2d(post_channels[3], post_channels[3], 3, stride=2, padding=1),
            ]
        )
        self.convs = nn.ModuleList(nn.Conv2d(c, channels, 3, padding=1, bias=False) for c in post_channels)
        self.fusions = nn.ModuleList(FusionBlock(channels, use_bn, res_bias) for _ in post_channels)
        self.project = (
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(True))
            if project_after_fusion
            else nn.Identity()
        )
        if seg_dropout is None:  # the depth / canopy up-conv head
            self.head = nn.Sequential(
                nn.Conv2d(channels, channels // 2, 3, padding=1),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                nn.Conv2d(channels // 2, hidden, 3, padding=1),
                nn.ReLU(True),
                nn.Conv2d(hidden, out_channels, 1),
            )
        else:
            self.head = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(True),
                nn.Dropout2d(seg_dropout) if seg_dropout > 0 else nn.Identity(),
                nn.Conv2d(channels, out_channels, 1),
            )

    def forward(self, feats: list[Tensor], cls_tokens: list[Tensor] | None = None) -> Tensor:
        if len(feats) != 4:
            raise ValueError(f"DPTHead expects four layers, got {len(feats)}")
        cls = cls_tokens if cls_tokens is not None else [None] * 4
        xs = []
        for i, f in enumerate(feats):
            x = self.projects[i](self.readouts[i](f, cls[i]))
            xs.append(self.convs[i](self.resize[i](x)))
        out = self.fusions[0](xs[3])
        for i in range(1, 4):
            out = self.fusions[i](out, xs[3 - i])
        return self.head(self.project(out))
