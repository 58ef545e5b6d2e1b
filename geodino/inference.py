"""Put a `FrozenBackbone` on the fast inference path (`geodino.models.frozen`) and report what ran.

`accelerate(backbone)` swaps the wrapped geodino ViT for a `FastViT` in place and returns the `FastPath` used;
`fast_backbone(backbone)` does the same for the duration of a `with` block and restores the eager model after
(the caller may own the backbone). timm baselines and `GEODINO_FAST=0` leave the backbone unchanged ('eager').

Compilation costs a warm-up (tens of seconds for ViT-S on a 2-core CPU, once per tile shape and run), so in
'auto' mode it is used only for jobs of at least `COMPILE_MIN_IMAGES` images; smaller jobs run the prepared
weights eagerly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from geodino.models.frozen import FastPath, FastViT, choose_path

__all__ = ["COMPILE_MIN_IMAGES", "Throughput", "accelerate", "fast_backbone", "path_of"]

COMPILE_MIN_IMAGES = 2000


def _device(backbone: Any) -> torch.device:
    p = next(backbone.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def accelerate(
    backbone: Any, *, mode: str = "auto", compile: bool | None = None, n_images: int | None = None
) -> FastPath:
    """Replace `backbone.model` (a geodino ViT inside a FrozenBackbone) by its fast path, in place.

    `mode`: auto | off | float32 | bfloat16 | int8 (see `choose_path`); `compile`: None = auto (on when a compiler
    is present and, if `n_images` is given, the job has at least COMPILE_MIN_IMAGES images). Returns the path used
    (`FastPath(enabled=False)` when the backbone stays eager)."""
    model = backbone.model
    if isinstance(model, FastViT):
        return model.path
    if getattr(backbone, "kind", "geodino") != "geodino" or not hasattr(model, "rope_embed"):
        return FastPath(False, reason="not a geodino ViT")
    device = _device(backbone)
    if compile is None and n_images is not None and n_images < COMPILE_MIN_IMAGES:
        compile = False
    path = choose_path(device, mode, compile, getattr(backbone, "amp", None))
    if path.enabled:
        backbone.__dict__["_eager_model"] = model  # kept outside nn.Module registration (not a submodule)
        backbone.model = FastViT(model, path).to(device)
    return path


@contextmanager
def fast_backbone(backbone: Any, **kwargs: Any) -> Iterator[FastPath]:
    """`accelerate(backbone, **kwargs)` for the body of a `with` block; the eager model is restored after."""
    before = backbone.model
    path = accelerate(backbone, **kwargs)
    try:
        yield path
    finally:
        backbone.model = before
        backbone.__dict__.pop("_eager_model", None)


def path_of(backbone: Any) -> FastPath:
    """The path a (possibly accelerated) FrozenBackbone runs."""
    model = getattr(backbone, "model", backbone)
    return model.path if isinstance(model, FastViT) else FastPath(False)


class Throughput:
    """Images and seconds of a feature job, for the one-line report `features: <path>, N images, X img/s`."""

    def __init__(self) -> None:
        self.images = 0
        self.t0 = time.perf_counter()

    def add(self, n: int) -> None:
        self.images += n

    def line(self, what: str, path: FastPath) -> str:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return f"{what}: path {path.name} ({path.reason or 'eager'}), {self.images} images in {dt:.1f} s, " + (
            f"{self.images / dt:.1f} img/s"
        )
