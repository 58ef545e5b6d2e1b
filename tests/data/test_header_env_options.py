"""GDAL settings set in the process with `rasterio.Env(...)` (not environment variables) that change what a header
reads as: the header cached in the process and in the on-disk store (`geodino.data.header_store`) was served under
any of them. `GDAL_PAM_ENABLED=NO` leaves out a `.aux.xml`'s scale/offset and band names, so a notebook's
`with rasterio.Env(GDAL_PAM_ENABLED="NO"): embed(...)` read the sidecar's rule it had asked GDAL to ignore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodino.data import header_store, headers
from tests import helpers

_AUX = (
    '<PAMDataset><PAMRasterBand band="1"><Description>B08</Description><Offset>-0.1</Offset><Scale>0.0001</Scale>'
    "</PAMRasterBand></PAMDataset>\n"
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GEODINO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(header_store.SWITCH_ENV, raising=False)
    monkeypatch.delenv("GDAL_PAM_ENABLED", raising=False)
    header_store.close()
    headers._cached.cache_clear()
    yield
    header_store.close()
    headers._cached.cache_clear()


def _new_process() -> None:
    header_store.close()
    headers._cached.cache_clear()


def _chip(tmp_path: Path) -> Path:
    path = helpers.write_tif(tmp_path / "a.tif", np.ones((1, 8, 8), np.uint16))
    Path(f"{path}.aux.xml").write_text(_AUX)
    return path


def test_an_in_process_pam_setting_is_not_served_a_header_read_without_it(tmp_path: Path, store: None) -> None:
    path = _chip(tmp_path)
    plain = headers.read_header(path)
    assert plain.scales == (0.0001,) and plain.descriptions == ("B08",)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        off = headers.read_header(path)  # the same process: its in-memory cache
    assert off.scales == () and off.descriptions == (None,)
    _new_process()
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        assert headers.read_header(path) == off  # from the store: its row under this setting
    assert headers.read_header(path) == plain  # and without it, the other row


def test_settings_that_do_not_change_a_header_keep_it_cached(tmp_path: Path, store: None, monkeypatch) -> None:
    """geodino's own Envs (a plain one, the folder-listing switch, GDAL's cache size) and rasterio's GDAL_DATA ask
    for the same header: no read again."""
    path = _chip(tmp_path)
    headers.read_header(path)
    _new_process()
    opened: list[str] = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: opened.append(name) or real(name, reader))
    with rasterio.Env(), rasterio.Env(GDAL_CACHEMAX=64 * 2**20), headers.no_folder_listing():
        assert headers.read_header(path).scales == (0.0001,)
    assert opened == []
    assert header_store.env_options() == ""
    with rasterio.Env(GTIFF_SRS_SOURCE="EPSG"):
        assert header_store.env_options() == '[["GTIFF_SRS_SOURCE", "EPSG"]]'
