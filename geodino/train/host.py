"""Reading device values on the host, once per log row.

Every read of a device tensor (`float()`, `.item()`, `bool()`) makes the host wait until the device has finished
everything queued before it; a training step that reads each logged value on its own synchronises once per value
and can no longer queue the next kernels ahead. Steps therefore keep their losses, norms and statistics as 0-dim
tensors and bring a whole row over with `host_floats` when it is logged or checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["host_floats"]


def host_floats(row: Mapping[str, Any]) -> dict[str, float]:
    """`row` (same keys, same order) with every tensor read to a float in one device-to-host copy, and every other
    value passed through `float`."""
    keys = [k for k, v in row.items() if isinstance(v, torch.Tensor)]
    host = dict(zip(keys, torch.stack([row[k].float().reshape(()) for k in keys]).tolist())) if keys else {}
    return {k: host[k] if k in host else float(v) for k, v in row.items()}
