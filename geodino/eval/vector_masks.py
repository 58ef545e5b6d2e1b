"""Segmentation masks from a vector file: polygons (GeoPackage, GeoJSON, Shapefile, FlatGeobuf, GeoParquet) burnt
onto each image's grid as class ids, so building footprints or land-cover polygons digitised in a GIS train the
segmentation probe without a rasterising step. The polygons may be in any CRS: they are reprojected to each image's.

A pixel takes the class of the polygon holding its centre (rasterio's `rasterize`, as `gdal_rasterize` without
`-at`); where polygons overlap, the later feature in the file wins; pixels under no polygon are class 0 (the
background; `label_map: {0: 255}` ignores them instead, for sparsely labelled images)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from geodino.errors import ConfigError, InputError

__all__ = ["VECTOR_SUFFIXES", "VectorMasks", "is_vector_file"]

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet", ".geoparquet")


def is_vector_file(spec: Any) -> bool:
    """Whether a `train_masks`/`val_masks` value names one vector file (by its suffix) rather than mask images."""
    return isinstance(spec, (str, Path)) and Path(str(spec)).suffix.lower() in VECTOR_SUFFIXES


class VectorMasks:
    """The polygons of one vector file with their class ids (`column`: whole-number class ids, or class names
    looked up in `class_names`; empty: every polygon is class 1), burnt onto an image's grid by `burn`."""

    def __init__(self, path: str | Path, column: str, class_names: list[str], layer: str = "") -> None:
        from geodino.data.vectors import read_vector
        from geodino.embed.vectors import has_geometry, list_layers

        self.path = Path(path)
        layers = list_layers(self.path)  # read the first by name: pyogrio's warning names its own layer= option
        if layer and layer not in layers and (layers or self.path.exists()):  # a missing file: the reader's line
            raise ConfigError(_layer_refusal(self.path, layer, layers))
        gdf = read_vector(
            self.path,
            layer=layer or (layers[0] if len(layers) > 1 else None),
            what="mask polygons",
            empty_hint="draw the polygons of each class",
        )
        gdf = gdf[has_geometry(gdf.geometry)].reset_index(drop=True)
        if not len(gdf):
            raise InputError(f"mask polygons file {self.path} has no geometries (all null or empty)")
        _check_polygons(gdf, self.path)
        if len(layers) > 1 and not layer:  # after the checks, so a refused file says one line
            warnings.warn(
                f"mask polygons file {self.path} has {len(layers)} layers ({', '.join(layers)}); reading the first, "
                f"{layers[0]!r}; to train on another, name it: mask_layer: LAYER",
                stacklevel=2,
            )
        self.values = _class_ids(gdf, column, class_names, self.path)
        self.gdf = gdf
        self._in_crs: dict[str, Any] = {}

    def _geoms(self, crs: Any) -> Any:
        """The geometries reprojected to `crs` (once per CRS)."""
        key = str(crs)
        if key not in self._in_crs:
            self._in_crs[key] = self.gdf.geometry.to_crs(crs)
        return self._in_crs[key]

    def burn(self, image: Path, crs: Any, transform: Any, shape: tuple[int, int]) -> np.ndarray:
        """[H,W] int64 class ids of the image's pixels (0 where no polygon holds the pixel centre)."""
        from rasterio.features import rasterize
        from rasterio.transform import array_bounds
        from shapely.geometry import box

        if crs is None or transform is None or transform.is_identity:
            raise InputError(
                f"image {image} has no georeference, so the polygons of {self.path} cannot be placed on it; use "
                "georeferenced images (GeoTIFF) with vector masks, or rasterise the polygons into mask images"
            )
        geoms = self._geoms(crs)
        h, w = shape
        west, south, east, north = array_bounds(h, w, transform)
        hits = geoms.intersects(box(min(west, east), min(south, north), max(west, east), max(south, north))).to_numpy()
        pairs = [(g, int(v)) for g, v, hit in zip(geoms, self.values, hits) if hit]
        if not pairs:
            return np.zeros(shape, dtype=np.int64)
        out = rasterize(pairs, out_shape=shape, transform=transform, fill=0, dtype="int32")
        return out.astype(np.int64)

    def check_placed(self, images: list[Path]) -> None:
        """Refuse images without a georeference (every one is looked at: one among many, say a PNG in a folder of
        GeoTIFFs, was refused only when its mask was burnt, after the head trained if it was held out for
        validation) and polygons that fall on none of `images` (another place, or a CRS set wrongly): every mask
        would be background alone. One line with the polygons' and the first image's bounds in the image's CRS."""
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
        from shapely.geometry import box

        first, hit, bare = None, False, []
        for img in images:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    src = rasterio.open(img)
            except RasterioIOError:  # the image reader names every file that does not read, in one line
                continue
            with src:
                if src.crs is None or src.transform.is_identity:
                    bare.append(img)
                    continue
                if hit:
                    continue
                geoms = self._geoms(src.crs)
                hit = bool(geoms.intersects(box(*src.bounds)).any())
                first = first or (img, src.crs, tuple(src.bounds), tuple(geoms.total_bounds))
        if bare:
            others = f" (and {len(bare) - 1} more: {', '.join(p.name for p in bare[1:4])})" if len(bare) > 1 else ""
            raise InputError(
                f"image {bare[0]}{others} has no georeference, so the polygons of {self.path} cannot be placed on "
                "it; use georeferenced images (GeoTIFF) with vector masks, or rasterise the polygons into mask images"
            )
        if not hit and first is not None:
            img, crs, ib, pb = first
            raise InputError(
                f"no polygon of {self.path} (CRS {self.gdf.crs}) lies on any of the {len(images)} images: in "
                f"{crs} the polygons span {_fmt(pb)} and {img.name} spans {_fmt(ib)}; check the polygons' CRS "
                "and that they cover the images"
            )


