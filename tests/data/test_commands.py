"""`geodino data ...` through geodino.cli.main: stats writes a usable sensor YAML; bad input exits 2."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import geodino.cli as cli
from geodino.data.sensors import get_sensor
from geodino.data.stats import RunningStats, compute_stats

from .conftest import write_tif


@pytest.fixture(autouse=True)
def _only_data_commands(monkeypatch):
    """Other parts register their own commands; these tests exercise the data ones only."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.data.commands",))


def test_running_stats_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, size=(2, 10, 10)), rng.normal(5, 1, size=(2, 7, 9))
    va, vb = rng.random((10, 10)) > 0.3, np.ones((7, 9), bool)
    st = RunningStats(2)
    st.update(a, va)
    st.update(b, vb)
    ref = np.concatenate([a[:, va], b.reshape(2, -1)], axis=1)
    np.testing.assert_allclose(st.mean, ref.mean(1))
    np.testing.assert_allclose(st.std, ref.std(1, ddof=1))


# constant bands give exact expected values; their warning is expected (test_stats_edge asserts it)
@pytest.mark.filterwarnings("ignore:.*constant or nearly:UserWarning")
def test_stats_cli_writes_sensor_yaml(tmp_path, capsys):
    data = np.zeros((2, 64, 64), dtype="uint16")
    data[0], data[1] = 1000, 3000
    data[:, 32:, :] = 0  # nodata half: must not pull the means down
    data[0, :16] = 2000  # band 0: a quarter of the valid pixels at 2000
    p = write_tif(tmp_path / "x.tif", data, nodata=0, descriptions=["red", "nir"])
    out = tmp_path / "mine.yaml"
    rc = cli.main(
        [
            "data",
            "stats",
            str(p),
            "--out",
            str(out),
            "--scale",
            "0.0001",
            "--samples",
            "20",
            "--tile-size",
            "32",
            "--plot",
            str(tmp_path / "hist.png"),
        ]
    )
    assert rc == 0
    y = yaml.safe_load(out.read_text())
    assert y["bands"] == ["red", "nir"] and y["scale"] == 0.0001 and y["nodata"] == 0
    s = get_sensor(str(out))
    assert s.mean[1] == pytest.approx(0.3) and s.std[1] == pytest.approx(1e-6, abs=1e-6)
    assert 0.1 < s.mean[0] < 0.2  # between 0.1 and 0.2 (mixture), nodata excluded
    assert y["stats"]["p50"][1] == pytest.approx(0.3) and y["stats"]["p98"][0] == pytest.approx(0.2)
    assert (tmp_path / "hist.png").stat().st_size > 1000


def test_stats_cli_errors_exit_2(tmp_path, capsys):
    assert cli.main(["data", "stats", str(tmp_path / "missing"), "--out", str(tmp_path / "o.yaml")]) == 2
    assert "raster path" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["data", "stats", str(tmp_path / "empty"), "--out", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geodino: error: folder") and err.count("\n") == 1
    p = write_tif(tmp_path / "y.tif", np.ones((2, 16, 16), dtype="uint16"), nodata=None)
    rc = cli.main(["data", "stats", str(p), "--out", str(tmp_path / "o.yaml"), "--band-names", "a", "b", "c"])
    assert rc == 2 and f"band_names lists 3 names but raster {p} has 2 bands" in capsys.readouterr().err
    # a built-in sensor with more bands than the files fails before reading any tile, naming the fix
    rc = cli.main(["data", "stats", str(p), "--out", str(tmp_path / "o.yaml"), "--sensor", "sentinel2_l2a"])
    err = capsys.readouterr().err
    assert rc == 2 and f"raster {p} has 2 bands but sensor 'sentinel2_l2a' has 12" in err
    assert "--band-names B01 B02" in err and err.count("\n") == 1
    # several files: the message says which one it read (it said "the rasters have 2 bands" of a mixed folder)
    write_tif(tmp_path / "z.tif", np.ones((3, 16, 16), dtype="uint16"), nodata=None)
    rc = cli.main(["data", "stats", str(tmp_path / "*.tif"), "--out", str(tmp_path / "o.yaml"), "--sensor", "maxar"])
    err = capsys.readouterr().err
    assert rc == 2 and f"the first of 2 rasters, {p}, has 2 bands but sensor 'maxar' has 3" in err, err


def test_sensor_yaml_missing_bands_via_cli_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbands: [a, b]\nscale: 1\nmean: [0.1]\nstd: [1, 1]\n")
    p = write_tif(tmp_path / "z.tif", np.ones((2, 16, 16), dtype="uint16"), nodata=None)
    rc = cli.main(["data", "stats", str(p), "--out", str(tmp_path / "o.yaml"), "--sensor", str(bad)])
    assert rc == 2 and "'mean' has 1 value but 'bands' has 2" in capsys.readouterr().err


def test_sensors_and_index_commands(tmp_path, capsys):
    assert cli.main(["data", "sensors"]) == 0
    assert "sentinel2_l2a" in capsys.readouterr().out
    write_tif(tmp_path / "a.tif", np.ones((3, 16, 16), dtype="uint8"), nodata=None)
    write_tif(tmp_path / "b.tif", np.ones((1, 16, 16), dtype="float32"), crs="EPSG:4326", nodata=None)
    assert cli.main(["data", "index", str(tmp_path), "--out", str(tmp_path / "fp.geojson")]) == 0
    out = capsys.readouterr().out
    assert "2 scenes," in out and "EPSG:4326" in out and (tmp_path / "fp.geojson").exists()
    import json

    assert json.loads((tmp_path / "fp.geojson").read_text())["name"] == "fp"  # not the temporary file's name
    # an unknown suffix got GeoJSON written into it (idx.txt); it is refused before indexing, naming the formats
    assert cli.main(["data", "index", str(tmp_path), "--out", str(tmp_path / "idx.txt")]) == 2
    assert "data index writes GeoParquet (.parquet) or GeoJSON (.geojson)" in capsys.readouterr().err
    assert not (tmp_path / "idx.txt").exists()
    assert cli.main(["data", "index", str(tmp_path), "--out", str(tmp_path / "fp.geoparquet")]) == 0
    import geopandas as gpd

    assert len(gpd.read_parquet(tmp_path / "fp.geoparquet")) == 2


# constant bands give exact expected values; their warning is expected (test_stats_edge asserts it)
@pytest.mark.filterwarnings("ignore:.*constant or nearly:UserWarning")
def test_compute_stats_api_with_builtin_sensor(tmp_path):
    names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    data = np.full((12, 40, 40), 500, dtype="uint16")
    p = write_tif(tmp_path / "s2.tif", data, nodata=0, descriptions=names)
    sensor, prov = compute_stats(str(p), sensor="sentinel2_l2a", bands=["B04", "B08"], samples=4, tile_size=20)
    assert sensor.bands == ("B04", "B08") and sensor.mean == (0.05, 0.05) and prov["tiles"] == 4
