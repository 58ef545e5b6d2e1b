"""`geodino embed` on a GeoTIFF cut inside its header names the file as truncated, not as lacking a CRS."""

from __future__ import annotations

from geodino import cli
from tests.data.test_bad_input_messages import _cut_in_geokeys, _error, _tif


def test_embed_calls_a_file_cut_in_its_header_truncated_not_without_crs(tmp_path, capsys):
    cut = _cut_in_geokeys(_tif(tmp_path / "full.tif"), tmp_path / "cut.tif")
    code = cli.main(
        ["embed", str(cut), "-o", str(tmp_path / "f.tif"), "--backbone", "arch:vit_tiny?depth=1&patch_size=8"]
    )
    assert code == 2
    lines = _error(capsys)
    assert len(lines) == 1 and "cut.tif" in lines[0] and "truncated or corrupt" in lines[0]
    assert "no CRS" not in lines[0] and "GeoKeyDirectory" in lines[0]
    assert not (tmp_path / "f.tif").exists()
