"""What the detection probe writes for each predicted image: the boxes as GeoJSON polygons in the image's map
coordinates (`boxes_to_geojson`, RFC 7946 ring order, the CRS named), or a COCO-style results list in pixels for an
image without georeferencing (`write_predictions`, atomic). Georeferenced images also get the same boxes as a
GeoPackage (`boxes_to_geopackage`): RFC 7946 readers ignore the GeoJSON `crs` member of a projected CRS (they take
the coordinates for WGS84 degrees), while a GeoPackage stores the raster's CRS in its own table, which every GIS
reads.

Kept apart from the probe (`detection.py`: the detector, its training and the run; it re-exports these names)
because the output format is its own concern and needs neither torch nor torchvision.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

if typing.TYPE_CHECKING:
    from torch import Tensor

    from geodino.eval import dense

__all__ = ["boxes_to_geojson", "boxes_to_geopackage", "image_paths", "output_names", "write_predictions"]


def output_names(paths: list[Path]) -> dict[Path, str]:
    """The name each predicted image's outputs are written under (`<name>_boxes.*`): its stem, or, where two images
    of the run share a stem (scene.tif in folders a/ and b/), the path below their common folder joined by `__`
    (a__scene, b__scene; with the suffix, a__scene_png, where that is not unique either; then _2, _3 in the order
    given, for a name still shared, as a/scene.tif's with a file named a__scene.tif), so that none overwrites
    another."""
    import os

    paths = [Path(p) for p in paths]
    stems: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    clashing = [p.resolve() for p in paths if stems[p.stem] > 1]
    root = Path(os.path.commonpath([str(p.parent) for p in clashing])) if clashing else Path()
    out: dict[Path, str] = {}
    for p in paths:
        if stems[p.stem] == 1:
            out[p] = p.stem
            continue
        rel = p.resolve().relative_to(root)
        out[p] = "__".join(rel.with_suffix("").parts)
    seen: dict[str, int] = {}
    for name in out.values():
        seen[name] = seen.get(name, 0) + 1
    for p, name in out.items():
        if seen[name] > 1:  # a.tif and a.png in one folder
            out[p] = f"{name}_{p.suffix.lstrip('.').lower()}"
    used: set[str] = set()
    for p, name in out.items():  # still shared (a/scene.tif beside a file named a__scene.tif): _2, _3 in run order
        unique, k = name, 2
        while unique in used:
            unique, k = f"{name}_{k}", k + 1
        used.add(unique)
        out[p] = unique
    return out


def image_paths(paths: list[Path]) -> dict[Path, str]:
    """The `image` each predicted image's pixel boxes json names: its path below the common folder of the run's
    images, with / separators (a/scene.tif, b/scene.tif; the file name where all sit in one folder), so that two
    images of one name in different folders are told apart as their output file names are (`output_names`)."""
    import os

    paths = [Path(p) for p in paths]
    if not paths:
        return {}
    root = os.path.commonpath([str(p.resolve().parent) for p in paths])
    return {p: p.resolve().relative_to(root).as_posix() for p in paths}


def boxes_to_geojson(pred: dict[str, Tensor], raster: dense.Raster, class_names: list[str], threshold: float) -> dict:
    """A GeoJSON FeatureCollection of box polygons in the raster's map coordinates, its CRS named in `crs` (an
    EPSG URN, else the WKT; the WKT also in `crs_wkt`)."""
    from shapely.geometry import Polygon, mapping
    from shapely.geometry.polygon import orient

    t = raster.transform
    features = []
    for box, score, label in zip(pred["boxes"].tolist(), pred["scores"].tolist(), pred["labels"].tolist()):
        if score < threshold:
            continue
        x0, y0, x1, y1 = box
        ring = [t @ (x0, y0), t @ (x1, y0), t @ (x1, y1), t @ (x0, y1)]
        poly = orient(Polygon(ring), sign=1.0)  # RFC 7946: exterior rings counter-clockwise
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(poly),
                "properties": {
                    "label": name,
                    "score": round(float(score), 4),
                    "xmin": x0,
                    "ymin": y0,
                    "xmax": x1,
                    "ymax": y1,
                },
            }
        )
    fc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    epsg = raster.crs.to_epsg() if raster.crs is not None else None
    if epsg is not None:
        fc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    elif raster.crs is not None:  # no EPSG code: the WKT as the name, which GDAL (QGIS, geopandas) reads
        wkt = raster.crs.to_wkt()  # (it ignores a crs_wkt member and took the map coordinates for EPSG:4326)
        fc["crs"] = {"type": "name", "properties": {"name": wkt}}
        fc["crs_wkt"] = wkt
    return fc


def boxes_to_geopackage(fc: dict, raster: dense.Raster, path: Path) -> Path:
    """Write the features of `boxes_to_geojson` to a GeoPackage (layer `boxes`) in the raster's CRS, under a
    temporary name renamed into place. An image without boxes gets an empty polygon layer."""
    import geopandas as gpd
    from shapely.geometry import shape

    from geodino.io import atomic_path

    columns = ["label", "score", "xmin", "ymin", "xmax", "ymax"]
    rows = [{k: f["properties"][k] for k in columns} for f in fc["features"]]
    geoms = [shape(f["geometry"]) for f in fc["features"]]
    gdf = gpd.GeoDataFrame(rows, columns=columns, geometry=geoms, crs=raster.crs.to_wkt())
    gdf = gdf.astype({"label": str, "score": float, "xmin": float, "ymin": float, "xmax": float, "ymax": float})
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer="boxes", engine="pyogrio", geometry_type="Polygon")
    return path


def write_predictions(
    pred: dict[str, Tensor],
    raster: dense.Raster,
    class_names: list[str],
    threshold: float,
    out_dir: Path,
    name: str = "",
    image: str = "",
) -> Path:
    """GeoJSON in map coordinates (and the same boxes as `<name>_boxes.gpkg`) for georeferenced images, else a
    COCO-style results json in pixels. `name`: the image's stem unless given (`output_names`); `image`: what the
    pixel json names the image, its file name unless given (`image_paths`). Returns the json/GeoJSON path."""
    from geodino.io import atomic_path

    stem = name or Path(raster.path).stem
    payload: Any  # a GeoJSON FeatureCollection, or the pixel json's list of boxes
    if raster.georeferenced:
        path, payload = out_dir / f"{stem}_boxes.geojson", boxes_to_geojson(pred, raster, class_names, threshold)
        boxes_to_geopackage(payload, raster, out_dir / f"{stem}_boxes.gpkg")
    else:
        path = out_dir / f"{stem}_boxes.json"
        payload = [
            {
                "image": image or Path(raster.path).name,
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": float(s),
                "label": class_names[lab] if 0 <= lab < len(class_names) else str(lab),
            }
            for b, s, lab in zip(pred["boxes"].tolist(), pred["scores"].tolist(), pred["labels"].tolist())
            if s >= threshold
        ]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload))
    return path