def _layer_refusal(path: Path, layer: str, layers: list[str]) -> str:
    """The line for a `mask_layer` the file does not hold (none: GeoParquet, one table without layers)."""
    from geodino.errors import did_you_mean

    if not layers:
        return f"mask_layer={layer!r}: mask polygons file {path} has no layers to pick from; drop mask_layer"
    close = did_you_mean(layer, layers)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"mask_layer={layer!r} is not a layer of {path}; {hint}its layers: {', '.join(layers)}"


def _check_polygons(gdf: Any, path: Path) -> None:
    """Refuse points and lines (one line): burnt at pixel centres, a point labels at most one pixel and a line a
    thread of pixels, so centroids or road centre lines given as masks trained on almost no labelled pixels."""
    kinds = gdf.geometry.geom_type
    bad = ~kinds.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        found = ", ".join(sorted(set(kinds[bad])))
        raise InputError(
            f"mask polygons file {path} holds {int(bad.sum())} {found} geometries of {len(gdf)}; segmentation masks "
            "are burnt from polygons: buffer points or lines to the footprint they label (e.g. geopandas "
            "gdf.buffer(METRES)) or draw polygons"
        )


def _fmt(bounds: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.10g}" for v in bounds) + ")"


def _class_ids(gdf: Any, column: str, class_names: list[str], path: Path) -> np.ndarray:
    """Each polygon's class id from `column` (see `VectorMasks`); one line naming the file and column otherwise."""
    if not column:
        return np.ones(len(gdf), dtype=np.int64)
    if column not in gdf.columns:
        cols = ", ".join(c for c in gdf.columns if c != gdf.geometry.name) or "none"
        raise ConfigError(f"mask_column={column!r} is not a column of {path} (its columns: {cols})")
    vals = gdf[column]
    if vals.isna().any():
        raise InputError(
            f"{int(vals.isna().sum())} polygons of {path} have no {column!r} value; give each a class or remove them"
        )
    if any(isinstance(v, (bool, np.bool_)) for v in vals):  # a yes/no field: read as names it asked for [.., True]
        raise ConfigError(
            f"mask_column={column!r} of {path} holds true/false values, not class ids; store whole-number class ids "
            "(1, 2, ...; 0 is the background) or class names listed in class_names"
        )
    if all(isinstance(v, (int, np.integer)) for v in vals):
        return vals.to_numpy(dtype=np.int64)
    numbers = [float(v) for v in vals if isinstance(v, (float, np.floating))]
    if len(numbers) == len(vals):
        fractions = sorted({v for v in numbers if not v.is_integer()})
        if fractions:  # was read as names ("holds names (1.5, 2.0)") and class_names asked for
            shown = ", ".join(f"{v:g}" for v in fractions[:5])
            raise ConfigError(
                f"mask_column={column!r} of {path} holds numbers that are not whole ({shown}), not class ids; "
                "store whole-number class ids (1, 2, ...; 0 is the background), or pick the column of class ids"
            )
        return vals.to_numpy(dtype=np.float64).astype(np.int64)
    names = [str(v) for v in vals]
    if not class_names:
        found = ", ".join(sorted(set(names))[:10])
        raise ConfigError(
            f"mask_column={column!r} of {path} holds names ({found}), not class ids; list the classes in "
            f"class_names, background first (class 0 is where no polygon lies), e.g. class_names: "
            f"[background, {found}]"
        )
    unknown = sorted(set(names) - set(class_names))
    if unknown:
        raise ConfigError(
            f"mask_column={column!r} of {path} holds {', '.join(unknown[:10])}, not in class_names "
            f"({', '.join(class_names)}); add them to class_names (and num_classes)"
        )
    index = {n: i for i, n in enumerate(class_names)}
    return np.array([index[n] for n in names], dtype=np.int64)
