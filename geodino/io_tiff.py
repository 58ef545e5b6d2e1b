"""libtiff's own error lines routed through GDAL's error handler, so that a refused GeoTIFF write says one line.

On a full disk (or past `ulimit -f`) GDAL's GTiff driver reports the write as a GDAL error ("TIFFAppendToStrip:Write
error at scanline 0", which rasterio raises and `io_gdal.gdal_refusal` turns into the CLI's one storage line), but
the failed write itself is reported by GDAL's file layer to libtiff's process-wide handler without a TIFF handle
(`_tiffWriteProc`), and libtiff's default handler prints it straight to stderr: two raw lines
("_tiffWriteProc: No space left on device.") before geodino's own. `route_libtiff_errors` sets that handler to one
that hands the text to GDAL's `CPLError` (a failure, as libtiff meant it), which rasterio's handler takes as any
GDAL error: part of the exception a write raises (its chain), never printed raw.

Which libraries: the symbols are looked up through rasterio's own extension module (`rasterio._base`), whose
dependency scope is the GDAL it calls and the libtiff that GDAL links, so that a second libtiff (Pillow's,
pyproj's) or a second GDAL (pyogrio's, fiona's) loaded in the process is never touched. Before, the first
`libtiff*`/`libgdal*` of /proc/self/maps was taken: with Pillow and pyogrio imported after rasterio that was
Pillow's libtiff and pyogrio's GDAL (rasterio's lines still printed, Pillow's went to another GDAL).

The handler is set only when every check passes; anything else returns False and changes nothing (the lines print
as libtiff prints them): Windows; `GEODINO_LIBTIFF_HOOK=0` in the environment; rasterio not imported or its module
not loadable with ctypes; a symbol missing; a libtiff inside libgdal (built in, or linked statically: its default
handler cannot be told from GDAL's own); a libtiff whose version is not the one GDAL's GTiff driver was built with
(its `LIBTIFF` metadata: `INTERNAL`, or another version, means the libtiff found is not GDAL's); a process-wide
handler already set by someone else (GDAL before libtiff 4.5 sets its own; it is put back). At exit the previous
handler is put back, so that libtiff never calls into a finalised interpreter.

The callback formats libtiff's `va_list` with the C library's `vsnprintf` (a `va_list` reaches a callback as a
pointer, or as a composite passed by reference, on x86-64, arm64, Linux and macOS). `CPLError` is variadic: it is
called with its three fixed arguments only (the text as the format, `%` doubled), as Apple arm64 passes variadic
arguments on the stack, where a fourth argument declared as fixed (the earlier `"%s", text` call) was never read.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import sys
import threading
from typing import Any

__all__ = ["route_libtiff_errors"]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}  # "routed": bool once decided; "callback": the ctypes callback, kept alive
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
CE_FAILURE, CPLE_APP_DEFINED = 3, 1  # GDAL's cpl_error.h
ENV_SWITCH = "GEODINO_LIBTIFF_HOOK"  # "0" (or false/no/off): leave libtiff's handler alone


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def route_libtiff_errors() -> bool:
    """Route libtiff's process-wide error messages to GDAL's error handler (module docstring), once a process;
    whether they are routed. Call it with rasterio imported (its libraries loaded). Never raises."""
    with _LOCK:
        if "routed" not in _STATE:
            try:
                routed = _route()
            except Exception:  # any surprise of a build: the process goes on as without the hook
                routed = False
            if routed is None:  # not decidable yet (rasterio not imported): asked again next time
                return False
            _STATE["routed"] = routed
        return bool(_STATE["routed"])


def hook_wanted() -> bool:
    """Whether `GEODINO_LIBTIFF_HOOK` leaves the hook on (unset, or anything but 0/false/no/off)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def _libraries() -> Any:
    """A ctypes handle whose symbol lookups search rasterio's extension module and its dependencies (the GDAL it
    calls, that GDAL's libtiff), or None when rasterio is not imported."""
    module = sys.modules.get("rasterio._base")
    path = getattr(module, "__file__", None)
    return ctypes.CDLL(path) if path else None


