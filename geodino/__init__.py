"""geodino: the DINOv3 recipe for Earth observation.

Importing the package is cheap: heavy libraries (torchgeo, lightning, transformers, rasterio) are imported
lazily by the modules that need them.
"""

from geodino.errors import CheckpointError, ConfigError, GeoDinoError, InputError, TrainingError
from geodino.progress import quiet_notebook_fallback

quiet_notebook_fallback()  # text progress bars without tqdm's "IProgress not found" in a kernel without ipywidgets

__version__ = "0.1.0"
__all__ = [
    "CheckpointError",
    "ConfigError",
    "GeoDinoError",
    "InputError",
    "TrainingError",
    "__version__",
    "distill",
    "pretrain",
]


SUBPACKAGES = ("backbones", "data", "embed", "eval", "integrations", "losses", "models", "viz")
"""Reached as attributes once `geodino` is imported (`geodino.backbones.load_backbone(...)`), imported on first use."""


def __getattr__(name: str) -> object:
    """`geodino.pretrain(data, out, ...)` and `geodino.distill(teacher, data, out, ...)` (geodino.train.api), and
    the SUBPACKAGES (`geodino.backbones.load_backbone` raised AttributeError without `import geodino.backbones`),
    imported on first use: the package stays cheap."""
    if name in ("pretrain", "distill"):
        from geodino.train import api

        return getattr(api, name)
    if name in SUBPACKAGES:
        import importlib

        return importlib.import_module(f"geodino.{name}")
    raise AttributeError(f"module 'geodino' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names plus the lazy `pretrain` / `distill` and the SUBPACKAGES, so `dir(geodino)` and
    completion list them."""
    return sorted(set(globals()) | set(__all__) | set(SUBPACKAGES))
