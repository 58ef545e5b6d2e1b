"""`geodino data stats --on-error skip` skips a first raster cut short inside its header (its first directory, the
IFD, or the tag data the IFD points to) with the archive's one-line warning, and the statistics are those of the
other files; it stopped on the first file's header before ("raster a.tif is truncated or corrupt")."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from geodino import cli
from geodino.data.stats import compute_stats
from tests.data.conftest import write_tif


def _good(path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_tif(path, rng.integers(1, 255, size=(3, 40, 40)).astype("uint8"))


def _header_end(raw: bytes) -> tuple[int, int]:
    """(IFD offset, first byte of pixel data) of a little-endian classic TIFF as GDAL writes a small one."""
    assert raw[:4] == b"II*\x00"
    ifd = struct.unpack("<I", raw[4:8])[0]
    n = struct.unpack("<H", raw[ifd : ifd + 2])[0]
    for k in range(n):
        tag, _typ, count, value = struct.unpack("<HHII", raw[ifd + 2 + 12 * k : ifd + 14 + 12 * k])
        if tag in (273, 324):  # StripOffsets / TileOffsets: the first block's offset (an array when count > 1)
            first = value if count == 1 else struct.unpack("<I", raw[value : value + 4])[0]
            return ifd, first
    raise AssertionError("no strip or tile offsets")


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, bytes]:
    d = tmp_path / "scenes"
    d.mkdir()
    raw = _good(tmp_path / "full.tif").read_bytes()
    _good(d / "b_good.tif")
    return d, raw


@pytest.mark.parametrize("where", [0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95])
def test_a_first_file_cut_in_its_header_is_skipped_with_one_warning(folder, where):
    d, raw = folder
    ifd, data = _header_end(raw)
    at = int(where * data)  # 0: empty file; then the 8-byte header, the IFD and the tag data it points to
    assert at < data and ifd < data
    cut = d / "a_cut.tif"
    cut.write_bytes(raw[:at])
    alone, _ = compute_stats([str(d / "b_good.tif")], progress=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        sensor, prov = compute_stats([str(d)], on_error="skip", progress=False)
    said = [str(w.message) for w in seen if "a_cut.tif" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(f"skipping raster {cut}: ") and "\n" not in said[0]
    assert sensor.mean == alone.mean and sensor.std == alone.std and sensor.bands == alone.bands
    assert prov["pixels"] == [40 * 40] * 3


def test_the_cli_skips_a_first_file_cut_in_its_ifd(folder, capsys, tmp_path):
    d, raw = folder
    ifd, _ = _header_end(raw)
    (d / "a_cut.tif").write_bytes(raw[: ifd + 20])  # inside the first directory's entries
    out = tmp_path / "s.yaml"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cli.main(["data", "stats", str(d), "--on-error", "skip", "-o", str(out)]) == 0
    said = [str(w.message) for w in seen if "a_cut.tif" in str(w.message)]
    assert len(said) == 1 and "truncated or corrupt" in said[0]
    assert "a_cut.tif" not in capsys.readouterr().err  # no error line besides the warning
    assert yaml.safe_load(out.read_text())["stats"]["pixels"] == [1600, 1600, 1600]


def test_stop_still_stops_and_a_lone_cut_file_is_still_named(folder, capsys, tmp_path):
    d, raw = folder
    ifd, _ = _header_end(raw)
    (d / "a_cut.tif").write_bytes(raw[: ifd + 20])
    assert cli.main(["data", "stats", str(d), "--on-error", "stop", "-o", str(tmp_path / "s.yaml")]) == 2
    assert "a_cut.tif" in capsys.readouterr().err
    assert cli.main(["data", "stats", str(d / "a_cut.tif"), "-o", str(tmp_path / "t.yaml")]) == 2
    assert "a_cut.tif is truncated or corrupt" in capsys.readouterr().err
