"""Frozen-backbone probes: classification (kNN, linear, logistic), segmentation, canopy height, detection.

`run_suite` runs a suite of probe tasks and writes a results table; each task module exposes
`run_<task>(backbone, cfg, out_dir) -> dict[str, float]`. Imports are lazy so `import geodino.eval` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SuiteConfig", "extract_features", "run_classification", "run_suite"]

_LAZY = {
    "run_suite": "geodino.eval.runner",
    "SuiteConfig": "geodino.eval.runner",
    "run_classification": "geodino.eval.classification",
    "extract_features": "geodino.eval.features",
}


def __getattr__(name: str) -> Any:
    """The public names of `__all__`, each imported from its module on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geodino.eval' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names plus the lazily imported ones of `__all__`, so `dir()` and tab completion list them."""
    return sorted(set(globals()) | set(__all__))
