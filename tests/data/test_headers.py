"""`geodino.data.headers`: what an image's header says (size as read, bands, dtype, descriptions, alpha bands),
checked against the pixels the probes read (`read_array`) and against rasterio; unreadable headers; the per-file
cache (keyed by mtime and size) and its use by the image-folder probes' splits."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests import helpers


def save(path: Path, arr: np.ndarray, orientation: int = 0, **kw) -> Path:
    """Write [H,W] or [H,W,C] `arr` with Pillow (`orientation`: an EXIF orientation tag, 0 none)."""
    from PIL import Image

    im = Image.fromarray(arr)
    if orientation:
        exif = im.getexif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    im.save(path, **kw)
    return path


def chunks(data: bytes) -> list[bytes]:
    """A PNG's chunks, each whole (length, type, data, CRC)."""
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append(data[pos : pos + 12 + length])
        pos += 12 + length
    return out


def test_geotiff_header_gives_count_dtype_descriptions_and_alpha(tmp_path):
    """rasterio's header: band count, the first band's dtype, one description per band (None where a band has
    none; `band_names` when every band has one, else the colour interpretation's red/green/blue) and the alpha band
    GDAL marks on a 4-band uint8 file."""
    from geodino.data.headers import read_header

    named = helpers.write_tif(tmp_path / "s2.tif", np.ones((3, 12, 20), np.uint16), descriptions=["B02", "B03", "B04"])
    h = read_header(named)
    assert (h.width, h.height, h.count, h.dtype, h.reader) == (20, 12, 3, "uint16", "rasterio")
    assert h.descriptions == ("B02", "B03", "B04") and h.band_names == ("B02", "B03", "B04") and h.alpha == ()

    part = helpers.write_tif(tmp_path / "part.tif", np.ones((2, 8, 8), np.float32), descriptions=["a", ""])
    assert read_header(part).band_names is None and read_header(part).dtype == "float32"

    import rasterio
    from rasterio.enums import ColorInterp

    rgba = helpers.write_tif(tmp_path / "rgba.tif", np.full((4, 8, 8), 200, np.uint8))
    with rasterio.open(rgba, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    h = read_header(rgba)
    # no descriptions: the colour interpretation names the bands (geodino.data.colour_bands)
    assert (h.count, h.dtype, h.alpha, h.band_names) == (4, "uint8", (4,), ("red", "green", "blue", "alpha"))


def test_first_bands_of_data_stats_read_the_header(tmp_path):
    """`data stats`' first raster: (count, names when every band has one, dtype, alpha bands), a PNG too (the
    raster archive reads every file with rasterio)."""
    from geodino.data.stats import _first_bands

    named = helpers.write_tif(tmp_path / "s2.tif", np.ones((3, 12, 20), np.uint16), descriptions=["B02", "B03", "B04"])
    assert _first_bands([str(named)]) == (3, ("B02", "B03", "B04"), "uint16", ())
    png = save(tmp_path / "x.png", np.zeros((8, 8, 4), np.uint8))
    assert _first_bands([str(png)]) == (4, ("red", "green", "blue", "alpha"), "uint8", (4,))  # RGBA: named so


@pytest.mark.parametrize(
    ("shape", "dtype", "mode", "count", "alpha", "trusted"),
    [
        ((10, 14), np.uint8, "L", 1, (), True),
        ((10, 14, 3), np.uint8, "RGB", 3, (), True),
        ((10, 14, 4), np.uint8, "RGBA", 4, (4,), False),
        ((10, 14), np.uint16, "I;16", 1, (), False),
    ],
)
def test_png_header_gives_mode_bands_dtype_and_size(tmp_path, shape, dtype, mode, count, alpha, trusted):
    """A PNG's header as stored (RGBA: 4 bands, the 4th alpha; 16-bit grey: uint16). The probes' DN rule takes
    the dtype and band count from the header for L/RGB only (every reader reads those as stored) and reads the
    others' pixels (read_array makes RGBA RGB), so its answer is always the read's."""
    from geodino.data.headers import read_header
    from geodino.eval.datasets import read_array
    from geodino.eval.scaling import image_header

    p = save(tmp_path / "x.png", (np.arange(np.prod(shape)).reshape(shape) % 250).astype(dtype))
    h = read_header(p)
    assert (h.width, h.height, h.mode, h.count, h.dtype, h.alpha, h.reader) == (
        14,
        10,
        mode,
        count,
        np.dtype(dtype).name,
        alpha,
        "pillow",
    )
    reads = []
    arr = read_array(p)
    assert image_header(p, lambda q: reads.append(q) or read_array(q)) == (arr.dtype, arr.shape[0])
    assert bool(reads) is not trusted
    assert h.size == (arr.shape[2], arr.shape[1])


@pytest.mark.parametrize(("fmt", "orientation"), [("JPEG", 6), ("JPEG", 8), ("JPEG", 3), ("PNG", 6), ("WEBP", 5)])
def test_photo_size_is_upright_as_read_array_turns_it(tmp_path, fmt, orientation):
    """A 40 x 20 photo stored sideways (orientation 5-8) is 20 x 40 as read: the header's size is the shape
    `read_array` returns, not the stored size; orientation 3 (upside down) keeps it."""
    from geodino.data.headers import read_header
    from geodino.eval.datasets import read_array

    p = save(tmp_path / f"photo.{fmt.lower()}", np.zeros((20, 40, 3), np.uint8), orientation, format=fmt)
    h = read_header(p)
    arr = read_array(p)
    assert h.orientation == orientation
    assert h.size == (arr.shape[2], arr.shape[1]) == ((20, 40) if orientation != 3 else (40, 20))


def test_png_orientation_after_the_pixels_is_found(tmp_path):
    """A PNG may carry its eXIf chunk after the pixel data, where Pillow reads it only when it decodes them (as
    `read_array` does): the header reads it there too (only then are the pixels decoded)."""
    from geodino.data.headers import _png_meta_after_pixels, read_header
    from geodino.eval.datasets import read_array

    early = save(tmp_path / "early.png", np.zeros((20, 40, 3), np.uint8), 6)
    parts = chunks(early.read_bytes())
    exif = [c for c in parts if c[4:8] == b"eXIf"]
    rest = [c for c in parts if c[4:8] not in (b"eXIf", b"IEND")]
    assert len(exif) == 1 and any(c[4:8] == b"IDAT" for c in rest)
    late = tmp_path / "late.png"
    late.write_bytes(early.read_bytes()[:8] + b"".join(rest + exif + [parts[-1]]))
    assert not _png_meta_after_pixels(str(early)) and _png_meta_after_pixels(str(late))
    assert read_array(late).shape == (3, 40, 20)
    assert read_header(late).size == read_header(early).size == (20, 40)


@pytest.mark.parametrize("name", ["broken.png", "broken.jpg", "broken.tif", "missing.png"])
def test_a_header_that_does_not_read(tmp_path, name):
    """HeaderError (an InputError) naming the file and the library's complaint, its cause kept; header_or_none
    and header_size give None (the pixel read names the file per --on-error); data stats keeps its message."""
    from geodino.data.headers import HeaderError, header_or_none, read_header
    from geodino.embed.images import header_size
    from geodino.errors import InputError

    p = tmp_path / name
    if not name.startswith("missing"):
        p.write_bytes(b"\x89PNG not really an image")
    with pytest.raises(HeaderError, match=rf"cannot read the header of image .*{name} \(\w+: ") as err:
        read_header(p)
    assert isinstance(err.value, InputError) and err.value.__cause__ is not None
    assert header_or_none(p) is None and header_size(p) is None
    if name == "broken.tif":
        from geodino.data.stats import _first_bands

        with pytest.raises(InputError, match=r"raster .*broken\.tif cannot be read \(RasterioIOError: "):
            _first_bands([str(p)])


def test_headers_are_cached_per_file_until_it_changes(tmp_path, monkeypatch):
    """A second ask opens nothing; a rewritten file (other mtime or size) is read again."""
    import os

    from geodino.data import headers

    opened = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: opened.append(name) or real(name, reader))
    p = save(tmp_path / "x.png", np.zeros((10, 14), np.uint8))
    assert headers.read_header(p).size == headers.read_header(str(p)).size == (14, 10)
    assert len(opened) == 1
    save(p, np.zeros((12, 16), np.uint8))
    os.utime(p, ns=(1, 1))  # a distinct mtime whatever the file system's clock resolution
    assert headers.read_header(p).size == (16, 12) and len(opened) == 2
    assert headers.read_header(p, reader="rasterio").size == (16, 12) and len(opened) == 3  # cached per reader


