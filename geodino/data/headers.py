"""What an image file's header says: its size as read (upright by EXIF orientation), band count, dtype, band
descriptions and alpha bands, without decoding pixels where the format allows.

The one home for the header reads of the probes' DN -> reflectance rule (`geodino.eval.scaling.image_header`:
dtype and band count), `geodino embed images`' size check at native size (`geodino.embed.images.check_sizes`)
and `geodino data stats` (the first raster's bands, names, dtype and alpha bands). The library follows the
readers': rasterio for GeoTIFF/VRT/IMG/JPEG 2000 (`RASTERIO_SUFFIXES`, or every file with `reader="rasterio"`, as
the raster archive reads them), Pillow for photos and chips (PNG, JPEG, WebP, BMP), whose size is given upright as
`geodino.eval.datasets.read_array` turns them (a phone stores a portrait sideways with EXIF orientation 6 or 8).

Headers are cached per local file for the run, and across runs on disk (`geodino.data.header_store`), keyed by path,
mtime, size, ctime and inode, and those of its `.aux.xml` sidecar and world/TAB files (`header_sidecars`; a
rewritten file or sidecar is read again; `header_stamp`), once all are older than `io_stamps.RACY_NS` by their
ctime: a rewrite within one tick of a coarse clock keeps the stat, so a file (or sidecar) changed that recently is
read at each ask, uncached (a folder written within ~5 min costs a header read per ask, never a stale header). An
image-folder dataset settles its band count and DN rule over every split's files (`geodino.eval.folder_rule`),
`embed images` checks the band counts, then the dtypes and declared rules, then the footprints (CRS and transform)
of the same files, `data stats` asks for the first raster up to four times. A cache here serves them all without
threading a header through their signatures. rasterio reads a header without GDAL's listing of the file's folder
(`no_folder_listing`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodino.data.header_sidecars import SideStamp, georef_stamp
from geodino.data.paths import RASTER_EXTS
from geodino.errors import ConfigError, InputError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "RASTERIO_SUFFIXES",
    "HeaderError",
    "ImageHeader",
    "declared_rule",
    "gdal_read_errors",
    "header_or_none",
    "header_stamp",
    "no_folder_listing",
    "read_error",
    "read_header",
    "reader_kind",
    "stamp_is_young",
    "tiff_cut_short",
]

RASTERIO_SUFFIXES = RASTER_EXTS  # read with rasterio; the rest with Pillow
READERS = ("auto", "rasterio")
ORIENTATION = 0x0112  # the EXIF tag
TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height (transpose, rotate 270, transverse, rotate 90)
_MODE_DTYPES = {"1": "bool", "I": "int32", "F": "float32", "I;16": "uint16", "I;16L": "uint16", "I;16B": "uint16"}
_REMOTE = ("/vsi", "http://", "https://", "s3://", "gs://")  # not cached: no mtime to key on


_READ_ERROR = re.compile(r"IO error|read error|failed to read|truncat|apparently corrupt|short read|cannot read", re.I)
"""GDAL/libtiff messages that say part of a file did not read (a file cut short: a failed download or copy)."""


def read_error(message: str, path: str | Path | None = None) -> str | None:
    """`message` (a GDAL warning or error) without rasterio's "CPLE_... in PATH: " prefix when it says part of the
    file did not read, else None."""
    if not _READ_ERROR.search(message):
        return None
    message = re.sub(r"^CPLE_\w+ in ", "", message).removesuffix("; tag ignored")
    for name in (str(path), os.path.basename(str(path))) if path is not None else ():
        message = message.removeprefix(f"{name}: ")  # libtiff names the file by its base name
    return message


@functools.cache
def _handler_class() -> type:
    """The handler `gdal_read_errors` adds: one class for the process, not one per call (a header scan of 20,000
    files defined 20,000 classes); logging imported only when asked."""
    import logging

    class _Collect(logging.Handler):
        def __init__(self, path: str | Path | None) -> None:
            super().__init__(logging.WARNING)
            self.path = path
            self.found: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if self.path is not None and os.path.basename(str(self.path)) not in text:
                return  # another file's (a reader on another thread): libtiff names the file it reads
            msg = read_error(text, self.path)
            if msg is not None:
                self.found.append(msg)

    return _Collect


class _LevelHold:
    """The rasterio logger's level while `gdal_read_errors` calls run, in any thread: the first call that finds
    warnings dropped raises the level and the last one to leave puts it back. Each call saving and restoring the
    level on its own (as before) let a call that ended put the level back while another thread's call was still
    reading, whose warnings were then dropped: its truncated header went unnamed."""

    lock = threading.Lock()
    inside = 0  # gdal_read_errors calls running now
    put_back: int | None = None  # the level to put back when the last leaves; None: not raised


@contextlib.contextmanager
def gdal_read_errors(path: str | Path | None = None) -> Iterator[list[str]]:
    """Collect, while the block runs, the GDAL warnings (logged by rasterio) that say part of a file did not read.

    Why: libtiff reads a GeoTIFF cut inside its header with only warnings ("IO error during reading of
    GeoKeyDirectory; tag ignored"), so the file opens without its CRS, nodata or band names and a caller would blame
    the missing CRS; the caller names the file as truncated or corrupt instead. The logger's level is set only when
    it would drop warnings, and put back only then: each `Logger.setLevel` clears the cache of every logger in the
    process (~0.1 ms each once torch has made its hundreds: 2 s of a 20,000-file header scan). Safe on several
    threads at once (`_LevelHold`); each call's handler keeps the warnings that name its own file."""
    import logging

    logger = logging.getLogger("rasterio._env")
    handler, hold = _handler_class()(path), _LevelHold
    with hold.lock:
        if not logger.isEnabledFor(logging.WARNING):  # raised already by a call running now: its level is kept
            hold.put_back = logger.level if hold.put_back is None else hold.put_back
            logger.setLevel(logging.WARNING)
        hold.inside += 1
    logger.addHandler(handler)
    try:
        yield handler.found
    finally:
        logger.removeHandler(handler)
        with hold.lock:
            hold.inside -= 1
            if not hold.inside and hold.put_back is not None:
                logger.setLevel(hold.put_back)
                hold.put_back = None


def no_folder_listing() -> Any:
    """GDAL's `GDAL_DISABLE_READDIR_ON_OPEN=TRUE` while headers are read, unless the environment sets it: GDAL
    otherwise lists a file's whole folder on each open (up to `GDAL_READDIR_LIMIT_ON_OPEN`, 1000 names) to look for
    sidecars, so reading 1,000 chips of one folder listed it 1,000 times (a header scan 25-30 % slower there).
    With TRUE, GDAL looks for each sidecar it knows (`.aux.xml`, `.msk`, `.ovr`, world files) by its name instead.
    For the raster archive's index (`geodino.data.archive_index`) and `read_header`."""
    import rasterio

    if "GDAL_DISABLE_READDIR_ON_OPEN" in os.environ:
        return contextlib.nullcontext()
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="TRUE")


