"""Web images: image folders (recursive; jpg, png, webp, tif) and webdataset-style tar shards.

Both are indexed once (file list, or member offsets inside uncompressed tars, so a sample is one seek + read)
and read as a pure function of (seed, index): index i of epoch e is image perm_e[i mod N]. A corrupt image is
skipped (a deterministic replacement is read instead) and counted in a warning; `on_error="stop"` raises
instead, naming the file.
Transparent pixels (alpha 0, a PNG's transparent colour) are not valid (`decode_photo`), as a raster's alpha band.
A 16-bit PNG keeps its 16-bit values (`photo_array`: Pillow reads 16-bit RGB, RGBA and grey+alpha as 8 bits).
Decoding and header reading live in `geodino.data.photos` (every name re-exported here).
"""

from __future__ import annotations

import os
import re
import tarfile
import warnings
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from geodino.data.paths import IMAGE_EXTS, TIFF_EXTS, resolve_paths
from geodino.data.photos import (  # decoding and headers live there; re-exported here, where callers import them
    GREY_MODES,
    PHOTO_EXTS,
    dataset_bands,
    decode_image,
    decode_photo,
    draft_jpeg,
    match_bit_depth,
    photo_array,
    png_bit_depth,
    png_colour_type,
    read_bands,
)
from geodino.data.sensors import Sensor, get_sensor
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
    "expand_braces",
    "match_bit_depth",
    "photo_array",
    "png_bit_depth",
    "png_colour_type",
    "read_bands",
    "skip_said",
    "unreadable_detail",
    "why_undecodable",
]

_skipped_count = 0
_warned: set[str] = set()  # corrupt files already said in this process, by any source object (one line each)
NAMED = 20  # corrupt images a training process names one by one; after them, a line at every power of ten
# fresh decode failures in a row that stop a sample before any image of the source has decoded (the data as a whole
# does not read): at least this many, whatever `max_tries` says, as 10 stopped one run in 18 at the start on a folder
# of 75% error pages (0.75^10; 1 in 3 at 90%), where 100 stops one in 3e12 (90%: 1 in 38,000)
COLD_TRIES = 100


def _say_skipped(name: str, why: str, replace: bool) -> None:
    """The warning for a corrupt image met for the first time in this process. While training (`replace`), the
    first `NAMED` are named one by one, then one line at every power of ten skipped (100, 1,000, ...): a scraped
    folder with thousands of error pages saved as .jpg gave thousands of lines per worker. Without replacement
    (`data stats`, which reads each image once to list them) every one is named."""
    global _skipped_count
    _skipped_count += 1
    n, pid = _skipped_count, os.getpid()
    said = skip_said(n)
    if not replace or said == "name":
        then = "replaced by another image at every read" if replace else "left out"
        warnings.warn(
            f"skipped corrupt image {name} ({why}); {n} skipped so far in process {pid} (each file said once, then "
            f"{then})",
            stacklevel=3,
        )
    elif said == "count":
        warnings.warn(
            f"{n} corrupt images skipped so far in process {pid}, the latest {name} ({why}); the first {NAMED} were "
            "named, more are counted at every power of ten (100, 1,000, ...); `geodino data stats PATHS --type "
            "images` names every one",
            stacklevel=3,
        )


def skip_said(n: int) -> str | None:
    """How the `n`-th file a run skips is said: "name" for the first `NAMED`, "count" for the next and at every
    power of ten after it (100, 1,000, ...), None otherwise. One rule for pretraining's corrupt images and `embed
    images`' unreadable files: a scraped folder of thousands of error pages gave a line each."""
    if n <= NAMED:
        return "name"
    return "count" if n == NAMED + 1 or str(n).strip("0") == "1" else None


def unreadable_detail(path: str | Path, exc: BaseException) -> str:
    """What `read_array`'s error says of a file that does not read: the reader's message, but for a photo that
    is empty or no image Pillow knows ("cannot identify image file"), what the file is: `an empty file: 0 bytes`,
    or its first bytes (an HTML error page, a Git LFS pointer, a macOS `._` file), as pretraining says it
    (`why_undecodable`)."""
    detail = str(exc)
    if Path(path).suffix.lower() in TIFF_EXTS:  # a raster's reader says more than its first bytes
        return detail
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return detail
    if head and "cannot identify" not in detail:
        return detail
    return why_undecodable(exc, head)


