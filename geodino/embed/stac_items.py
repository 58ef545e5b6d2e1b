"""STAC items of feature rasters: `geodino embed` describes each output it writes (`features.tif` ->
`features.stac.json`; each scene of a many-scene run, plus `catalog.json` listing them), so STAC browsers, QGIS
and catalogue servers can find and open the features like any other product.

An item holds:
- geometry and bbox: the raster's footprint in EPSG:4326 (`geodino.data.footprints`: the true outline through the
  geotransform, split at the antimeridian; the bbox then runs west > east as RFC 7946 says); null when the raster
  has no CRS;
- the projection extension (v2.0.0): `proj:code` (`EPSG:32633`, `ESRI:54009` ...; null without an authority
  code), `proj:wkt2`, `proj:shape`
  [height, width], `proj:transform` (the six affine numbers), `proj:bbox` in the raster's CRS;
- one asset `data` (COG or Zarr store, href relative to the item) with `raster:bands` (v1.1.0): name, data type,
  nodata ("nan" for float, -128 for int8) and the cell size. int8 features carry no `scale`/`offset`: their
  quantisation is square-root companding (`geodino.embed.encoding`), which no linear scale undoes; the rule is the
  item's `geodino:dequantization`;
- `geodino:input_bbox`: the input's own bounds (`geodino:input_bounds`, in the raster's CRS) as a lon/lat bbox: the
  feature grid's last partial cells make the asset (bbox, geometry) up to p-1 input pixels wider and taller;
- `geodino:*` properties: the metadata the raster carries (backbone spec and fingerprint, layers, layer mode, patch
  size, embedding width, dtype, input, input scaling, inference path ...), `processing:software`;
- `datetime`: the source STAC item's (or its start/end), else the input's date `geodino:input_time` when it is an
  ISO date (UTC unless it says otherwise): a datacube's `time` option, or a raster's acquisition time (GDAL's
  IMAGERY `ACQUISITIONDATETIME`: `geodino.data.acquisition_time`), else when the raster was finished (its file
  time); `geodino:datetime_source` says which ("stac", "input" or "created");
- `id`: the raster's name and a 12-hex digest of its backbone, settings, input and grid (`raster_item_id`), unique
  across runs that all write `features.tif`;
- links `derived_from`: the source STAC item (when the scene came from one) and the backbone's MLM item (an export's
  `X.stac.json`, with its `mlm:name`, as the MLM spec asks of inference outputs).

Written with plain dicts (pystac is an optional extra, used only to read STAC), atomically, after the raster is in
place: a refused or killed run leaves no item. A `catalog.json` that is not geodino's (left alone) and items of an
earlier run that this run's catalog no longer lists are each a `UserWarning` (`warnings.warn`; the command line shows
it as one line "geodino: warning: ...").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CATALOG", "raster_item", "raster_item_id", "raster_item_path", "write_catalog", "write_raster_item"]

STAC_VERSION = "1.1.0"
PROJ_SCHEMA = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_SCHEMA = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
ZARR_TYPE = "application/vnd+zarr"
CATALOG = "catalog.json"
MARK = "geodino:feature_rasters"  # a catalog.json carrying this was written here and may be replaced
DATETIMES = ("datetime", "start_datetime", "end_datetime")


def raster_item_path(out: str | Path) -> Path:
    """`features.stac.json` for the COG `features.tif`, `features.zarr.stac.json` for the Zarr store `features.zarr`:
    the docs write both formats of one name into one folder (a COG for GIS, a store for Python), and one shared
    `features.stac.json` was silently taken over by the second."""
    out = Path(out)
    if out.suffix.lower() == ".zarr":
        return out.with_name(out.name + ".stac.json")
    return out.with_name(out.stem + ".stac.json")


ID_KEYS = ("model_fingerprint", "layers", "layer_mode", "final_norm", "l2_normalize", "dtype", "input", "input_bands")


def raster_item_id(
    stem: str,
    meta: Mapping[str, Any],
    crs: str | None,
    transform: Sequence[float],
    shape: Any,
    source: Mapping[str, Any] | None = None,
) -> str:
    """`STEM-<12 hex>`: the hex is a sha256 of what makes the features what they are (backbone fingerprint, layers,
    normalisation, dtype, input and its bands) and where they lie (CRS: its authority code when it has one, since
    PROJ versions spell the same CRS's WKT differently; grid, shape). Every single-raster run
    writes `features` and every run over a scene names it after the scene, so the stem alone collides in a
    catalogue holding several runs; the same product written again keeps its id (a catalogue server updates it),
    wherever it is written from: the input counts by `_input_identity`, not by the path it was given as."""
    import hashlib

    key = {k: str(meta.get(k)) for k in ID_KEYS} | {"crs": crs, "transform": list(transform), "shape": shape}
    key["input"] = _input_identity(meta.get("input"), source)
    return f"{stem}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]}"


def _input_identity(given: Any, source: Mapping[str, Any] | None) -> str:
    """The input as an id can use it: a scene's source STAC item by its id (its pixels were read through a stacked
    VRT in the output folder, whose path is the machine's); a URL or GDAL virtual path as it is; a local file by
    its size and the sha256 of its first 64 KiB (a GeoTIFF's header and first blocks), not by its path: `in.tif`,
    `./in.tif` and `/data/in.tif`, or a copy on another machine, are one input, and same-named files of other
    dates are not. A VRT by its name: it holds its sources' paths, so its bytes are the machine's too."""
    from geodino.embed.provenance import file_digest

    if source and source.get("id"):
        return f"item:{source.get('collection') or ''}/{source['id']}"
    text = str(given or "")
    if not text or "://" in text or text.startswith("/vsi"):
        return text
    path = Path(text).expanduser()
    digest = None if path.suffix.lower() == ".vrt" else file_digest(path)
    return path.name if digest is None else f"{digest[0]}:{digest[1]}"


def _stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _input_datetime(label: Any) -> str | None:
    """A datacube date label (`input_time`: "2024-02-01", "2024-02-01T10:32:11") as STAC's RFC 3339 UTC text, or
    None for no label or one that is not an ISO date (a cube's time coordinate may be plain numbers). The features
    show that date: a time series of feature rasters stamped with the day they were computed could not be searched
    by date."""
    if not isinstance(label, str) or not label.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(label.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z"


def _value(text: Any) -> Any:
    """A metadata value as JSON when it is JSON (numbers, lists, booleans), else the text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _geometry(crs: Any, transform: Any, width: int, height: int) -> tuple[dict | None, list[float] | None]:
    """(GeoJSON footprint in EPSG:4326, bbox) or (None, None) for a raster that cannot be placed."""
    import shapely

    from geodino.data.footprints import footprint, geojson_bbox
    from geodino.data.rasters import SceneInfo

    if crs is None:
        return None, None
    scene = SceneInfo(
        path="",
        crs=crs.to_wkt(),
        transform=tuple(transform)[:6],
        width=width,
        height=height,
        count=1,
        dtype="float32",
        nodata=None,
        band_names=(),
        band_indexes=(1,),
    )
    geom, _ = footprint(scene, "EPSG:4326")  # cut at the antimeridian by hand where GDAL's cut fails
    if geom is None:
        return None, None
    return shapely.geometry.mapping(geom), geojson_bbox(geom)


def _input_bbox(crs: Any, bounds: Any, transform: Any = None, meta: Any = None) -> list[float] | None:
    """The input's bounds (`geodino:input_bounds`, [left, bottom, right, top] in the raster's CRS) as a lon/lat bbox
    like the item's; None when not recorded (rasters written before it) or not placeable. On a rotated grid those
    bounds are the envelope of the input's parallelogram: the bbox is the parallelogram's (`input_corners`), whose
    lon/lat extent the envelope's corners overstate, when the metadata gives it."""
    from affine import Affine

    from geodino.embed.placement import input_corners

    try:
        left, bottom, right, top = (float(v) for v in bounds)
    except (TypeError, ValueError):
        return None
    if not right > left or not top > bottom:
        return None
    rotated = transform is not None and (transform.b != 0 or transform.d != 0)
    corners = input_corners(transform, meta, bounds) if rotated and meta is not None else None
    if corners is not None:
        (x0, y0), (x1, y1), _, (x3, y3) = corners
        return _geometry(crs, Affine(x1 - x0, x3 - x0, x0, y1 - y0, y3 - y0, y0), 1, 1)[1]
    return _geometry(crs, Affine(right - left, 0.0, left, 0.0, bottom - top, top), 1, 1)[1]


def _model_link(spec: str | None, folder: Path) -> dict[str, Any] | None:
    """A `derived_from` link to the MLM item of the backbone when the spec names an export that has one."""
    from geodino.models.checkpoints.stac_item import export_item_path

    if not spec or ":" in spec.split("?")[0].split("/")[0]:  # arch:, timm:, baseline:, a URL: no file
        return None
    path = Path(spec).expanduser()
    if not path.exists() and "?" in spec:
        path = Path(spec.split("?", 1)[0]).expanduser()
    item = export_item_path(path)
    if not path.is_file() or not item.is_file():
        return None
    try:
        name = json.loads(item.read_text())["properties"]["mlm:name"]
    except (OSError, ValueError, KeyError, TypeError):  # not an MLM item after all
        return None
    try:  # lexical (abspath, not resolve): a STAC reader joins the href to the item's folder as written, symlinks
        href = os.path.relpath(os.path.abspath(item), os.path.abspath(folder))  # and all
    except ValueError:  # another drive (Windows): absolute
        href = str(item.resolve())
    return {"rel": "derived_from", "href": href, "type": "application/geo+json", "title": "backbone", "mlm:name": name}


def _bands(names: Sequence[str], dtype: str, crs: Any, transform: Any) -> list[dict[str, Any]]:
    """`raster:bands`: name, data type, nodata (the stored encoding's: `embed.encoding.nodata_of`; NaN as the
    string "nan", which JSON has no number for) and (in a metric CRS) the cell size in metres."""
    import math

    from geodino.embed.encoding import nodata_of

    code = nodata_of(dtype)
    nodata: Any = "nan" if isinstance(code, float) and math.isnan(code) else code
    band: dict[str, Any] = {"data_type": dtype, "nodata": nodata}
    if crs is not None and crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m"):
        band["spatial_resolution"] = float(math.hypot(transform.a, transform.d))
    return [{"name": str(n), **band} for n in names]


def raster_item(out: str | Path, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The STAC item of the feature raster `out` (a `.tif` or `.zarr` `geodino embed` wrote). `source`: the STAC item
    the scene came from (`href`, `id` and its datetime fields), linked as `derived_from`."""
    import geodino
    from geodino.embed.reader import EmbeddingReader
    from geodino.embed.store_info import read_store_info  # without xarray

    out = Path(out)
    with EmbeddingReader(out) as r:
        crs, transform, meta = r.crs, r.transform, dict(r.metadata)
        width, height, count, dtype = r.width, r.height, r.count, r.src.dtypes[0]
        names = list(r.src.descriptions) if out.suffix.lower() != ".zarr" else []
    if out.suffix.lower() == ".zarr":
        names, dtype = read_store_info(out)["band_names"], str(meta.get("dtype", dtype))
    names = [n or f"E{i:03d}" for i, n in enumerate(names or [None] * count)]
    geometry, bbox = _geometry(crs, transform, width, height)
    authority = crs.to_authority() if crs is not None else None  # EPSG, ESRI, IAU...: projection v2's proj:code
    corners = [transform * (c, r) for c in (0, width) for r in (0, height)]  # all four: rotated grids too
    xs, ys = [float(x) for x, _ in corners], [float(y) for _, y in corners]
    props: dict[str, Any] = {
        "title": f"{out.stem}: geodino feature raster",
        "description": f"{count} bands of {meta.get('model_spec', 'backbone')} features (layers "
        f"{meta.get('layers', '?')}, {meta.get('dtype', dtype)}) of {meta.get('input', 'the input')}, written by "
        f"geodino embed",
        "created": _stamp(out.stat().st_mtime),
        "proj:code": ":".join(authority) if authority else None,
        "proj:wkt2": crs.to_wkt(version="WKT2_2019") if crs is not None else None,
        "proj:shape": [height, width],
        "proj:transform": [float(v) for v in tuple(transform)[:6]],
        "proj:bbox": [min(xs), min(ys), max(xs), max(ys)],
        "processing:software": {"geodino": geodino.__version__},
        **{f"geodino:{k}": _value(v) for k, v in sorted(meta.items())},
    }
    in_bbox = _input_bbox(crs, props.get("geodino:input_bounds"), transform, meta)
    if in_bbox is not None:  # the input's own extent: the asset's (bbox, geometry) reaches past it by partial cells
        props["geodino:input_bbox"] = in_bbox
    times = {k: (source or {}).get(k) for k in DATETIMES if (source or {}).get(k)}
    when = _input_datetime(meta.get("input_time"))
    props.update(times or {"datetime": when or props["created"]})
    props.setdefault("datetime", None)
    # where `datetime` comes from, so a search can keep to items dated by their scene: "created" is the day the
    # features were computed, not an acquisition time (STAC needs a datetime, or a start and end, all the same)
    props["geodino:datetime_source"] = "stac" if times else "input" if when else "created"
    asset: dict[str, Any] = {
        "href": f"./{out.name}",
        "type": ZARR_TYPE if out.suffix.lower() == ".zarr" else COG_TYPE,
        "title": f"{count}-band feature raster",
        "roles": ["data"],
        "raster:bands": _bands(names, dtype, crs, transform),
    }
    extensions = [PROJ_SCHEMA, RASTER_SCHEMA, PROCESSING_SCHEMA]
    if out.is_file():
        asset["file:size"] = out.stat().st_size
        extensions.append(FILE_SCHEMA)
    links = []
    if source and source.get("href"):
        title = f"source item {source.get('id', '')}".strip()
        href = str(source["href"])
        if "://" not in href:  # a local file: relative to this item, so the folder can be moved or published
            href = os.path.relpath(os.path.abspath(href), os.path.abspath(out.parent))
        links.append({"rel": "derived_from", "href": href, "type": "application/geo+json", "title": title})
    model = _model_link(str(meta.get("model_spec") or ""), out.parent)
    if model:
        links.append(model)
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": raster_item_id(
            out.stem,
            meta,
            props["proj:code"] or props["proj:wkt2"],
            props["proj:transform"],
            props["proj:shape"],
            source,
        ),
        "geometry": geometry,
        "properties": props,
        "links": links,
        "assets": {"data": asset},
    }
    if bbox is not None:
        item["bbox"] = bbox
    return item


def _write_json(path: Path, obj: Mapping[str, Any]) -> Path:
    from geodino.io import atomic_path, json_text

    with atomic_path(path) as tmp:
        tmp.write_text(json_text(obj, indent=1) + "\n")
    return path


def write_raster_item(out: str | Path, source: Mapping[str, Any] | None = None) -> Path | None:
    """Write `raster_item(out, source)` beside the raster, atomically; None (nothing written) while the raster is not
    there yet (another rank finishes it) or when the item's name is the source item's own file. An item the
    geodino `catalog.json` beside it lists (a scene redone alone later) keeps its `root` and `parent` links."""
    out = Path(out)
    path = raster_item_path(out)
    if not out.exists():
        return None
    href = str((source or {}).get("href") or "")
    if href and "://" not in href and Path(href).expanduser().resolve() == path.resolve():
        return None  # the input item itself sits there: never overwrite it
    item = raster_item(out, source)
    if _in_catalog(path):  # rewritten into a folder whose catalog lists it: it keeps its links up to the catalog
        item["links"] = item["links"] + _up_links()
    return _write_json(path, item)


def _in_catalog(item_path: Path) -> bool:
    """Whether the geodino `catalog.json` beside `item_path` lists it (a scene of a many-scene run)."""
    try:
        catalog = json.loads((item_path.parent / CATALOG).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(catalog, dict) or MARK not in catalog:
        return False
    href = f"./{item_path.name}"
    return any(lk.get("rel") == "item" and lk.get("href") == href for lk in catalog.get("links") or [])


def _up_links() -> list[dict[str, Any]]:
    """`root` and `parent` links to the `catalog.json` beside an item."""
    return [{"rel": rel, "href": f"./{CATALOG}", "type": "application/json"} for rel in ("root", "parent")]


def write_catalog(folder: str | Path, items: Sequence[Path], *, mosaics: Sequence[Path] = ()) -> Path | None:
    """`folder/catalog.json`: a self-contained static STAC catalog linking the scene items (relative hrefs; each
    item gets `root` and `parent` links back to it), so a STAC browser or QGIS opens the folder. A `catalog.json`
    geodino did not write is left alone (None, with a `UserWarning`), and so are the items' links."""
    from geodino.errors import plural

    folder = Path(folder)
    path = folder / CATALOG
    listed: list[str] = []  # the items the catalog being replaced listed
    if path.exists():
        try:
            old = json.loads(path.read_text())
            ours = MARK in old
            listed = [lk["href"] for lk in old.get("links") or [] if lk.get("rel") == "item" and lk.get("href")]
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            ours = False
        if not ours:
            warnings.warn(f"{path} exists and is not geodino's; the scenes' STAC catalog is not written", stacklevel=2)
            return None
    links = [{"rel": "root", "href": f"./{CATALOG}", "type": "application/json"}]
    for p in items:
        title = p.name[: -len(".stac.json")]
        links.append({"rel": "item", "href": f"./{p.name}", "type": "application/geo+json", "title": title})
    shown = ", ".join(p.name for p in mosaics)
    catalog = {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": folder.resolve().name or "feature-rasters",
        "title": f"geodino feature rasters in {folder.resolve().name}",
        "description": f"{plural(len(items), 'feature raster')} written by geodino embed, one per scene"
        + (f"; their VRT {'mosaic' if len(mosaics) == 1 else 'mosaics'}: {shown}" if shown else ""),
        MARK: [p.name for p in mosaics],
        "links": links,
    }
    _write_json(path, catalog)
    for p in items:  # a self-contained catalog: each item links up to it, so one opened alone can be navigated up
        _link_up(p)
    _unlink_dropped(folder, listed, items)
    return path


def _unlink_dropped(folder: Path, listed: Sequence[str], items: Sequence[Path]) -> None:
    """Items an earlier run's catalog listed that this run's does not (a rerun over fewer scenes into the same
    folder) lose their `root`/`parent` links, which would point at a catalog that no longer lists them, and a
    warning names them: their rasters stay (geodino deletes no output it did not write in this run) but are in
    neither the catalog nor the mosaic."""
    kept = {f"./{p.name}" for p in items}
    dropped = [folder / href[2:] for href in listed if href.startswith("./") and href not in kept]
    dropped = [p for p in dropped if p.parent == folder and p.is_file()]
    for p in dropped:
        try:
            item = json.loads(p.read_text())
            links = item.get("links") or []
        except (OSError, ValueError, AttributeError):
            continue
        item["links"] = [
            lk for lk in links if not (lk.get("rel") in ("root", "parent") and lk.get("href") == f"./{CATALOG}")
        ]
        _write_json(p, item)
    if dropped:
        from geodino.errors import plural

        warnings.warn(
            f"{plural(len(dropped), 'feature raster')} of an earlier run in {folder} "
            f"(e.g. {dropped[0].name}) {'is' if len(dropped) == 1 else 'are'} not among this run's scenes: left out of "
            f"{CATALOG} and the mosaic; delete {'it' if len(dropped) == 1 else 'them'} or embed "
            f"{'it' if len(dropped) == 1 else 'them'} again with the others",
            stacklevel=3,  # the caller of write_catalog
        )


def _link_up(item_path: Path) -> None:
    """Give a scene item `root` and `parent` links to the `catalog.json` beside it (replacing any it had)."""
    try:
        item = json.loads(item_path.read_text())
    except (OSError, ValueError):  # gone or damaged since it was written: the catalog still lists what exists
        return
    item["links"] = [lk for lk in item.get("links") or [] if lk.get("rel") not in ("root", "parent")] + _up_links()
    _write_json(item_path, item)
