"""PNG quick-looks are drawn north-up and west-left whatever the grid's orientation: a south-up raster (e > 0) was
drawn upside down and a west-pointing one (a < 0) mirrored, while zonal's PNG (plotted in CRS coordinates) was
north-up. A rotated grid is drawn in grid order, which the title says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

from geodino.embed import cluster_map
from geodino.embed.quicklook import _read, ramp_png
from tests.embed.test_products import feature_raster


def _raster(path: Path, data: np.ndarray, transform: Affine, *, dtype: str = "float32", nodata=np.nan) -> Path:
    """A GeoTIFF with the backbone record the products require."""
    return feature_raster(path, data, transform=transform, dtype=dtype, nodata=nodata)


SOUTH_UP = Affine(40.0, 0.0, 500000.0, 0.0, 40.0, 4000000.0)  # row 0 is the southern edge


def _north_half_nodata(h: int = 24, w: int = 24) -> np.ndarray:
    """Two feature vectors (left, right) with the rows of larger row index (north on a south-up grid) nodata."""
    rng = np.random.default_rng(0)
    f = np.empty((8, h, w), np.float32)
    f[:, :, : w // 2] = rng.normal(size=8)[:, None, None]
    f[:, :, w // 2 :] = rng.normal(size=8)[:, None, None]
    f[:, h // 2 :, :] = np.nan
    return f


def test_read_turns_south_up_grid_north_up(tmp_path):
    src = _raster(tmp_path / "su.tif", _north_half_nodata(), SOUTH_UP)
    arr, note = _read(src, 1, 1024)
    mask = np.ma.getmaskarray(arr)
    assert note == ""
    assert mask[:12].all() and not mask[12:].any()  # north (nodata) on top


def test_read_turns_west_pointing_grid_west_left(tmp_path):
    f = np.zeros((1, 4, 6), np.float32)
    f[0, :, 0] = np.nan  # column 0: the eastern edge when a < 0
    src = _raster(tmp_path / "west.tif", f, Affine(-40.0, 0.0, 500240.0, 0.0, -40.0, 4000000.0))
    arr, _ = _read(src, 1, 1024)
    mask = np.ma.getmaskarray(arr)
    assert mask[:, -1].all() and not mask[:, :-1].any()  # east on the right


def test_read_keeps_north_up_and_notes_rotated_grids(tmp_path):
    f = _north_half_nodata()
    north_up = _raster(tmp_path / "nu.tif", f, Affine(40.0, 0.0, 500000.0, 0.0, -40.0, 4000000.0))
    arr, note = _read(north_up, 1, 1024)
    assert note == "" and np.ma.getmaskarray(arr)[12:].all()  # as stored
    rotated = _raster(tmp_path / "rot.tif", f, Affine(40.0, 5.0, 500000.0, 5.0, -40.0, 4000000.0))
    arr, note = _read(rotated, 1, 1024)
    assert "grid order" in note and np.ma.getmaskarray(arr)[12:].all()  # not flipped, and said so


def _coloured_rows(png: Path) -> tuple[np.ndarray, int]:
    """Rows of the PNG's left part (the map; the legend is on the right) holding a colour that is neither white
    (nodata, page) nor grey/black (frame)."""
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    left = rgb[:, : rgb.shape[1] * 2 // 5]
    coloured = (left.max(axis=2) - left.min(axis=2)) > 40
    return np.nonzero(coloured.any(axis=1))[0], rgb.shape[0]


def test_cluster_png_of_south_up_raster_has_nodata_on_top(tmp_path):
    src = _raster(tmp_path / "su.tif", _north_half_nodata(), SOUTH_UP)
    png = tmp_path / "cl.png"
    cluster_map(src, tmp_path / "cl.tif", k=2, png=png)
    rows, height = _coloured_rows(png)
    assert rows.size
    # the map fills nearly the whole PNG height; its coloured (data) half is the southern one: below the middle
    assert rows.min() > 0.4 * height, (rows.min(), rows.max(), height)


def test_ramp_png_title_says_grid_order_on_rotated_grid(tmp_path, monkeypatch):
    from geodino.embed import quicklook

    titles = []
    monkeypatch.setattr(quicklook, "save_png", lambda fig, png: titles.append(fig.axes[0].get_title()) or png)
    f = np.random.default_rng(0).random((1, 6, 6)).astype(np.float32)
    rotated = _raster(tmp_path / "rot.tif", f, Affine(40.0, 5.0, 500000.0, 5.0, -40.0, 4000000.0))
    ramp_png(rotated, tmp_path / "r.png", vmin=0, vmax=1, ramp="viridis", label="x", title="rot.tif")
    assert titles[0].startswith("rot.tif") and "grid order" in titles[0]
