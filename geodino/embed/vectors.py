"""Vector inputs of the products (zonal polygons, `similar --polygon`, classify labels) with their layers handled.

`geodino.data.vectors.read_vector` reads the features; this adds what a multi-layer file (GeoPackage) needs on
the command line: `--layer` checked against the file's layers (the closest named, all listed), the first layer
read with a one-line note when none is given (instead of pyogrio's "Specify layer parameter" warning, which names
an option geodino does not have), and the columns of every layer for errors about a missing column. Every
product reads points (the cell each falls in), lines (every cell they touch) and polygons; a file of other
geometries (GeometryCollection) or of rows without any geometry is refused in one line.

The note about the first layer is a `UserWarning` (`warnings.warn`; the layer read may not be the one meant): a
Python caller can catch or filter it, and the command line shows it as one line "geodino: warning: ..."
(`geodino.cli`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from geodino.errors import InputError, did_you_mean

__all__ = [
    "GEOMETRY_KINDS",
    "check_geometries",
    "first_ids",
    "first_layer_note",
    "has_geometry",
    "layer_columns",
    "list_layers",
    "read_features",
]

_NO_LAYERS = (".parquet", ".geoparquet")
GEOMETRY_KINDS = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
"""What the products place on a raster: points (the cell each falls in), lines (every cell they touch), polygons."""


def list_layers(path: str | Path) -> list[str]:
    """The layer names of a vector file ([] for GeoParquet or a file that does not open: the reader says why)."""
    path = Path(path)
    if path.suffix.lower() in _NO_LAYERS or not path.exists():
        return []
    try:
        import pyogrio

        return [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception:  # unreadable: read_vector reports it with the file's name
        return []


def layer_columns(path: str | Path, layers: list[str]) -> dict[str, list[str]]:
    """Attribute columns of each of `layers` (header reads only)."""
    import pyogrio

    out = {}
    for name in layers:
        try:
            out[name] = [str(f) for f in pyogrio.read_info(path, layer=name)["fields"]]
        except Exception:  # a layer that does not open has no columns to offer
            out[name] = []
    return out


def read_features(
    path: str | Path, *, layer: str | None = None, what: str = "polygons", empty_hint: str = "", note: bool = True
) -> Any:
    """The features of `path` as a GeoDataFrame in its own CRS (or none): `layer` of a multi-layer file, else its
    first layer (with a `UserWarning` naming the others, unless `note=False`: the caller warns with
    `first_layer_note` once its own checks passed, so a failing run says one line); a layer the file lacks is
    refused with its layers listed."""
    from geodino.data.vectors import read_vector

    layers = list_layers(path)
    if layer is not None and Path(path).suffix.lower() in _NO_LAYERS and Path(path).exists():  # it was ignored
        raise InputError(
            f"--layer {layer} (layer= in Python): {what} file {path} is GeoParquet, one table without layers; drop "
            "--layer"
        )
    if layer is not None and layers and layer not in layers:
        close = did_you_mean(layer, layers)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(
            f"{what} file {path} has no layer {layer!r}; {hint}its layers: {', '.join(layers)}; pass --layer NAME "
            "(layer= in Python)"
        )
    text = first_layer_note(path, layer, what, layers)
    if note and text:
        warnings.warn(text, stacklevel=2)
    gdf = read_vector(  # without a CRS: refused by `placement.to_raster_crs` unless the raster has none either
        path, layer=layer or (layers[0] if layers else None), what=what, empty_hint=empty_hint, require_crs=False
    )
    check_geometries(gdf, path, what, layer or (layers[0] if len(layers) > 1 else None))
    return gdf


def has_geometry(geoms: Any) -> Any:
    """Boolean array: which rows hold a geometry (not null, not empty); geopandas' notna() warns about empties."""
    import numpy as np

    return np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)


def check_geometries(gdf: Any, path: str | Path, what: str, layer: str | None = None) -> None:
    """Refuse (one line) a layer whose rows all lack a geometry (null or empty: nothing to place), or that holds
    geometries other than `GEOMETRY_KINDS`."""
    where = f" (layer {layer!r})" if layer else ""
    present = has_geometry(gdf.geometry)
    if not present.any():
        rows = "its 1 row has" if len(gdf) == 1 else f"all {len(gdf)} rows have"
        todo = "pass the --layer that holds them" if layer else "check how the file was written (its geometry column)"
        raise InputError(f"{what} file {path}{where} has no geometries: {rows} none (null or empty); {todo}")
    bad = sorted(set(gdf.geometry[present].geom_type) - set(GEOMETRY_KINDS))
    if bad:
        raise InputError(
            f"{what} in {path}{where} hold {', '.join(bad)} geometries; use points, lines or polygons (explode a "
            "collection into its parts, e.g. with geopandas .explode())"
        )


def first_layer_note(path: str | Path, layer: str | None, what: str, layers: list[str] | None = None) -> str | None:
    """The warning's message (without the CLI's "geodino: warning: ") for a multi-layer file read without `--layer`
    (its first layer is read), or None."""
    layers = list_layers(path) if layers is None else layers
    if layer is not None or len(layers) < 2:
        return None
    return (
        f"{what} file {path} has {len(layers)} layers ({', '.join(layers)}); reading the first, "
        f"{layers[0]!r}; pass --layer NAME for another"
    )


def first_ids(path: str | Path, layer: str | None, rows: Any, limit: int = 10) -> str:
    """How a warning names the first `limit` of `rows` (0-based positions in the file as read): by the layer's
    feature ids, the fid QGIS shows (GeoPackage counts from 1, so the 0-based position 2 is fid 3), for a file
    pyogrio reads; by 0-based row for GeoParquet, or when the ids cannot be read (a file that does not match)."""
    rows = [int(r) for r in rows]
    more = " ..." if len(rows) > limit else ""
    fids = None
    if Path(path).suffix.lower() not in _NO_LAYERS:
        try:
            import pyogrio

            layers = [layer] if layer is not None else list_layers(path)[:1]  # the one read_features read
            kw = {"layer": layers[0]} if layers else {}  # none named: pyogrio warns on a multi-layer file
            fids = pyogrio.read_dataframe(path, read_geometry=False, columns=[], fid_as_index=True, **kw).index
        except Exception:  # the rows are named by position instead
            fids = None
    if fids is not None and len(fids) > max(rows, default=-1):
        ids = ", ".join(str(int(fids[r])) for r in rows[:limit])
        return f"first fids: {ids}{more} (the layer's feature ids, as QGIS shows them)"
    return f"first rows (0-based): {', '.join(map(str, rows[:limit]))}{more}"
