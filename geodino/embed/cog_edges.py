"""Float16 COGs with the same bytes on every run: no partial edge tiles while GDAL writes them.

GDAL 3.10 writes NBITS=16 floats through its odd-bits band: when the COG driver copies a tile at the right or
bottom edge, it reads only the cells inside the raster into block-cache buffers it never clears, and packs the
whole tile, so the padding of every partial edge tile holds whatever that memory held before (other bytes and
sizes run to run; the values inside the raster are the same). Float32 and int8 go through a zeroed buffer.
So `store_to_cog` gives a float16 raster and each of its overview levels whole tiles (extended right and down to
a multiple of the COG block with nodata: the same tile grid, as a level of n cells has ceil(n / block) tiles of
either size), and afterwards writes the true sizes into the COG's image file directories (IFDs) in place.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

IMAGE_WIDTH, IMAGE_LENGTH = 256, 257
_SHORT, _LONG, _LONG8 = 3, 4, 16
_FORMATS = {_SHORT: "H", _LONG: "I", _LONG8: "Q"}


def whole_blocks(n: int, block: int) -> int:
    """`n` cells rounded up to whole blocks of `block`."""
    return -(-n // block) * block


def set_tiff_sizes(path: str | Path, sizes: Sequence[tuple[int, int]]) -> None:
    """Write (height, width) of each image of a TIFF or BigTIFF, in the order of its IFD chain, in place.

    A size may only shrink within the same tiles (the caller's padding); the tags keep their type and place.
    Raises ValueError for a file that is not a TIFF or whose chain has another number of images.
    """
    with open(path, "r+b") as f:
        head = f.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None:
            raise ValueError(f"{path}: not a TIFF")
        (magic,) = struct.unpack(order + "H", head[2:4])
        big = magic == 43
        if magic not in (42, 43):
            raise ValueError(f"{path}: not a TIFF (magic {magic})")
        count_fmt, entry_size, next_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
        offset = struct.unpack(order + ("Q" if big else "I"), head[8:16] if big else head[4:8])[0]
        done = 0
        while offset:
            if done == len(sizes):
                raise ValueError(f"{path}: more images than the {len(sizes)} sizes given")
            f.seek(offset)
            n_size = struct.calcsize(count_fmt)
            (n,) = struct.unpack(order + count_fmt, f.read(n_size))
            entries = f.read(n * entry_size)
            height, width = sizes[done]
            for i in range(n):
                tag, typ = struct.unpack(order + "HH", entries[i * entry_size : i * entry_size + 4])
                if tag not in (IMAGE_WIDTH, IMAGE_LENGTH):
                    continue
                if typ not in _FORMATS:
                    raise ValueError(f"{path}: image size tag {tag} of TIFF type {typ}")
                value = width if tag == IMAGE_WIDTH else height
                f.seek(offset + n_size + i * entry_size + (12 if big else 8))
                f.write(struct.pack(order + _FORMATS[typ], value))
            f.seek(offset + n_size + n * entry_size)
            (offset,) = struct.unpack(order + next_fmt, f.read(struct.calcsize(next_fmt)))
            done += 1
        if done != len(sizes):
            raise ValueError(f"{path}: {done} images, {len(sizes)} sizes given")
