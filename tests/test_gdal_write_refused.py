"""A GDAL write the storage refused (a full disk, the file-size limit of `ulimit -f`) raised rasterio's opaque
"Write failed" / "TIFFAppendToStrip:Write error", which the CLI took for a bug: a product COG (embed pca, cluster,
similar, classify, change) over a full disk ended in a traceback. `atomic_path` now raises the OSError it stands
for, naming the output, after removing its temporary; the earlier output stays."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

WRITE = """
import resource, signal, sys
import numpy as np, rasterio
from geodino.io import atomic_path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
prof = dict(driver="GTiff", width=256, height=256, count=4, dtype="float32")
try:
    with atomic_path(sys.argv[1]) as tmp, rasterio.open(tmp, "w", **prof) as d:
        d.write(np.random.default_rng(0).random((4, 256, 256), dtype="float32"))
except OSError as exc:
    print(exc.errno, exc.filename, type(exc.__cause__).__module__.split(".")[0])
"""


def test_a_gdal_write_past_the_file_size_limit_is_the_os_error(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    out.write_bytes(b"earlier")
    run = subprocess.run([sys.executable, "-c", WRITE, str(out)], capture_output=True, text=True, timeout=60)
    assert run.stdout.split() == [str(errno.EFBIG), str(out), "rasterio"], run.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"] and out.read_bytes() == b"earlier"


def test_a_gdal_error_on_a_near_full_disk_is_enospc_and_others_stay(tmp_path: Path, monkeypatch) -> None:
    import rasterio.errors

    from geodino.io import atomic_path
    from geodino.io_gdal import NEAR_FULL

    out = tmp_path / "map.tif"
    for free, raised in ((NEAR_FULL // 2, OSError), (NEAR_FULL * 4, rasterio.errors.RasterioIOError)):
        real = os.statvfs(tmp_path)
        fake = os.statvfs_result((*real[:4], free // real.f_frsize, *real[5:]))
        monkeypatch.setattr(os, "statvfs", lambda p, fake=fake: fake)
        with pytest.raises(raised) as caught:
            with atomic_path(out) as tmp:
                tmp.write_bytes(b"part")
                raise rasterio.errors.RasterioIOError("Write failed. See previous exception for details.")
        if raised is OSError:
            assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(out)
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):  # not GDAL's: unchanged, even on a full disk
        with atomic_path(out):
            raise ValueError("a bug")


def test_under_a_small_file_size_limit_an_error_far_from_it_keeps_its_own(tmp_path: Path, monkeypatch) -> None:
    """With `ulimit -f` below NEAR_FULL, every GDAL error was called the limit's (EFBIG): limit - written was always
    under NEAR_FULL. A file of a few bytes under a 1 MiB limit did not reach it: the error stays GDAL's."""
    import resource

    import rasterio.errors

    from geodino.io import atomic_path

    monkeypatch.setattr(resource, "getrlimit", lambda what: (1 << 20, 1 << 20))
    with pytest.raises(rasterio.errors.RasterioIOError), atomic_path(tmp_path / "map.tif") as tmp:
        tmp.write_bytes(b"part")
        raise rasterio.errors.RasterioIOError("Write failed. See previous exception for details.")
    with pytest.raises(OSError) as caught, atomic_path(tmp_path / "map.tif") as tmp:
        tmp.write_bytes(b"x" * ((1 << 20) - 100))  # at the limit
        raise rasterio.errors.RasterioIOError("Write failed. See previous exception for details.")
    assert caught.value.errno == errno.EFBIG
