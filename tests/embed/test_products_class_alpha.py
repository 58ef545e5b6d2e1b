"""The class map's confidence band is no alpha band in the TIFF itself (read without its `.aux.xml` sidecar)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin
from rasterio.windows import Window

from geodino.embed.map_outputs import pam_path, write_cog


def extra_samples(path: Path) -> list[tuple[int, ...]]:
    """TIFF tag 338 (ExtraSamples) of every IFD, read by Pillow's tag reader (independent of GDAL). The directories
    are walked by hand: Pillow < 10.4 cannot open a palette image with an extra sample (UnidentifiedImageError)."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    out = []
    with open(path, "rb") as fp:
        ifd = ImageFileDirectory_v2(fp.read(8))  # the header: byte order and the first IFD's offset
        while ifd.next:
            fp.seek(ifd.next)
            ifd.load(fp)
            out.append(tuple(np.atleast_1d(ifd.get(338, ()))))
    return out


def class_cog(tmp_path: Path, h: int = 600, w: int = 700) -> tuple[Path, np.ndarray]:
    """A 2-band class COG as `embed classify` writes it (class + confidence, nodata 255), big enough for overviews."""
    rng = np.random.default_rng(0)
    data = np.stack([rng.integers(0, 3, (h, w)), rng.integers(0, 101, (h, w))]).astype(np.uint8)
    data[:, :5, :5] = 255
    profile = {
        "height": h, "width": w, "count": 2, "dtype": "uint8", "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 4000000.0, 10.0, 10.0), "nodata": 255,
    }  # fmt: skip
    classes = {0: ((255, 0, 0), "a"), 1: ((0, 255, 0), "b"), 2: ((0, 0, 255), "c")}
    out = tmp_path / "map.tif"
    write_cog(out, iter([(Window(0, 0, w, h), data)]), profile, classes=classes, bands=("class", "confidence"))
    return out, data


def test_confidence_is_not_alpha_without_the_sidecar(tmp_path: Path) -> None:
    import rasterio

    out, data = class_cog(tmp_path)
    pam_path(out).unlink()  # the map copied alone / QGIS with PAM off
    with rasterio.open(out) as d:
        assert d.colorinterp[0] == ColorInterp.palette
        assert d.colorinterp[1] != ColorInterp.alpha
        assert d.colorinterp[1] == ColorInterp.undefined
        assert d.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"  # the in-place edit kept the COG layout
        assert len(d.overviews(1)) >= 1 and d.overviews(1) == d.overviews(2)
        assert d.colormap(1)[1] == (0, 255, 0, 255) and d.colormap(1)[255][3] == 0
        np.testing.assert_array_equal(d.read(), data)
        assert d.nodatavals == (255.0, 255.0)
        _ = d.read(1, window=Window(0, 0, 10, 10), out_shape=(5, 5))  # overview readable
    tags = extra_samples(out)
    assert tags and all(t == (0,) for t in tags), tags  # every IFD, the overviews' too: unspecified, not 2 (alpha)


def test_with_the_sidecar_confidence_is_grey(tmp_path: Path) -> None:
    import rasterio

    out, _ = class_cog(tmp_path, 40, 50)
    with rasterio.open(out) as d:
        assert d.colorinterp == (ColorInterp.palette, ColorInterp.gray)


@pytest.mark.parametrize("bigtiff", ["NO", "YES"])
def test_unmark_alpha_rewrites_only_the_extra_sample(tmp_path: Path, bigtiff: str) -> None:
    """A plain GTiff with an alpha extra sample (GDAL writes RGBA with ALPHA=YES): only tag 338 changes."""
    import rasterio

    from geodino.embed.map_outputs import unmark_alpha

    path = tmp_path / "rgba.tif"
    data = np.arange(4 * 30 * 20, dtype=np.uint8).reshape(4, 30, 20)
    with rasterio.open(
        path, "w", driver="GTiff", height=30, width=20, count=4, dtype="uint8", photometric="RGB", alpha="YES",
        bigtiff=bigtiff, transform=from_origin(0, 30, 1, 1),  # a grid, as geodino's products have
    ) as d:  # fmt: skip
        d.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning
        with rasterio.open(path) as d:
            assert d.colorinterp[3] == ColorInterp.alpha
        before = path.read_bytes()
        assert unmark_alpha(path) == 1
        after = path.read_bytes()
        assert len(after) == len(before) and sum(a != b for a, b in zip(before, after, strict=True)) == 1
        with rasterio.open(path) as d:
            assert d.colorinterp[3] == ColorInterp.undefined
            np.testing.assert_array_equal(d.read(), data)
    assert unmark_alpha(path) == 0  # nothing left to unmark