def test_image_folder_splits_open_each_header_once(tmp_path, monkeypatch):
    """The image-folder probes settle the DN rule over every split's files for each split they build: the
    headers come from the cache after the first split."""
    from geodino.data import headers
    from geodino.eval.datasets import DatasetConfig, build_dataset

    for c in ("a", "b"):
        for i in range(5):
            (tmp_path / "ds" / c).mkdir(parents=True, exist_ok=True)
            save(tmp_path / "ds" / c / f"{i}.png", np.full((8, 8, 3), 10 * i, np.uint8))
    opened = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: opened.append(name) or real(name, reader))
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path / "ds"), val_fraction=0.2, test_fraction=0.2)
    sizes = [len(build_dataset(cfg, split)) for split in ("train", "val", "test")]
    assert sum(sizes) == 10
    assert sorted(opened) == sorted(dict.fromkeys(opened)) and len(opened) == 10


def test_declared_rule_opens_a_remote_name_whose_header_fails_once(monkeypatch):
    """An unreachable URL was opened twice (the header read, then the fallback for GDAL dataset names that are no
    file), each waiting out GDAL's network failure; a subdataset name that is no file is still opened as it is."""
    from geodino.data import headers

    calls: list[str] = []

    def failing(name: str, reader: str):
        calls.append(name)
        raise OSError("unreachable")

    monkeypatch.setattr(headers, "_read", failing)
    url = "/vsicurl/https://example.invalid/scene.tif"
    assert headers.declared_rule(url, reader="rasterio") is None
    assert calls == [url]
    calls.clear()
    sub = 'HDF4_EOS:EOS_GRID:"missing.hdf":MODIS_Grid_500m_2D:sur_refl_b01_1'
    assert headers.declared_rule(sub, reader="rasterio") is None
    assert calls == [sub]  # os.stat fails first (not cached), then the name is opened as it is


