"""`geodino embed STORE --sensor S`: a cube without band names gives b1..bN, which the sensor resolved by name (b1 as
Sentinel-2's B01), so a 4-band store under the 12-band sentinel2_l2a ran as B01..B04 where a raster without band
names is refused. Positions select nothing now (the band-count refusal follows); real band names still select."""

from __future__ import annotations

from types import SimpleNamespace

from geodino.embed.input_scaling import _selected_sensor


def test_positional_names_do_not_select_sensor_bands():
    cfg = SimpleNamespace(sensor="sentinel2_l2a", bands=None)
    assert _selected_sensor(cfg, 4, ("b1", "b2", "b3", "b4")).n_bands == 12  # refused by the count check after
    named = _selected_sensor(cfg, 4, ("B08", "B04", "B03", "B02"))
    assert named.bands == ("B08", "B04", "B03", "B02")
