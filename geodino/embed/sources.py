"""Inputs of a feature raster: any rasterio-readable raster (GeoTIFF, COG, VRT mosaic) or an xarray/Zarr cube.

A source answers `read(y0, y1, x0, x1) -> (data [C,h,w] float32, valid [h,w] bool)` for any pixel window,
also partly or fully outside the raster (outside is invalid and zero), so the tiler never special-cases edges.
Rasters are read through `geodino.data.rasters.read_window` and cubes are opened by `geodino.data.cubes.open_cube`
(the training readers); validity is the one rule of `geodino.data.validity` (every band nodata, or any band
NaN or +/-inf; the internal mask or alpha band when no nodata value is declared); an optional user nodata value
overrides a wrong declared one, and is refused when the data type cannot hold it. Complex data is refused, and
`check_bands_fit` says what to pass when the bands do not fit the backbone (an alpha band named as the mask it is).
Each thread opens its own handle (GDAL handles are not thread-safe): call `open()` in the thread that reads.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.paths import RASTER_EXTS
from geodino.data.rasters import alpha_bands, alpha_is_data
from geodino.data.validity import check_nodata, check_real, valid_pixels
from geodino.errors import InputError, one_line, plural


@dataclasses.dataclass
class SourceInfo:
    """What the pipeline needs to know about an input before reading pixels."""

    path: str
    height: int
    width: int
    count: int
    dtype: str
    crs: Any  # rasterio CRS or None
    transform: Any  # affine.Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]
    alpha_bands: tuple[int, ...] = ()  # 1-based bands of the input that are alpha (a validity mask, not data)
    colours: tuple[str, ...] = ()  # each band's colour interpretation (red, gray ...: geodino.data.colour_bands)
    # recorded as input_time: a cube's date embedded (the `time` option, its label), or the acquisition time a
    # raster's header records (`geodino.data.acquisition_time`)
    time: str | None = None
    unplaced: str = ""  # a cube whose CRS was dropped: why no regular grid places its pixels (`cube_transform`)


def _bands_not_in(bad: list[int]) -> str:
    """The band numbers a message says are not in the input, in their number: "1 band (5) is", "2 bands (5, 6) are"."""
    return f"{plural(len(bad), 'band')} ({', '.join(map(str, bad))}) {'is' if len(bad) == 1 else 'are'}"


class WindowedSource:
    """What both sources share: a window partly or fully outside the raster reads as zeros, marked invalid."""

    bands: list[int]
    info: SourceInfo
    kind: str  # what messages call it: "raster", "datacube"
    input_count: int  # bands of the input itself (info.count: those selected)

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        """(data [C,h,w], valid [h,w]) of a window inside the raster; each source reads its own way."""
        raise NotImplementedError

    def open(self) -> WindowedSource:
        """A copy on its own open handle (one per thread); each source opens its own way."""
        raise NotImplementedError

    def close(self) -> None:
        """Close this copy's handle."""
        raise NotImplementedError

    def read(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        """(data [C,h,w], valid [h,w] bool) of any window, in the values' own dtype (the sweep scales them where
        the batch goes: a uint8 tile is a quarter of the float32 bytes); outside the raster is zero and invalid.
        A window inside the raster (almost every tile) is the reader's own arrays, not a copy."""
        h, w = y1 - y0, x1 - x0
        ry0, ry1 = max(y0, 0), min(y1, self.info.height)
        rx0, rx1 = max(x0, 0), min(x1, self.info.width)
        if ry0 >= ry1 or rx0 >= rx1:
            return np.zeros((len(self.bands), h, w), np.dtype(self.info.dtype)), np.zeros((h, w), bool)
        raw, ok = self.read_inside(ry0, ry1, rx0, rx1)
        if (ry0, ry1, rx0, rx1) == (y0, y1, x0, x1):
            return raw, ok
        data = np.zeros((len(self.bands), h, w), dtype=raw.dtype)
        valid = np.zeros((h, w), dtype=bool)
        sl = (slice(ry0 - y0, ry1 - y0), slice(rx0 - x0, rx1 - x0))
        data[(slice(None), *sl)] = raw
        valid[sl] = ok
        return data, valid


class RasterSource(WindowedSource):
    """A rasterio dataset (any GDAL raster: GeoTIFF, COG, VRT, JP2, Zarr v2...) read by windows."""

    kind = "raster"

    def __init__(self, path: str, *, bands: list[int] | None = None, nodata: float | None = None) -> None:
        import rasterio

        self.path = str(path)
        self.user_nodata = nodata
        import warnings

        from geodino.data.acquisition_time import acquisition_time
        from geodino.data.headers import gdal_read_errors

        try:
            with warnings.catch_warnings(record=True) as held, gdal_read_errors(self.path) as broken:
                warnings.simplefilter("always")
                src = rasterio.open(self.path)
            if broken:  # a header cut short opens without its CRS: name the cause, not the missing CRS
                src.close()
                raise InputError(
                    f"input {self.path} is truncated or corrupt (GDAL: {broken[0]}); re-download or re-copy it"
                )
            for w in held:  # a raster without CRS or geotransform: the no-CRS refusal (or --allow-no-crs) says it
                if not (issubclass(w.category, rasterio.errors.NotGeoreferencedWarning) and src.crs is None):
                    warnings.warn(w.message, w.category, stacklevel=2)
            with src:
                count, dtype = src.count, src.dtypes[0]
                self.info = SourceInfo(
                    path=self.path,
                    height=src.height,
                    width=src.width,
                    count=count,
                    dtype=dtype,
                    crs=src.crs,
                    transform=src.transform,
                    nodata=src.nodata if nodata is None else nodata,
                    descriptions=tuple(src.descriptions),
                    alpha_bands=alpha_bands(src),
                    colours=tuple(c.name for c in src.colorinterp),
                    time=acquisition_time(src),
                )
        except rasterio.errors.RasterioIOError as exc:
            why = one_line(exc).rstrip(".")
            raise InputError(  # what to do too: it was GDAL's words alone
                f"cannot read raster {self.path}: {why}; check it with gdalinfo, re-download or re-copy it, or "
                "remove it"
            ) from exc
        if count == 0:
            raise InputError(f"raster {self.path} has no bands")
        check_real(dtype, f"raster {self.path}")
        check_nodata(nodata, dtype, f"raster {self.path}")
        self.input_count = count  # bands of the file, before `bands` selects some
        self.header = dataclasses.replace(self.info)  # of every band of the file (their names: `embed.band_order`)
        self.bands = list(range(1, count + 1)) if not bands else [int(b) for b in bands]
        bad = [b for b in self.bands if b < 1 or b > count]
        if bad:
            raise InputError(f"{_bands_not_in(bad)} not in raster {self.path}, which has bands 1..{count}")
        self.info.count = len(self.bands)
        self.info.descriptions = tuple(self.info.descriptions[b - 1] for b in self.bands)
        self.info.colours = tuple(self.info.colours[b - 1] for b in self.bands)
        self._src: Any = None

    def open(self) -> RasterSource:
        """A copy with its own open handle (use one per thread)."""
        import rasterio

        other = object.__new__(RasterSource)
        other.__dict__.update(self.__dict__)
        with warnings.catch_warnings():  # no CRS: refused, or asked for with --allow-no-crs (rasterio would say it)
            if self.info.crs is None:
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            other._src = rasterio.open(self.path)
        return other

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        import rasterio.errors

        from geodino.data.rasters import read_window

        try:  # the training reader on this thread's own handle: one read, the one validity rule
            return read_window(self._src, self.bands, x0, y0, x1 - x0, y1 - y0, nodata=self.info.nodata, use_mask=True)
        except rasterio.errors.RasterioError as exc:
            gone = next((one_line(e) for e in (exc.__cause__, exc) if "No such file or directory" in str(e)), "")
            if gone:  # a file a VRT names is missing: not this file's fault (it said "truncated or corrupt")
                raise InputError(
                    f"cannot read raster {self.path} at rows {y0}..{y1}, columns {x0}..{x1}: a file it names is "
                    f"missing ({gone}); restore it, or re-create {self.path}"
                ) from exc
            raise InputError(
                f"cannot read raster {self.path} at rows {y0}..{y1}, columns {x0}..{x1}: "
                f"the file is truncated or corrupt; re-download or re-create it (`gdalinfo -checksum {self.path}` "
                f"shows whether every block reads)"
            ) from exc


class CubeSource(WindowedSource):
    """A Zarr/NetCDF store or an in-memory xarray Dataset/DataArray with dims (band, y, x), or (time, band, y, x)
    with one date chosen by `time` (`select_time`), opened by the training reader (`geodino.data.cubes.open_cube`:
    variable choice, dim order, CRS, transform and nodata from the store); values are read raw (no CF
    scale/offset decoding), as rasterio reads a GeoTIFF; a declared CF rule is kept (`scales`/`offsets`) and applied
    by `prepare`, as a GeoTIFF's GDAL scale/offset is."""

    kind = "datacube"

    def __init__(
        self,
        obj: Any,
        *,
        variable: str | None = None,
        bands: list[int] | None = None,
        nodata=None,
        time: int | str | None = None,
        sensor: str | None = None,
        listing: bool = False,
    ):
        from rasterio.crs import CRS

        from geodino.embed.cube_bands import open_embed_cube

        where = str(obj) if isinstance(obj, (str, Path)) else type(obj).__name__
        # a store of one variable per band: stacked by name (`cube_bands`), as the training readers stack them; the
        # store is opened once for the variables' choice and the read
        listing = listing or bool(bands)
        scene = open_embed_cube(obj, where, variable=variable, sensor=_sensor(sensor), listing=listing, nodata=nodata)
        array, label = select_time(scene, where, time)
        check_real(array.dtype, f"cube {where}")
        check_nodata(nodata, array.dtype, f"cube {where}")
        count = array.shape[0]
        self.input_count = count  # bands of the cube, before `bands` selects some
        self.bands = list(range(count)) if not bands else [int(b) - 1 for b in bands]
        bad = [b + 1 for b in self.bands if b < 0 or b >= count]
        if bad:
            raise InputError(f"{_bands_not_in(bad)} not in cube {where}, which has bands 1..{count}")
        self.da = array.isel({array.dims[0]: self.bands})
        # the CF scale_factor/add_offset the store declares for the bands read ((): none); `prepare` applies them
        # as it applies a GeoTIFF's GDAL scale/offset (`geodino.embed.prepare.cube_rule`)
        self.scales = tuple(scene.scales[b] for b in self.bands) if scene.scales else ()
        self.offsets = tuple(scene.offsets[b] for b in self.bands) if scene.offsets else ()
        # CF valid_range/valid_min/valid_max of the bands read ((): none): a value outside is missing, as the
        # training reader marks it (`geodino.data.cube_valid_range.in_valid_range`)
        self.valid_ranges = tuple(scene.valid_ranges[b] for b in self.bands) if scene.valid_ranges else ()
        self.user_nodata = nodata
        self.info = SourceInfo(
            path=where,
            height=scene.height,
            width=scene.width,
            count=len(self.bands),
            dtype=str(scene.array.dtype),
            crs=CRS.from_wkt(scene.crs) if scene.crs else None,
            transform=scene.affine,
            nodata=scene.nodata,
            descriptions=tuple(scene.band_names[b] for b in self.bands),
            time=label,
            unplaced=scene.unplaced,
        )

    def open(self) -> CubeSource:
        return self

    def close(self) -> None:
        pass

    def read_inside(self, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
        try:  # a chunk cut short or damaged: the codec's or reader's own error (RuntimeError, ValueError, zlib...)
            raw = np.asarray(self.da[:, y0:y1, x0:x1].values)
        except Exception as exc:
            why = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise InputError(  # one line, skipped by a many-scene --on-error skip as a broken GeoTIFF block is
                f"cannot read datacube {self.info.path} at rows {y0}..{y1}, columns {x0}..{x1} ({why}): the store "
                "is truncated or corrupt; re-download or re-create it"
            ) from exc
        ok = valid_pixels(raw, self.info.nodata)
        if self.valid_ranges:
            from geodino.data.cube_valid_range import in_valid_range

            ok &= in_valid_range(raw, self.valid_ranges)
        return (np.nan_to_num(raw, nan=0.0) if raw.dtype.kind == "f" else raw), ok


def _sensor(name: str | None) -> Any:
    """`--sensor` as a `Sensor` (None: none given)."""
    if not name:
        return None
    from geodino.data.sensors import get_sensor

    return get_sensor(name)


def time_labels(scene: Any) -> list[str]:
    """The labels of a cube's dates: ISO dates as short as they are exact (2024-02-01, 2024-02-01T10:32:11) for a
    datetime coordinate, numpy or cftime (a noleap/360_day calendar; `cube_times.date_label`), else the coordinate's
    values as text, else the indices."""
    from geodino.data.cube_times import date_labels

    da, tdim = scene.array, scene.time_dim
    if tdim not in da.coords:
        return [str(i) for i in range(da.sizes[tdim])]
    return date_labels(da[tdim].values)


def select_time(scene: Any, where: str, time: int | str | None) -> tuple[Any, str | None]:
    """(the cube's (band, y, x) array, the label of the date chosen) for the `time` option: an int is an index
    (negative from the end, -1: the last), text a date label that must start exactly one of the cube's labels
    (2024-02 or 2024-02-01 picks 2024-02-01T10:32:11 when no other date matches); no nearest-date guess, so the
    date embedded is always one the user named. A cube with a time dimension needs `time`; one without refuses it."""
    da, tdim = scene.array, scene.time_dim
    if tdim is None:
        if time is not None:
            raise InputError(f"time={time!r} chooses a date, but cube {where} has no time dimension (dims {da.dims}); "
                             "drop time")  # fmt: skip
        return da, None
    labels = time_labels(scene)
    n = len(labels)
    listed = ", ".join(labels) if n <= 6 else f"{', '.join(labels[:3])}, ..., {', '.join(labels[-2:])}"
    if time is None:
        raise InputError(
            f"cube {where} has a time dimension {tdim!r} of {plural(n, 'date')} ({listed}); choose the one to embed "
            f"with the option time: an index (time=0; time=-1 for the last) or a date (time={labels[-1]}), e.g. "
            f"`geodino embed {where} ... time=0`; in Python embed_raster(path, ..., time=0) or "
            f"embed_raster(ds[VARIABLE].isel({tdim}=0), ...)"
        )
    if isinstance(time, (int, np.integer)) and not isinstance(time, bool):
        if not -n <= int(time) < n:
            # a year given as a number (`--time 2024`) is an index: say which text picks its dates
            dated = [lab for lab in labels if int(time) >= 0 and lab.startswith(f"{int(time)}-")]
            raise InputError(
                f"time={int(time)} is out of range for cube {where}, which has {plural(n, 'date')} ({listed}): "
                f"pass an index 0..{n - 1} (or -{n}..-1 from the end) or a date"
                + (f"; a number is an index: for a date of {time} pass its label (time={dated[-1]})" if dated else "")
            )
        k = int(time) % n
    else:
        hits = [i for i, lab in enumerate(labels) if lab.startswith(str(time).strip())]
        if len(hits) != 1:
            what = "matches no date" if not hits else f"matches {len(hits)} dates"
            some = listed if not hits else ", ".join(labels[i] for i in hits[:4]) + (", ..." if len(hits) > 4 else "")
            raise InputError(
                f"time={str(time)!r} {what} of cube {where} ({some}); pass one of its dates (a label's start that "
                f"only one date has) or an index 0..{n - 1}"
            )
        k = hits[0]
    return da.isel({tdim: k}), labels[k]


def check_bands_fit(source: WindowedSource, bands: list[int] | None, bb: Any) -> None:
    """Refuse input bands (all, or those `bands` selects) that do not fit the backbone `bb` in one line saying what
    to pass; warn when an alpha band of the input would go in as data."""
    info = source.info
    if info.count != int(bb.in_chans):
        raise InputError(_band_count_message(source, bands, bb))
    alpha = [b for b in info.alpha_bands if b in source.bands and not bands]
    if alpha:  # the band count fits, but a mask goes in as data: said, not refused (an RGBA-trained backbone)
        import warnings

        one = len(alpha) == 1
        data = [b for b in source.bands if b not in alpha]
        warnings.warn(
            f"{'band' if one else 'bands'} {_listed(alpha)} of input {info.path} "
            f"{'is an alpha band' if one else 'are alpha bands'} (the validity mask) and {'goes' if one else 'go'} in "
            f"as data too; pass --bands {_listed(data)} to use {'it' if one else 'them'} only as the mask, or "
            f"{alpha_is_data(alpha, info.path, source.input_count, info.dtype)}",
            stacklevel=3,
        )


def _py(bands: list[int]) -> str:
    """The Python spelling of `--bands 1,2,3` in a message: "bands=[1, 2, 3] in Python"."""
    return f"bands={list(bands)} in Python"


def _band_count_message(source: Any, bands: list[int] | None, bb: Any) -> str:
    """Why the input's (selected) bands do not fit the backbone, and what to pass: with --bands, how many of the
    input's bands it selected (not "the input has N bands", which reads as the file's count); an alpha band (RGBA)
    is named as the validity mask it is, and left out of the bands the message suggests."""
    info, n, spec = source.info, int(bb.in_chans), getattr(bb, "spec", type(bb).__name__)
    total = int(getattr(source, "input_count", info.count))
    alpha = list(getattr(info, "alpha_bands", ()))
    data = [b for b in range(1, total + 1) if b not in alpha]  # the bands that are data, not a mask
    one = len(alpha) == 1
    which = f"band {alpha[0]} is an alpha band" if one else f"bands {_listed(alpha)} are alpha bands"
    is_alpha = f"{which} (the validity mask, not data)"
    if bands:
        adapt = f"adapt the backbone to {plural(info.count, 'band')} "
        adapt += _adapt_example(spec, info.count, info.descriptions)
        pick = (
            f"pass {plural(n, 'band number')} (e.g. --bands {_listed(data[:n])}), {_py(data[:n])}, or "
            if len(data) >= n
            else ""
        )
        note = f" ({which}, the validity mask, not data)" if set(bands) & set(alpha) else ""
        return (
            f"--bands {_listed(bands)} selects {info.count} of the {total} bands of input {info.path}{note} but "
            f"backbone {spec} takes {n}; {pick}{adapt}"
        )
    head = f"input {info.path} has {plural(total, 'band')} but backbone {spec} takes {n}"
    if alpha and len(data) == n:
        return (
            f"{head}, and {is_alpha}: pass --bands {_listed(data)} ({_py(data)}) to embed its "
            f"{plural(n, 'data band')} (the "
            f"alpha band stays the validity mask); {alpha_is_data(alpha, info.path, total, info.dtype)} and adapt "
            f"the backbone to {plural(total, 'band')} {_adapt_example(spec, total, info.descriptions)}"
        )
    names = tuple(info.descriptions[b - 1] for b in data)
    adapt = f"adapt the backbone to {plural(len(data), 'band')} {_adapt_example(spec, len(data), names)}"
    adapt += f" with --bands {_listed(data)}" if alpha else ""
    pick = (
        f"select {plural(n, 'band')} with --bands (e.g. --bands {_listed(data[:n])}), {_py(data[:n])}, or "
        if len(data) > n
        else ""
    )
    return f"{head}{f', and {is_alpha}' if alpha else ''}; {pick}{adapt}"


def _listed(bands: Sequence[int]) -> str:
    return ",".join(map(str, bands))


def _adapt_example(spec: str, count: int, descriptions: Sequence[str | None]) -> str:
    """How to adapt this backbone to `count` input bands: a band count for an `arch:` spec (random weights), the
    bands' names for a checkpoint (the names decide which trained kernels are kept); the spec's other options are
    kept and a `bands=` it already has is replaced, not repeated."""
    if spec.startswith("arch:"):
        adapted = with_spec_option(spec, "bands", str(count), drop=("in_chans",))  # bands= sets in_chans
        return f"(random weights, any band count): --backbone '{adapted}'"
    names = [d for d in descriptions if d]
    listed = ",".join(names) if len(names) == count else "NAME1,NAME2,..."
    return (
        f"by name: --backbone '{with_spec_option(spec, 'bands', listed)}'; load_backbone(spec, bands=[...]) in Python"
    )


def with_spec_option(spec: str, key: str, value: str, drop: Sequence[str] = ()) -> str:
    """`spec` with its `key=` option set to `value`: replaced where the spec has it (once), else appended; the
    options named in `drop` are left out."""
    head, sep, query = spec.partition("?")
    if sep and Path(spec).expanduser().exists():  # a file whose name holds "?": no options (as `parse_spec`)
        head, query = spec, ""
    parts, done = [], False
    for part in (p for p in query.split("&") if p):
        name = part.split("=", 1)[0].strip()
        if name in drop:
            continue
        if name == key:
            if not done:
                parts.append(f"{key}={value}")
            done = True
        else:
            parts.append(part)
    if not done:
        parts.append(f"{key}={value}")
    return f"{head}?{'&'.join(parts)}"


def open_source(
    obj: Any,
    *,
    variable: str | None = None,
    bands: list[int] | None = None,
    nodata: float | None = None,
    time: int | str | None = None,
    sensor: str | None = None,
    listing: bool = False,
) -> WindowedSource:
    """A source for a path (raster file, VRT, Zarr/NetCDF cube) or an in-memory xarray object; `time` chooses a
    cube's date (`select_time`) and is refused for a raster. `sensor` (`--sensor`) and `listing` (opened to number
    `--bands` names) decide which variables of a cube of one variable per band are its bands (`cube_bands`)."""
    from geodino.data.cube_open import is_cube_store, refuse_subdataset_path

    if isinstance(obj, WindowedSource):  # opened already (a pixel window of one too: `geodino.embed.extent`)
        return obj
    if isinstance(obj, (str, Path)):
        path = str(obj)
        refuse_subdataset_path(path, variable)
        if not Path(path).exists() and "://" not in path and not path.startswith("/vsi"):
            raise InputError(f"input {path} does not exist; pass a raster file, a VRT or a Zarr store")
        if is_cube_store(path):
            return CubeSource(
                path, variable=variable, bands=bands, nodata=nodata, time=time, sensor=sensor, listing=listing
            )
        if Path(path).is_dir():
            tifs = sorted(p.name for p in Path(path).iterdir() if p.suffix.lower() in RASTER_EXTS)
            more = ", ..." if len(tifs) > 2 else ""
            what = f"a folder of {plural(len(tifs), 'raster')} ({', '.join(tifs[:2])}{more})"
            raise InputError(
                f"input {path} is {what if tifs else 'a folder with no raster in it'}; embed_raster takes one raster, "
                f"a Zarr store or a VRT; for one feature raster per scene use embed_scenes (geodino embed {path} "
                f"--out FOLDER)"
            )
        if time is not None:
            raise InputError(f"time={time!r} chooses a date of a datacube (Zarr, NetCDF); input {path} is a raster "
                             "(one date): drop time")  # fmt: skip
        return RasterSource(path, bands=bands, nodata=nodata)
    return CubeSource(obj, variable=variable, bands=bands, nodata=nodata, time=time, sensor=sensor, listing=listing)
