"""`embed change` names what differs between two grids: a northing 4 m apart read `origin 500000,4e+06` on both
sides (`.6g`), a south-up grid `cell 80x-80`, a grid turned 20 degrees `cell 75.1754x75.1754` (the rotation
unsaid), and a compound or custom CRS filled the line with its WKT."""

from __future__ import annotations

from types import SimpleNamespace

from affine import Affine
from rasterio.crs import CRS

from geodino.embed.compat import grid_difference

NORTH_UP = Affine(80.0, 0.0, 500000.0, 0.0, -80.0, 4000000.0)


def _grid(transform: Affine = NORTH_UP, crs: str | None = "EPSG:32633") -> SimpleNamespace:
    return SimpleNamespace(crs=CRS.from_user_input(crs) if crs else None, height=5, width=6, transform=transform)


def test_a_small_origin_shift_is_shown_at_full_precision():
    text = grid_difference(_grid(), _grid(Affine.translation(0, 4) * NORTH_UP))
    assert text == (
        "transform (origin 500000,4000000, pixel size 80,-80) vs (origin 500000,4000004, pixel size 80,-80)"
    )


def test_south_up_and_rotated_grids_are_told_apart_from_north_up():
    south = grid_difference(_grid(), _grid(Affine(80.0, 0.0, 500000.0, 0.0, 80.0, 4000000.0)))
    assert south is not None and south.endswith("vs (origin 500000,4000000, pixel size 80,80)")
    rotated = Affine.translation(500000.0, 4000000.0) * Affine.rotation(20.0) * Affine.scale(80.0, -80.0)
    text = grid_difference(_grid(), _grid(rotated))
    assert text is not None and ", rotation terms 27.36" in text and "pixel size 75.17" in text
    assert "rotation" not in text.split(" vs ")[0]  # the north-up side has none


def test_a_compound_crs_is_named_not_printed_as_wkt():
    text = grid_difference(_grid(crs="EPSG:32633+5773"), _grid())
    assert text is not None and "[" not in text and "WGS 84 / UTM zone 33N + EGM96 height" in text
    assert text.endswith("vs EPSG:32633")
    assert grid_difference(_grid(), _grid()) is None
    assert grid_difference(_grid(crs=None), _grid()) == "CRS none vs EPSG:32633"
