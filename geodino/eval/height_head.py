"""The canopy probe's height head: bin centres, the decoder from logits to metres, the loss, and the model (a DPT
or linear head plus the decoder) built from a `CanopyProbeConfig`.

The model, apart from the probe's config and run (`geodino.eval.canopy`), which train and apply it: `mixlog` bins
(CHMv2), `uniform` bins (AdaBins) or `direct` regression; L1 or SiLog loss on valid pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from geodino.errors import ConfigError

if TYPE_CHECKING:
    from geodino.eval.canopy import CanopyProbeConfig


def height_bins(kind: str, n: int, lo: float, hi: float) -> Tensor:
    """Bin centres in metres: uniform over [lo, hi], or CHMv2 mixlog (log-to-linear mix over [lo, hi/8], x8)."""
    if kind == "uniform":
        return torch.linspace(lo, hi, n)
    if kind == "mixlog":
        top = hi / 8.0  # CHMv2 works on height/8 internally and multiplies by 8 at the end
        linear = torch.linspace(lo, top, n)
        log = torch.exp(torch.linspace(math.log(lo), math.log(top), n))
        t = torch.linspace(1.0, 0.0, n)
        return 8.0 * (t * log + (1.0 - t) * linear)
    raise ConfigError(f"bins {kind!r} must be uniform or mixlog")


class HeightDecoder(nn.Module):
    """Logits [B,K,H,W] -> heights [B,H,W] in metres (bin-weighted sum, or ReLU + min for K=1)."""

    bins: Tensor  # registered buffer (declared: nn.Module's __getattr__ is typed Tensor | Module)

    def __init__(self, output: str, n_bins: int, lo: float, hi: float):
        super().__init__()
        self.output, self.lo = output, lo
        bins = height_bins(output, n_bins, lo, hi) if output != "direct" else torch.zeros(1)
        self.register_buffer("bins", bins, persistent=False)

    def forward(self, logits: Tensor) -> Tensor:
        if self.output == "direct":
            return torch.relu(logits[:, 0]) + self.lo
        y = torch.relu(logits)
        if self.output == "uniform":  # AdaBins 'linear' normalisation
            w = y + 0.1
        else:  # CHMv2 mixlog normalisation: a tiny positive shift keeps weights defined when all are zero
            shift = (-y.amin(dim=1, keepdim=True)).clamp(0.0, 1e-4) + 1e-8
            w = y + shift
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.einsum("bkhw,k->bhw", w, self.bins)


def height_loss(pred: Tensor, target: Tensor, valid: Tensor, kind: str, lam: float = 0.85, eps: float = 0.1) -> Tensor:
    """L1, or the scale-invariant log loss sqrt(mean d^2 - lam (mean d)^2) with d = log(pred+eps) - log(y+eps)."""
    if not valid.any():
        return pred.sum() * 0.0
    p, t = pred[valid], target[valid]
    if kind == "l1":
        return (p - t).abs().mean()
    d = torch.log(p.clamp_min(0) + eps) - torch.log(t.clamp_min(0) + eps)
    return torch.sqrt((d.pow(2).mean() - lam * d.mean().pow(2)).clamp_min(1e-12))


class CanopyModel(nn.Module):
    """Head + height decoder: frozen-backbone features -> heights [B,H,W] (size set by the caller)."""

    def __init__(self, head: nn.Module, decoder: HeightDecoder):
        super().__init__()
        self.head, self.decoder = head, decoder

    def forward(self, maps: list[Tensor], cls: list[Tensor]) -> Tensor:
        return self.head(maps, cls)


def build_model(cfg: CanopyProbeConfig, embed_dim: int, n_layers: int) -> CanopyModel:
    from geodino.eval.heads import DPTHead, LinearHead

    n_out = 1 if cfg.output == "direct" else cfg.n_bins
    head: nn.Module
    if cfg.head == "dpt":
        c = cfg.dpt_channels
        head = DPTHead(
            embed_dim,
            n_out,
            post_channels=(c // 2, c, 2 * c, 4 * c),
            channels=c,
            readout="project",
            hidden=128 if n_out > 1 else 32,
        )
    else:
        head = LinearHead([embed_dim] * n_layers, n_out)
    return CanopyModel(head, HeightDecoder(cfg.output, cfg.n_bins, cfg.min_height, cfg.max_height))


def init_output(model: CanopyModel, median: float) -> None:
    """Start the head's prediction at `median` metres (the training heights' median) rather than far from it.

    Before, a binned head started at about the mean of its bins (31 m for CHMv2's mixlog bins over [0.001, 96] m)
    and a direct one at `min_height`, so on CHMs with a median of a few metres the first steps went to moving that
    constant. Now `direct` sets the last bias to median - min_height; binned outputs get biases (summing to 10,
    more for the uniform bins' 0.1 floor) proportional to exp(-bin / tau), tau solved so that the weighted mean of
    the bins is the median, and the last weights are scaled by 0.1 so the random part stays small beside it.
    """
    last = _last_conv(model.head)
    if last is None or last.bias is None:
        return
    dec = model.decoder
    median = float(max(median, dec.lo))
    with torch.no_grad():
        if dec.output == "direct":
            last.bias.fill_(median - dec.lo)
            return
        bins = dec.bins.double()
        floor = 0.1 if dec.output == "uniform" else 0.0  # AdaBins' ReLU + 0.1 gives every bin a floor weight
        mass = 10.0 + 20.0 * floor * len(bins)  # the floor then holds under 5 % of the weight
        lo_t, hi_t = 1e-3, 1e4  # tau in metres; the weighted mean grows with tau
        for _ in range(60):
            tau = math.sqrt(lo_t * hi_t)
            p = torch.exp(-(bins - bins[0]) / tau)
            w = mass * p / p.sum() + floor
            if float((w * bins).sum() / w.sum()) > median:
                hi_t = tau
            else:
                lo_t = tau
        last.weight.mul_(0.1)
        last.bias.copy_((mass * p / p.sum()).to(last.bias))


def _last_conv(head: nn.Module) -> nn.Conv2d | None:
    """The head's final 1x1 convolution (the one whose channels are the bins)."""
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None
