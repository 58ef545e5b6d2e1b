"""Canopy height model (CHM) rasters of the canopy probe: pairing images with CHMs by name, co-registering a CHM
onto its image's grid by bounds, and writing predicted heights as a GeoTIFF on the input's grid.

The raster I/O, apart from the probe's config and run (`geodino.eval.canopy`): the CHM is resampled onto the image's
grid with `rasterio.warp.reproject` (any CRS, any offset; CHM nodata and pixels outside its footprint become invalid).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geodino.errors import ConfigError, InputError, plural
from geodino.eval import dense
from geodino.eval.scaling import InputScaling

if TYPE_CHECKING:
    from geodino.eval.canopy import CanopyProbeConfig

CHM_SUFFIXES = ("_CHM", "_chm", "-chm", "_height", "_heights", "")


def pair_chms(images: list[Path], chms: list[Path]) -> list[tuple[Path, Path]]:
    """Pair images with CHMs by name (a.tif with a_CHM.tif, a_chm.tif or a.tif in another folder), else by order."""
    by_stem = {c.stem: c for c in chms}
    pairs = []
    for img in images:
        m = next(
            (by_stem[img.stem + s] for s in CHM_SUFFIXES if img.stem + s in by_stem and by_stem[img.stem + s] != img),
            None,
        )
        pairs.append((img, m))
    if all(m is not None for _, m in pairs):
        return pairs  # type: ignore[return-value]
    if len(images) == len(chms):
        return list(zip(images, chms))
    missing = [i.name for i, m in pairs if m is None]
    raise InputError(
        f"no CHM for {plural(len(missing), 'image')} ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
        "name CHMs like their image (a.tif -> a_CHM.tif) "
        "or list as many CHMs as images in the same order"
    )


def load_chm_pair(
    image: str | Path, chm: str | Path, cfg: CanopyProbeConfig, scaling: InputScaling | None = None
) -> dict[str, Any]:
    """Co-register a CHM onto an image's grid by bounds: sample with `image`, `target` (m), `valid`, georef.
    `scaling` is the run's DN -> reflectance rule (default: `data_scale`/`data_offset`, else by dtype)."""
    import rasterio
    from rasterio.warp import Resampling, reproject, transform_bounds

    r = dense.read_raster(image)
    if not r.georeferenced:
        raise InputError(f"image {image} has no CRS/geotransform; canopy pairs are co-registered by map bounds")
    chm = Path(chm).expanduser()
    if not chm.is_file():
        raise InputError(f"CHM {chm} not found; check train_chms/val_chms in the config")
    try:
        src = rasterio.open(chm)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read CHM {chm}: {exc}") from exc
    with src:
        if src.count != 1:
            raise InputError(
                f"CHM {chm} has {src.count} bands; a canopy height model is one band of heights in metres: check "
                "train_chms/val_chms (an image listed as a CHM?)"
            )
        if src.crs is None:
            raise InputError(f"CHM {chm} has no CRS; it must be georeferenced to be co-registered with {image}")
        h, w = r.data.shape[1:]
        left, top = r.transform @ (0, 0)
        right, bottom = r.transform @ (w, h)
        ib = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        cb = transform_bounds(src.crs, r.crs, *src.bounds)
        if cb[0] >= ib[2] or cb[2] <= ib[0] or cb[1] >= ib[3] or cb[3] <= ib[1]:
            raise InputError(f"CHM {chm} does not overlap image {image} (bounds {cb} vs {ib}); pair the right files")
        try:
            resampling = Resampling[cfg.resampling]
        except KeyError as exc:
            raise ConfigError(
                f"resampling={cfg.resampling!r} is not a rasterio resampling name (nearest, bilinear ...)"
            ) from exc
        target = np.full((h, w), np.nan, dtype=np.float32)
        source = src.read(1).astype(np.float32)
        nodata = src.nodata
        if nodata is not None and not np.isnan(nodata):
            source[np.isclose(source, np.float32(nodata))] = np.nan
        source[~np.isfinite(source)] = np.nan
        reproject(
            source,
            target,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=r.transform,
            dst_crs=r.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    valid = np.isfinite(target) & r.valid
    if not valid.any():
        raise InputError(
            f"CHM {chm} has no valid height on the grid of image {image} (all nodata where they overlap); "
            "drop this pair or fix the CHM's nodata value"
        )
    if cfg.clip_negative:
        target = np.where(np.isfinite(target), np.maximum(target, 0.0), target)
    _warn_above_max(target[valid], chm, cfg.max_height)
    return {
        "image": dense.to_image_tensor(r, scaling or InputScaling.of(cfg), cfg.bands),
        "target": torch.from_numpy(np.nan_to_num(target, nan=0.0)),
        "valid": torch.from_numpy(valid),
        "crs": r.crs,
        "transform": r.transform,
        "path": r.path,
        "name": Path(image).name,
    }


def _footprint(sample: dict[str, Any]) -> tuple[Any, tuple[float, float, float, float]] | None:
    """(CRS, (left, bottom, right, top)) of a georeferenced sample's image grid; None without CRS or transform."""
    crs, transform = sample.get("crs"), sample.get("transform")
    if crs is None or transform is None or "image" not in sample:
        return None
    h, w = sample["image"].shape[-2:]
    xs, ys = zip(*(transform @ corner for corner in ((0, 0), (w, 0), (0, h), (w, h))), strict=True)
    return crs, (min(xs), min(ys), max(xs), max(ys))


def warn_shared_ground(train: Sequence[dict[str, Any]], val: Sequence[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """Warn in one line when a validation raster's footprint overlaps a training raster's: the probe would be
    scored on ground it was trained on (the same trees, an optimistic score). Names the pair of largest overlap
    (its share of the validation raster's footprint) and counts the others; footprints in other CRSs are compared
    in the validation raster's. Returns every overlapping (validation, training, share)."""
    from rasterio.warp import transform_bounds

    found: list[tuple[str, str, float]] = []
    for v in val:
        vf = _footprint(v)
        if vf is None:
            continue
        crs, (vl, vb, vr, vt) = vf
        area = (vr - vl) * (vt - vb)
        for t in train:
            tf = _footprint(t)
            if tf is None or area <= 0:
                continue
            tl, tb, tr, tt = tf[1] if tf[0] == crs else transform_bounds(tf[0], crs, *tf[1])
            inter = max(0.0, min(vr, tr) - max(vl, tl)) * max(0.0, min(vt, tt) - max(vb, tb))
            if inter > 0:
                found.append(
                    (str(v.get("path", v.get("name", "?"))), str(t.get("path", t.get("name", "?"))), inter / area)
                )
    if found:
        import warnings

        vname, tname, share = max(found, key=lambda f: f[2])
        more = f" (and {plural(len(found) - 1, 'more overlapping pair')})" if len(found) > 1 else ""
        warnings.warn(
            f"canopy validation raster {vname} overlaps training raster {tname} ({100 * share:.1f}% of its "
            f"footprint){more}: the probe is scored on ground it was trained on; give validation rasters of other "
            "ground, or leave val_images empty to hold out whole tiles",
            stacklevel=3,
        )
    return found


def _warn_above_max(heights: np.ndarray, chm: Path, max_height: float) -> None:
    """One warning per CHM whose heights exceed max_height: binned outputs cannot predict them (wrong units?)."""
    above = heights > max_height
    if above.any():
        import warnings

        from geodino.user_keys import user_key

        key = user_key("max_height")  # tasks.<name>.max_height inside a probe suite's task
        warnings.warn(
            f"CHM {chm}: {int(above.sum())} pixels ({100 * above.mean():.1f}%) above {key}={max_height:g} m "
            f"(up to {float(heights.max()):.1f} m); the height bins end at max_height: check the CHM's units "
            f"(metres) or raise {key}",
            stacklevel=3,
        )


def load_pairs(
    images: str | Sequence[str],
    chms: str | Sequence[str],
    cfg: CanopyProbeConfig,
    scaling: InputScaling | None = None,
    keys: tuple[str, str] = ("train_images", "train_chms"),
) -> list[dict[str, Any]]:
    """The image/CHM pairs of the given files, folders or globs, or of one (see `load_chm_pair`), paired by name
    over all entries, entry by entry where a name is in two places (`pairing.pair_entries`); `keys` name the
    config keys in errors."""
    from geodino.config_lists import one_or_list
    from geodino.eval.pairing import pair_entries

    imgs = [dense.list_files(e, dense.RASTER_SUFFIXES, "image") for e in one_or_list(images)]
    chm_files = [dense.list_files(e, dense.RASTER_SUFFIXES, "CHM") for e in one_or_list(chms)]
    pairs = pair_entries(imgs, chm_files, pair_chms, keys, "CHM")
    return [load_chm_pair(i, c, cfg, scaling) for i, c in pairs]


def write_height_geotiff(heights: np.ndarray, ref: dense.Raster, path: Path, nodata: float = -9999.0) -> None:
    """Float32 heights on the reference raster's grid (CRS, transform); invalid input pixels get `nodata`."""
    import rasterio

    from geodino.io import atomic_path

    data = np.where(ref.valid, heights, nodata).astype(np.float32)
    h, w = data.shape
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": 1,
        "dtype": "float32",
        "crs": ref.crs,
        "transform": ref.transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 3,
    }
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, "canopy height (m)")
        dst.set_band_unit(1, "m")  # the band's unit type (gdalinfo and QGIS show it), not only a dataset tag
        dst.update_tags(units="m", source="geodino canopy probe")
