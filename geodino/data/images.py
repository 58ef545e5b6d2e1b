"""Web images: image folders (recursive; jpg, png, webp, tif) and webdataset-style tar shards.

Both are indexed once (file list, or member offsets inside uncompressed tars, so a sample is one seek + read)
and read as a pure function of (seed, index): index i of epoch e is image perm_e[i mod N]. A corrupt image is
skipped (a deterministic replacement is read instead) and counted in a warning; `on_error="stop"` raises
instead, naming the file.
Transparent pixels (alpha 0, a PNG's transparent colour) are not valid (`decode_photo`), as a raster's alpha band.
A 16-bit PNG keeps its 16-bit values (`photo_array`: Pillow reads 16-bit RGB, RGBA and grey+alpha as 8 bits).
"""

from __future__ import annotations

import io
import os
import tarfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.paths import IMAGE_EXTS, TIFF_EXTS, resolve_paths
from geodino.data.sensors import Sensor, check_bit_depth, get_sensor, scales_8bit
from geodino.errors import InputError, plural

__all__ = [
    "GREY_MODES",
    "PHOTO_EXTS",
    "ImageFolderSource",
    "TarShardSource",
    "dataset_bands",
    "decode_image",
    "decode_photo",
    "draft_jpeg",
    "match_bit_depth",
    "photo_array",
    "png_bit_depth",
    "png_colour_type",
    "read_bands",
]

PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # web formats: decoded as photos (RGB), never as rasters
GREY_MODES = ("1", "L", "LA", "La", "I;16", "I;16L", "I;16B", "I;16N")  # Pillow modes of one grey band (+ alpha)
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")

_skipped_count = 0


def decode_image(data: bytes, name: str, n_bands: int = 3) -> np.ndarray:
    """Decode image bytes to uint8/uint16 [C,H,W] (`decode_photo` without the validity)."""
    return decode_photo(data, name, n_bands)[0]


