"""Decoding web images and reading their headers (split from `geodino.data.images`, which re-exports every name).

`decode_photo` turns image bytes into [C,H,W] uint8/uint16 and a validity mask: transparent pixels (alpha 0, a
PNG's transparent colour) are not valid, as a raster's alpha band; a 16-bit PNG keeps its 16-bit values
(`photo_array`: Pillow reads 16-bit RGB, RGBA and grey+alpha as 8 bits); EXIF orientation is applied. The band count
of a dataset's images is decided from headers alone (`dataset_bands`), and a decoded image is brought to its
sensor's DN range (`match_bit_depth`).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.paths import TIFF_EXTS
from geodino.data.sensors import Sensor, check_bit_depth, scales_8bit
from geodino.errors import InputError, plural

__all__ = [
    "GREY_MODES",
    "PHOTO_EXTS",
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


def decode_image(data: bytes, name: str, n_bands: int = 3) -> np.ndarray:
    """Decode image bytes to uint8/uint16 [C,H,W] (`decode_photo` without the validity)."""
    return decode_photo(data, name, n_bands)[0]


def refuse_bomb(data: bytes) -> None:
    """Raise Pillow's DecompressionBombError for an image whose header declares more pixels than Pillow's guard allows
    (2 x `PIL.Image.MAX_IMAGE_PIXELS`, ~179 Mpx; a user may raise it): torchvision's decoder has no such guard (a
    0.9 MB PNG of 30000 x 30000 px asked it for 2.7 GB). For the one path that reaches it without a Pillow open (an
    RGB JPEG not drafted); only the header is read, any other failure is left to the decoders."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)):
            pass
    except Image.DecompressionBombError:
        raise
    except Exception:
        pass


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
    from PIL import Image

    # Pillow's decompression-bomb guard runs in every Image.open below; an RGB JPEG that is not drafted goes to
    # torchvision with no Pillow open, so only it gets a header check of its own (no second parse per photo)
    if rgb and suffix in (".jpg", ".jpeg"):
        if not min_area:
            refuse_bomb(data)
        else:
            try:
                drafted = draft_jpeg(data, min_area)
            except Image.DecompressionBombError:
                raise
            except Exception:  # a broken file: the full decode below raises its usual error
                drafted = None
            if drafted is not None:
                return drafted
    if suffix not in (".jpg", ".jpeg") or not rgb:  # JPEG has no alpha; the others may: Pillow reads it
        try:  # (torchvision's RGB_ALPHA mode ignores a PNG's transparent colour and garbles palette and 1-bit alpha)
            with Image.open(io.BytesIO(data)) as im:
                grey = im.mode in GREY_MODES or png_colour_type(data) in (0, 4)  # Pillow: 16-bit grey+alpha is RGBA
                alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
                # torchvision turns JPEGs and PNGs by their EXIF orientation but not WebPs: Pillow turns those
                turned = suffix == ".webp" and im.getexif().get(0x0112, 1) != 1
                if alpha or turned or png_bit_depth(data) == 16 or (grey and not rgb):
                    arr, valid = photo_array(im, rgb=rgb, data=data)
                    return (arr[:1] if grey and not rgb else arr), valid  # 16-bit grey+alpha: three equal bands
        except Image.DecompressionBombError:
            raise
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
