"""VRT mosaics of many rasters (`mosaic_vrt`): split from `geodino.data.vrt` (which re-exports it).

Many rasters of one CRS and band count side by side on the finest of their grids (lon/lat ones on both sides of
the antimeridian with the western ones east past 180: `geodino.data.mosaic_antimeridian`), each source masked by its
nodata so that overlaps show the valid one (later files win), with dataset metadata (e.g. the `GEODINO_*` tags of
feature rasters) so that tools reading the mosaic see what they see in one file. The tags that describe one input
(`PER_INPUT`) are made true for the mosaic from its sources' own (`mosaic_tags`): gdalinfo and QGIS showed the first
scene's input bounds and window on a mosaic of many.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from geodino.errors import InputError, one_line, plural

__all__ = ["PER_INPUT", "mosaic_tags", "mosaic_vrt", "shared_overviews"]

# feature-raster tags that describe the one input a raster was embedded from (`embed.prepare._records`)
PER_INPUT = (
    *("GEODINO_INPUT_BOUNDS", "GEODINO_INPUT_WINDOW", "GEODINO_INPUT_NODATA", "GEODINO_INPUT_TIME"),
    "GEODINO_INPUT_IDENTITY",
)


def mosaic_tags(
    metadata: Mapping[str, str], sources: Sequence[Mapping[str, str]], shifts: Sequence[float] | None = None
) -> dict[str, str]:
    """`metadata` with its `PER_INPUT` tags made true for a mosaic of rasters tagged `sources`: GEODINO_INPUT_BOUNDS
    the union of the sources' input bounds ([left, bottom, right, top], one CRS, each moved by its x offset in
    `shifts` as the mosaic placed it (`mosaic_antimeridian`); left out unless every source records finite ones), no
    GEODINO_INPUT_WINDOW (input pixels of one scene) nor GEODINO_INPUT_IDENTITY (one scene's file by content),
    GEODINO_INPUT_NODATA and GEODINO_INPUT_TIME only when every source records the same. Other tags are kept as
    given."""
    out = {k: v for k, v in metadata.items() if k not in PER_INPUT}
    if "GEODINO_INPUT_BOUNDS" in metadata:
        boxes = [_bounds(t.get("GEODINO_INPUT_BOUNDS")) for t in sources]
        if shifts is not None:
            boxes = [b and [b[0] + m, b[1], b[2] + m, b[3]] for b, m in zip(boxes, shifts, strict=True)]
        if boxes and all(b is not None for b in boxes):
            lefts, bottoms, rights, tops = zip(*boxes, strict=True)
            out["GEODINO_INPUT_BOUNDS"] = json.dumps([min(lefts), min(bottoms), max(rights), max(tops)])
    for key in ("GEODINO_INPUT_NODATA", "GEODINO_INPUT_TIME"):
        values = {t.get(key) for t in sources}
        if key in metadata and len(values) == 1 and None not in values:
            out[key] = values.pop()  # type: ignore[assignment]
    return out


def shared_overviews(scales: Sequence[tuple[float, float]], overviews: Sequence[Sequence[int]]) -> list[int]:
    """The overview factors of a mosaic's grid that every source has (a source `scales` (x, y) times coarser than
    the grid with overview factor k has the grid's factor k * scale), for the VRT's `<OverviewList>`.

    GDAL exposes a VRT's sources' overviews only when each band has one source; a mosaic of many listed none
    (`gdalinfo`, QGIS's pyramids, `src.overviews(1)` == []). Zoomed-out reads were fast all the same, as GDAL
    reads each source at the reduced size from its own overviews; declared ones give the same pixels (measured:
    a 3-scene 16-band float mosaic read 8x smaller: equal values, 0.06-0.14 s either way, > 120 s from sources
    without overviews)."""
    common: set[int] | None = None
    for (sx, sy), ovrs in zip(scales, overviews, strict=True):
        own = {round(k * sx) for k in ovrs if abs(k * sx - round(k * sx)) < 1e-6 and abs(k * sx - k * sy) < 1e-6}
        common = own if common is None else common & own
    return sorted(f for f in common or () if f > 1)


def _moved(t: Any, dx: float) -> Any:
    """Geotransform `t` moved `dx` along x (a scene placed 360 degrees east)."""
    from rasterio.transform import Affine

    return Affine(t.a, t.b, t.c + dx, t.d, t.e, t.f)


def _bounds(text: str | None) -> list[float] | None:
    """[left, bottom, right, top] from a GEODINO_INPUT_BOUNDS tag, or None when missing or not four finite numbers."""
    try:
        box = [float(v) for v in json.loads(text)]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return box if len(box) == 4 and all(math.isfinite(v) for v in box) else None


def mosaic_vrt(paths: Sequence[str | Path], out: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write a VRT mosaic of `paths` (same CRS, band count and data type; north-up) at `out`; returns its path.

    The mosaic covers the union of the rasters on the finest of their resolutions, aligned on the first one's
    origin. Band descriptions come from the first raster; `metadata` becomes the VRT's dataset metadata, its tags
    of one input (`PER_INPUT`) made true for the mosaic (`mosaic_tags`). The overview factors every source has are
    declared (`shared_overviews`). Files in or below the VRT's folder are referenced relative to it, so the folder
    can be moved or shared as a whole.
    """
    import os

    import rasterio

    from geodino.data.vrt import _GDAL_TYPES, _xml_number, north_up

    out = Path(out)
    if not paths:
        raise InputError(f"no rasters to mosaic into {out}")
    infos = []
    source_tags = []
    source_ovrs = []
    for path in paths:
        try:
            with rasterio.open(path) as src:
                infos.append(
                    (
                        str(path),
                        src.crs,
                        src.transform,
                        src.width,
                        src.height,
                        src.count,
                        src.dtypes[0],
                        src.nodata,
                        src.descriptions,
                    )
                )
                source_tags.append(src.tags())
                source_ovrs.append(src.overviews(1))
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"cannot read {path} for the mosaic {out}: {one_line(exc)}") from exc
    first = infos[0]
    for path, crs, t, _, _, count, dtype, *_ in infos:
        if crs != first[1] or count != first[5] or dtype != first[6]:
            raise InputError(
                f"{path} ({crs}, {plural(count, 'band')}, {dtype}) cannot join the mosaic {out} of {first[0]} "
                f"({first[1]}, {plural(first[5], 'band')}, {first[6]}); mosaic rasters of one CRS, band count and type"
            )
        if not north_up(t):
            raise InputError(f"{path} has a rotated or south-up geotransform; a mosaic needs north-up rasters")
    # lon/lat scenes on both sides of the antimeridian: the western ones placed east past 180 (one narrow mosaic)
    from geodino.data.mosaic_antimeridian import antimeridian_shifts, antimeridian_warning

    spans = [(i[2].c, i[2].c + i[3] * i[2].a) for i in infos]
    shifts = antimeridian_shifts(first[1], spans)
    if shifts is not None:
        import warnings

        from geodino.models.caller import user_stacklevel

        warnings.warn(antimeridian_warning(out.name, spans, shifts), stacklevel=user_stacklevel())
        infos = [(i[0], i[1], _moved(i[2], m), *i[3:]) for i, m in zip(infos, shifts, strict=True)]
        first = infos[0]
    res_x = min(i[2].a for i in infos)
    res_y = min(-i[2].e for i in infos)
    x0 = min(i[2].c for i in infos)
    y0 = max(i[2].f for i in infos)
    x1 = max(i[2].c + i[3] * i[2].a for i in infos)
    y1 = min(i[2].f + i[4] * i[2].e for i in infos)
    # align on the first raster's origin so that a mosaic of one raster (or of tiles of one grid) is pixel-exact
    t0 = first[2]
    x0 = t0.c - math.ceil(round((t0.c - x0) / res_x, 6)) * res_x
    y0 = t0.f + math.ceil(round((y0 - t0.f) / res_y, 6)) * res_y
    width = math.ceil(round((x1 - x0) / res_x, 6))
    height = math.ceil(round((y0 - y1) / res_y, 6))
    folder = out.parent.resolve()
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f"  <SRS>{escape(first[1].to_wkt())}</SRS>" if first[1] is not None else "",
        f"  <GeoTransform>{x0!r}, {res_x!r}, 0.0, {y0!r}, 0.0, {-res_y!r}</GeoTransform>",
    ]
    factors = shared_overviews([(i[2].a / res_x, -i[2].e / res_y) for i in infos], source_ovrs)
    if factors and len(infos) > 1:  # one source: GDAL already exposes its overviews (implicit ones)
        how = "nearest" if first[6].startswith(("int", "uint")) else "average"  # codes are not averaged
        lines.append(f'  <OverviewList resampling="{how}">{" ".join(map(str, factors))}</OverviewList>')
    metadata = mosaic_tags(metadata or {}, source_tags, shifts)
    if metadata:
        lines.append("  <Metadata>")
        lines += [f'    <MDI key="{escape(str(k))}">{escape(str(v))}</MDI>' for k, v in metadata.items()]
        lines.append("  </Metadata>")
    sources = []
    for path, _, t, w, h, *_rest in infos:
        full = Path(path).resolve()
        rel = os.path.relpath(full, folder)
        inside = not rel.startswith("..")  # under the VRT's folder: written relative to it
        sources.append((escape(rel if inside else str(full)), int(inside), t, w, h, _rest[2]))
    for b in range(1, first[5] + 1):
        nodata = first[7]
        desc = first[8][b - 1] if first[8] else None
        lines += [
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(first[6], "Float32")}" band="{b}">',
            *([f"    <Description>{escape(desc)}</Description>"] if desc else []),
            *([f"    <NoDataValue>{_xml_number(nodata)}</NoDataValue>"] if nodata is not None else []),
        ]
        for name, relative, t, w, h, src_nodata in sources:
            lines += [
                "    <ComplexSource>",
                f'      <SourceFilename relativeToVRT="{relative}">{name}</SourceFilename>',
                f"      <SourceBand>{b}</SourceBand>",
                f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                f'      <DstRect xOff="{(t.c - x0) / res_x!r}" yOff="{(y0 - t.f) / res_y!r}" '
                f'xSize="{w * t.a / res_x!r}" ySize="{h * -t.e / res_y!r}"/>',
                *([f"      <NODATA>{_xml_number(src_nodata)}</NODATA>"] if src_nodata is not None else []),
                "    </ComplexSource>",
            ]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    from geodino.io import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(line for line in lines if line) + "\n")
    return out
