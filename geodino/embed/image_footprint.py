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
    counts as not georeferenced, a CRS that cannot be placed on the map is warned about. A TIFF's CRS and transform
    come from its cached header (`geodino.data.headers`, read when the folder's rule was settled), not from
    opening the file again; a photo's sidecar is read by rasterio."""
    from geodino.data.footprints import footprint
    from geodino.data.headers import header_or_none
    from geodino.data.rasters import SceneInfo

    suffix = path.suffix.lower()
    if suffix in TIFF_EXTS:
        head = header_or_none(path)  # rasterio reads TIFFs: the header holds the georeferencing
    elif _has_sidecar(path):
        head = header_or_none(path, reader="rasterio")
    else:
        return None
    if head is None or not head.crs or not head.transform:
        return None
    from rasterio import Affine

    if Affine(*head.transform).is_identity:
        return None
    scene = SceneInfo(
        path=str(path),
        crs=head.crs,
        transform=head.transform,
        width=head.width,
        height=head.height,
        count=head.count,
        dtype=head.dtype,
        nodata=None,
        band_names=(),
        band_indexes=tuple(range(1, head.count + 1)),
    )
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
