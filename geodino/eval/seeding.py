"""Probes seed the global generators for reproducible heads and splits; `keeps_global_rng` hands them back.

A probe called from a notebook must not move the caller's random streams (Python `random`, NumPy's legacy
global generator, torch's CPU and CUDA generators): the decorated entry points restore all of them on return, so
seeding stays an implementation detail of the probe.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["keeps_global_rng"]


def keeps_global_rng(fn: F) -> F:
    """Run `fn` and restore Python's, NumPy's and torch's (CPU and CUDA) global generator states afterwards."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import numpy as np
        import torch

        py, npy = random.getstate(), np.random.get_state()
        cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        try:
            with torch.random.fork_rng(devices=cuda):
                return fn(*args, **kwargs)
        finally:
            random.setstate(py)
            np.random.set_state(npy)

    return wrapper  # type: ignore[return-value]
