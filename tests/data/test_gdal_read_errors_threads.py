"""`gdal_read_errors` on two threads at once, with the rasterio logger quieted (level ERROR): a call that ended put
the logger's level back while the other thread's call was still reading, so that call's truncated header went
unnamed (its warning dropped)."""

from __future__ import annotations

import logging
import threading

import pytest

from geodino.data import headers

_CUT = "CPLE_AppDefined in {0}: IO error during reading of GeoKeyDirectory; tag ignored"


def test_a_call_ending_leaves_the_level_raised_for_another_threads_call(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("rasterio._env")
    monkeypatch.setattr(logger, "level", logging.ERROR)
    a_in, a_out = threading.Barrier(2, timeout=10), threading.Barrier(2, timeout=10)
    found: dict[str, list[str]] = {}

    def first() -> None:  # a.tif: in first, out first
        with headers.gdal_read_errors("a.tif") as found["a"]:
            a_in.wait()  # b.tif's call starts while this one runs
            a_in.wait()
            logger.warning(_CUT.format("a.tif"))
        a_out.wait()

    def second() -> None:  # b.tif: in second, reads after a.tif's call has ended
        a_in.wait()
        with headers.gdal_read_errors("b.tif") as found["b"]:
            a_in.wait()
            a_out.wait()
            logger.warning(_CUT.format("b.tif"))

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    cut = ["IO error during reading of GeoKeyDirectory"]
    assert found == {"a": cut, "b": cut}  # b: [] on the old code (a's call put the level back to ERROR)
    assert logger.level == logging.ERROR  # put back once both ended
    assert headers._LevelHold.inside == 0 and headers._LevelHold.put_back is None


def test_the_level_put_back_is_the_one_found_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """With logging disabled (`logging.disable`), every call finds warnings dropped: a call entering while another
    ran took the level that one had raised for the one to put back, and the logger was left at WARNING."""
    logger = logging.getLogger("rasterio._env")
    monkeypatch.setattr(logger, "level", logging.ERROR)
    logging.disable(logging.WARNING)
    try:
        with headers.gdal_read_errors("a.tif"), headers.gdal_read_errors("b.tif"):  # as two threads' calls at once
            assert logger.level == logging.WARNING
    finally:
        logging.disable(logging.NOTSET)
    assert logger.level == logging.ERROR
