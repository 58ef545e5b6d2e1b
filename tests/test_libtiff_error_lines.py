"""A GeoTIFF write refused by the storage (a full disk, here the file-size limit of `ulimit -f`) printed libtiff's
raw lines ("_tiffWriteProc: File too large.", twice) to stderr before geodino's one-line message: libtiff's
process-wide error handler printed them itself. `io_tiff.route_libtiff_errors` hands them to GDAL's error handler
instead, which rasterio raises with the write's error; the OSError `atomic_path` raises is unchanged."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

WRITE = """
import contextlib, resource, signal, sys
import numpy as np, rasterio
from rasterio.transform import from_origin
from geodino.io import atomic_path
if sys.argv[2] == "route":
    from geodino.io_tiff import route_libtiff_errors
    assert route_libtiff_errors()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
prof = dict(driver="GTiff", width=256, height=256, count=4, dtype="float32", crs="EPSG:32631",
            transform=from_origin(500000, 0, 10, 10))
# "plain": rasterio alone, as libtiff prints by default; else through geodino's writer of outputs
writer = contextlib.nullcontext(sys.argv[1]) if sys.argv[2] == "plain" else atomic_path(sys.argv[1])
try:
    with writer as tmp, rasterio.open(tmp, "w", **prof) as d:
        d.write(np.random.default_rng(0).random((4, 256, 256), dtype="float32"))
except Exception as exc:
    chain, cur = [], exc
    while cur is not None:
        chain.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    print(getattr(exc, "errno", None), getattr(exc, "filename", None))
    print(" | ".join(chain))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and the libtiff lookup are tested on Linux")
def test_a_refused_gdal_write_prints_no_raw_libtiff_line(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    said = {}
    for how in ("plain", "route"):
        run = subprocess.run([sys.executable, "-c", WRITE, str(out), how], capture_output=True, text=True, timeout=60)
        said[how] = run
        assert run.stdout.splitlines(), run.stderr[-2000:]
    out.unlink(missing_ok=True)  # the plain write's partial file
    assert said["plain"].stderr.count("_tiffWriteProc: File too large.") == 2  # the raw lines this test is about
    assert said["route"].stdout.splitlines()[0].split() == [str(errno.EFBIG), str(out)]  # atomic_path's, unchanged
    assert said["route"].stderr == ""  # no raw line now
    # the text is not lost: rasterio's error chain holds it, after GDAL's own
    assert (
        said["route"]
        .stdout.splitlines()[1]
        .endswith("TIFFAppendToStrip:Write error at scanline 16 | _tiffWriteProc: File too large")
    ), said["route"].stdout
    assert not list(tmp_path.iterdir())  # the temporary removed, as before


@pytest.mark.skipif(sys.platform != "linux", reason="the libtiff lookup is tested on Linux")
def test_routing_is_set_once() -> None:
    import rasterio  # noqa: F401  # its libraries loaded

    from geodino import io_tiff

    assert io_tiff.route_libtiff_errors() is True
    callback = io_tiff._STATE["callback"]
    assert io_tiff.route_libtiff_errors() is True and io_tiff._STATE["callback"] is callback


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and the libtiff lookup are tested on Linux")
def test_atomic_path_routes_them_itself(tmp_path: Path) -> None:
    """Every GeoTIFF output geodino writes goes through `atomic_path`, which routes them once rasterio is loaded."""
    out = tmp_path / "map.tif"
    run = subprocess.run([sys.executable, "-c", WRITE, str(out), "atomic"], capture_output=True, text=True, timeout=60)
    assert run.stdout.splitlines()[0].split() == [str(errno.EFBIG), str(out)], run.stderr[-2000:]
    assert run.stderr == ""