def _object_of(address: int | None) -> str | None:
    """The file of the loaded library that holds `address` (dladdr), or None when it cannot be told."""
    if not address:
        return None
    for name in (None, "libdl.so.2"):  # glibc before 2.34 keeps dladdr in libdl
        try:
            dladdr = ctypes.CDLL(name).dladdr
        except (OSError, AttributeError):
            continue
        dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        dladdr.restype = ctypes.c_int
        info = _DlInfo()
        if dladdr(ctypes.c_void_p(address), ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(info.dli_fname.decode("utf-8", "replace"))
        return None
    return None


def _address(function: Any) -> int | None:
    return ctypes.cast(function, ctypes.c_void_p).value


def _gtiff_libtiff(scope: Any) -> bytes | None:
    """GDAL's GTiff driver's `LIBTIFF` metadata (the libtiff version it was built with, or INTERNAL); None when
    the driver is not there. Drivers are registered the way rasterio registers them (its `Env`) when none is yet."""
    by_name, item = scope.GDALGetDriverByName, scope.GDALGetMetadataItem
    by_name.argtypes, by_name.restype = [ctypes.c_char_p], ctypes.c_void_p
    item.argtypes, item.restype = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_char_p
    driver = by_name(b"GTiff")
    if not driver:
        import rasterio

        with rasterio.Env():
            driver = by_name(b"GTiff")
    return item(driver, b"LIBTIFF", None) if driver else None


def _route() -> bool | None:
    if sys.platform == "win32" or not hook_wanted():
        return False
    try:
        scope = _libraries()
    except OSError:
        return False
    if scope is None:
        return None
    try:
        set_handler, cpl_error, version = scope.TIFFSetErrorHandler, scope.CPLError, scope.TIFFGetVersion
        vsnprintf = ctypes.CDLL(None).vsnprintf
        built_with = _gtiff_libtiff(scope)
    except (OSError, AttributeError):
        return False
    version.argtypes, version.restype = [], ctypes.c_char_p
    tiff_file, gdal_file = _object_of(_address(set_handler)), _object_of(_address(cpl_error))
    if tiff_file is None or gdal_file is None or tiff_file == gdal_file:
        return False  # not told apart, or a libtiff inside libgdal
    running = (version() or b"").split(b"\n", 1)[0]
    if not built_with or built_with.split(b"\n", 1)[0] != running:
        return False  # GDAL's libtiff is built in (INTERNAL) or another one: this libtiff is not the one it writes with
    set_handler.argtypes, set_handler.restype = [ctypes.c_void_p], ctypes.c_void_p
    vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    vsnprintf.restype = ctypes.c_int
    cpl_error.argtypes, cpl_error.restype = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p], None

    def handle(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        buf = ctypes.create_string_buffer(2048)
        if fmt:
            vsnprintf(buf, len(buf), fmt, args)
        forward(cpl_error, module, buf.value)

    callback = _HANDLER(handle)
    ours = _address(callback)
    _STATE["callback"] = callback  # ctypes frees a callback nobody holds: libtiff would call freed memory
    previous = set_handler(ours)
    try:
        default = _object_of(previous) == tiff_file
    except Exception:
        default = False
    if not default:  # someone's own handler (GDAL's, an application's), none, or not told: theirs again
        set_handler(previous)
        return False
    atexit.register(_put_back, set_handler, previous, ours)
    return True


def forward(cpl_error: Any, module: bytes | None, text: bytes) -> None:
    """Hand one libtiff message to GDAL's `CPLError` as a failure: `module: text`, with the fixed arguments only
    (the text as the format, `%` doubled; see the module docstring). Never raises into libtiff: on any error the
    line goes to stderr, as libtiff's default handler would have printed it."""
    said = module + b": " + text if module else text
    try:
        cpl_error(CE_FAILURE, CPLE_APP_DEFINED, said.replace(b"%", b"%%"))
    except Exception:
        sys.stderr.write(said.decode("utf-8", "replace") + "\n")


def _put_back(set_handler: Any, previous: int | None, ours: int | None) -> None:
    """At exit: libtiff's handler as it was before ours (unless someone replaced ours since)."""
    current = set_handler(previous)
    if current != ours:
        set_handler(current)
