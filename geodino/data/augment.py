"""Fast photometric operations on float tensors [C,H,W] for the multi-crop pipeline.

Hand-written because torchvision's tensor versions are the loader's bottleneck on CPU: its `adjust_hue` goes
through a full RGB->HSV->RGB conversion (~30 ms for a 224 px crop on one core) and its `gaussian_blur` uses a
dense 2-D kernel. Here hue is a rotation of the chroma plane in YIQ space (one 3x3 matrix product, the classic
approximation of an HSV hue shift) and the blur is separable (two 1-D passes, reflect padding as torchvision).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["adjust_hue_yiq", "gaussian_blur", "grayscale"]

_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def adjust_hue_yiq(x: torch.Tensor, hue: float) -> torch.Tensor:
    """Shift the hue of an RGB tensor by `hue` turns (in [-0.5, 0.5]) by rotating I/Q; clamps to [0, 1]."""
    theta = 2 * math.pi * hue
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    m = (_YIQ2RGB @ rot @ _RGB2YIQ).to(x.dtype)
    return torch.einsum("ij,jhw->ihw", m, x).clamp_(0, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma replicated to 3 channels (torchvision's weights)."""
    y = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    return y.unsqueeze(0).expand(3, -1, -1).clone()


def gaussian_blur(x: torch.Tensor, sigma: float, kernel_size: int = 9) -> torch.Tensor:
    """Separable Gaussian blur of [C,H,W] with reflect padding (same kernel as torchvision's)."""
    half = (kernel_size - 1) * 0.5
    t = torch.linspace(-half, half, kernel_size, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[0]
    pad = kernel_size // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    y = F.pad(x[None], (pad, pad, pad, pad), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)
    return y[0]
