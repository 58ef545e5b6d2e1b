"""Outputs named for a format they do not hold, and flags a command would ignore, are one line (exit 2) before
anything is read or written: `io.check_suffix` is the one rule of `--png x.jpg`, `data stats --plot d.txt` (a PNG
named .txt), `data preview --out pv.txt`, `classify --save-model m.txt` (a safetensors file) and `zonal --out z.csv`
(told "not a raster"); `similar --point-crs` with `--polygon` and `classify --neighbors` without kNN were ignored."""

from __future__ import annotations

import pytest

from geodino import cli
from geodino.errors import ConfigError
from geodino.io import check_suffix


def one_line(capsys, tmp_path, *argv: str) -> str:
    """The single stderr line of a refused command (exit 2), with nothing written to `tmp_path`."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert list(tmp_path.iterdir()) == []
    return err[0].removeprefix("geodino: error: ")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ("data stats {}/in.tif --out {}/s.yaml --plot {}/d.txt",
         "--plot {}/d.txt (plot= in Python): data stats writes a PNG (the per-band histograms), not .txt; name it "
         "d.png"),
        ("data preview --out {}/pv.txt",
         "--out {}/pv.txt (out= in Python): data preview writes a PNG, not .txt; name it pv.png"),
        ("embed classify {}/f.tif {}/l.gpkg --column c --out {}/m.tif --save-model {}/m.txt",
         "--save-model {}/m.txt (save_model= in Python): classify writes a safetensors file (the fitted model, for "
         "--model), not .txt; name it m.safetensors"),
        ("embed zonal {}/f.tif {}/p.gpkg --out {}/z.csv",
         "--out {}/z.csv (out= in Python): zonal writes GeoParquet (polygons, attributes and embeddings), not .csv; "
         "name it z.parquet (or .geoparquet)"),
        ("embed pca {}/f.tif --out {}/p.tif --png {}/p",
         "--png {}/p (png= in Python): pca writes a PNG, not a file without suffix; name it p.png"),
    ],
)  # fmt: skip
def test_an_output_named_for_another_format_is_refused(capsys, tmp_path, argv, said):
    assert one_line(capsys, tmp_path, *argv.replace("{}", str(tmp_path)).split()) == said.replace("{}", str(tmp_path))


def test_the_rule_takes_any_case_and_names_a_file_for_a_bare_dot():
    check_suffix("--png", "Q.PNG", (".png",), command="pca", writes="a PNG")
    with pytest.raises(
        ConfigError,
        match=r"^--out \. \(out= in Python\): data preview writes a PNG, not a file without suffix; name it ",
    ):
        check_suffix("--out", ".", (".png",), command="data preview", writes="a PNG")


def test_preview_from_python_refuses_a_name_that_is_not_png(tmp_path):
    from geodino.data.preview import write_preview

    with pytest.raises(
        ConfigError, match=r"pv\.txt \(out= in Python\): data preview writes a PNG, not \.txt; name it pv\.png$"
    ):
        write_preview(None, tmp_path / "pv.txt")


@pytest.mark.parametrize("crs", [["--point-crs", "EPSG:4326"], ["--point-crs"]])
def test_similar_refuses_a_point_crs_with_polygons(capsys, tmp_path, crs):
    argv = ["embed", "similar", tmp_path / "f.tif", "--out", tmp_path / "s.tif", "--polygon", "q.gpkg", *crs]
    line = one_line(capsys, tmp_path, *argv)
    crs_text = " EPSG:4326" if len(crs) == 2 else ""
    assert line == (
        f"--point-crs{crs_text} applies to --point only: the polygons of --polygon q.gpkg are placed by their file's "
        "own CRS; drop --point-crs (point_crs= in Python)"
    )


def test_similar_from_python_refuses_a_point_crs_with_polygons(tmp_path):
    from geodino.embed import similarity_map

    with pytest.raises(ConfigError, match=r"^--point-crs EPSG:4326 applies to --point only"):
        similarity_map(tmp_path / "f.tif", tmp_path / "s.tif", polygon=tmp_path / "q.gpkg", point_crs="EPSG:4326")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", [[], ["--method", "logreg"]])
def test_classify_refuses_neighbors_without_knn(capsys, tmp_path, method):
    argv = ["embed", "classify", tmp_path / "f.tif", tmp_path / "l.gpkg", "--column", "c", "--out", tmp_path / "m.tif"]
    assert one_line(capsys, tmp_path, *argv, "--neighbors", "3", *method) == (
        "--neighbors 3 applies to --method knn only (logreg has no neighbours); add --method knn or drop --neighbors "
        "(method=/neighbors= in Python)"
    )
    # with knn it passes that check (and stops at the missing raster); without it, logreg's default is not "given"
    for more in (["--neighbors", "3", "--method", "knn"], []):
        assert "--neighbors" not in one_line(capsys, tmp_path, *argv, *more)


def test_classify_from_python_refuses_neighbors_without_knn(tmp_path):
    from geodino.embed import classify_map

    with pytest.raises(ConfigError, match=r"^--neighbors 3 applies to --method knn only"):
        classify_map(tmp_path / "f.tif", tmp_path / "l.gpkg", tmp_path / "m.tif", column="c", neighbors=3)
