"""geodino: the DINOv3 recipe for Earth observation.

Importing the package is cheap: heavy libraries (torchgeo, lightning, transformers, rasterio) are imported
lazily by the modules that need them.
"""

from geodino.errors import CheckpointError, ConfigError, GeoDinoError, InputError, TrainingError
from geodino.lazy import lazy_names
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


# `geodino.pretrain(data, out, ...)` / `geodino.distill(teacher, data, out, ...)` (geodino.train.api) and the
# SUBPACKAGES (`geodino.backbones.load_backbone` raised AttributeError without `import geodino.backbones`), imported
# on first use: the package stays cheap
__getattr__, __dir__ = lazy_names(
    __name__,
    {"pretrain": "geodino.train.api", "distill": "geodino.train.api", **{s: f"geodino.{s}" for s in SUBPACKAGES}},
)
