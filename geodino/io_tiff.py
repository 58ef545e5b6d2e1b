"""libtiff's own error lines routed through GDAL's error handler, so that a refused GeoTIFF write says one line.

On a full disk (or past `ulimit -f`) GDAL's GTiff driver reports the write as a GDAL error ("TIFFAppendToStrip:Write
error at scanline 0", which rasterio raises and `io_gdal.gdal_refusal` turns into the CLI's one storage line), but
the failed write itself is reported by GDAL's file layer to libtiff's process-wide handler without a TIFF handle
(`_tiffWriteProc`), and libtiff's default handler prints it straight to stderr: two raw lines
("_tiffWriteProc: No space left on device.") before geodino's own. `route_libtiff_errors` sets that handler to one
that hands the text to GDAL's `CPLError` (a failure, as libtiff meant it), which rasterio's handler takes as any
GDAL error: part of the exception a write raises (its chain), never printed raw.

The handler is a ctypes callback that formats libtiff's `va_list` with the C library's `vsnprintf` (a `va_list`
reaches a callback as a pointer on x86-64 and arm64, Linux and macOS). It is set once a process, only where
rasterio's libtiff and GDAL are found (the libraries loaded in the process, else the wheel's `rasterio.libs`);
anywhere else (Windows, a libtiff not found) nothing changes: the lines still print.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
from typing import Any

__all__ = ["route_libtiff_errors"]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}  # "routed": bool once tried; "callback": the ctypes callback, kept alive
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
CE_FAILURE, CPLE_APP_DEFINED = 3, 1  # GDAL's cpl_error.h


def route_libtiff_errors() -> bool:
    """Route libtiff's process-wide error messages to GDAL's error handler (module docstring), once a process;
    whether they are routed. Call it with rasterio imported (its libraries loaded)."""
    with _LOCK:
        if "routed" not in _STATE:
            _STATE["routed"] = _route()
        return bool(_STATE["routed"])


def _libraries() -> tuple[str, str] | None:
    """The paths of the libtiff and the GDAL that rasterio uses: as loaded in this process (Linux), else in the
    wheel's `rasterio.libs` (or macOS's `.dylibs`)."""
    found: dict[str, str] = {}
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1]
                name = os.path.basename(path)
                for lib in ("libtiff", "libgdal"):
                    if name.startswith(lib) and ".so" in name:
                        found.setdefault(lib, path)
    except OSError:
        pass
    rasterio = sys.modules.get("rasterio")
    where = getattr(rasterio, "__file__", None) if rasterio is not None else None
    if len(found) < 2 and where:
        here = os.path.dirname(where)
        for folder in (os.path.join(here, os.pardir, "rasterio.libs"), os.path.join(here, ".dylibs")):
            for lib in ("libtiff", "libgdal"):
                hits = sorted(glob.glob(os.path.join(folder, f"{lib}*")))
                if hits:
                    found.setdefault(lib, hits[0])
    return (found["libtiff"], found["libgdal"]) if len(found) == 2 else None


def _route() -> bool:
    if sys.platform == "win32":
        return False
    libs = _libraries()
    if libs is None:
        return False
    try:
        tiff, gdal, libc = ctypes.CDLL(libs[0]), ctypes.CDLL(libs[1]), ctypes.CDLL(None)
        set_handler, cpl_error, vsnprintf = tiff.TIFFSetErrorHandler, gdal.CPLError, libc.vsnprintf
    except (OSError, AttributeError):
        return False
    set_handler.restype = ctypes.c_void_p
    set_handler.argtypes = [_HANDLER]
    vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    cpl_error.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
    cpl_error.restype = None

    def handle(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        buf = ctypes.create_string_buffer(2048)
        if fmt:
            vsnprintf(buf, len(buf), fmt, args)
        text = buf.value.decode("utf-8", "replace")
        said = f"{module.decode('utf-8', 'replace')}: {text}" if module else text
        cpl_error(CE_FAILURE, CPLE_APP_DEFINED, b"%s", said.encode("utf-8", "replace"))

    callback = _HANDLER(handle)
    _STATE["callback"] = callback  # ctypes frees a callback nobody holds: libtiff would call freed memory
    set_handler(callback)
    return True
