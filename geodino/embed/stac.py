"""Scenes of a STAC ItemCollection, static catalog, collection or single item: one raster per item.

The JSON (a file or a URL) is read with pystac (optional extra `geodino[stac]`, imported lazily). Each item
gives one scene, either
- one asset (`--asset visual`: a multi-band raster, e.g. a COG with bands red, green, nir) with the bands
  chosen by name (the asset's `eo:bands`, `raster:bands` or STAC 1.1 `bands` names or common names) or by
  1-based number; or
- several single-band assets stacked in the order given (`--asset red,green,blue,nir`: Sentinel-2 and Landsat
  on Earth Search and Planetary Computer store one band per asset), each named by its asset key or by its
  band's name or common name (`red` finds Planetary Computer's `B04`, `B04` finds Earth Search's `red`). The
  scene then lists its `sources`; `geodino.embed.scenes` writes them into a VRT (`geodino.data.vrt.stack_files`)
  on the first asset's grid.
Pixels are then read like any raster, by windows through GDAL (`geodino.data.rasters.read_window`): remote
hrefs become GDAL virtual file system paths (`https://` -> `/vsicurl/`, `s3://` -> `/vsis3/`, `gs://` ->
`/vsigs/`), so a COG is read by HTTP range requests, never downloaded whole (a stacking VRT names them so too).

Why not odc-stac/stackstac: they load items onto one common grid (reprojecting and resampling) as a dask array
and need the projection extension; a feature raster per scene is computed on the scene's own grid, and the
windowed reader already streams COGs lazily, with the one validity rule every other input follows.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from geodino.errors import ConfigError, InputError, did_you_mean

__all__ = ["Scene", "asset_band_list", "gdal_path", "is_stac", "read_stac", "resolve_asset"]

_REMOTE = {"http://": "/vsicurl/", "https://": "/vsicurl/", "s3://": "/vsis3/", "gs://": "/vsigs/"}


@dataclasses.dataclass
class Scene:
    """One input raster of a many-scene run."""

    name: str  # output file stem (unique within a run)
    path: str  # what rasterio/GDAL opens: a local path or a /vsi... path
    bands: list[int] | None = None  # 1-based bands to read (None: the run's --bands, or all)
    origin: str = ""  # where it came from, for messages (e.g. "item S2A_1 asset visual of items.json")
    sources: list[tuple[str, str]] | None = None  # several single-band assets: (asset key, path), stacked in order
    stac: dict[str, Any] | None = None  # the STAC item it came from: href, id, datetime fields (the output's item)
    # per band read: (scale, offset) the item declares (raster:bands), DN -> physical units; None when none does
    radiometry: list[tuple[float, float]] | None = None
    # the nodata value every band read declares (raster:bands / STAC 1.1 bands `nodata`); None when not all agree
    nodata: float | None = None
    # who gave `radiometry`, in the rule line's words ("" : "declared by its STAC item", its raster:bands)
    radiometry_from: str = ""


def is_stac(text: str) -> bool:
    """Whether an input names STAC JSON (a `.json` file or URL)."""
    return str(text).split("?")[0].lower().endswith(".json")


def gdal_path(href: str) -> str:
    """A path GDAL opens for an asset href: local paths unchanged, remote URLs through a virtual file system."""
    if href.startswith("file://"):
        return href[len("file://") :]
    for scheme, vsi in _REMOTE.items():
        if href.startswith(scheme):
            return vsi + (href if vsi == "/vsicurl/" else href[len(scheme) :])
    return href


def _pystac() -> Any:
    try:
        import pystac
    except ImportError as exc:
        raise ConfigError("reading STAC needs pystac: pip install 'geodino[stac]' (or pip install pystac)") from exc
    return pystac


def _items(href: str) -> tuple[list[Any], str]:
    """The items of a STAC file/URL and what it was (for messages)."""
    pystac = _pystac()
    local = "://" not in href
    if local and not Path(href).exists():
        raise InputError(f"STAC file {href} does not exist; pass an ItemCollection, catalog or item JSON")
    try:
        d = pystac.StacIO.default().read_json(str(Path(href).resolve()) if local else href)
    except Exception as exc:  # JSON syntax, HTTP errors, permissions: pystac raises several kinds, one line each
        raise InputError(f"cannot read STAC {href}: {str(exc).splitlines()[0]}") from exc
    kind = d.get("type") if isinstance(d, dict) else None
    try:
        if kind == "FeatureCollection":
            coll = pystac.ItemCollection.from_dict(d, preserve_dict=False)
            return list(coll.items), "ItemCollection"
        if kind == "Feature":
            return [pystac.Item.from_file(href)], "item"
        if kind in ("Catalog", "Collection"):
            cat = pystac.read_file(href)
            return list(cat.get_items(recursive=True)), f"static {kind.lower()}"
    except pystac.STACError as exc:
        raise InputError(f"STAC {href} is not valid: {str(exc).splitlines()[0]}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"STAC {href} is not valid: missing or bad field {exc}") from exc
    what = "it has no 'type'" if kind is None else f"its type is {kind!r}"
    raise InputError(
        f"{href} is not STAC JSON ({what}); pass an ItemCollection (FeatureCollection), a catalog or collection, or "
        "an item"
    )


def _band_names(asset: Any) -> list[list[str]]:
    """Per band of an asset, the names it answers to (name, common name), from eo:bands / raster:bands / bands."""
    fields = asset.extra_fields
    for key in ("bands", "eo:bands", "raster:bands"):
        listed = fields.get(key)
        if isinstance(listed, list) and listed and any(isinstance(b, dict) and b.get("name") for b in listed):
            out = []
            for b in listed:
                b = b if isinstance(b, dict) else {}
                names = [str(b[k]) for k in ("name", "common_name", "eo:common_name") if b.get(k)]
                out.append(names)
            return out
    return []


def _band_radiometry(asset: Any) -> list[tuple[float | None, float | None]]:
    """Per band of an asset, the (scale, offset) it declares: STAC 1.0's raster extension (`raster:bands` objects
    with `scale`, `offset`) or STAC 1.1's `bands` (`raster:scale`, `raster:offset`); None where a band has none."""
    fields = asset.extra_fields
    found: list[tuple[float | None, float | None]] = []
    for key, names in (("raster:bands", ("scale", "offset")), ("bands", ("raster:scale", "raster:offset"))):
        listed = fields.get(key)
        if isinstance(listed, list) and any(isinstance(b, dict) and (names[0] in b or names[1] in b) for b in listed):
            for b in listed:
                b = b if isinstance(b, dict) else {}
                scale, offset = (float(b[n]) if isinstance(b.get(n), int | float) else None for n in names)
                found.append((scale, offset))
            return found
    return found


