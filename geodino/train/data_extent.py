"""Where a run's weights have looked: the EPSG:4326 extent of its georeferenced training data, for the geometry of
its exports' STAC items (a catalogue then finds "models trained over this area" by a spatial search).

The extent is the union of the footprints of the run's raster sources (each scene's pixels, cut to the part a ROI
keeps: `geodino.data.footprints.union_footprint`), joined with the extent of the model the run starts from when
that model is a geodino export whose item has one or a geodino training checkpoint that recorded one (`init_from`
for pretraining, e.g. the previous stage's `last.ckpt`; the teacher for distillation): the weights carry what it
saw. Image folders, tar shards, Zarr cubes and torchgeo datasets have no footprint here, so
a run of those alone has no extent (a null geometry, as before); the extent then records why instead (`note`, the
item's `geodino:extent_note`): the data have no CRS (a cube read with `allow_no_crs`), its kind has no footprint
here, or the footprint failed to compute, so a catalogue reader sees why the item is not on the map. Computed once at
the start of a run from the scenes the loader has already indexed (one projection per CRS, not per file), and
stored in every checkpoint (`geodino.data_extent`), so `geodino export` of any checkpoint writes it without reading
the data again.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["export_extent", "no_extent_note", "training_extent"]

KINDS = {
    "CubeSource": "datacubes",
    "ImageFolderSource": "image folders",
    "TarShardSource": "tar shards",
    "TorchGeoSource": "torchgeo datasets",
    "SyntheticSource": "synthetic tiles",
}
"""Source classes as an item's note names them (the kinds without a footprint here)."""


def export_extent(spec: str | Path | None) -> Any | None:
    """The geometry (shapely, EPSG:4326) of the model `spec` a run starts from, or None: a geodino export's STAC
    item beside it (`X.stac.json`), else a geodino training checkpoint's own record (`geodino.data_extent`: the
    stages chained with `init_from: runs/NAME/checkpoints/last.ckpt`); None for anything else (arch:, timm:, hub:,
    a URL, an official release, an item or checkpoint without an extent)."""
    import shapely

    from geodino.models.checkpoints.stac_item import export_item_path

    if not spec or "://" in str(spec) or ":" in str(spec).split("/")[0]:  # arch:, timm:, hub:, a URL: no item
        return None
    path = Path(str(spec).split("?", 1)[0]).expanduser()
    item = export_item_path(path)
    try:
        if path.is_file() and item.is_file():
            geometry = json.loads(item.read_text()).get("geometry")
        else:
            geometry = (_checkpoint_extent(path) or {}).get("geometry")
        return shapely.geometry.shape(geometry) if geometry else None
    except (OSError, ValueError, TypeError, AttributeError):  # not an item after all: nothing to join
        return None


def _checkpoint_extent(path: Path) -> Any:
    """`geodino.data_extent` of a geodino training checkpoint (a `.ckpt` file, memory-mapped, or a sharded
    folder's `meta.pt`), else None."""
    from geodino.models.checkpoints.files import load_file

    if path.is_dir():
        path = path / "meta.pt"
    elif path.suffix.lower() != ".ckpt":  # what pretrain writes; an official .pth is not read a second time
        return None
    if not path.is_file():
        return None
    try:
        obj = load_file(path)
    except Exception:  # not a checkpoint geodino can read: nothing to join (the run itself says so if it matters)
        return None
    meta = obj.get("geodino") if isinstance(obj, dict) else None
    return meta.get("data_extent") if isinstance(meta, dict) else None


