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
    """`row` (same keys, same order) with every tensor read to a float in one device-to-host copy per device (one
    in practice: a step's values live where its model does), and every other value passed through `float`."""
    local: dict[str, torch.Tensor] = {}
    by_device: dict[torch.device, list[str]] = {}
    for k, v in row.items():
        if isinstance(v, torch.Tensor):
            # an FSDP2 DTensor (a statistic of sharded parameters) is gathered first: every rank computes the same
            # row, so every rank takes part in the collective
            local[k] = (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().float().reshape(())
            by_device.setdefault(local[k].device, []).append(k)
    host: dict[str, float] = {}
    for keys in by_device.values():
        host.update(zip(keys, torch.stack([local[k] for k in keys]).tolist()))
    return {k: host[k] if k in host else float(v) for k, v in row.items()}