def _band_nodata(asset: Any) -> list[float | None]:
    """Per band of an asset, the nodata value it declares (`raster:bands` or STAC 1.1 `bands` `nodata`: a number,
    "inf" or "-inf"); None where a band declares none or something else. "nan" counts as none: NaN pixels are
    invalid anyway, and as the run's nodata value NaN would switch off the file's own."""
    for key in ("raster:bands", "bands"):
        listed = [b if isinstance(b, dict) else {} for b in (asset.extra_fields.get(key) or [])]
        if any("nodata" in b for b in listed):
            out: list[float | None] = []
            for b in listed:
                v = b.get("nodata")
                num = None
                if (isinstance(v, int | float) and not isinstance(v, bool)) or (
                    isinstance(v, str) and v.lower() in ("inf", "-inf")
                ):
                    num = float(v)
                out.append(num if num is not None and num == num else None)  # NaN != NaN: dropped
            return out
    return []


def _one_nodata(per_band: list[float | None]) -> float | None:
    """The one nodata value all bands read declare; None when any declares none or they differ (a run takes one
    nodata value for all bands, so the file's own nodata stays in force then)."""
    if not per_band or any(v is None for v in per_band):
        return None
    return per_band[0] if all(v == per_band[0] for v in per_band) else None


def _declared(per_band: list[tuple[float | None, float | None]], where: str) -> list[tuple[float, float]] | None:
    """The (scale, offset) of every band read, or None when no band declares one. A band that declares only one
    of them has the other's STAC default (scale 1, offset 0); when some bands declare and others do not, none is
    applied (mixing units across bands) and a warning names the item."""
    if not per_band or all(s is None and o is None for s, o in per_band):
        return None
    if any(s is None and o is None for s, o in per_band):
        import warnings

        warnings.warn(
            f"{where} declares a scale/offset (raster:bands) for some of the bands read but not all: none applied; "
            "pass --scale or --sensor for the DN rule (scale= or sensor= in Python)",
            stacklevel=3,
        )
        return None
    return [(1.0 if s is None else s, 0.0 if o is None else o) for s, o in per_band]


