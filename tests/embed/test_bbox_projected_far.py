"""`--bbox` in a projected `--bbox-crs` (Web Mercator, another UTM zone) reaching far from a scene's UTM zone: the
lon/lat far-zone fix did not cover it. Projected whole into the scene's CRS, such a bbox folded onto other ground
(a UTM 58N box half the globe away kept a scene at 35 W; a Web Mercator band at 9 S..9 N kept a scene at 24 N),
was said to miss a scene it holds (the same band over a scene at 8 S), and its 21-point edges were chords
kilometres off (a band whose edge crosses the scene cut it 83 rows too low). The scene's footprint and the bbox are
now compared in lon/lat, and a bbox reaching beyond the scene is cut to its part near the scene first. Placement
errors are caught by type (GDAL's, rasterio's, GEOS's), so a bug's TypeError is no longer reported as a bbox that
'cannot be placed'. Grids of the two Landsat sample scenes (EPSG:31985 at 8 S, 35 W; EPSG:32618 at 24 N, 77 W)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from geodino.embed import extent
from geodino.embed.extent import meets_bbox, pixel_window
from geodino.errors import InputError
from tests import helpers

SOUTH = SimpleNamespace(path="south.tif", width=349, height=352, crs=CRS.from_epsg(31985),
                        transform=Affine(28.5, 0, 288776.25, 0, -28.5, 9120760.75))  # fmt: skip
NORTH = SimpleNamespace(path="north.tif", width=791, height=718, crs=CRS.from_epsg(32618),
                        transform=Affine(300.04, 0, 101985.0, 0, -300.04, 2826915.0))  # fmt: skip
BAND = [-2.0e7, -1.0e6, 2.0e7, 1.0e6]  # Web Mercator: every longitude, 8.98 S .. 8.98 N


def _cfg(bbox, crs):
    return SimpleNamespace(bbox=list(bbox), bbox_crs=crs, window=None)


def _centres_in(info, bbox, crs) -> tuple[int, int, int, int]:
    """(col, row, width, height) of the pixels whose centres lie in `bbox`, by pyproj on every centre."""
    from pyproj import Transformer

    t = Transformer.from_crs(info.crs, crs, always_xy=True)
    cc, rr = np.meshgrid(np.arange(info.width) + 0.5, np.arange(info.height) + 0.5)
    x, y = t.transform(*(info.transform * (cc, rr)))
    inside = (x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3])
    rows, cols = np.where(inside.any(1))[0], np.where(inside.any(0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1] + 1 - cols[0]), int(rows[-1] + 1 - rows[0])


def test_a_web_mercator_band_keeps_the_scene_it_holds_and_not_the_other() -> None:
    assert pixel_window(SOUTH, _cfg(BAND, "EPSG:3857"), 1) == (0, 0, 349, 352)  # all of it
    with pytest.raises(InputError, match=r"lies outside input north\.tif"):
        pixel_window(NORTH, _cfg(BAND, "EPSG:3857"), 1)


def test_a_band_whose_edge_crosses_the_scene_cuts_it_where_the_edge_is() -> None:
    from pyproj import Transformer

    y_mid = Transformer.from_crs(SOUTH.crs, "EPSG:3857", always_xy=True).transform(293750.0, 9115745.0)[1]
    for bbox in ([-2.0e7, -1.0e6, 2.0e7, y_mid], [-2.0e7, y_mid, -3.882e6, 2.0e6]):
        got = pixel_window(SOUTH, _cfg(bbox, "EPSG:3857"), 1)
        want = _centres_in(SOUTH, bbox, "EPSG:3857")
        assert got is not None and np.abs(np.subtract(got, want)).max() <= 1, (got, want)


def test_a_box_in_a_zone_half_the_globe_away_misses_the_scene() -> None:
    far = _cfg([-5.0e6, -5.0e6, 5.0e6, 5.0e6], "EPSG:32658")  # UTM 58N (165 E): about 105 E .. 135 W
    with pytest.raises(InputError, match=r"lies outside input south\.tif"):
        pixel_window(SOUTH, far, 1)


def _overlaps(path: str, cfg) -> bool:
    """`meets_bbox` on the header of the file at `path`, as a many-scene run's bbox check reads it."""
    import rasterio

    with rasterio.open(path) as src:
        info = SimpleNamespace(path=path, width=src.width, height=src.height, crs=src.crs, transform=src.transform)
    return meets_bbox(info, cfg, f"scene {path}")


def test_many_scenes_skip_by_a_projected_bbox(tmp_path) -> None:
    paths = {}
    for info in (SOUTH, NORTH):
        data = np.ones((1, info.height, info.width), np.uint8)
        paths[info.path] = str(helpers.write_tif(tmp_path / info.path, data, crs=info.crs.to_string(),
                                                 transform=info.transform))  # fmt: skip
    assert _overlaps(paths["south.tif"], _cfg(BAND, "EPSG:3857"))
    assert not _overlaps(paths["north.tif"], _cfg(BAND, "EPSG:3857"))
    assert not _overlaps(paths["south.tif"], _cfg([-5.0e6, -5.0e6, 5.0e6, 5.0e6], "EPSG:32658"))


def test_a_bug_in_placing_the_bbox_is_not_taken_for_a_projection_failure(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(extent, "_bbox_pixels", broken)
    with pytest.raises(TypeError, match="a bug"):  # was: InputError 'cannot be placed on ... (a bug)'
        pixel_window(NORTH, _cfg([150000, 2650000, 200000, 2700000], "EPSG:32618"), 1)
