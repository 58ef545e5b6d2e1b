"""An image file's footprint in EPSG:4326 for `geodino embed images`' geometry column: asked of TIFFs and of
PNG/JPEG files with a GDAL sidecar; None (a null geometry) for an image that is not georeferenced."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from geodino.data.paths import TIFF_EXTS

__all__ = ["footprint_4326"]


def footprint_4326(path: Path) -> Any:
    """The image's footprint in EPSG:4326 (`geodino.data.footprints.footprint`: the outline of its pixels, split at
    the antimeridian), or None when it is not georeferenced (no CRS, or an identity transform: pixel coordinates).
    TIFFs, and PNG/JPEG with a GDAL sidecar (`.aux.xml` or a world file), are asked; a header that does not read
    counts as not georeferenced, a CRS that cannot be placed on the map is warned about."""
    suffix = path.suffix.lower()
    if suffix not in TIFF_EXTS and not _has_sidecar(path):
        return None
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from geodino.data.footprints import footprint
    from geodino.data.rasters import SceneInfo

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None or src.transform.is_identity:
                    return None
                scene = SceneInfo(
                    path=str(path),
                    crs=src.crs.to_wkt(),
                    transform=tuple(src.transform)[:6],
                    width=src.width,
                    height=src.height,
                    count=src.count,
                    dtype=src.dtypes[0],
                    nodata=src.nodata,
                    band_names=(),
                    band_indexes=tuple(range(1, src.count + 1)),
                )
    except Exception:  # rasterio raises many kinds; the pixels read, so the image is kept without a footprint
        return None
    geom, why = footprint(scene, "EPSG:4326")
    if geom is None:
        warnings.warn(f"{path} gets no footprint (null geometry): {why}", stacklevel=2)
    return geom


def _has_sidecar(path: Path) -> bool:
    """A GDAL `.aux.xml` or a world file (`.pgw`, `.pngw`, `.jgw`, `.jpgw`, `.wld`) next to the image."""
    ext = path.suffix.lower()[1:]
    names = [path.name + ".aux.xml"]
    if ext:
        names += [f"{path.stem}.{ext[0]}{ext[-1]}w", f"{path.stem}.{ext}w", f"{path.stem}.wld"]
    return any((path.parent / n).exists() for n in names)