def asset_band_list(value: Any, key: str = "asset_bands") -> list[str] | None:
    """`asset_bands` as a list of band names or 1-based numbers (text): comma text ("red,nir") is split, a list
    keeps its items (one may hold a space). Text apart by spaces ("red nir") was one band "red nir" that no item has
    (Python's text was even read letter by letter): refused in one line naming the comma spelling; numbers apart
    by spaces ("4 3") are split, as a list key's override (`config_lists.comma_list`) splits them."""
    from geodino.data.band_args import space_rule

    if value is None:
        return None
    if isinstance(value, str):
        words = value.split()
        if "," not in value and len(words) > 1:
            if all(w.isdigit() for w in words):
                return words
            if key.startswith("--"):  # a flag: the comma spelling; a name with a space goes in the config's list
                raise ConfigError(
                    f"{key} {value!r} cannot be used: band names are apart by commas ({key} {','.join(words)}), "
                    f"not spaces; a single name with a space in it goes in a list (asset_bands=[{value.strip()!r}])"
                )
            raise ConfigError(f"{key}={value!r} cannot be used: " + "; ".join(space_rule(key, value)))
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(f"{key}={value!r} cannot be used: give band names or 1-based numbers (red,nir or [4, 3])")
    out = [str(b).strip() for b in items if str(b).strip()]
    return out or None


def select_bands(asset: Any, wanted: list[str], where: str) -> list[int]:
    """1-based band numbers of `wanted` (names or numbers) in a STAC asset; a clear error for any it lacks."""
    names = _band_names(asset)
    out = []
    for w in wanted:
        w = str(w).strip()
        if w.isdigit():
            k = int(w)
            if names and not 1 <= k <= len(names):
                raise InputError(f"band {k} is not in {where}, which has bands 1..{len(names)}")
            out.append(k)
            continue
        hits = [i + 1 for i, alias in enumerate(names) if w.lower() in (a.lower() for a in alias)]
        if not hits:
            listed = [a[0] for a in names if a]
            if not listed:
                raise InputError(
                    f"{where} lists no band names (no eo:bands/raster:bands/bands); give band numbers, e.g. "
                    "--asset-bands 1,2,3 (asset_bands=[1, 2, 3] in Python)"
                )
            close = did_you_mean(w, [a for alias in names for a in alias])
            raise InputError(
                f"band {w!r} is not in {where}, which has bands {', '.join(listed)}"
                + (f" (did you mean {close[0]}?)" if close else "")
            )
        out.append(hits[0])
    return out


def _href(asset: Any, item: Any, base: str) -> str:
    """The asset's absolute href: relative ones resolve against the item's own file, else the STAC file's folder."""
    href = asset.get_absolute_href() or asset.href
    if "://" in href or href.startswith("/"):
        return href
    owner = item.get_self_href()
    root = owner.rsplit("/", 1)[0] if owner else base
    if "://" in root:
        return f"{root}/{href}"
    return str((Path(root) / href).resolve())


def _one_band_names(asset: Any) -> list[str]:
    """The names (lower case) a single-band asset answers to through its band metadata; [] for other assets."""
    names = _band_names(asset)
    return [n.lower() for n in names[0]] if len(names) == 1 else []


def _names_an_asset(item: Any, name: str) -> bool:
    """Whether `name` is an asset key of `item` (ignoring case) or the name or common name of a single-band asset."""
    low = name.lower()
    return any(k.lower() == low or low in _one_band_names(a) for k, a in item.assets.items())


