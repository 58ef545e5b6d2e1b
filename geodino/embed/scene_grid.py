"""The cell grid the scenes of one many-scene run share: each scene is embedded on its own patch grid (cells of
patch size x pixel size from its origin), so two scenes of one pixel grid whose origins differ by whole pixels
but not whole cells had cells that did not line up, and their VRT mosaic showed one of them up to half a cell
away from its own imagery (adjacent Sentinel-2 MGRS tiles of one UTM zone: 10,002 px = 625.125 cells apart at
patch 16, every other tile 20 m off). `grid_offsets` gives such a scene the columns and rows by which its grid
starts left of / above its origin (`EmbedConfig.grid_offset`: the window is widened there, the pixels read as
nodata), so its cells are those of the first scene. Scenes in another CRS, of another pixel size or off the
pixel grid by a fraction of a pixel keep their own grid (the mosaic warns about them:
`scene_mosaic.off_grid_warning`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from geodino.embed.stac import Scene

__all__ = ["grid_offsets", "offset_on", "reference_scene", "scene_grid", "vrt_grid"]

_WHOLE = 1e-3  # an origin this close to a whole number of pixels (in pixels) is on the pixel grid


def offset_on(t0: Any, t: Any, patch: int) -> tuple[int, int] | None:
    """(cols, rows) by which the cell grid of a scene on transform `t` must start left of / above its origin to
    be the grid of a scene on `t0` (cells of `patch` pixels from `t0`'s origin); None when the two cannot share
    cells (rotated, another pixel size, or origins a fraction of a pixel apart)."""
    if t.b or t.d or t0.b or t0.d:
        return None
    if abs(t.a - t0.a) > 1e-9 * abs(t0.a) or abs(t.e - t0.e) > 1e-9 * abs(t0.e):
        return None
    kx, ky = (t.c - t0.c) / t0.a, (t.f - t0.f) / t0.e  # the scene's origin in pixels of the first one's grid
    if abs(kx - round(kx)) > _WHOLE or abs(ky - round(ky)) > _WHOLE:
        return None
    return round(kx) % patch, round(ky) % patch


def scene_grid(scene: Scene, grids: Mapping[str, Any] | None = None) -> Any:
    """`crs` and `transform` of a scene as the checks read it (`grids`: name -> header, None when unreadable), else
    opened here (`_grid`); None for a cube or a header that does not open."""
    return grids[scene.name] if grids is not None and scene.name in grids else _grid(scene)


def reference_scene(
    scenes: list[Scene], *, skip: Iterable[str] = (), grids: Mapping[str, Any] | None = None
) -> tuple[Scene, Any] | None:
    """The first readable scene listed with a grid (not a cube) and its grid (`scene_grid`): the one whose cells the
    scenes of its pixel grid share, unless the output folder records other cells (`scene_grid_file`)."""
    left = set(skip)
    for s in scenes:
        head = None if s.name in left else scene_grid(s, grids)
        if head is not None:
            return s, head
    return None


def _grid(scene: Scene) -> SimpleNamespace | None:
    """`crs` and `transform` of a scene's raster (a STAC stack's: its first asset's, the grid its VRT takes); None for
    a cube or a header that does not open (those keep their own grid). Only for scenes no check has read."""
    import rasterio

    from geodino.data.cube_open import is_cube_store

    if is_cube_store(scene.path):
        return None
    name = scene.sources[0][1] if scene.sources else scene.path
    try:
        with rasterio.open(name) as src:
            return SimpleNamespace(crs=src.crs, transform=src.transform)
    except (rasterio.errors.RasterioError, OSError):
        return None


def vrt_grid(text: str) -> SimpleNamespace:
    """`crs` and `transform` of a VRT document (a STAC stack's, `scene_stacks`: its first asset's grid), read from its
    text: the stack's assets were opened once to write it, not again for its grid."""
    from xml.etree import ElementTree

    from affine import Affine
    from rasterio.crs import CRS

    root = ElementTree.fromstring(text)
    gt = [float(v) for v in (root.findtext("GeoTransform") or "").split(",")]
    return SimpleNamespace(crs=CRS.from_wkt(root.findtext("SRS") or ""), transform=Affine.from_gdal(*gt))


def grid_offsets(
    scenes: list[Scene],
    patch: int,
    *,
    skip: Iterable[str] = (),
    grids: Mapping[str, Any] | None = None,
    wanted: Iterable[str] | None = None,
    reference: tuple[Any, Any] | None = None,
) -> dict[str, list[int]]:
    """Scene name -> `grid_offset` for the scenes that share the first readable scene's CRS and pixel grid but not
    its cells; the others (the first scene, scenes on its cells, scenes that cannot share them) are left out and
    embedded as before. `scenes`: every scene listed, before --bbox leaves some out, so a bbox run's scenes lie on
    the cells of the full run's. `skip`: scenes whose header could not be read (--on-error skip). Every rank
    computes the same offsets from every scene listed, so the scenes of a split run share one grid too.

    `grids`: the headers the run's checks already read (name -> an object with `crs` and `transform`; None:
    unreadable), so no header is opened twice; only the others are opened here. `wanted`: the scenes to give an
    offset (this rank's; default all): scenes listed after the first readable one and not wanted are not read.
    `reference`: (CRS, transform) of the cells to share, when not the first readable scene's: those the output
    folder records (`scene_grid_file.shared_grid`), so ranks and resumes that see another first scene agree."""
    left = set(skip)
    want = None if wanted is None else set(wanted)
    if reference is None:
        first = reference_scene(scenes, skip=left, grids=grids)
        if first is None:
            return {}
        reference = first[1].crs, first[1].transform
    crs, t0 = reference
    offsets: dict[str, list[int]] = {}
    for s in scenes:
        if s.name in left or (want is not None and s.name not in want):
            continue
        head = scene_grid(s, grids)
        if head is None or head.crs != crs:
            continue
        off = offset_on(t0, head.transform, patch)
        if off is not None and off != (0, 0):
            offsets[s.name] = list(off)
    return offsets