def tiff_cut_short(src: Any, path: str | Path) -> tuple[int, int] | None:
    """(byte where the last pixel block ends, file size) of a local GeoTIFF whose pixel data runs past its end (a
    download or copy cut short after the header), else None. Reads the block table only (GDAL's TIFF metadata), so a
    header scan (`geodino data index`) can name the cut file before any window read fails; the raster archive calls
    it only with `check_cut_short=True` (data index), so for curate and pretraining a cut file among others still
    reads as failed windows (curate records their tiles as nodata). A
    healthy file never has a block past its end; overviews appended after the full-resolution data are not checked."""
    if getattr(src, "driver", None) != "GTiff" or not os.path.isfile(str(path)) or not src.count:
        return None
    (bh, bw), end = src.block_shapes[0], 0
    last = f"{-(-src.width // bw) - 1}_{-(-src.height // bh) - 1}"
    for band in dict.fromkeys((1, src.count)):  # pixel-interleaved: band 1 holds all; band-separate: the last band
        offset, size = (src.get_tag_item(f"BLOCK_{k}_{last}", "TIFF", bidx=band) for k in ("OFFSET", "SIZE"))
        if offset and size and int(offset) > 0:
            end = max(end, int(offset) + int(size))
    have = os.path.getsize(str(path))
    return (end, have) if end > have else None


