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


def __getattr__(name: str) -> object:
    """`geodino.pretrain(data, out, ...)` and `geodino.distill(teacher, data, out, ...)` (geodino.train.api),
    imported on first use: the package stays cheap."""
    if name in ("pretrain", "distill"):
        from geodino.train import api

        return getattr(api, name)
    raise AttributeError(f"module 'geodino' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names plus the lazy `pretrain` / `distill`, so `dir(geodino)` and completion list them."""
    return sorted(set(globals()) | set(__all__))