def training_extent(sources: Sequence[Any], start_from: str | Path | None = None) -> dict[str, Any]:
    """`{"geometry": GeoJSON, "bbox": [w, s, e, n]}` of the raster and datacube sources' scenes (ROI applied) joined
    with the extent of the export `start_from`, or `{"geometry": None, "bbox": None, "note": why}` when nothing can
    be placed (`no_extent_note`). Never stops a run: a footprint that fails to compute is a warning and no extent,
    whose note says so."""
    import shapely

    from geodino.data.footprints import geojson_bbox, oriented, union_footprint

    try:
        parts = []
        for source in sources:
            scenes = _placed_scenes(source)
            if not scenes:
                continue
            geom = union_footprint(scenes, _regions(getattr(source, "tiles", None), len(scenes)))
            if geom is not None:
                parts.append(geom)
        earlier = export_extent(start_from)
        if earlier is not None:
            parts.append(earlier)
        if not parts:
            return {"geometry": None, "bbox": None, "note": no_extent_note(sources)}
        geom = oriented(shapely.union_all(parts)) if len(parts) > 1 else parts[0]
        return {"geometry": shapely.geometry.mapping(geom), "bbox": geojson_bbox(geom)}
    except Exception as exc:  # a catalogue nicety: never worth a failed run
        warnings.warn(f"the training data's extent was not computed ({exc}); exports get no geometry", stacklevel=2)
        return {
            "geometry": None,
            "bbox": None,
            "note": f"no geometry: the training data's extent failed to compute ({exc})",
        }


def no_extent_note(sources: Sequence[Any]) -> str:
    """Why a run's exports have no geometry when none of its `sources` could be placed, as their items say
    (`geodino:extent_note`; a failed computation has its own note): scenes without a CRS (a datacube read with
    `allow_no_crs`) cannot be placed on a map; other sources (image folders, tar shards, datacubes, torchgeo
    datasets) have no footprint here; raster sources whose tiles keep no scene have none either."""
    for source in sources:
        scenes = getattr(getattr(source, "archive", None), "scenes", None) or getattr(source, "scenes", None) or []
        bare = next((sc for sc in scenes if not getattr(sc, "crs", None)), None)
        if bare is not None:
            return (
                f"no geometry: the training data have no CRS ({getattr(bare, 'path', 'a scene')} of source "
                f"{getattr(source, 'name', '?')!r}, read with allow_no_crs), so they cannot be placed on a map"
            )
    if any(_placed_scenes(s) for s in sources):
        return "no geometry: the sources' tiles cover none of their scenes (ROI or tile size)"
    kinds = sorted({KINDS.get(type(s).__name__, type(s).__name__) for s in sources})
    if not kinds:
        return "no geometry: no training data to place"
    return (
        "no geometry: only raster sources and datacubes give a footprint here, and this run's data are "
        f"{', '.join(kinds)}"
    )


def _placed_scenes(source: Any) -> list[Any]:
    """The scenes of `source` that have a grid to place (`placed_scenes()`: a raster source's archive scenes, a
    datacube source's stores); none for sources without one (image folders, shards: their `scenes`, when they
    have any, carry no grid)."""
    placed = getattr(source, "placed_scenes", None)
    return list(placed()) if callable(placed) else []


def _regions(tiles: Any, n: int) -> list[Any] | None:
    """Per archive scene, the pixels its tiles can cover (`union_footprint`'s `regions`), or None for a source
    without a tile sampler. The sampler lists the scenes it KEPT (`scene_ids`, with `roi_px` and `tile_px` per kept
    scene: a ROI that misses a scene, or a scene smaller than a tile, leaves it out): those left out are not used at
    all (an empty region), and a kept scene's ROI part is grown by the reach of a tile around it (`_reach`)."""
    import shapely

    if tiles is None:
        return None
    out: list[Any] = [shapely.Polygon()] * n
    for k, i in enumerate(tiles.scene_ids):
        out[int(i)] = _reach(tiles.roi_px[k], tiles.tile_px[k], tiles.sampling)
    return out


def _reach(region: Any, tile_px: tuple[int, int], sampling: str) -> Any:
    """The ROI part `region` (pixels; None: the whole scene) grown by what a tile reaches beyond it: a random tile
    has its centre inside (half a tile beyond), a grid tile only intersects it (a whole tile beyond). Grown by
    that times sqrt(2), mitred, so a tile's corner is covered along edges of any direction."""
    import math

    import shapely

    if region is None or region.is_empty:
        return region
    d = max(tile_px) * (1.0 if sampling == "grid" else 0.5) * math.sqrt(2.0)
    return shapely.buffer(region, d, join_style="mitre", mitre_limit=10.0)
