"""The one way a geodino command draws and saves a figure: pyplot on the Agg backend, written atomically.

Every report plot (probe confusion matrices, canopy maps, data statistics, curves, attention panels) goes through
`pyplot()` and `save_figure()`, so the backend choice, the atomic write and closing the figure live here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (imported lazily: matplotlib is slow to import).

    `force=False` keeps a backend a notebook already chose."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(
    fig: Any, path: str | Path, *, dpi: int | None = 100, format: str | None = None, tight: bool = True, **savefig: Any
) -> Path:
    """Lay out (tight_layout), write `fig` to `path` atomically and close it; `format` defaults to the suffix
    (PNG without one), `dpi=None` keeps the figure's own."""
    from geodino.io import atomic_path

    path = Path(path)
    if tight:
        fig.tight_layout()
    fmt = format or path.suffix.lstrip(".").lower() or "png"
    if dpi is not None:
        savefig["dpi"] = dpi
    try:
        with atomic_path(path, overwrite=True) as tmp:
            fig.savefig(tmp, format=fmt, **savefig)
    finally:
        pyplot().close(fig)
    return path
