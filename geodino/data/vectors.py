"""Vector files (GeoPackage, GeoJSON, Shapefile, GeoParquet) read into a GeoDataFrame, with one-line errors.

The one reader for labels (`embed classify`) and polygons (`embed zonal`, `embed similar`): the file must exist,
read, hold geometries (a CSV reads as a table without them and is refused in one line), hold features and carry
a CRS (callers reproject to their raster's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodino.errors import InputError

__all__ = ["UNDEFINED_SRS", "read_vector"]

# the CRSs a GeoPackage names for "no CRS" (srs_id 0 and -1): GDAL 3.8 (pyogrio 0.9's wheels) reads them as
# these CRSs, GDAL 3.10 as none; they place nothing, so they are read as none
UNDEFINED_SRS = ("Undefined geographic SRS", "Undefined Cartesian SRS", "Undefined cartesian SRS")
_NOT_RECOGNISED = "not recognized as"  # GDAL: "'x.xml' not recognized as being in a supported file format."
_FORMATS = "GeoPackage, GeoJSON, Shapefile or GeoParquet"


def read_vector(
    path: str | Path,
    *,
    layer: str | None = None,
    what: str = "polygons",
    empty_hint: str = "",
    require_crs: bool = True,
) -> Any:
    """The features of `path` (`layer` of a multi-layer file) as a GeoDataFrame in its own CRS; `what` names them
    in errors ("labels", "polygons"), `empty_hint` says what to do when the file has no features. `require_crs=False`
    lets a file without a CRS through (the caller supplies one, e.g. an ROI with `roi_crs`)."""
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist; {_nearby(path)}")
    try:
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            gdf = gpd.read_parquet(path)
        else:
            gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # fiona/pyogrio/pyarrow raise many kinds; the first line says what is wrong
        # (pyogrio joins GDAL's messages with '; '; geopandas' 2nd line names pandas functions, not a fix here)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if _NOT_RECOGNISED in first:  # GDAL's advice, a driver prefix such as 'CSV:path', is no fix here
            voc = (
                " (Pascal VOC boxes are pixels of an image, not map geometries)"
                if path.suffix.lower() == ".xml"
                else ""
            )
            raise InputError(
                f"cannot read {what} from {path}: no vector format GDAL reads, or a damaged file "
                f"({path.suffix or 'no suffix'}); pass a vector file: {_FORMATS}{voc}"
            ) from exc
        raise InputError(f"cannot read {what} from {path}: {first}") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or getattr(gdf, "_geometry_column_name", None) not in gdf.columns:
        # a CSV (or any table) reads as a plain DataFrame: no geometry, no CRS
        raise InputError(
            f"{what} file {path} holds a table without geometries ({path.suffix or 'no suffix'}); pass a vector "
            f"file: {_FORMATS} (a CSV of x/y columns converts with geopandas: "
            "gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.x, df.y), crs=...).to_file('labels.gpkg'))"
        )
    if len(gdf) == 0:
        raise InputError(f"{what} file {path} has no features{'; ' + empty_hint if empty_hint else ''}")
    if gdf.crs is not None and gdf.crs.name in UNDEFINED_SRS:  # GeoPackage srs_id 0/-1, as older GDAL reads them
        gdf = gdf.set_crs(None, allow_override=True)
    if gdf.crs is None and require_crs:
        raise InputError(f"{what} in {path} have no CRS; set one (e.g. with geopandas .set_crs) and retry")
    return gdf


def _nearby(path: Path) -> str:
    """What to do about a missing vector file: the closest name in its folder (a typo), else check the path."""
    import difflib

    folder = path.parent if str(path.parent) else Path(".")
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {folder / close[0]}?"
    if not folder.is_dir():
        return f"its folder {folder} does not exist either; check the path"
    return "check the path (GeoPackage, GeoJSON, Shapefile, GeoParquet or any file GDAL reads as vectors)"
