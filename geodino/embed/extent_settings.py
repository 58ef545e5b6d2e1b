"""The `bbox`, `bbox_crs` and `window` settings of an embedding run (`geodino.embed.extent`): four numbers parsed
from a list or comma text, checked (one of the two at most, min < max, a window of positive size) and written back
as a user writes them in the lines that name them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from geodino.errors import ConfigError

__all__ = ["check_extent", "format_numbers", "has_extent", "parse_numbers"]


def parse_numbers(value: Any, key: str, *, integer: bool = False) -> list[float] | list[int] | None:
    """Four numbers from a list (`[-120.5, 37, -119.5, 38]`, the CLI's strings) or comma text
    (`"-120.5,37,-119.5,38"`); None stays None; anything else is one ConfigError naming `key`."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    parts = [p for v in items for p in (str(v).replace(",", " ").split() if isinstance(v, str) else [v])]
    what = "COL ROW WIDTH HEIGHT (input pixels)" if integer else "MINX MINY MAXX MAXY"
    try:
        nums = [float(p) for p in parts]
    except (TypeError, ValueError):
        nums = []
    if len(nums) != 4 or not all(math.isfinite(n) for n in nums) or (integer and any(n != int(n) for n in nums)):
        raise ConfigError(
            f"{key} {_shown(value)} must be four {'whole numbers' if integer else 'numbers'}, {what}, e.g. "
            f"{'--window 0 0 1024 1024' if integer else '--bbox -120.5,37,-119.5,38'} ({key}= in Python)"
        )
    return [int(n) for n in nums] if integer else nums


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def check_extent(cfg: Any) -> None:
    """Normalise and check `cfg.bbox`, `cfg.bbox_crs` and `cfg.window` (an `EmbedConfig`), in place: one of the
    two at most, a bbox with min < max, a window of positive size."""
    cfg.bbox = parse_numbers(cfg.bbox, "bbox")
    cfg.window = parse_numbers(cfg.window, "window", integer=True)
    if cfg.bbox is not None and cfg.window is not None:
        raise ConfigError(
            "bbox and window both choose the area to embed; keep one (--bbox in map coordinates, --window in pixels; "
            "bbox= or window= in Python)"
        )
    if cfg.bbox_crs is not None and cfg.bbox is None:
        raise ConfigError(
            f"bbox_crs={cfg.bbox_crs!r} is given without a bbox; pass --bbox MINX MINY MAXX MAXY (bbox= in Python) too"
        )
    if cfg.bbox is not None:
        x0, y0, x1, y1 = cfg.bbox
        if not (x0 < x1 and y0 < y1):
            ordered = format_numbers([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)])
            if x0 > x1 and y0 < y1 and cfg.bbox_crs is not None and _crs_of(cfg.bbox_crs).is_geographic:
                ordered = f"{format_numbers([x0, y0, x1 + 360, y1])} (across the antimeridian, east past 180)"
            raise ConfigError(
                f"bbox {format_numbers(cfg.bbox)} must be MINX MINY MAXX MAXY with MINX < MAXX and MINY < MAXY "
                f"(west, south, east, north); e.g. --bbox {ordered} (bbox= in Python)"
            )
    if cfg.window is not None:
        c, r, w, h = cfg.window
        if w < 1 or h < 1 or c < 0 or r < 0:
            raise ConfigError(
                f"window {format_numbers(cfg.window)} must be COL ROW WIDTH HEIGHT with COL, ROW >= 0 and WIDTH, "
                "HEIGHT >= 1 (input pixels from the raster's top-left corner)"
            )


def has_extent(cfg: Any) -> bool:
    """Whether the run covers part of the raster (`bbox` or `window` given)."""
    return getattr(cfg, "bbox", None) is not None or getattr(cfg, "window", None) is not None


def format_numbers(values: Sequence[float]) -> str:
    """Numbers as a user writes them: 500000 not 500000.0 or 5e+05, at most 6 decimals."""
    return " ".join(f"{float(v):.6f}".rstrip("0").rstrip(".") for v in values)


def _crs_of(text: str, key: str = "--bbox-crs") -> Any:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{key} {text!r} (bbox_crs= in Python) is not a CRS GDAL knows; pass e.g. EPSG:4326") from exc