def asset_names_in(href: str, names: list[str]) -> list[str]:
    """Those of `names` that name an asset of the first item of the STAC JSON at `href` (as `--asset` resolves
    them), for the hint when they came as inputs (`--asset red nir`: nir is an asset, not a raster); [] when the
    JSON cannot be read (its own error comes when it is embedded)."""
    try:
        items, _ = _items(href)
    except (InputError, ConfigError):
        return []
    return [n for n in names if items and _names_an_asset(items[0], n)]


def resolve_asset(item: Any, name: str, where: str) -> str:
    """The key of the asset `name` names in `item`: its key (exactly, else ignoring case) or, for one-band-per-asset
    items, the name or common name of its band (`red` -> `B04`; among several, e.g. Earth Search's `red` COG and
    `red-jp2`, the GeoTIFF). One line naming the item and its keys otherwise."""
    keys = list(item.assets)
    if name in item.assets:
        return name
    hits = [k for k in keys if k.lower() == name.lower()]
    if not hits:
        hits = [k for k in keys if name.lower() in _one_band_names(item.assets[k])]
        if len(hits) > 1:
            tiffs = [k for k in hits if "tiff" in str(item.assets[k].media_type or "").lower()]
            hits = tiffs or hits
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise InputError(
            f"{where}: {name!r} names several assets ({', '.join(hits)}); pass the asset key you mean with --asset "
            "(asset= in Python)"
        )
    parts = [p for p in re.split(r"[\s;|+]+", name) if p]
    if len(parts) > 1 and all(_names_an_asset(item, p) for p in parts):
        raise ConfigError(
            f"--asset {name!r} (asset= in Python): give several single-band assets apart by commas (--asset "
            f"{','.join(parts)}); "
            "one name is one asset key"
        )
    aliases = [a for k in keys for a in [k, *(b for bands in _band_names(item.assets[k])[:1] for b in bands)]]
    close = did_you_mean(name, aliases)
    raise InputError(
        f"{where} has no asset {name!r}"
        + (f" (did you mean {close[0]}?)" if close else "")
        + f"; it has {', '.join(keys) or 'no assets'}; pass one of them with --asset (asset= in Python)"
    )


