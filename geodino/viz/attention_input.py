"""`viz attention`'s input: an image file or a raster window read, scaled and checked (size guard, bands, the
crop to whole patches), and a point given in file pixels placed in it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodino.errors import InputError, plural

if TYPE_CHECKING:
    from geodino.embed.scale_rule import ScaleRule
    from geodino.viz.attention import AttentionMaps


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIZ_HINTS = {"bands": "--bands", "band_names": None, "sensor": "--sensor", "skip": None}
"""How input messages name the settings: viz attention's flags (it has no --band-names or --on-error)."""
MAX_PIXELS = 4096 * 4096  # a whole-scene forward beyond this needs a --window (attention is quadratic in tokens)


# ------------------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------------------
def is_image(path: str | Path) -> bool:
    """Whether `path` is read as an image file (.jpg/.png/...), not a raster: images have their own scale rule."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_input(
    path: str | Path,
    *,
    sensor: Any = None,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    window: Sequence[int] | None = None,
    backbone: Any = None,
) -> dict[str, Any]:
    """An image or raster as a sample: reflectance `image` float32 [C,H,W], `valid` [H,W], `sensor`, and for a
    georeferenced raster `crs` and `transform` (of the window); `window` is (col, row, width, height) in pixels.
    `bands`: the band names to read, in order (by the file's band descriptions, `band_names`, or the sensor's
    names); `band_names` (rasters): the file's bands' names in order, for a file that records none.

    An image (.jpg/.png/...) is read by `sensor` (default `imagenet`: 8-bit RGB) and decoded with its band count,
    so a greyscale photo is one band for a one-band sensor (the data sensor of a one-band backbone) and three equal
    bands for an RGB one (`geodino.data.images.decode_photo`); it was always decoded as RGB, so a one-band sensor
    refused a grey PNG or JPEG. Without `sensor`, a `backbone` says how an image is read (`photo_sensor`): with its
    band count (a grey photo is one band for a one-band backbone; a photo that cannot have its bands is refused in
    one line) and by the sensor its normalisation record carries when that fits the photo, else as 8-bit DN. Its
    transparent pixels (alpha 0) are not `valid`, as a raster's alpha band masks it. A raster read without `sensor`
    takes the DN scale `backbone`'s normalisation record carries, as `geodino embed` does (`recorded_sensor`);
    `sample["sensor_note"]` then says so, for the caller to print; one declaring its DN rule (GDAL scale/offset) is
    read by it, ahead of both, as embed reads it (`declared_input.declared_sensor`; with neither, standardised by
    the backbone's mean/std, as embed standardises it), and the note says so. A `.txt` list naming
    one raster is read as that raster; a list of several is refused (one input per run). With `backbone`, bands
    that are its recorded bands in another order are refused (`check_band_order`: `sample["named_bands"]`, named
    as `geodino embed` names them)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist; give an image (.jpg/.png) or a raster (.tif/.vrt)")
    if path.is_dir():
        raise InputError(
            f"input {path} is a folder; viz attention takes one image (.jpg/.png) or raster (.tif/.vrt) file: "
            "pass one of its files"
        )
    source = str(path)  # what the raster reader opens: a listed /vsi or URL entry as written
    if path.suffix.lower() == ".txt":
        source = _one_listed(path)
        path = Path(source)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _read_photo(path, sensor=sensor, bands=bands, window=window, backbone=backbone)
    from geodino.data.archive import RasterArchive
    from geodino.viz.declared_input import declared_sensor

    note, given = None, sensor
    if sensor is None and backbone is not None:
        found = recorded_sensor(backbone, source)
        if found is not None:
            sensor, note = found
    # the file's own rule first, as in embed (also with neither --sensor nor a record: the backbone's mean/std)
    declared = declared_sensor(source, sensor, bands, band_names, backbone)
    if declared is not None:
        sensor, note = declared
    archive = RasterArchive(
        [source],
        sensor=sensor,
        bands=bands,
        band_names=band_names,
        require_crs=False,
        progress=False,
        hints=VIZ_HINTS,
    )
    scene = archive.scenes[0]
    c, r, w, h = (
        (0, 0, scene.width, scene.height) if window is None else _check_window(window, scene.width, scene.height, path)
    )
    _check_size(path, w, h, "raster")
    sample = archive.sample(0, c, r, w, h)
    sample["sensor"] = archive.sensor
    sample["dn_dtype"] = str(scene.dtype)  # the file's, for `warn_sensor_dn` (the image is reflectance by now)
    sample["window"] = [c, r, w, h] if window is not None else None
    if not scene.crs:
        sample["crs"], sample["transform"] = None, None
    # the bands' names as `geodino embed` names them for its band-order check (not the record's sensor, chosen here)
    if given is not None:
        from geodino.data.sensors import get_sensor

        sample["band_sensor"] = get_sensor(given)  # all its bands: `archive.sensor` holds those selected
    sample["named_bands"] = _named_bands(source, scene.band_indexes, sample.get("band_sensor"), band_names)
    return _sensor_said(sample, note, sensor, backbone)


def _named_bands(source: str, read: Sequence[int], sensor: Any, band_names: Sequence[str] | None) -> list[str] | None:
    """The names of the raster bands `read` (1-based, in the order read) where something names them, as `geodino
    embed` names them (`geodino.embed.band_order.input_band_names`): `band_names` given for the file's bands, its
    band descriptions, else the --sensor given; None for colour tags alone (GDAL tags every 3-band 8-bit GeoTIFF
    RGB, a BGR one too), positions, or a header that does not read."""
    from types import SimpleNamespace

    from geodino.data.headers import header_or_none
    from geodino.embed.band_order import input_band_names

    found = header_or_none(source, reader="rasterio")
    if found is None:
        return None
    head: Any = found
    if band_names and len(band_names) == found.count:  # names given for the file's bands: as its descriptions
        head = SimpleNamespace(count=found.count, descriptions=[str(b) for b in band_names])
    return input_band_names(SimpleNamespace(header=head, bands=list(read)), sensor)


def check_band_order(sample: dict[str, Any], backbone: Any) -> None:
    """Refuse a sample whose named bands are `backbone`'s recorded bands in another order (`--bands blue green red`
    with an export recording red, green, blue: blue fed the kernels trained on red, and the attention drawn was
    another model's), in one line naming both orders and viz attention's flags; the one rule `geodino embed` and
    the probes refuse such input by (`geodino.backbones.band_order`)."""
    from geodino.backbones.band_order import backbone_sensor, known_bands, other_order

    have, want = sample.get("named_bands"), known_bands(backbone)
    if have is None or want is None:
        return
    order = other_order(have, want, sensor=sample.get("band_sensor"), src_sensor=backbone_sensor(backbone))
    if order is None:
        return
    from geodino.embed.sources import with_spec_option

    spec = str(getattr(backbone, "spec", type(backbone).__name__))
    fix = [have[i] for i in order]
    # a spec's kernels move to the order named (`load_backbone(bands=...)`); a module's cannot be named so
    adapted = with_spec_option(spec, "bands", ",".join(have))
    adapt = "" if spec.startswith("<") else f", or adapt the backbone to them: --backbone '{adapted}'"
    raise InputError(
        f"bands {', '.join(have)} of {sample.get('path')} are the bands of backbone {spec} ({', '.join(want)}) in "
        f"another order (each would feed the kernels of another); pass --bands {' '.join(fix)} (bands={fix} in "
        f"Python) to read them in its order{adapt}"
    )


def _read_photo(
    path: Path, *, sensor: Any, bands: Sequence[str] | None, window: Sequence[int] | None, backbone: Any
) -> dict[str, Any]:
    """`read_input` of an image file: decoded with the band count of the sensor it is read by (`decode_photo`, as
    training decodes photos), its transparent pixels (alpha 0, a PNG's transparent colour) not valid. Without
    `sensor`, a `backbone` says how: its band count (a grey photo is one band for a one-band backbone), and the
    sensor its normalisation record carries when that fits the photo (`photo_sensor`); a photo that cannot have
    the backbone's bands is refused in one line."""
    from geodino.data.images import decode_photo, match_bit_depth
    from geodino.data.sensors import get_sensor

    s = get_sensor(sensor or "imagenet")
    n_bands = s.n_bands if sensor is not None or backbone is None else int(backbone.in_chans)
    _check_photo_header(path, window)  # before decoding: an 8000x8000 px PNG took 9 s to decode, then was refused
    try:  # with the sensor's band count: a grey photo is one band for a one-band sensor, RGB for a 3-band one
        data, valid = decode_photo(path.read_bytes(), path.name, n_bands)
    except Exception as exc:
        raise InputError(f"image {path} cannot be decoded ({type(exc).__name__}); is it a complete image?") from exc
    note = None
    if sensor is None and backbone is not None:
        s, note = photo_sensor(backbone, path, data)
    data = match_bit_depth(data, str(path), s)
    if s.n_bands != data.shape[0]:
        raise InputError(f"image {path} has {plural(data.shape[0], 'band')} but sensor {s.name!r} has {s.n_bands}")
    whole = s  # its names and aliases name the bands (`check_band_order`)
    if bands:  # by the sensor's names or aliases (R/G/B, red/green/blue), as for rasters
        data = data[s.band_indices(list(bands))]
        s = s.select(list(bands))
    valid = np.ones(data.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    if window is not None:
        c, r, w, h = _check_window(window, data.shape[2], data.shape[1], path)
        data, valid = data[:, r : r + h, c : c + w], valid[r : r + h, c : c + w]
    _check_size(path, data.shape[2], data.shape[1], "image")
    image = s.to_reflectance(data.astype(np.float32))
    sample = {
        "window": list(window) if window is not None else None,
        "image": image,
        "valid": valid,  # alpha > 0: transparent pixels are nodata, as a raster's alpha band makes them
        "sensor": s,
        "crs": None,
        "transform": None,
        "path": str(path),
        "bands": list(s.bands),
        "named_bands": list(s.bands),  # decoded as grey or RGB: the sensor's names say what each band is
        "band_sensor": whole,
        "dn_dtype": str(data.dtype),
    }
    return _sensor_said(sample, note, sensor, backbone)


def _sensor_said(sample: dict[str, Any], note: str | None, sensor: Any, backbone: Any) -> dict[str, Any]:
    """`sample` (a raster's or a photo's) once what its sensor means is said: the `note` saying the backbone's
    record chose it (`sensor_note`, for the caller to print), else, for a `sensor` given with a backbone, the
    `warn_sensor_dn` warning. Bands in another order than `backbone`'s are refused first (`check_band_order`,
    which `attention_maps` asks again for a backbone loaded after the read)."""
    if backbone is not None:
        check_band_order(sample, backbone)
    if note:
        sample["sensor_note"] = note
    elif sensor is not None and backbone is not None:
        warn_sensor_dn(sample, backbone)
    return sample


def warn_sensor_dn(sample: dict[str, Any], backbone: Any) -> None:
    """Warn in one line when the --sensor a sample was read by takes 16-bit DN as reflectance (scale 1, offset 0:
    an older `data stats` YAML written without --scale, or one with --scale 1) before a backbone whose mean/std
    are reflectance: the maps would be of values ~1000x the training range. `geodino embed --sensor`'s check
    (`warn_dn_as_reflectance`, its one home); viz attention has no --scale, so only the sensor fix is named.
    `read_input` calls it when given both; a caller that loads the backbone after reading (the CLI) calls it then."""
    import types
    import warnings

    from geodino.embed.input_scaling import warn_dn_as_reflectance

    if not sample.get("dn_dtype") or sample.get("sensor") is None:
        return
    info = types.SimpleNamespace(dtype=sample["dn_dtype"], path=sample.get("path"))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        warn_dn_as_reflectance(info, sample["sensor"], backbone)
    for w in said:
        text = str(w.message).replace(" or pass --scale FACTOR instead of --sensor", "")
        warnings.warn(f"{text} and pass it as --sensor" if text != str(w.message) else text, w.category, 2)


def photo_sensor(backbone: Any, path: str | Path, data: np.ndarray) -> tuple[Any, str | None]:
    """The sensor a photo given without --sensor is read by, from the backbone, and the line saying so (None when
    nothing is said: an RGB backbone without a DN scale record reads it as `imagenet`, as before). `data` is the
    photo decoded with the backbone's band count (grey: one band for a one-band backbone, else RGB). The sensor of
    the backbone's normalisation record (`geodino.embed.sweep.scaling_sensor`, as for rasters) when it fits the
    photo's bit depth; else 8-bit DN (x/255): `imagenet` for RGB, one grey band for a one-band backbone. A photo
    without the backbone's band count (an RGB photo for a one-band backbone; any photo for a 4-band one) is
    refused, naming the file, the backbone's bands and what to give instead."""
    from geodino.data.bit_depth import scale_misfit
    from geodino.data.sensors import Sensor, get_sensor
    from geodino.embed.config import EmbedConfig
    from geodino.embed.sweep import recorded_scale, scaling_sensor

    n, have = int(backbone.in_chans), int(data.shape[0])
    spec = getattr(backbone, "spec", "") or "the backbone"
    if have != n:
        kind = "a greyscale photo (one band)" if have == 1 else f"a photo of {plural(have, 'band')} (RGB)"
        if n == 1:
            fix = "give a greyscale photo or a one-band raster (.tif), or another backbone (--backbone) of 3 bands"
        else:
            fix = (
                f"a photo is read as one grey or three RGB bands whatever --sensor says: give a raster (.tif) of the "
                f"backbone's {plural(n, 'band')}, or another backbone (--backbone) of 1 or 3 bands"
            )
        raise InputError(f"image {path} is {kind} but backbone {spec} takes {plural(n, 'band')}; {fix}")
    why = ""
    recorded = scaling_sensor(EmbedConfig(), backbone)
    scaled = recorded_scale(backbone)  # not None when `recorded` is not: that sensor is the record's
    if recorded is not None and scaled is not None:
        why = scale_misfit(data.dtype, n, recorded.scale, recorded.offset)
        if not why:
            warn_record_units(data.dtype, path, backbone)
            return recorded, f"geodino: no --sensor given: {path} is read with {record_rule(scaled[2])}"
    if n == 3:
        s = get_sensor("imagenet")
        rule = "8-bit RGB (sensor imagenet, x/255)"
    else:  # one grey band of 8-bit DN, the backbone's own mean/std (its normalisation is what the model sees)
        mean, std = (tuple(float(v) for v in t.flatten().tolist()) for t in (backbone.mean, backbone.std))
        s = Sensor("grey", ("grey",), 1 / 255, mean, std, False)
        rule = "one grey band of 8-bit DN (x/255)"
    if recorded is None and n == 3:
        return s, None  # as every photo was read before
    if recorded is not None and scaled is not None:
        rule += f": the backbone's record, {scaled[2].value} ({scaled[2].origin_said()}), does not fit it, {why}"
    else:
        rule += f" for the one-band backbone {spec}"
    return s, f"geodino: no --sensor given: {path} is read as {rule}; --sensor overrides"


def recorded_sensor(backbone: Any, path: str | Path) -> tuple[Any, str] | None:
    """The data sensor of a raster given without --sensor: the one the backbone's normalisation record carries
    (its sensor, bands and DN scale: `geodino.embed.sweep.scaling_sensor`, the rule `geodino embed` reads rasters
    by), with the line saying so; None when the record has no DN scale (then --sensor is asked for). A float
    raster is reflectance already, as embed reads it: the record's bands with scale 1; an int8 raster (codes) is
    refused, as embed refuses it."""
    from geodino.embed.config import EmbedConfig
    from geodino.embed.sweep import recorded_scale, scaling_sensor

    sensor = scaling_sensor(EmbedConfig(), backbone)
    if sensor is None:
        return None
    import dataclasses

    import rasterio

    try:
        with rasterio.open(path) as src:
            dtype = np.dtype(src.dtypes[0])
    except rasterio.errors.RasterioError:  # the archive says what is wrong with the file, in its own words
        dtype = None
    is_float = dtype is not None and dtype.kind == "f"
    if dtype == np.int8:  # codes, which no sensor's DN scale is for (`geodino.data.dtype_rule`, as embed refuses)
        from geodino.data.dtype_rule import dtype_divisor

        fix = "if it is imagery, pass --sensor NAME, a sensor with its DN -> reflectance scale (sensor= in Python)"
        dtype_divisor(dtype, f"input {path}", fix)
    if dtype is not None and not is_float:
        warn_record_units(dtype, path, backbone)
    scaled = recorded_scale(backbone)
    assert scaled is not None  # a recorded sensor has a recorded scale (scaling_sensor)
    _, _, recorded_rule = scaled
    if is_float:
        sensor = dataclasses.replace(sensor, scale=1.0, offset=0.0)
        rule = f"float pixels read as reflectance (bands of sensor {sensor.name} as the backbone records them)"
        return (
            sensor,
            f"geodino: no --sensor given: {path} is read by the backbone's record, {rule}; --sensor overrides",
        )
    return sensor, f"geodino: no --sensor given: {path} is read with {record_rule(recorded_rule)}"


def record_rule(rule: ScaleRule) -> str:
    """ "DN -> reflectance x*0.0001 (the backbone's record: sensor demo4, in b.heads.pth beside b.pth; --sensor to
    change)": the words `geodino embed` says the record's scaling with (`ScaleRule.said`), with viz's one way to
    change it (it has no --scale)."""
    return f"DN -> reflectance {rule.said(change='--sensor to change')}"


def warn_record_units(dtype: Any, path: str | Path, backbone: Any) -> None:
    """One line when the DN step the backbone records, which an input read without --sensor takes, and its mean/std
    are in different units (`geodino.embed.input_scaling.record_units_reason`, the rule `geodino embed` and the
    probes warn by): the maps would be of values far from the training range. viz attention has no --scale, so the
    way out named is --sensor."""
    import warnings

    from geodino.embed.input_scaling import record_units_reason
    from geodino.models.caller import user_stacklevel

    why = record_units_reason(dtype, path, backbone)
    if why is not None:
        warnings.warn(
            f"{why}; pass --sensor NAME, a sensor with the data's DN -> reflectance scale (geodino data stats ... "
            "--scale 0.0001 writes one; sensor= in Python)",
            stacklevel=user_stacklevel(),
        )


def _one_listed(path: Path) -> str:
    """The one raster a `.txt` list names (its entries checked by `resolve_paths`); a list of several is refused:
    viz attention draws the maps of one input."""
    from geodino.data.paths import RASTER_EXTS, resolve_paths

    listed = resolve_paths([str(path)], RASTER_EXTS, what="raster", hint="list one raster in it")
    if len(listed) != 1:
        raise InputError(
            f"input {path} lists {plural(len(listed), 'raster')}; viz attention draws the maps of one input: pass "
            f"one of them (e.g. {listed[0]})"
        )
    return listed[0]


def crop_note(maps: AttentionMaps, sample: dict[str, Any]) -> str | None:
    """The line saying that the image was cut to whole patches (None when nothing was cut), printed once per run:
    the maps, the PNGs and the COG cover the cropped image only."""
    if "cropped_from" not in maps.info:
        return None
    H, W = maps.info["cropped_from"]
    h, w = maps.image_size
    what = "window" if sample.get("window") is not None else "image"
    cut = " and ".join(plural(n, unit) for n, unit in ((W - w, "column"), (H - h, "row")) if n)
    return (
        f"geodino: the {W} x {H} px {what} is read as {w} x {h} px (width x height; whole {maps.patch_size} px "
        f"patches from the top-left), leaving out its last {cut}"
    )


def window_point(point: Sequence[int], window: Sequence[int] | None, path: str | Path) -> tuple[int, int]:
    """A `--point` in pixels of the input file as pixels of the window that was read (the image the maps cover),
    floored as the CLI floors it: int() took -0.5 for column 0, so the Python API drew a point left of the image."""
    import math

    col, row = math.floor(point[0]), math.floor(point[1])
    if window is None:
        return col, row
    c, r, w, h = (int(v) for v in window)
    if not (c <= col < c + w and r <= row < r + h):
        raise InputError(
            f"--point {col} {row} (pixels of {path}) is outside --window {c} {r} {w} {h} (point= and window= in "
            "Python); give a point inside the window, in the file's pixels"
        )
    return col - c, row - r


def _check_size(path: Path, w: int, h: int, kind: str) -> None:
    """Attention over every patch pair grows with the pixel count squared: large inputs need a window."""
    if w * h > MAX_PIXELS:
        raise InputError(
            f"{kind} {path} is {w}x{h} px; attention over a whole scene this large needs too much memory: pick a "
            "part with --window COL ROW WIDTH HEIGHT (window= in Python)"
        )


def _check_photo_header(path: Path, window: Sequence[int] | None) -> None:
    """`_check_size` from the image's header (Pillow opens lazily), or of the `--window` asked for, before the
    whole image is decoded; a header Pillow cannot read is left to the decoder, which says what is wrong."""
    if window is not None:
        if len(window) == 4 and int(window[2]) > 0 and int(window[3]) > 0:  # else _check_window says why
            _check_size(path, int(window[2]), int(window[3]), "window of image")
        return
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:  # beyond Pillow's own guard (178 Mpx): far above MAX_PIXELS
        raise InputError(
            f"image {path} is too large to read whole ({exc}); pick a part with --window COL ROW WIDTH HEIGHT "
            "(window= in Python)"
        ) from exc
    except Exception:
        return
    _check_size(path, w, h, "image")


def _check_window(window: Sequence[int], width: int, height: int, path: Path) -> tuple[int, int, int, int]:
    if len(window) != 4:
        raise InputError(f"--window (window= in Python) takes 4 numbers COL ROW WIDTH HEIGHT, got {list(window)}")
    c, r, w, h = (int(v) for v in window)
    if c < 0 or r < 0 or w <= 0 or h <= 0 or c + w > width or r + h > height:
        raise InputError(
            f"--window {c} {r} {w} {h} (col row width height) is not inside {path} ({width}x{height} px); give a "
            "part inside it (window= in Python)"
        )
    return c, r, w, h
