"""What a many-scene run writes once every scene is done: the VRT mosaic of the per-scene feature rasters (one per
CRS, refusing scenes written with other settings: `MOSAIC_IDENTITY`) and the STAC catalog of their items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodino.embed.config import DECLARED_BY_CF, DECLARED_BY_FILE
from geodino.embed.stac import Scene
from geodino.embed.stac_items import raster_item_path, write_catalog, write_raster_item
from geodino.errors import InputError, plural

MOSAIC = "mosaic.vrt"


# metadata every scene of one mosaic must share: its bands mean the same thing everywhere (the weights, not the
# spec text that named them: a relative and an absolute path to one file are one backbone), computed from inputs
# read the same way (input bands and DN scaling: ranks of one SLURM array launched with `--scale 0.0001 --bands
# 3,2,1` and without both wrote scenes, and the mosaic mixed them)
MOSAIC_IDENTITY = (
    "model_fingerprint",
    "layers",
    "layer_mode",
    "final_norm",
    "l2_normalize",
    "dtype",
    "input_bands",
    "input_scale",
)


def scale_setting(desc: str | None) -> str | None:
    """The input scaling as a setting: the dtype defaults ("x/255 (uint8)", "x/10000 (uint16, assumed)", floats
    as they are) are one setting, "by the input's data type", so scenes of different data types are not refused.
    `desc` is a scene's GEODINO_INPUT_SCALE as written, maybe by an earlier version: the one reader of that text
    (`geodino.embed.scale_rule.ScaleRule.stored` writes it; runs of this version say their rule from its fields)."""
    from geodino.embed.scale_rule import ScaleRule

    if desc is not None and (desc.startswith(("x/255 (", "x/10000 (")) or desc == ScaleRule.by_dtype("f4").stored()):
        return "default (by the input's data type)"
    # each scene's own rule (a STAC item's raster:bands, the GDAL scale/offset of its file, a cube's CF rule): one
    if desc is not None and desc.endswith(("(band_scale/band_offset)", f"({DECLARED_BY_FILE})", f"({DECLARED_BY_CF})")):
        return "per scene (band_scale/band_offset, or the scale/offset each scene declares)"
    return desc


def write_mosaic(
    paths: list[Path], mosaic: Path, *, skip: tuple[str, ...] = (), skipped: list[str] | None = None
) -> list[Path]:
    """One VRT of every scene per CRS (`mosaic` itself when they share one), with the first scene's GEODINO tags;
    scenes written with another backbone, other layers or other input settings (`MOSAIC_IDENTITY` less `skip`)
    are refused, naming the setting and both values (they cannot share one set of bands). `skipped`: the scenes
    left out under --on-error skip, recorded as GEODINO_SKIPPED_SCENES."""
    import rasterio

    groups: dict[str, list[Path]] = {}
    grids: dict[str, list[tuple[Path, Any]]] = {}
    tags: dict[str, str] = {}

    def setting(t: dict[str, str], k: str) -> str | None:
        v = t.get(f"GEODINO_{k.upper()}")
        return scale_setting(v) if k == "input_scale" else v

    for p in paths:
        with rasterio.open(p) as src:
            key = src.crs.to_string() if src.crs else "none"
            own = {k: v for k, v in src.tags().items() if k.startswith("GEODINO_")}
            grids.setdefault(key, []).append((p, src.transform))
        if not tags:
            tags, first = own, p
        differ = [k for k in MOSAIC_IDENTITY if k not in skip and setting(tags, k) != setting(own, k)]
        if differ:
            names = [f"GEODINO_{k.upper()}" for k in differ]
            both = "; ".join(
                f"{k} {tags.get(n, 'not recorded')} vs {own.get(n, 'not recorded')}"
                for k, n in zip(differ, names, strict=True)
            )
            raise InputError(
                f"scene outputs {first.name} and {p.name} in {p.parent} were written with other settings "
                f"({both}), so they cannot share one mosaic; redo the run with the same settings on every rank and "
                "--overwrite (overwrite=True in Python)"
            )
        groups.setdefault(key, []).append(p)
    for grid in grids.values():
        off_grid_warning(grid)
    tags["GEODINO_INPUT"] = f"mosaic of {plural(len(paths), 'scene')}"
    if skipped:
        tags["GEODINO_SKIPPED_SCENES"] = ", ".join(skipped)
    from geodino.data.vrt import mosaic_vrt

    if len(groups) == 1:
        return [mosaic_vrt(paths, mosaic, metadata=tags)]
    written = []
    for key, group in groups.items():
        label = mosaic_label(key)
        written.append(mosaic_vrt(group, mosaic.with_name(f"{mosaic.stem}_{label}{mosaic.suffix}"), metadata=tags))
    return written


def off_grid_warning(grid: list[tuple[Path, Any]]) -> None:
    """Warn when scenes of one mosaic (path, transform; one CRS) have cells that do not line up with the first
    scene's: the VRT shows every scene on the first one's grid, so such a scene appears shifted by the fraction of
    a cell its origin is off (nearest cell: up to half a cell, 8 input pixels at patch size 16), against its own
    COG and the imagery. Scenes of the first scene's pixel grid are embedded on its cells (`scene_grid`), so this
    names only those that cannot be: another pixel size, an origin a fraction of a pixel off, or a scene an earlier
    version embedded on its own grid (kept by --resume). Said, not refused: the scenes' own COGs are exact, and a
    mosaic that is off by part of a cell is still a map."""
    (first, t0), off = grid[0], []
    for path, t in grid[1:]:
        same = abs(t.a - t0.a) <= 1e-9 * abs(t0.a) and abs(t.e - t0.e) <= 1e-9 * abs(t0.e)
        fx, fy = ((t.c - t0.c) / t0.a) % 1.0, ((t.f - t0.f) / t0.e) % 1.0
        fx, fy = min(fx, 1.0 - fx), min(fy, 1.0 - fy)
        if same and max(fx, fy) > 1e-3:
            off.append((path, fx, fy))
    if not off:
        return
    import warnings

    from geodino.models.caller import user_stacklevel

    path, fx, fy = max(off, key=lambda o: max(o[1], o[2]))
    one = len(off) == 1
    shift = f"{fx:.2g} x {fy:.2g} cells ({fx * abs(t0.a):.6g} x {fy * abs(t0.e):.6g} CRS units"
    shift += ")" if one else f", {path.name})"
    names = ", ".join(p.name for p, *_ in off[:5]) + (f" and {len(off) - 5} more" if len(off) > 5 else "")
    warnings.warn(
        f"{plural(len(off), 'scene')} ({names}) {'lies' if one else 'lie'} off the cell grid of {first.name}, which "
        f"the mosaic uses: the VRT shows {'it' if one else 'them'} up to {shift} away from "
        f"{'its own feature raster' if one else 'their own feature rasters'} and the imagery; for exact positions "
        "open each scene's .tif, or warp the scenes onto the first one's pixel grid (gdalwarp -tap -tr with its pixel "
        "size), whose cells they then share, and embed them again with --overwrite",
        stacklevel=user_stacklevel(),
    )


def mosaic_label(crs_text: str) -> str:
    """The file-name part of one CRS's mosaic (`mosaic_EPSG_32633.vrt`): a CRS without a code (a compound or custom
    one) named its whole WKT, a file name past the 255-byte limit (OSError after every scene was embedded); such a
    CRS gives its name, cut to 48 characters, and 8 hex digits of its WKT (two CRSs of one name stay apart)."""
    if "[" not in crs_text and "{" not in crs_text:
        return "".join(ch if ch.isalnum() else "_" for ch in crs_text)
    import hashlib

    from pyproj import CRS

    name = "".join(ch if ch.isalnum() else "_" for ch in CRS.from_user_input(crs_text).name)[:48].strip("_")
    return f"{name or 'crs'}_{hashlib.sha1(crs_text.encode()).hexdigest()[:8]}"


def write_scene_catalog(scenes: list[Scene], outs: dict[str, Path], folder: Path, mosaics: list[Path]) -> Path | None:
    """The scenes' STAC items (those another rank, or an earlier run, has not written yet) and `catalog.json` (its
    path; None when a catalog.json geodino did not write is in the way)."""
    for s in scenes:
        if not raster_item_path(outs[s.name]).exists():
            write_raster_item(outs[s.name], s.stac)
    items = [raster_item_path(outs[s.name]) for s in scenes]
    return write_catalog(folder, [p for p in items if p.exists()], mosaics=mosaics)
