"""Embed messages that quote a library's error keep its later lines, folded into one: they kept only the first
("Read failed. See previous exception for details."), dropping the file and reason GDAL put on the next one, and
an ImportError whose text starts with a blank line (numpy's "A module that was compiled using NumPy 1.x ...")
was quoted as nothing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError, RasterioIOError

from geodino.embed import extent, reader
from geodino.errors import InputError

TWO_LINES = "Read failed. See previous exception for details.\n  b07.tif: TIFFReadDirectory: failed at offset 8"
FOLDED = "Read failed. See previous exception for details. b07.tif: TIFFReadDirectory: failed at offset 8"


def _unreadable(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise RasterioIOError(TWO_LINES)

    monkeypatch.setattr(rasterio, "open", fail)


def test_raster_source_and_scene_header_quote_the_second_line(tmp_path, monkeypatch):
    from geodino.embed.config import EmbedConfig
    from geodino.embed.scene_checks import check_headers
    from geodino.embed.sources import RasterSource
    from geodino.embed.stac import Scene

    path = tmp_path / "a.tif"
    path.write_bytes(b"II*\x00")
    _unreadable(monkeypatch)
    with pytest.raises(InputError, match=rf"^cannot read raster {path}: {FOLDED}; check it with gdalinfo"):
        RasterSource(str(path))
    unreadable: dict[str, InputError] = {}
    with pytest.raises(InputError, match=rf"^none of the 1 scene can be read \(e\.g\. {path}: {FOLDED}\), so "):
        check_headers([Scene("a", str(path))], EmbedConfig(), unreadable)
    assert str(unreadable["a"]) == f"cannot open its header ({FOLDED}); re-download or re-copy it"


def test_feature_raster_and_store_quote_the_second_line(tmp_path, monkeypatch):
    text = tmp_path / "f.tif"
    text.write_text("not a raster")  # no TIFF magic: "cannot read", not "damaged"
    _unreadable(monkeypatch)
    with pytest.raises(InputError, match=rf"^cannot read feature raster {text}: {FOLDED}$"):
        reader.EmbeddingReader(text)

    store = tmp_path / "f.zarr"
    store.mkdir()
    closed = []
    opened = SimpleNamespace(crs=None, transform=None, close=lambda: closed.append(1))
    monkeypatch.setattr(rasterio, "open", lambda *a, **k: opened)

    def damaged(path):
        raise ValueError("\nzarr.json of f.zarr: Expecting ',' delimiter: line 3 column 5")

    monkeypatch.setattr(reader, "read_store_info", damaged)
    with pytest.raises(InputError, match=r"zarr\.json of f\.zarr: Expecting ',' delimiter: line 3 column 5"):
        reader.EmbeddingReader(store)
    assert closed == [1]


def test_a_bbox_that_cannot_be_placed_quotes_the_second_line(monkeypatch):
    def fail(*args, **kwargs):
        raise RasterioError("Reprojection failed\nPoint outside of projection domain")

    monkeypatch.setattr(extent, "_bbox_pixels", fail)
    info = SimpleNamespace(path="a.tif", width=10, height=10, crs=CRS.from_epsg(32633), transform=Affine.identity())
    cfg = SimpleNamespace(bbox=[0.0, 0.0, 5.0, 5.0], bbox_crs=None, window=None)
    with pytest.raises(InputError, match=r"\(Reprojection failed; Point outside of projection domain\); its extent"):
        extent.pixel_window(info, cfg, 1)


def test_a_model_of_other_packages_quotes_an_import_error_after_its_blank_line(tmp_path, monkeypatch):
    import joblib

    from geodino.embed.classifier_model import load_model

    path = tmp_path / "m.joblib"
    path.write_bytes(b"x")

    def fail(*args, **kwargs):
        raise ImportError("\nA module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.0.0")

    monkeypatch.setattr(joblib, "load", fail)
    with pytest.raises(InputError, match=r": A module that was compiled using NumPy 1\.x cannot be run in; NumPy 2"):
        load_model(path)