def decode_photo(
    data: bytes, name: str, n_bands: int = 3, *, min_area: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode image bytes to uint8/uint16 [C,H,W] and their validity [H,W] (None: every pixel valid). TIFFs keep
    their bands (an alpha band beyond the sensor's bands is the validity mask, as a raster source reads it); others
    become RGB, turned upright as their EXIF orientation says (a phone photo stored sideways is shown upright by
    every viewer). A greyscale photo (grey, or grey+alpha, at 8 or 16 bits) is three equal bands for a 3-band
    sensor (`n_bands`, RGB photos) and one band otherwise, as a one-band TIFF: an 8-bit grey PNG or JPEG gave three
    bands (refused by a one-band sensor) where a 16-bit one gave one. A PNG/WebP/BMP with alpha or a transparent
    colour is valid where alpha > 0 (a cut-out's transparent area is not black ground: it trained and entered
    `data stats` as black before). `min_area`: an RGB JPEG may be decoded at 1/2, 1/4 or 1/8 scale while it keeps
    at least this many pixels (`draft_jpeg`; None: full resolution)."""
    suffix = Path(name).suffix.lower()
    if suffix in TIFF_EXTS:
        return _decode_tiff(data, n_bands)
    rgb = n_bands == 3
    if min_area and rgb and suffix in (".jpg", ".jpeg"):
        try:
            drafted = draft_jpeg(data, min_area)
        except Exception:  # a broken file: the full decode below raises its usual error
            drafted = None
        if drafted is not None:
            return drafted
    if suffix not in (".jpg", ".jpeg") or not rgb:  # JPEG has no alpha; the others may: Pillow reads it
        try:  # (torchvision's RGB_ALPHA mode ignores a PNG's transparent colour and garbles palette and 1-bit alpha)
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                grey = im.mode in GREY_MODES or png_colour_type(data) in (0, 4)  # Pillow: 16-bit grey+alpha is RGBA
                alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
                if alpha or png_bit_depth(data) == 16 or (grey and not rgb):
                    arr, valid = photo_array(im, rgb=rgb, data=data)
                    return (arr[:1] if grey and not rgb else arr), valid  # 16-bit grey+alpha: three equal bands
        except Exception:  # not an image Pillow opens: torchvision below tries, and its error is the one raised
            pass
    try:
        import torch
        from torchvision.io import ImageReadMode
        from torchvision.io import decode_image as tv_decode

        t = tv_decode(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB, apply_exif_orientation=True
        )
        return t.numpy(), None
    except Exception:  # formats torchvision cannot decode (bmp, odd pngs): fall back to Pillow
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return photo_array(im, rgb=rgb)


def draft_jpeg(data: bytes, min_area: int) -> tuple[np.ndarray, None] | None:
    """An RGB JPEG decoded by libjpeg's DCT scaling (Pillow's `draft`) at the largest reduction of 8, 4 or 2 that
    keeps at least `min_area` pixels, upright (`photo_array`); None when no reduction keeps that many (or not a
    JPEG): the caller decodes at full resolution as before (docs/data.md, `fast_decode`)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        f = next((f for f in (8, 4, 2) if (w // f) * (h // f) >= min_area), 1)
        if im.format != "JPEG" or f == 1:
            return None
        im.draft("RGB", (w // f, h // f))  # Pillow picks the largest scale whose size is >= this: exactly 1/f
        if im.size[0] * im.size[1] < min_area:  # pragma: no cover - defensive: never smaller than asked
            return None
        return photo_array(im, rgb=True)[0], None


def _decode_tiff(data: bytes, n_bands: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A TIFF chip's bands and validity: alpha bands (GDAL colour interpretation) are the mask when the file has
    the sensor's bands besides them (RGBA for an RGB sensor); one band is repeated for an RGB sensor."""
    from rasterio.io import MemoryFile

    from geodino.data.rasters import alpha_bands

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning: web TIFFs have no CRS, as expected
        with MemoryFile(data) as mem, mem.open() as src:
            arr, alpha = src.read(), alpha_bands(src)
    valid = None
    if alpha and arr.shape[0] - len(alpha) == n_bands:
        valid = (arr[[b - 1 for b in alpha]] > 0).all(axis=0)
        arr = arr[[b for b in range(arr.shape[0]) if b + 1 not in alpha]]
    if arr.shape[0] == 1 and n_bands == 3:
        arr = np.repeat(arr, 3, axis=0)
    return arr, valid


def photo_array(im: Any, *, rgb: bool, data: bytes | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A Pillow image's pixels [C,H,W], upright by its EXIF orientation, and its validity [H,W] (alpha > 0, as an
    alpha band masks a raster) or None when it has no alpha. Grey modes (L, LA, 1, 16-bit grey) give one band, or
    three equal ones with `rgb` (as pretraining reads every photo of an RGB source); RGB stays as stored (8 or 16
    bit); every other mode (palette, RGBA, CMYK ...) becomes RGB. A 16-bit PNG is uint16 as stored (`_png16_array`;
    `data`: the file's bytes when `im` was opened from memory, else they are read again from its file). The one
    photo rule of the probes' `read_array`, `embed images` and pretraining's Pillow path."""
    from PIL import ImageOps

    if im.format == "PNG":
        raw = data if data is not None else _file_bytes(im, 26)
        if png_bit_depth(raw) == 16:
            return _png16_array(im, data if data is not None else _file_bytes(im), rgb=rgb)
    im = ImageOps.exif_transpose(im)  # a copy, turned when the file says so
    valid = None
    if im.mode in _ALPHA_MODES:
        valid = np.asarray(im.getchannel("A")) > 0
    elif "transparency" in im.info:  # palette, grey or RGB with a transparent colour (PNG tRNS, GIF-style)
        valid = np.asarray(im.convert("RGBA").getchannel("A")) > 0
    if im.mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.uint16)[None]  # native byte order, whatever the file's
    elif im.mode in GREY_MODES:
        arr = np.asarray(im.convert("L"))[None]
    else:
        arr = np.asarray(im if im.mode == "RGB" else im.convert("RGB")).transpose(2, 0, 1)
    if rgb and arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return np.ascontiguousarray(arr), valid


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bit_depth(head: bytes) -> int:
    """A PNG's bits per sample from its first 26 bytes (signature, then the IHDR chunk); 0 when not a PNG."""
    if len(head) >= 26 and head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return head[24]
    return 0


def png_colour_type(head: bytes) -> int:
    """A PNG's colour type from its first 26 bytes (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA); -1 when not a
    PNG. Pillow opens a 16-bit grey+alpha PNG as RGBA: this tells it is grey."""
    if len(head) >= 26 and head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return head[25]
    return -1


def _file_bytes(im: Any, n: int = -1) -> bytes:
    """The first `n` bytes (all with -1) of the file Pillow opened `im` from: its path, else its open file object
    (rewound, then left where it was); b"" when neither is there (an image already loaded from memory)."""
    if getattr(im, "filename", ""):
        with open(im.filename, "rb") as fh:
            return fh.read(n)
    fp = getattr(im, "fp", None)
    if fp is None:
        return b""
    pos = fp.tell()
    try:
        fp.seek(0)
        return fp.read(n)
    finally:
        fp.seek(pos)


# EXIF orientation -> the numpy turn of [..., H, W] that `PIL.ImageOps.exif_transpose` applies (Image.Transpose)
_TURNS = {
    2: lambda a: a[..., ::-1],  # FLIP_LEFT_RIGHT
    3: lambda a: a[..., ::-1, ::-1],  # ROTATE_180
    4: lambda a: a[..., ::-1, :],  # FLIP_TOP_BOTTOM
    5: lambda a: np.swapaxes(a, -1, -2),  # TRANSPOSE
    6: lambda a: np.rot90(a, -1, axes=(-2, -1)),  # ROTATE_270 (counter-clockwise)
    7: lambda a: np.swapaxes(a, -1, -2)[..., ::-1, ::-1],  # TRANSVERSE
    8: lambda a: np.rot90(a, 1, axes=(-2, -1)),  # ROTATE_90
}


def _png16_array(im: Any, data: bytes, *, rgb: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """`photo_array` of a 16-bit PNG: Pillow reads RGB, RGBA and grey+alpha at 16 bits as 8-bit images (the low
    byte dropped, so bit-depth detection saw 8-bit data) and ignores a 16-bit transparent colour, so the pixels
    are decoded by `torchvision.io.decode_png` (uint16, as stored); Pillow gives the transparent colour (tRNS) and
    the EXIF orientation, as for every other photo. The alpha channel is the validity (alpha > 0). Grey+alpha
    gives three equal bands, as Pillow's mode (RGBA) and so the header say; grey gives one, or three with `rgb`."""
    import torch
    from torchvision.io import ImageReadMode, decode_png

    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    arr = decode_png(buf, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False).numpy()
    valid = None
    if arr.shape[0] in (2, 4):  # grey + alpha, RGBA
        valid, arr = arr[-1] > 0, arr[:-1]
        if arr.shape[0] == 1:
            arr = np.repeat(arr, 3, axis=0)
    elif (key := im.info.get("transparency")) is not None:  # tRNS: the one transparent grey value or RGB colour
        valid = (arr != np.asarray(key, dtype=np.uint16).reshape(-1, 1, 1)).any(axis=0)
    turn = _TURNS.get(im.getexif().get(0x0112, 1))  # 0x0112: the EXIF orientation tag, as ImageOps reads it
    if turn is not None:
        arr = turn(arr)
        valid = None if valid is None else turn(valid)
    if rgb and arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return np.ascontiguousarray(arr, dtype=np.uint16), None if valid is None else np.ascontiguousarray(valid)


def read_bands(path: str | Path) -> tuple[int, bool] | None:
    """(bands as `geodino.eval.datasets.read_array` reads the file, whether it is a one-band web-format photo that
    an RGB dataset reads as three equal bands), from the header alone; None when the header does not read (the
    pixel read says why)."""
    from geodino.data.headers import header_or_none

    head = header_or_none(path)
    if head is None:
        return None
    if head.reader == "rasterio" or Path(path).suffix.lower() not in PHOTO_EXTS:
        return head.count, False
    return (1, True) if head.mode in GREY_MODES else (3, False)


def dataset_bands(paths: Sequence[str | Path], where: str, *, rgb: bool | None = None) -> int:
    """The one band count of a dataset's image files as read (headers only), before any feature is extracted.
    One-band web-format photos (greyscale JPEG/PNG) count as RGB when `rgb` is True, or, with `rgb` None, when
    another file reads three bands (the dataset is RGB, as pretraining reads it); TIFFs count as stored. A file of
    another count is one line naming it, its count and the dataset's (the most common; ties: the first met). Files
    whose header does not read are left to the read. Returns the count (0 when no header reads)."""
    from collections import Counter

    found = {str(p): read_bands(p) for p in paths}
    known = {p: nb for p, nb in found.items() if nb is not None}
    if rgb is None:
        rgb = any(n == 3 and not grey for n, grey in known.values())
    counts = {p: 3 if grey and rgb else n for p, (n, grey) in known.items()}
    tally = Counter(counts.values())
    if not tally:
        return 0
    want = tally.most_common(1)[0][0]
    odd = next((p for p, n in counts.items() if n != want), None)
    if odd is not None:
        example = next(p for p, n in counts.items() if n == want)
        raise InputError(
            f"image {odd} has {plural(counts[odd], 'band')} but {tally[want]} of the {len(counts)} images of {where} "
            f"have {want} (e.g. {example}); a dataset's images share one band count: convert or remove "
            f"{Path(odd).name}, or keep such images in a folder of their own"
        )
    return want


def match_bit_depth(arr: np.ndarray, name: str, sensor: Sensor) -> np.ndarray:
    """A decoded image in the DN range its sensor scales. A 16-bit PNG (or other web format) spans 0..65535 by
    definition, so for a sensor of 8-bit DN (scale 1/255) it is brought to 0..255 (/257; it trained as a blank,
    saturated image before); a 16-bit TIFF above 255 holds the DN of some sensor, and an 8-bit image with a sensor
    of 16-bit DN is near-constant: both refused with one line (`check_bit_depth`). Others get the DN as decoded."""
    if arr.dtype == np.uint16 and scales_8bit(sensor) and Path(name).suffix.lower() not in TIFF_EXTS:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    top = int(arr.max()) if arr.dtype == np.uint16 and arr.size and scales_8bit(sensor) else None
    check_bit_depth(name, arr.dtype, sensor, top=top)
    return arr


def _tar_hint(path: str) -> str:
    """What to do about a shard tarfile cannot read: compressed (by its magic bytes), or cut short / corrupt."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        head = b""
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")):  # gzip, bzip2, xz, zstd
        return "it is compressed; shards must be uncompressed .tar files (decompress it, or re-create it with tar -cf)"
    return "it is truncated or corrupt; re-create or re-download it (or set on_error: skip to leave it out)"


class _ImageSourceBase:
    """Shared sampling/corruption logic; subclasses provide `_n` and `_read(k) -> (bytes, name)`."""

    name: str
    sensor: Sensor
    skip_hint = "set on_error: skip"  # what a decode error suggests; a command may name its own flag

    def __init__(self, *, sensor: str | Sensor, name: str, on_error: str, shuffle: bool, max_tries: int) -> None:
        from geodino.data.rasters import stream_id
        from geodino.data.tiling import EpochOrder

        if on_error not in ("stop", "skip"):
            raise InputError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
        self.sensor = get_sensor(sensor)
        self.band_names = list(self.sensor.bands)
        self.name = name
        self.on_error = on_error
        self.shuffle = shuffle
        self.max_tries = max_tries
        self.stream = stream_id(name)
        self._order = EpochOrder(self.stream, shuffle=shuffle, salt=0x696D67)
        self.skipped = 0
        self._bad: set[int] = set()  # items that failed to decode in this process (said once, then replaced)
        self.fast_decode = True  # JPEGs at 1/2..1/8 scale while they keep `decode_min_area` pixels
        self.decode_min_area: int | None = None  # set by the SSL loader from its crops (`loaders.decode_min_area`)

    def __len__(self) -> int:
        return self._n

    def _position(self, index: int, seed: int) -> int:
        return self._order.position(index, seed, self._n)

    def _read(self, k: int) -> tuple[bytes, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self, k: int) -> str:
        """The name of item `k` in messages and in `get`'s `path` (known before it is read)."""
        return f"#{k}"

    def get(self, index: int, seed: int) -> dict[str, Any]:
        """Sample `index`: reflectance `image` float32 [C,H,W] (sensor scale applied), `valid`, `path`."""
        global _skipped_count
        k = self._position(index, seed)
        rng = None
        for _ in range(self.max_tries):
            name = self.label(k)
            if k in self._bad:  # failed before in this process: replaced as then, without decoding or warning again
                self.skipped += 1
                rng = rng or np.random.default_rng([int(seed), self.stream, int(index), 0x736B6970])
                k = int(rng.integers(0, self._n))
                continue
            try:
                data, name = self._read(k)
                area = self.decode_min_area if self.fast_decode else None
                arr, valid = decode_photo(data, name, self.sensor.n_bands, min_area=area)
                arr = match_bit_depth(arr, name, self.sensor)
                if arr.shape[0] != self.sensor.n_bands:
                    raise InputError(
                        f"image {name} has {plural(arr.shape[0], 'band')} but sensor {self.sensor.name!r} has "
                        f"{self.sensor.n_bands}; use a matching sensor"
                    )
                image = self.sensor.to_reflectance(arr).astype(np.float32, copy=False)
                return {
                    "image": image,
                    "valid": np.ones(image.shape[-2:], dtype=bool) if valid is None else valid,  # alpha > 0
                    "bands": self.band_names,
                    "path": name,
                }
            except InputError:
                raise
            except Exception as exc:
                if self.on_error == "stop":
                    raise InputError(
                        f"image {name} cannot be decoded ({type(exc).__name__}); remove it or {self.skip_hint}"
                    ) from exc
                self.skipped += 1
                self._bad.add(k)
                _skipped_count += 1
                warnings.warn(
                    f"skipped corrupt image {name} ({type(exc).__name__}); {_skipped_count} skipped so far "
                    f"in process {os.getpid()} (each file said once, then replaced by another image at every read)",
                    stacklevel=2,
                )
                rng = rng or np.random.default_rng([int(seed), self.stream, int(index), 0x736B6970])
                k = int(rng.integers(0, self._n))
        raise InputError(
            f"{plural(self.max_tries, 'image')} in a row failed to decode in source {self.name!r} (the last: "
            f"{name}); check the data"
        )


class ImageFolderSource(_ImageSourceBase):
    """Images under folders (recursive), globs or `.txt` lists."""

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        sensor: str | Sensor = "imagenet",
        name: str = "images",
        on_error: str = "skip",
        fast_decode: bool = True,
        recursive: bool = True,
        shuffle: bool = True,
        max_tries: int = 10,
    ) -> None:
        super().__init__(sensor=sensor, name=name, on_error=on_error, shuffle=shuffle, max_tries=max_tries)
        self.fast_decode = fast_decode
        self.files = resolve_paths(paths, IMAGE_EXTS, recursive=recursive, what="image")
        self._n = len(self.files)

    def label(self, k: int) -> str:
        return self.files[k]

    def _read(self, k: int) -> tuple[bytes, str]:
        path = self.files[k]
        with open(path, "rb") as fh:
            return fh.read(), path


class TarShardSource(_ImageSourceBase):
    """webdataset-style shards: uncompressed tars whose members `key.ext` group per sample; the first image
    member of each key is used. Members are indexed by byte offset so reads need no tar parsing."""

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        sensor: str | Sensor = "imagenet",
        name: str = "tar",
        on_error: str = "skip",
        fast_decode: bool = True,
        shuffle: bool = True,
        max_tries: int = 10,
    ) -> None:
        super().__init__(sensor=sensor, name=name, on_error=on_error, shuffle=shuffle, max_tries=max_tries)
        self.fast_decode = fast_decode
        self.shards = resolve_paths(paths, (".tar",), what="tar shard")
        shard_ids: list[int] = []
        offsets: list[int] = []
        sizes: list[int] = []
        names: list[str] = []
        for s, path in enumerate(self.shards):
            try:
                with tarfile.open(path, "r:") as tf:
                    seen: set[str] = set()
                    for m in tf:
                        if not m.isfile() or not m.name.lower().endswith(IMAGE_EXTS):
                            continue
                        key = m.name.split("/")[-1].split(".")[0]
                        key = "/".join([*m.name.split("/")[:-1], key])
                        if key in seen:
                            continue
                        seen.add(key)
                        shard_ids.append(s)
                        offsets.append(m.offset_data)
                        sizes.append(m.size)
                        names.append(m.name)
            except tarfile.ReadError as exc:
                msg = f"tar shard {path} cannot be read ({exc}); {_tar_hint(path)}"
                if on_error == "stop":
                    raise InputError(msg) from exc
                warnings.warn(f"skipping {msg}", stacklevel=2)
        if not offsets:
            raise InputError(f"no images found in {plural(len(self.shards), 'tar shard')} such as {self.shards[0]}")
        self.shard_ids = np.asarray(shard_ids, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.names = names
        self._n = len(offsets)
        self._fh: dict[int, Any] = {}
        self._pid = -1

    def label(self, k: int) -> str:
        return f"{self.shards[int(self.shard_ids[k])]}:{self.names[k]}"

    def _read(self, k: int) -> tuple[bytes, str]:
        if self._pid != os.getpid():  # per-process file handles
            self._fh, self._pid = {}, os.getpid()
        s = int(self.shard_ids[k])
        fh = self._fh.get(s)
        if fh is None:
            fh = self._fh[s] = open(self.shards[s], "rb")
        fh.seek(int(self.offsets[k]))
        return fh.read(int(self.sizes[k])), self.label(k)
