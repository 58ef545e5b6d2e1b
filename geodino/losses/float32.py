"""The float32 region of a loss term: autocast turned off for the device its inputs are on.

The official losses run in float32 (its training casts parameters with FSDP2's mixed precision and uses no
autocast); geodino's bf16-mixed steps run under autocast, which would cast the terms' matrix products (DINO's
einsum, the Gram matrices, KoLeo's similarities) to bf16. Devices autocast does not know (the meta device of the
step-on-meta tests) need nothing turned off.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = ["float32_region"]


def float32_region(device_type: str) -> Any:
    """A context in which ops on `device_type` tensors run in their own dtype (autocast off there)."""
    if not torch.amp.is_autocast_available(device_type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, enabled=False)
