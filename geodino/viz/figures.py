"""The one way a geodino command draws and saves a figure: stand-alone matplotlib Figures, written atomically.

Every report plot (probe confusion matrices, canopy maps, data statistics, curves, attention panels) goes through
`figures()` and `save_figure()`, so the figure creation, the atomic write and the clean-up live here once.
No pyplot: a Figure made here is not registered with pyplot's global state, so geodino never switches the backend
of a user's notebook (which hid every later inline figure) and needs no display.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# keyword arguments of Figure.subplots; the rest of a pyplot-style subplots() call goes to Figure()
_SUBPLOTS_KEYS = ("sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw", "gridspec_kw")


class _Figures:
    """pyplot's `subplots` and `get_cmap` on stand-alone Figures (matplotlib imported lazily: it is slow to import)."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
        from matplotlib.figure import Figure

        grid = {k: kwargs.pop(k) for k in _SUBPLOTS_KEYS if k in kwargs}
        fig = Figure(**kwargs)
        return fig, fig.subplots(nrows, ncols, **grid)

    @staticmethod
    def get_cmap(name: str, n: int | None = None) -> Any:
        import matplotlib

        cmap = matplotlib.colormaps[name]
        return cmap.resampled(n) if n is not None else cmap


def figures() -> _Figures:
    """Figure factory with pyplot's `subplots(rows, cols, figsize=..., ...)` and `get_cmap(name, n)`."""
    return _Figures()


@contextlib.contextmanager
def quiet_glyphs() -> Iterator[None]:
    """Drop matplotlib's "Glyph N missing from font(s) DejaVu Sans" while a figure is drawn: a title naming a file
    of a Chinese or emoji name (`embed similar --out 北京.tif`) gave one warning line per character, twice, of a
    product written as asked (its PNG shows a box for each)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        yield


def save_figure(
    fig: Any, path: str | Path, *, dpi: int | None = 100, format: str | None = None, tight: bool = True, **savefig: Any
) -> Path:
    """Lay out (tight_layout), write `fig` to `path` atomically and free it; `format` defaults to the suffix
    (PNG without one), `dpi=None` keeps the figure's own."""
    from geodino.io import atomic_path

    path = Path(path)
    if tight:
        with quiet_glyphs():
            fig.tight_layout()
        # laid out: no layout engine left for savefig, which drew the whole figure once more (unrendered) before
        # the real draw when tight_layout left its place-holder engine (always, once a colour bar is on it)
        fig.set_layout_engine(None)
    fmt = format or path.suffix.lstrip(".").lower() or "png"
    if dpi is not None:
        savefig["dpi"] = dpi
    try:
        with atomic_path(path, overwrite=True) as tmp, quiet_glyphs():
            fig.savefig(tmp, format=fmt, **savefig)
    finally:
        fig.clear()  # a stand-alone Figure: nothing global to close, its artists are freed here
    return path
