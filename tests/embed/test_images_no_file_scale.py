"""`geodino embed images --no-file-scale`: the CLI switch of `embed_images(file_scale=False)` (Python only before):
a folder whose files declare Landsat's GDAL scale/offset is read by the dtype rule, and the run's scaling line says
the switch was off; `geodino embed INPUT` is told its own spelling (file_scale=false)."""

from __future__ import annotations

from tests.embed.test_embed_images import cli, meta_of, one_error_line
from tests.eval.test_declared_scaling import LANDSAT, SPEC, dn_of, tagged


def test_no_file_scale_reads_by_dtype_and_says_so(tmp_path, capsys) -> None:
    tagged(tmp_path / "dn" / "l.tif", dn_of(0), LANDSAT)
    out = tmp_path / "off.parquet"
    assert cli("embed", "images", str(tmp_path / "dn"), "-b", SPEC, "--out", str(out), "--no-file-scale") == 0
    err = capsys.readouterr().err
    said = "input scaling x/10000 (by dtype: uint16"
    off = "; the files' own GDAL scale/offset not read (--no-file-scale, file_scale=False in Python)"
    assert said in err and off in err and "declared" not in err
    assert meta_of(out)["input_scaling"].endswith(off)
    on = tmp_path / "on.parquet"
    assert cli("embed", "images", str(tmp_path / "dn"), "-b", SPEC, "--out", str(on)) == 0
    err = capsys.readouterr().err
    assert "input scaling x*2.75e-05-0.2 (declared by the file: GDAL scale/offset)" in err and "not read" not in err


def test_no_file_scale_is_refused_where_it_does_not_apply(tmp_path, capsys) -> None:
    base = ("-b", SPEC, "--out", str(tmp_path / "o.tif"))
    assert cli("embed", "scene.tif", *base, "--no-file-scale") == 2
    assert "geodino embed INPUT takes the setting file_scale=false" in one_error_line(capsys.readouterr().err)
    assert cli("embed", "pca", "f.tif", "--out", str(tmp_path / "p.tif"), "--no-file-scale") == 2
    assert "--no-file-scale applies to geodino embed images DIR only" in one_error_line(capsys.readouterr().err)
