"""A GDAL write that the storage refused, told from GDAL's opaque error (split from `geodino.io`'s `atomic_path`).

GDAL's error for a full disk says only "Write failed" or "TIFFAppendToStrip:Write error at scanline 0" (libtiff
prints the OS reason, "_tiffWriteProc: No space left on device.", to stderr itself), so the CLI could not tell it
from a bug: a full disk while a product COG was written ended in a traceback. `gdal_refusal` gives the `OSError`
the write stands for, naming the output, which the CLI's storage line reads (one line, exit code 1).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["gdal_refusal"]

NEAR_FULL = 64 << 20  # bytes: a write that failed leaves less than one tile of a 192-band float32 COG free (48 MiB)


def _written(tmp: Path) -> int:
    """The size of the largest file being written as `tmp` (itself, or a sibling named from it: `TMP.staging.tif`,
    GDAL's `TMP.ovr`)."""
    sizes = [0]
    try:
        for entry in os.scandir(tmp.parent):
            if entry.name.startswith(tmp.name) and entry.is_file(follow_symlinks=False):
                sizes.append(entry.stat(follow_symlinks=False).st_size)
    except OSError:
        pass
    return max(sizes)


def gdal_refusal(exc: BaseException, tmp: Path, out: Path) -> OSError | None:
    """The OSError a rasterio/GDAL error `exc` of writing `tmp` (the temporary of output `out`) stands for when the
    storage refused the write: ENOSPC when its folder has less than NEAR_FULL bytes left, EFBIG when the file
    reached the process's file-size limit (`ulimit -f`); None for any other error (a bug keeps its traceback)."""
    if not type(exc).__module__.startswith("rasterio"):
        return None
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    # at the limit: a write past it fails once the file holds what fits, so the file is within a tile of it (a
    # quarter of a small limit: with `ulimit -f` under NEAR_FULL, an error of an empty file is not the limit's)
    if limit != resource.RLIM_INFINITY and limit - _written(tmp) < min(NEAR_FULL, limit // 4):
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(out))
    try:
        st = os.statvfs(tmp.parent)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < NEAR_FULL:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out))
    return None
