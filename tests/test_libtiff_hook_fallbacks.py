"""`io_tiff.route_libtiff_errors` on builds and processes it cannot serve: every failure returns False, raises
nothing and leaves libtiff's process-wide handler as it was (the raw lines print, as without the hook); a second
libtiff or GDAL in the process is never the one hooked; `GEODINO_LIBTIFF_HOOK=0` turns it off."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import types

import pytest

from geodino import io_tiff

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the libtiff lookup is tested on Linux")


def _handler() -> int | None:
    """The process-wide error handler of rasterio's libtiff now (set to NULL and back at once)."""
    import rasterio  # noqa: F401  # its libraries loaded

    setter = ctypes.CDLL(sys.modules["rasterio._base"].__file__).TIFFSetErrorHandler
    setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
    current = setter(None)
    setter(current)
    return current


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process where the hook was not decided yet (the module's state is per process)."""
    monkeypatch.setattr(io_tiff, "_STATE", {})


def _refused(monkeypatch: pytest.MonkeyPatch, name: str, value: object) -> None:
    before = _handler()
    with monkeypatch.context() as m:
        m.setattr(io_tiff, name, value)
        assert io_tiff.route_libtiff_errors() is False
    assert _handler() == before  # nothing set
    assert "callback" not in io_tiff._STATE


def _raise(exc: BaseException):
    def f(*_a, **_k):
        raise exc

    return f


@pytest.mark.usefixtures("fresh")
def test_windows_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _refused(monkeypatch, "sys", types.SimpleNamespace(platform="win32", modules=sys.modules))


@pytest.mark.usefixtures("fresh")
def test_a_library_that_does_not_load_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _refused(monkeypatch, "_libraries", _raise(OSError("cannot open shared object file")))


@pytest.mark.usefixtures("fresh")
def test_ctypes_that_cannot_open_libraries_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _handler()
    with monkeypatch.context() as m:
        m.setattr(ctypes, "CDLL", _raise(OSError("dlopen failed")))
        assert io_tiff.route_libtiff_errors() is False
    assert _handler() == before


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize("missing", ["TIFFSetErrorHandler", "CPLError", "TIFFGetVersion", "GDALGetDriverByName"])
def test_a_missing_symbol_is_left_alone(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    """A build whose libraries lack one symbol (a libtiff that is not exported, a GDAL without the C API)."""
    import rasterio  # noqa: F401

    real = io_tiff._libraries()

    class Scope:
        def __getattr__(self, name: str) -> object:
            if name == missing:
                raise AttributeError(name)
            return getattr(real, name)

    _refused(monkeypatch, "_libraries", lambda: Scope())


@pytest.mark.usefixtures("fresh")
def test_an_unexpected_error_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _refused(monkeypatch, "_gtiff_libtiff", _raise(RuntimeError("a build nobody foresaw")))


@pytest.mark.usefixtures("fresh")
def test_without_rasterio_it_is_asked_again_later(monkeypatch: pytest.MonkeyPatch) -> None:
    _refused(monkeypatch, "_libraries", lambda: None)
    assert "routed" not in io_tiff._STATE  # not decided: a later call, rasterio loaded, may route


@pytest.mark.usefixtures("fresh")
def test_a_libtiff_inside_libgdal_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built in or linked statically: GDAL's own handler could not be told from libtiff's default."""
    _refused(monkeypatch, "_object_of", lambda address: "/usr/lib/libgdal.so.36")


@pytest.mark.usefixtures("fresh")
def test_libraries_dladdr_cannot_name_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _refused(monkeypatch, "_object_of", lambda address: None)


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize("built_with", [b"INTERNAL", b"LIBTIFF, Version 3.9.7\nCopyright", None])
def test_a_libtiff_gdal_was_not_built_with_is_left_alone(monkeypatch: pytest.MonkeyPatch, built_with) -> None:
    """GDAL's GTiff driver says which libtiff it writes with: the internal one (symbols renamed, the libtiff found
    belongs to another library, e.g. PROJ's), another version, or nothing (no GTiff driver)."""
    _refused(monkeypatch, "_gtiff_libtiff", lambda scope: built_with)


@pytest.mark.usefixtures("fresh")
def test_a_failure_once_the_handler_is_set_puts_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check of the previous handler raising: the previous handler is set again before False is returned."""
    calls = []
    real = io_tiff._object_of

    def failing_on_the_third(address):  # 1-2: the libraries' files; 3: the previous handler's
        calls.append(address)
        if len(calls) == 3:
            raise RuntimeError("dladdr failed")
        return real(address)

    before = _handler()
    with monkeypatch.context() as m:
        m.setattr(io_tiff, "_object_of", failing_on_the_third)
        assert io_tiff.route_libtiff_errors() is False
    assert _handler() == before and len(calls) == 3
    assert "callback" in io_tiff._STATE  # kept alive: it was set a moment, a libtiff thread may be inside it


@pytest.mark.usefixtures("fresh")
def test_a_handler_someone_set_is_kept() -> None:
    """GDAL before libtiff 4.5 (and applications) set their own process-wide handler: it stays theirs."""
    import rasterio  # noqa: F401

    setter = ctypes.CDLL(sys.modules["rasterio._base"].__file__).TIFFSetErrorHandler
    setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
    theirs = io_tiff._HANDLER(lambda module, fmt, args: None)
    address = ctypes.cast(theirs, ctypes.c_void_p).value
    before = setter(address)
    try:
        assert io_tiff.route_libtiff_errors() is False
        assert _handler() == address
    finally:
        setter(before)


def test_forward_passes_only_the_fixed_arguments_of_cplerror() -> None:
    """CPLError is variadic: a fourth argument declared as fixed is not where Apple arm64 reads it (a crash)."""
    calls = []
    io_tiff.forward(lambda *args: calls.append(args), b"_tiffWriteProc", b"100% full")
    assert calls == [(io_tiff.CE_FAILURE, io_tiff.CPLE_APP_DEFINED, b"_tiffWriteProc: 100%% full")]


def test_forward_never_raises_into_libtiff(capsys: pytest.CaptureFixture[str]) -> None:
    io_tiff.forward(_raise(ctypes.ArgumentError("bad")), None, b"disk full")
    assert capsys.readouterr().err == "disk full\n"


def test_put_back_restores_the_handler_unless_replaced_since() -> None:
    state = {"now": 2}

    def setter(new):
        old, state["now"] = state["now"], new
        return old

    io_tiff._put_back(setter, 1, 2)  # ours still set: the previous one back
    assert state["now"] == 1
    state["now"] = 3
    io_tiff._put_back(setter, 1, 2)  # someone replaced ours: theirs stays
    assert state["now"] == 3


CHECK = """
import ctypes, sys
import rasterio
with rasterio.Env():
    pass
import PIL._imaging, pyogrio  # their own libtiff and GDAL, loaded after rasterio's (lower addresses)
from geodino import io_tiff

def handler(path):
    setter = ctypes.CDLL(path).TIFFSetErrorHandler
    setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
    current = setter(None)
    setter(current)
    return current

pillow = handler(PIL._imaging.__file__)
routed = io_tiff.route_libtiff_errors()
ours = ctypes.cast(io_tiff._STATE.get("callback"), ctypes.c_void_p).value if routed else None
print(routed, handler(sys.modules["rasterio._base"].__file__) == ours, handler(PIL._imaging.__file__) == pillow)
"""


def _run(env: dict[str, str] | None = None) -> list[str]:
    pytest.importorskip("pyogrio")
    pytest.importorskip("PIL._imaging")
    run = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_the_libtiff_of_rasterio_is_hooked_not_another_loaded_later() -> None:
    """Pillow's libtiff and pyogrio's GDAL loaded after rasterio's came first in /proc/self/maps: the old lookup
    hooked Pillow's libtiff to pyogrio's GDAL and left rasterio's printing."""
    assert _run() == ["True", "True", "True"]


def test_the_environment_switch_turns_the_hook_off() -> None:
    assert _run({io_tiff.ENV_SWITCH: "0"}) == ["False", "False", "True"]