class HeaderError(InputError):
    """An image's header does not read (the library's exception is the `__cause__`)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says. `width`/`height`: as read (a Pillow image turned by its EXIF orientation;
    rasterio ignores it, as its readers do); `count`, `dtype` (rasterio's name of the first band's type, or the
    numpy type of Pillow's mode) and `alpha` (1-based alpha bands) of the pixels as stored; `descriptions`: one
    per band (None where a band has none; Pillow files have none); `mode`: Pillow's mode ("" for rasterio)."""

    width: int
    height: int
    count: int
    dtype: str
    descriptions: tuple[str | None, ...]
    alpha: tuple[int, ...]
    reader: str  # "rasterio" or "pillow"
    mode: str = ""
    orientation: int = 1  # EXIF orientation (1: upright as stored)
    # DN -> physical value per band (GDAL <Scale>/<Offset>, `data.rasters.declared_scaling`), () when none declared
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()
    colours: tuple[str, ...] = ()  # each band's colour interpretation (rasterio's names: red, gray, undefined, ...)
    # rasterio's georeferencing: the CRS as WKT ("" when none; one string shared by all files of a CRS) and the
    # affine transform's 6 numbers, for `embed images`' footprints without opening the file again
    crs: str = ""
    transform: tuple[float, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as read."""
        return self.width, self.height

    @property
    def band_names(self) -> tuple[str, ...] | None:
        """Every band's description, else the colour interpretation's red/green/blue (`colour_bands`), else None."""
        from geodino.data.colour_bands import colour_band_names

        names = tuple(d for d in self.descriptions if d)
        return names if len(names) == self.count else colour_band_names(self.colours, self.count)


def read_header(path: str | Path, *, reader: str = "auto") -> ImageHeader:
    """The header of the image at `path` (`reader`: "auto" picks rasterio by suffix, "rasterio" always uses it);
    cached per settled local file by its stat (`header_stamp`). HeaderError (an InputError naming the file; the
    library's exception as its cause) when it does not read."""
    if reader not in READERS:
        raise ValueError(f"reader={reader!r}; use one of {', '.join(READERS)}")
    name = str(path)
    try:
        if name.startswith(_REMOTE):
            return _read(name, reader)
        now = time.time_ns()  # before the stat: the change it shows happened before this
        st = os.stat(name)
        stamp = st.st_mtime_ns, st.st_size, _sidecar_stamp(name), st.st_ctime_ns, st.st_ino, _georef(name, reader)
        if stamp_is_young(stamp, now):  # a rewrite within the same tick would keep this stat: not cached
            return _read(name, reader)
        from geodino.data.header_store import env_options  # a rasterio.Env's GDAL settings: a header may differ

        return _cached(name, reader, stamp, env_options() if reader_kind(name, reader) == "rasterio" else "")
    except ConfigError:  # a setting of the header store (`header_store.store_path`), not the file
        raise
    except Exception as exc:  # Pillow/rasterio raise many kinds; all mean "the header does not read"
        raise HeaderError(
            f"cannot read the header of image {name} ({type(exc).__name__}: {exc}); check the file or remove it"
        ) from exc


def header_or_none(path: str | Path, *, reader: str = "auto") -> ImageHeader | None:
    """`read_header`, or None when the header does not read (for callers whose pixel read says why later)."""
    try:
        return read_header(path, reader=reader)
    except HeaderError:
        return None


def declared_rule(
    path: str | Path, bands: Sequence[int] | None = None, *, reader: str = "auto", fix: str = ""
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(scales, offsets) the image at `path` declares for `bands` (1-based, in that order; None: every band): its
    GDAL `<Scale>`/`<Offset>` (`data.rasters.declared_scaling`, read once per file with the header). None when
    every band asked for declares 1/0, the file has no such tags (PNG/JPEG read by Pillow), `bands` asks for a band
    it lacks or the header does not read (the pixel reader says what is wrong). The one read of a file's declared
    rule for `geodino embed`, `embed images` and the probes. A GDAL dataset name that is no file (a MODIS
    `HDF4_EOS:EOS_GRID:...` subdataset) is opened as it is, uncached. Integer bands declaring nothing beside bands
    that declare a rule are refused (`_refuse_partly`; `fix`: how the caller's settings give a rule outright)."""
    head = header_or_none(path, reader=reader)
    name = str(path)  # a remote name was opened uncached above: a second try would wait out its failure again
    if head is None and reader == "rasterio" and not name.startswith(_REMOTE) and not os.path.exists(name):
        try:
            head = _read(name, reader)
        except Exception:  # any failure means "no header": the reader says why
            head = None
    if head is None or not head.scales:
        return None
    picked = list(bands) if bands else list(range(1, head.count + 1))
    if not all(1 <= b <= len(head.scales) for b in picked):
        return None
    scales = tuple(head.scales[b - 1] for b in picked)
    offsets = tuple(head.offsets[b - 1] for b in picked)
    if all(s == 1.0 for s in scales) and all(o == 0.0 for o in offsets):
        return None
    _refuse_partly(name, head, picked, (scales, offsets), fix)
    return scales, offsets


def _refuse_partly(
    path: str, head: ImageHeader, picked: Sequence[int], rule: tuple[tuple[float, ...], ...], fix: str
) -> None:
    """One line when some bands read declare a DN -> physical rule and others, of an integer type, none (GDAL
    reports 1/0 for a band without tags, as for one declaring 1/0): those would be read raw, DN 0..10000 taken for
    reflectance beside scaled bands, where a file declaring nothing has its DN scaled (the sensor's or the dtype's
    rule). Floating-point bands without a rule hold physical values already and pass, as does a file declaring
    every band read (or none)."""
    bare = [b for b, s, o in zip(picked, *rule, strict=True) if s == 1.0 and o == 0.0]
    if not bare or not str(head.dtype).startswith(("int", "uint")):
        return
    from geodino.data.rasters import format_rule

    said = [(b, s, o) for b, s, o in zip(picked, *rule, strict=True) if b not in bare]
    declares = format_rule([s for _, s, _ in said], [o for _, _, o in said])
    fix = (
        fix or "set the scale outright, which overrides the file's rule (--scale, or a probe's data.scale / data_scale)"
    )
    raise InputError(
        f"raster {path} declares physical value = {declares} for {_bands(b for b, _, _ in said)} (GDAL "
        f"scale/offset) but nothing for {_bands(bare)} ({head.dtype}), which would be read raw, "
        f"DN as physical values; write every band's scale/offset into the file (gdal_edit.py -scale/-offset, or a "
        f"VRT), or {fix}"
    )


def _bands(numbers: Iterable[int]) -> str:
    """ "band 2" or "bands 2, 3" for a message."""
    listed = list(numbers)
    return f"band{'s' if len(listed) > 1 else ''} {', '.join(map(str, listed))}"


Stamp = tuple[int, int, "tuple[int, int, int, int] | None", int, int, SideStamp]
"""(mtime, size, `_sidecar_stamp`, ctime, inode, `header_sidecars.georef_stamp`) of a file, in ns and bytes. The
inode: files extracted from one archive share size, mtime and, within one tick of the kernel's clock (~4 ms),
ctime (2,000 chips tar extracted on ext4: 10 distinct stamps), so a name made a link to another such file
(`ln -sf b.tif a.tif`) kept a's stamp and its header."""


@functools.lru_cache(maxsize=1 << 16)
def _cached(name: str, reader: str, stamp: Stamp, options: str = "") -> ImageHeader:
    """`_read`, once per (file, reader, `header_stamp`, in-process GDAL `options`: `header_store.env_options`), and
    once across processes: what an earlier process read
    of the file as it is now comes from the store on disk (`geodino.data.header_store`); failures are not cached
    (they raise)."""
    from geodino.data import header_store

    head = header_store.lookup(name, reader, stamp, options)
    if head is None:
        head = _read(name, reader)
        header_store.keep(name, reader, stamp, head, options)
    return head


def header_stamp(path: str | Path) -> Stamp | None:
    """`Stamp` of a local file: what its cached header is keyed by, for a cache of what callers made of headers
    (`geodino.eval.folder_rule`); None for a remote or missing file. The ctime, which every write sets, tells a
    rewrite dated back to the old mtime (`cp -p`, `touch -d`, archive extraction); the inode, another file of the
    same size and times put in its place."""
    name = str(path)
    if name.startswith(_REMOTE):
        return None
    try:
        st = os.stat(name)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, _sidecar_stamp(name), st.st_ctime_ns, st.st_ino, _georef(name, "auto")


def _georef(name: str, reader: str) -> SideStamp:
    """The stamp of the world/TAB files GDAL reads beside `name` (`header_sidecars`); () for Pillow's files."""
    return georef_stamp(name) if reader_kind(name, reader) == "rasterio" else ()


def stamp_is_young(stamp: Stamp, now_ns: int) -> bool:
    """Whether the file or one of its sidecars (`.aux.xml`, a world or TAB file) changed within `io_stamps.RACY_NS`
    before `now_ns` (or after it), by their ctimes (`io_stamps.changed_recently`): such a stamp may not move with a
    rewrite in the same tick, so nothing keyed by it is kept (the header cache, the folder-rule memo)."""
    from geodino.io_stamps import changed_recently

    side = stamp[2]
    return changed_recently((stamp[3], *((side[2],) if side is not None else ()), *(g[3] for g in stamp[5])), now_ns)


def _sidecar_stamp(name: str) -> tuple[int, int, int, int] | None:
    """(mtime, size, ctime, inode) of the file's GDAL sidecar `NAME.aux.xml`, else None: a scale/offset, nodata or band
    description written there (GDAL's PAM, e.g. `gdal_edit.py` on a JPEG 2000 file) changes the header without
    touching the file, and a notebook's second `embed` read the declared rule cached before it."""
    try:
        st = os.stat(name + ".aux.xml")
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ctime_ns, st.st_ino


def reader_kind(name: str, reader: str) -> str:
    """The library that reads the header of `name`: "rasterio" (`reader="rasterio"` or its suffix) or "pillow"."""
    if reader == "rasterio" or os.path.splitext(name)[1].lower() in RASTERIO_SUFFIXES:
        return "rasterio"
    return "pillow"


def _read(name: str, reader: str) -> ImageHeader:
    return _rasterio_header(name) if reader_kind(name, reader) == "rasterio" else _pillow_header(name)


def _rasterio_header(name: str) -> ImageHeader:
    """The header as rasterio opens it (no warning for a file without georeferencing: a header read is no use),
    without GDAL's listing of the file's folder (`no_folder_listing`)."""
    import sys
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from geodino.data.rasters import alpha_bands, declared_scaling

    with warnings.catch_warnings(), no_folder_listing():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(name) as src:
            rule = declared_scaling(src, range(1, src.count + 1)) or ((), ())
            return ImageHeader(
                width=int(src.width),
                height=int(src.height),
                count=int(src.count),
                dtype=str(src.dtypes[0]),
                descriptions=tuple(src.descriptions or ()),
                colours=tuple(c.name for c in src.colorinterp),
                alpha=alpha_bands(src),
                reader="rasterio",
                scales=rule[0],
                offsets=rule[1],
                crs=sys.intern(src.crs.to_wkt()) if src.crs is not None else "",
                transform=tuple(src.transform)[:6],
            )


def _pillow_header(name: str) -> ImageHeader:
    """The header as Pillow opens it, the size turned by the EXIF orientation as `ImageOps.exif_transpose` turns
    the pixels."""
    from PIL import Image

    with Image.open(name) as im:
        orientation = _orientation(im, name)
        w, h = im.size
        if orientation in TURNED:
            w, h = h, w
        bands = im.getbands()
        dtype = _MODE_DTYPES.get(im.mode, "uint8")
        if im.format == "PNG" and dtype == "uint8":
            # Pillow's mode (RGB, RGBA) of a 16-bit PNG says 8 bits; `geodino.data.images.photo_array` reads uint16
            from geodino.data.images import png_bit_depth

            with open(name, "rb") as fh:
                dtype = "uint16" if png_bit_depth(fh.read(26)) == 16 else dtype
        return ImageHeader(
            width=int(w),
            height=int(h),
            count=len(bands),
            dtype=dtype,
            descriptions=(None,) * len(bands),
            alpha=tuple(i for i, b in enumerate(bands, start=1) if b in ("A", "a")),
            reader="pillow",
            mode=im.mode,
            orientation=orientation,
        )


def _orientation(im: Image.Image, name: str) -> int:
    """The EXIF orientation (1-8) `ImageOps.exif_transpose` applies: from the EXIF, a "Raw profile type exif" text
    or the XMP. A PNG's own `getexif` decodes the pixels to look behind them, so the pixels are decoded only when
    such a chunk follows them (`_png_meta_after_pixels`); before the pixels Pillow has read it on opening."""
    from PIL import Image

    if im.format == "PNG" and _png_meta_after_pixels(name):
        im.load()
        exif = im.getexif()
    else:
        exif = Image.Image.getexif(im)  # the base class: what Pillow read on opening, nothing decoded
    value = exif.get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


_PNG_META_KEYS = (b"Raw profile type exif", b"XML:com.adobe.xmp")  # the text keys Pillow's getexif reads


def _png_meta_after_pixels(name: str) -> bool:
    """Whether a PNG holds an eXIf chunk, or a text chunk of EXIF or XMP, after its first IDAT (walked chunk by
    chunk: 8 bytes read per chunk, the rest skipped)."""
    with open(name, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
        pixels = False
        while len(head := f.read(8)) == 8:
            length, cid = struct.unpack(">I4s", head)
            if cid == b"IEND":
                return False
            if cid == b"IDAT":
                pixels = True
            elif pixels and cid == b"eXIf":
                return True
            elif pixels and cid in (b"tEXt", b"zTXt", b"iTXt"):
                n = min(length, 80)  # a keyword is at most 79 bytes, then a NUL
                if f.read(n).split(b"\0", 1)[0] in _PNG_META_KEYS:
                    return True
                f.seek(length - n + 4, os.SEEK_CUR)  # the rest and the CRC
                continue
            f.seek(length + 4, os.SEEK_CUR)  # data and CRC
    return False
