"""When a raster's pixels were acquired, as its header records it: GDAL's IMAGERY metadata domain.

GDAL drivers that read a satellite product's own metadata (DIMAP, WorldView, Pleiades ...) fill the `IMAGERY`
domain's `ACQUISITIONDATETIME` (UTC, "YYYY-MM-DD HH:MM:SS"), and a GeoTIFF keeps it when written with it (rasterio
`src.tags(ns="IMAGERY")`). `geodino embed` records it as the output's `input_time`, so the features' STAC item is
dated by the scene, not by the day they were computed. `TIFFTAG_DATETIME` is not read: TIFF writers stamp it with the
time the file was written (often a processing date), which a user searching by date would take for the scene's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["acquisition_time"]


def acquisition_time(src: Any) -> str | None:
    """The acquisition time an open rasterio dataset's IMAGERY domain records, as ISO 8601 text
    ("2024-02-01T10:32:11"; an offset is kept when the file gives one, else it is UTC as GDAL defines it), or None
    when it records none or text that is not a date (kept out: a label that dates nothing would be searched by)."""
    try:
        text = str((src.tags(ns="IMAGERY") or {}).get("ACQUISITIONDATETIME") or "").strip()
    except Exception:  # a driver without metadata domains: no time, as for a file that records none
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat() if text else None
    except ValueError:
        return None