def test_a_scale_written_into_a_sidecar_is_read_by_the_next_header_read(tmp_path):
    """The header cache keyed on the file's stat alone: a GDAL `.aux.xml` sidecar declaring a scale/offset (PAM)
    written after a first read left `declared_rule` None for the rest of the process (a notebook's second embed)."""
    from geodino.data.headers import declared_rule

    path = helpers.write_tif(tmp_path / "pam.tif", np.ones((2, 8, 8), np.uint16))
    assert declared_rule(path, reader="rasterio") is None
    bands = "".join(
        f'<PAMRasterBand band="{i}"><Offset>-0.1</Offset><Scale>0.0001</Scale></PAMRasterBand>' for i in (1, 2)
    )
    (tmp_path / "pam.tif.aux.xml").write_text(f"<PAMDataset>{bands}</PAMDataset>")
    assert declared_rule(path, reader="rasterio") == ((1e-4, 1e-4), (-0.1, -0.1))


def test_a_fresh_or_dated_back_file_is_read_again(tmp_path, monkeypatch, _settled_headers):
    """A rewrite in the same tick of a coarse clock keeps mtime and size (os.utime stands in for it here, as for
    `cp -p`, `touch -d` and archive extraction): the old cache served the old header for the rest of the process.
    A file changed within io_stamps.RACY_NS by its ctime is read at each ask (the cost of a fresh folder: one read
    per ask), and the ctime in the key tells a rewrite dated back to the old mtime after that."""
    import os

    from geodino.data import headers

    opened = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: opened.append(name) or real(name, reader))

    def write(path, shape, size=0):
        save(path, np.zeros(shape, np.uint8))
        with open(path, "ab") as f:  # after IEND, which readers skip: both versions of the same size
            f.write(b"\0" * (size - os.path.getsize(path)))
        return path

    _settled_headers[0] = 0  # this machine's clock: the files below were just written
    folder = [write(tmp_path / f"{i}.png", (10, 14)) for i in range(3)]
    for _ in range(2):
        assert [headers.read_header(p).size for p in folder] == [(14, 10)] * 3
    assert len(opened) == 6  # fresh: read at each ask (the old code: 3)
    p = folder[0]
    dated = os.stat(p).st_mtime_ns
    size = os.path.getsize(p) + 64
    write(p, (10, 14), size)
    os.utime(p, ns=(dated - 10**9, dated - 10**9))
    _settled_headers[0] = 3600 * 10**9  # past the window
    assert headers.read_header(p).size == headers.read_header(p).size == (14, 10)
    assert len(opened) == 7  # settled: cached
    write(p, (14, 10), size)
    os.utime(p, ns=(dated - 10**9, dated - 10**9))  # same size and mtime as the cached header's file
    assert headers.read_header(p).size == (10, 14)  # its ctime: read again (the old code: (14, 10))
    _settled_headers[0] = 0
    assert headers.read_header(p).size == headers.read_header(p).size == (10, 14)
    assert len(opened) == 10  # within the window: read at each ask


def test_a_sidecar_changed_now_beside_a_settled_file_is_read_at_each_ask(tmp_path, monkeypatch, _settled_headers):
    """A file settled long ago whose `.aux.xml` changed just now (its ctime within io_stamps.RACY_NS of the headers'
    clock; a test cannot date the file's own ctime back, so the sidecar's is reported ahead instead): its header is
    read at each ask, since a same-tick rewrite of the sidecar would keep its stamp. Settled again, it is cached."""
    import time

    from geodino.data import headers

    opened = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: opened.append(name) or real(name, reader))
    path = helpers.write_tif(tmp_path / "pam.tif", np.ones((2, 8, 8), np.uint16))
    (tmp_path / "pam.tif.aux.xml").write_text("<PAMDataset></PAMDataset>")
    assert headers.read_header(path).count == headers.read_header(path).count == 2
    assert len(opened) == 1  # file and sidecar settled: cached
    real_side = headers._sidecar_stamp
    fresh = time.time_ns() + _settled_headers[0]  # now by the headers' clock

    def fresh_sidecar(name):
        side = real_side(name)
        return None if side is None else (*side[:2], fresh, *side[3:])  # its ctime now; the rest as it is

    monkeypatch.setattr(headers, "_sidecar_stamp", fresh_sidecar)
    for _ in range(3):
        headers.read_header(path)
    assert len(opened) == 4  # each ask (a cache ignoring the sidecar's ctime: 2)
    _settled_headers[0] += 3600 * 10**9  # an hour on: settled
    for _ in range(3):
        headers.read_header(path)
    assert len(opened) == 5
