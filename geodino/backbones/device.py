"""Where a backbone's weights are: the one answer that probes, frozen inference and feature rasters share.

Each of them runs a backbone where its weights already are (a model moved to a GPU by the caller stays there), so
they all ask the same question of the object in hand. An object without parameters (a spec string, the colour
baseline) has no device of its own and gets the caller's `default`.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["held_device", "weights_device"]


def held_device(backbone: Any) -> torch.device | None:
    """The device of `backbone`'s first parameter; None for an object without parameters (or without a
    `parameters` method at all, such as a spec string)."""
    params = getattr(backbone, "parameters", None)
    p = next(params(), None) if callable(params) else None
    return None if p is None else p.device


def weights_device(backbone: Any, default: str | torch.device = "cpu") -> torch.device:
    """`held_device`, with `default` for an object that holds no weights."""
    held = held_device(backbone)
    return torch.device(default) if held is None else held