def expand_braces(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """webdataset's shard notation (braceexpand): `shard-{000000..000099}.tar` ranges (zero-padded to the wider
    bound when a bound has a leading zero, as bash; `{0..10..2}` steps, `{a..e}` letters) and `{a,b}` lists,
    nested ones too (`{{000..009},{020..029}}`), are expanded, every group left to right, in the order written; a
    group that is neither (`{name}`, `{}`) stays as written and later groups still expand. A path that exists as
    written, or has no braces, is kept as is. Without it such a path was "does not exist".

    Hand-written (the `braceexpand` package webdataset uses is not a dependency): the former one expanded the
    innermost group first and stopped at the first group that was no pattern, so `{x}/shard-{0..1}.tar` stayed
    unexpanded and nested lists came out repeated."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[str] = []
    for item in items:
        text = str(item)
        out.extend([text] if "{" not in text or os.path.exists(text) else _expand(text))
    return out


def _expand(text: str) -> list[str]:
    """All expansions of `text`: its first group that is a pattern, times the expansions of the rest."""
    i = text.find("{")
    while i >= 0:
        close, commas, depth = -1, [], 0
        for j in range(i + 1, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}" and depth:
                depth -= 1
            elif text[j] == "}":
                close = j
                break
            elif text[j] == "," and not depth:
                commas.append(j)
        if close < 0:  # an unmatched brace: literal text; a group after it may still be a pattern
            i = text.find("{", i + 1)
            continue
        body = text[i + 1 : close]
        choices: list[str] | None
        if commas:
            cuts = [i, *commas, close]
            choices = [c for a, b in pairwise(cuts) for c in _expand(text[a + 1 : b])]
        else:
            choices = _range(body)
        if choices is not None:
            head, rest = text[:i], _expand(text[close + 1 :])
            return [head + c + r for c in choices for r in rest]
        i = text.find("{", i + 1)  # not a pattern: kept; a group inside it or after it may still be one
    return [text]


def _range(body: str) -> list[str] | None:
    """The items of a `{a..b}` or `{a..b..step}` range (integers or single letters); None: not a range."""
    m = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?", body)
    if m:
        a, b, by = m.groups()
        step = abs(int(by or 1)) or 1
        padded = any(v.lstrip("-").startswith("0") and v.lstrip("-") != "0" for v in (a, b))  # bash's rule
        width = max(len(a), len(b)) if padded else 0
        lo, hi = int(a), int(b)
        values = range(lo, hi + 1, step) if hi >= lo else range(lo, hi - 1, -step)
        return [f"{v:0{width}d}" for v in values]
    m = re.fullmatch(r"([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?", body)
    if m:
        a, b, by = m.groups()
        step = abs(int(by or 1)) or 1
        lo, hi = ord(a), ord(b)
        values = range(lo, hi + 1, step) if hi >= lo else range(lo, hi - 1, -step)
        return [chr(v) for v in values]
    return None


def _tar_hint(path: str) -> str:
    """What to do about a shard tarfile cannot read: compressed (by its magic bytes), or cut short / corrupt."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        head = b""
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")):  # gzip, bzip2, xz, zstd
        return "it is compressed; shards must be uncompressed .tar files (decompress it, or re-create it with tar -cf)"
    return "it is truncated or corrupt; re-create or re-download it"


class _ImageSourceBase:
    """Shared sampling/corruption logic; subclasses provide `_n` and `_read(k) -> (bytes, name)`."""

    name: str
    sensor: Sensor
    _n: int  # the number of images (set by the subclass)
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
        self.bad: set[int] = set()  # items that failed to decode in this process (said once, then replaced)
        self.decoded = False  # whether an image has decoded in this process (then failures are replaced, not counted)
        self.replace = True  # False: a corrupt image is not replaced; every failure counts toward max_tries
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
        """Sample `index`: reflectance `image` float32 [C,H,W] (sensor scale applied), `valid`, `path`.

        A corrupt image (on_error skip) is replaced by a random draw of (seed, index) until one decodes; an image
        known bad in this process is redrawn without a new decode or warning and counts as no try. The sample
        stops (InputError) after `max_tries` (at least `COLD_TRIES`) fresh failures in a row while no image of the
        source has decoded in this process (the data as a whole does not read: a wrong folder, Git LFS pointers, an
        error page per file), or when every image has failed. Before, every failure counted, so a folder half of
        whose files do not decode (a copy with a macOS `._` file beside each photo) stopped a long run at random
        ("10 images in a row failed to decode") within a few hundred samples. `replace` False (`data stats`): every
        failure counts toward `max_tries` and none is replaced."""
        k = self._position(index, seed)
        rng = None
        tries = 0  # failures that count toward the limit
        # replace: only failures before any image decoded count, and they stop the sample only at COLD_TRIES or more
        limit = max(self.max_tries, COLD_TRIES) if self.replace else self.max_tries
        name = self.label(k)
        while tries < limit:
            if k in self.bad:  # failed before in this process: replaced as then, without decoding or warning again
                self.skipped += 1
                if not self.replace:
                    tries += 1
                elif len(self.bad) >= self._n:
                    break
                rng = rng or np.random.default_rng([int(seed), self.stream, int(index), 0x736B6970])
                k = int(rng.integers(0, self._n))
                continue
            name = self.label(k)
            data: bytes | None = None  # None: the file itself did not read
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
                self.decoded = True
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
                        f"image {name} cannot be decoded ({why_undecodable(exc, data)}); remove it or {self.skip_hint}"
                    ) from exc
                self.skipped += 1
                self.bad.add(k)
                if not (self.replace and self.decoded):
                    tries += 1
                if name not in _warned:  # a second source object over the same files (pretraining's pixel check,
                    _warned.add(name)  # then its loader) said every bad file twice in one process
                    _say_skipped(name, why_undecodable(exc, data), self.replace)
                rng = rng or np.random.default_rng([int(seed), self.stream, int(index), 0x736B6970])
                k = int(rng.integers(0, self._n))
        if self.replace and len(self.bad) >= self._n:
            raise InputError(
                f"all {plural(self._n, 'image')} of source {self.name!r} failed to decode (e.g. {name}); check the data"
            )
        raise InputError(
            f"{plural(limit, 'image')} in a row failed to decode in source {self.name!r} (the last: {name})"
            f"{' and none of its images has decoded yet' if self.replace else ''}; check the data"
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
        self.files = resolve_paths(paths, IMAGE_EXTS, recursive=recursive, what="image", hidden=False)
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
        self.shards = resolve_paths(expand_braces(paths), (".tar",), what="tar shard")
        shard_ids: list[int] = []
        offsets: list[int] = []
        sizes: list[int] = []
        names: list[str] = []
        shadowed: list[tuple[str, str]] = []  # (left-out member, the image kept for its key)
        for s, path in enumerate(self.shards):
            try:
                with tarfile.open(path, "r:") as tf:
                    seen: dict[str, str] = {}
                    for m in tf:
                        if not m.isfile() or not m.name.lower().endswith(IMAGE_EXTS):
                            continue
                        key = m.name.split("/")[-1].split(".")[0]
                        key = "/".join([*m.name.split("/")[:-1], key])
                        if key in seen:
                            shadowed.append((f"{path}:{m.name}", seen[key]))
                            continue
                        seen[key] = m.name
                        shard_ids.append(s)
                        offsets.append(m.offset_data)
                        sizes.append(m.size)
                        names.append(m.name)
            except tarfile.ReadError as exc:
                msg = f"tar shard {path} cannot be read ({exc}); {_tar_hint(path)}"
                if on_error == "stop":
                    raise InputError(f"{msg} (or set on_error: skip to leave it out)") from exc
                kept = _keep_whole_members(path, s, shard_ids, offsets, sizes, names)
                warnings.warn(  # it read "skipping the rest of tar shard X cannot be read (...); ... kept"
                    f"{msg}; kept the {plural(kept, 'image')} stored whole before that point, skipped the rest",
                    stacklevel=2,
                )
        if not offsets:
            raise InputError(
                f"no images found in {plural(len(self.shards), 'tar shard')} such as {self.shards[0]}; a shard is an "
                f"uncompressed .tar of image files ({', '.join(IMAGE_EXTS[:4])}, ...): check the paths"
            )
        if shadowed:
            _warn_shadowed(shadowed, len(offsets))
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


def _warn_shadowed(shadowed: list[tuple[str, str]], kept: int) -> None:
    """One line for image members left out because an earlier image has their webdataset key (the name up to the
    first dot): a tar of a photo folder named like photo.2021.01.jpg, photo.2021.02.jpg trained on one image of
    them, silently (4 images, 1 sample), where the same folder as `type: images` gives 4."""
    member, first = shadowed[0]
    warnings.warn(
        f"{plural(len(shadowed), 'image member')} of the tar shards left out ({kept} samples kept): each shares its "
        f"webdataset key (the name up to the first dot) with an earlier image, e.g. {member} after {first}; "
        "a sample uses its first image (as intended when a sample holds more than one, e.g. key.jpg and key.seg.png). "
        "Otherwise rename such files so each image has its own key (e.g. dots replaced by "
        "underscores before the extension), or read the folder with type: images",
        stacklevel=3,
    )


def _keep_whole_members(
    path: str, shard: int, shard_ids: list[int], offsets: list[int], sizes: list[int], names: list[str]
) -> int:
    """After a shard failed to read on: keep its members indexed so far whose bytes lie wholly in the file, drop the
    others (in place). A shard cut short in a member's data kept that member, which then read short and failed at
    every epoch, and the warning said the shard was skipped. Returns how many of the shard's members are kept."""
    end = os.path.getsize(path)
    drop = [i for i, s in enumerate(shard_ids) if s == shard and offsets[i] + sizes[i] > end]
    for i in reversed(drop):
        for column in (shard_ids, offsets, sizes, names):
            del column[i]
    return sum(1 for s in shard_ids if s == shard)


def why_undecodable(exc: BaseException, data: bytes | None = None) -> str:
    """Why an image did not decode, in a few words: an empty file; for Pillow's "cannot identify" its first bytes
    (an HTML error page, a Git LFS pointer, a macOS `._` file show what the file is); for a truncated file or the
    decompression-bomb guard the decoder's own sentence; else the error type."""
    from PIL import Image, UnidentifiedImageError

    if data is not None and not data:
        return "an empty file: 0 bytes"
    if isinstance(exc, UnidentifiedImageError) and data:
        return f"{type(exc).__name__}: not an image format Pillow reads; the file starts with {data[:24]!r}"
    if isinstance(exc, Image.DecompressionBombError) or "truncated" in str(exc):
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"  # Pillow's one sentence: pixels and limit
    return type(exc).__name__
