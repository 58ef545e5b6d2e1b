"""The "time" line of `geodino embed`: where a run's wall time went (set-up, forward, waiting for tiles, ...)."""

from __future__ import annotations

import re
import time

from geodino.embed import embed_raster, sweep
from geodino.embed.sweep import time_line
from tests.embed.conftest import random_image, write_tif

LINE = re.compile(
    r"geodino: time (?P<total>[\d.]+) s: set-up (?P<setup>[\d.]+), sweep (?P<sweep>[\d.]+) \(forward "
    r"(?P<forward>[\d.]+)(?: at (?P<rate>[\d.]+) tiles/s)?, waiting for tiles (?P<waiting>[\d.]+), blending "
    r"(?P<blending>[\d.]+), rows out (?P<rows>[\d.]+)\), finishing (?P<finish>[\d.]+)"
)


def test_time_line_text():
    timing = {"forward": 8.0, "waiting": 0.25, "blending": 0.5, "rows": 0.125}
    assert time_line(12.0, 1.5, 9.0, 1.5, timing, 20) == (
        "time 12.0 s: set-up 1.5, sweep 9.0 (forward 8.0 at 2.5 tiles/s, waiting for tiles 0.2, blending 0.5, "
        "rows out 0.1), finishing 1.5"
    )
    assert "tiles/s" not in time_line(1.0, 1.0, 0.0, 0.0, dict.fromkeys(timing, 0.0), 0)


def _run(tmp_path, capsys, const_bb) -> dict[str, float]:
    src = write_tif(tmp_path / "in.tif", random_image(96, 96))
    # tile 32, overlap 16: 5 x 5 tiles in batches of 2 per tile row (3 batches a row)
    embed_raster(src, const_bb, tmp_path / "o.zarr", tile=32, overlap=16, batch_size=2, progress=True)
    err = capsys.readouterr().err
    m = next(LINE.search(ln) for ln in err.splitlines() if LINE.search(ln))
    return {k: float(v) for k, v in m.groupdict().items() if v is not None}


def test_slow_forward_shows_as_forward(tmp_path, capsys, const_bb, monkeypatch):
    real = sweep.Sweeper._infer

    def slow(self, tiles):
        time.sleep(0.05)
        return real(self, tiles)

    monkeypatch.setattr(sweep.Sweeper, "_infer", slow)
    t = _run(tmp_path, capsys, const_bb)
    assert t["forward"] >= 15 * 0.05 - 0.05  # 15 batches (line rounding: 0.05)
    assert t["waiting"] < t["forward"] / 2
    assert t["rate"] <= 25 / (15 * 0.05) + 0.1  # 25 tiles
    assert t["setup"] + t["sweep"] + t["finish"] <= t["total"] + 0.15
    assert t["forward"] + t["waiting"] + t["blending"] + t["rows"] <= t["sweep"] + 0.2


def test_slow_reader_shows_as_waiting(tmp_path, capsys, const_bb, monkeypatch):
    real = sweep._Tiles.add

    def slow(self, *args):
        time.sleep(0.04)
        return real(self, *args)

    monkeypatch.setattr(sweep._Tiles, "add", slow)
    t = _run(tmp_path, capsys, const_bb)
    assert t["waiting"] >= 0.5 * 25 * 0.04  # the main thread waited for most of the reader's 1 s
    assert t["waiting"] > 3 * t["forward"]
