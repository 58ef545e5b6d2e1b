"""Frozen-backbone probes: classification (kNN, linear, logistic), segmentation, canopy height, detection.

`run_suite` runs a suite of probe tasks and writes a results table; each task module exposes
`run_<task>(backbone, cfg, out_dir) -> dict[str, float]`. Imports are lazy so `import geodino.eval` stays cheap.
"""

from __future__ import annotations

from geodino.lazy import lazy_names

__all__ = ["SuiteConfig", "extract_features", "run_classification", "run_suite"]

_LAZY = {
    "run_suite": "geodino.eval.runner",
    "SuiteConfig": "geodino.eval.runner",
    "run_classification": "geodino.eval.classification",
    "extract_features": "geodino.eval.features",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
