"""What identifies a file an output was made from, cheaply and the same on every machine.

A path says where a file was, not what it held: `feats.tif` months later may be another run's raster. The identity
is the file's size and the sha256 of its first 64 KiB (`file_digest`, which the STAC item id also uses for an input:
`stac_items._input_identity`): a GeoTIFF's header, tags and tile offsets sit there, so a rewritten raster gives
another identity, while reading a few blocks keeps it cheap next to a raster of many GB. Neither the path nor the
modification time counts, so a copy on another machine has the same identity and an output that records it stays
byte-identical when it is made again from the same file.

A labels or polygons file is identified by `vector_identity`: a single-file format (GeoJSON, GeoPackage, CSV,
Parquet, a zipped shapefile) as above, a shapefile by all of its parts (`SHAPEFILE_PARTS`), whose class column
lives in the .dbf, not in the .shp that is named.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HEAD_BYTES = 65536
# the parts of a shapefile that make what it reads: geometry (.shp), its index (.shx), the attributes (.dbf, where
# the class column is), the CRS (.prj) and the attributes' encoding (.cpg); a spatial index (.qix, .sbn) or .xml
# metadata changes nothing that is read
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


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


def vector_identity(path: str | Path) -> str | None:
    """The identity of a labels or polygons file (`GEODINO_LABELS_IDENTITY`): `file_identity` of a single-file
    format (so outputs recorded before compare equal), and for a `.shp` of each of its parts that exists
    (`SHAPEFILE_PARTS`, as `"shapefile .shp .shx .dbf .prj: <bytes> bytes, sha256 <hex>"`): editing the class column
    changes only the .dbf. The parts are hashed whole, not their first 64 KiB: their records have a fixed width, so
    an edited value keeps every size, and the row of feature 5000 lies past any head. None where there is no file."""
    if not str(path).lower().endswith(".shp") or file_digest(path) is None:
        return file_identity(path)
    shp = Path(str(path)).expanduser()
    names, total, digest = [], 0, hashlib.sha256()
    for suffix in SHAPEFILE_PARTS:
        whole = _part_digest(shp, suffix)
        if whole is not None:
            names.append(suffix)
            total += whole[0]
            digest.update(f"{suffix} {whole[0]} {whole[1]}\n".encode())
    return f"shapefile {' '.join(names)}: {total} bytes, sha256 {digest.hexdigest()}"


def _part_digest(shp: Path, suffix: str) -> tuple[int, str] | None:
    """(size, sha256 hex of the whole file) of the part `suffix` of shapefile `shp`, spelt in the .shp's case first
    and then in the other, as GDAL looks for it (LABELS.SHP with labels.dbf); None when it has no such part."""
    cases = (suffix.upper(), suffix) if shp.suffix.isupper() else (suffix, suffix.upper())
    for ext in cases:
        part = shp.with_suffix(ext)
        try:
            if not part.is_file():
                continue
            h, size = hashlib.sha256(), 0
            with open(part, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
            return size, h.hexdigest()
        except OSError:
            continue
    return None
