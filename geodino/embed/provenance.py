"""What identifies a file an output was made from, cheaply and the same on every machine.

A path says where a file was, not what it held: `feats.tif` months later may be another run's raster. The identity
is the file's size and the sha256 of its first 64 KiB (`file_digest`, which the STAC item id also uses for an input:
`stac_items._input_identity`): a GeoTIFF's header, tags and tile offsets sit there, so a rewritten raster gives
another identity, while reading a few blocks keeps it cheap next to a raster of many GB. Neither the path nor the
modification time counts, so a copy on another machine has the same identity and an output that records it stays
byte-identical when it is made again from the same file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HEAD_BYTES = 65536


def file_digest(path: str | Path) -> tuple[int, str] | None:
    """(size, sha256 hex of the first 64 KiB) of a local regular file; None for anything else (a URL, a GDAL
    virtual path, a Zarr folder) or a file that cannot be read: there is then no file to identify."""
    text = str(path)
    if "://" in text or text.startswith("/vsi"):
        return None
    p = Path(text).expanduser()
    try:
        if not p.is_file():
            return None
        with open(p, "rb") as fh:
            head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()
        return p.stat().st_size, head
    except OSError:
        return None


def file_identity(path: str | Path) -> str | None:
    """`"<size> bytes, sha256 of the first 64 KiB <hex>"` (`file_digest` in words), None where there is no file."""
    digest = file_digest(path)
    return None if digest is None else f"{digest[0]} bytes, sha256 of the first 64 KiB {digest[1]}"


def input_identity(path: str | Path) -> str | None:
    """`file_identity` of an input raster as a feature raster records it (`GEODINO_INPUT_IDENTITY`), None for a VRT:
    its bytes are its sources' paths (on this machine; a many-scene run's stacked VRT sits in the output folder),
    not their pixels, which is why the STAC item id names a VRT by its name only (`stac_items._input_identity`)."""
    if str(path).lower().endswith(".vrt"):
        return None
    return file_identity(path)