def read_stac(href: str, asset: str | None, bands: list[str] | str | None = None) -> list[Scene]:
    """One `Scene` per item of the STAC JSON at `href`.

    `asset`: one asset key (bands by name or number in `bands`, None: all) or several, comma-separated, of
    single-band assets to stack in that order (keys or band names/common names; the scene's `sources`). Only the
    JSON is read: no asset is opened here.
    """
    if not asset or not asset.strip(" ,"):
        raise ConfigError(
            f"STAC input {href} needs --asset NAME (asset= in Python): the item asset to embed, e.g. visual or image"
        )
    wanted = [a.strip() for a in asset.split(",") if a.strip()]
    bands = asset_band_list(bands)
    if len(wanted) > 1 and bands:
        raise ConfigError(
            f"--asset-bands (asset_bands= in Python) chooses bands inside one multi-band asset, but --asset {asset} "
            f"stacks {len(wanted)} "
            f"single-band assets; drop --asset-bands (the assets' order is the band order)"
        )
    items, kind = _items(href)
    if not items:
        raise InputError(
            f"STAC {href} holds no items (an empty {kind}); check the search that wrote it or the catalog's item links"
        )
    base = href.rsplit("/", 1)[0] if "://" in href else str(Path(href).resolve().parent)
    scenes: list[Scene] = []
    used: set[str] = set()
    for item in items:
        where = f"STAC item {item.id} in {href}"
        keys = [resolve_asset(item, w, where) for w in wanted]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ConfigError(
                f"--asset {asset} (asset= in Python) names asset {dup[0]!r} of {where} twice; list each band once"
            )
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(item.id)) or "item"
        stem, k = name, 1
        while name in used:
            k += 1
            name = f"{stem}_{k}"
        used.add(name)
        # the item's own file: its self link, or the input when the input is that one item (an ItemCollection's
        # member has no file of its own: no link, rather than one to the collection, which is not an item)
        own = item.get_self_href() or (
            (href if "://" in href else str(Path(href).resolve())) if kind == "item" else None
        )
        stac = {"href": own, "id": str(item.id)}
        times = ("datetime", "start_datetime", "end_datetime")
        stac.update({t: item.properties[t] for t in times if item.properties.get(t)})
        if len(keys) == 1:
            a = item.assets[keys[0]]
            picked = select_bands(a, bands, f"asset {keys[0]!r} of {where}") if bands else None
            per_band = _band_radiometry(a)
            if picked and per_band:
                per_band = [per_band[k - 1] if k <= len(per_band) else (None, None) for k in picked]
            nodata = _band_nodata(a)
            if picked and nodata:
                nodata = [nodata[k - 1] if k <= len(nodata) else None for k in picked]
            names = _band_names(a)  # a reflectance band is an asset of its own (a 3-band `visual` is 8-bit colour)
            if not names and len(picked or [1]) == 1:
                names = [[]]  # an asset listing no bands: its key names it (B04), as when assets are stacked
            aliases = [[keys[0], *names[0]]] if len(names) == 1 else [[]] * max(len(picked or names), 1)
            per_band, said = _s2_rule(item, per_band, aliases)
            scenes.append(
                Scene(
                    name,
                    gdal_path(_href(a, item, base)),
                    picked,
                    f"asset {keys[0]!r} of {where}",
                    stac=stac,
                    radiometry=_declared(per_band, f"asset {keys[0]!r} of {where}"),
                    nodata=_one_nodata(nodata),
                    radiometry_from=said,
                )
            )
        else:
            for key in keys:
                listed = _band_names(item.assets[key])
                if len(listed) > 1:
                    raise InputError(
                        f"asset {key!r} of {where} has {len(listed)} bands; --asset (asset= in Python) with several "
                        "assets stacks "
                        f"single-band ones (embed {key!r} alone: --asset {key} --asset-bands ...)"
                    )
            sources = [(key, gdal_path(_href(item.assets[key], item, base))) for key in keys]
            origin = f"assets {', '.join(keys)} of {where}"
            per_band = [(_band_radiometry(item.assets[key]) or [(None, None)])[0] for key in keys]
            aliases = [[key, *(_band_names(item.assets[key]) or [[]])[0]] for key in keys]
            per_band, said = _s2_rule(item, per_band, aliases)
            one_nodata = _one_nodata([(_band_nodata(item.assets[key]) or [None])[0] for key in keys])
            rule = _declared(per_band, origin)
            scenes.append(Scene(name, "", None, origin, sources, stac, rule, one_nodata, radiometry_from=said))
    return scenes


def _s2_rule(
    item: Any, per_band: list[tuple[float | None, float | None]], aliases: list[list[str]]
) -> tuple[list[tuple[float | None, float | None]], str]:
    """The bands' (scale, offset) of a Sentinel-2 item as its properties correct or supply them, and who gave them
    ("" for the item's raster:bands as they are; `geodino.data.s2_product`):

    - an Earth Search item saying its pixels hold the processing-baseline-04.00 offset already
      (`earthsearch:boa_offset_applied` true) keeps its raster:bands scale but not their offset (-0.1, which
      applied to those pixels again takes 0.1 off every reflectance);
    - an item declaring no scale/offset (Planetary Computer's) gets the rule of its `s2:processing_baseline` for its
      reflectance bands: (DN - 1000) / 10000 from 04.00 on, DN / 10000 before (bands of other kinds, SCL or AOT,
      none)."""
    from geodino.data.s2_product import offset_applied, reflectance_band, stac_baseline_rule

    props = item.properties
    declared = [(s, o) for s, o in per_band if s is not None or o is not None]
    if declared:
        key = offset_applied(props)
        if not key or all(not o for _, o in declared):
            return per_band, ""
        said = f"declared by its STAC item's raster:bands scale; their offset left out, {key} saying its pixels hold it"
        return [(s, 0.0 if o is not None else None) for s, o in per_band], said
    implied = stac_baseline_rule(props)
    if implied is None or not any(reflectance_band(a) for a in aliases):
        return per_band, ""
    rule, said = implied
    return [rule if reflectance_band(a) else (None, None) for a in aliases], f"declared by {said}"
