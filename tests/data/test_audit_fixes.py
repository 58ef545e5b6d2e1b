"""Audit fixes in `geodino data` / `viz attention`: percentile subset size, bit-depth refusal, stack safety,
overwrite refusal and one-line messages that name the command's own flags."""

from __future__ import annotations

import numpy as np
import pytest

import geodino.cli as cli
from geodino.errors import InputError

from .conftest import write_tif


@pytest.fixture(autouse=True)
def _only_data_commands(monkeypatch):
    """Other parts register their own commands; these tests exercise the data and viz ones only."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.data.commands", "geodino.viz.commands"))


def _chips(root, n: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "a").mkdir(parents=True)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "a" / f"{k}.png")


def test_image_stats_percentiles_come_from_200k_pixels_of_the_chips(tmp_path):
    """Chips of 40 px, not --tile-size 256: 200 chips (each read once) hold 320,000 pixels, of which exactly 200,000
    are kept."""
    from geodino.data.stats import compute_stats

    _chips(tmp_path / "imgs", 200, 40)
    _, prov = compute_stats(str(tmp_path / "imgs"), type="images", samples=200, progress=False)
    assert prov["pixels"] == [200 * 40 * 40] * 3
    assert prov["percentiles_from"].startswith("a random 200,000 of the 320,000 valid pixels")
    assert prov["_sample"].shape == (3, 200_000)
    assert prov["chip_size"] == [40, 40] and "tile_size" not in prov


def test_percentiles_of_a_nodata_heavy_raster_come_from_200k_uniform_valid_pixels(tmp_path):
    """1000 x 1000 px with 70 % nodata: 300,000 valid pixels, of which exactly 200,000 are kept (the keep rate was
    sized from the windows' area, nodata included, so about 63,000 were kept while the docs said 200,000). The
    subset is uniform: the valid pixels' values are their row (0-255 cycling), and the kept ones' mean and
    quartiles match the population's."""
    from geodino.data.pixel_sample import UniformPixelSample
    from geodino.data.stats import compute_stats

    rows = np.arange(1000) % 250 + 1
    data = np.broadcast_to(rows[:, None], (1000, 1000)).astype(np.uint8).copy()
    data[:, 300:] = 0  # nodata: 70 % of the scene
    src = write_tif(tmp_path / "sparse.tif", np.stack([data] * 3), nodata=0)
    _, prov = compute_stats(str(src), tile_size=250, progress=False)
    assert prov["pixels"] == [300_000] * 3
    assert prov["percentiles_from"].startswith("a random 200,000 of the 300,000 valid pixels")
    sample = prov["_sample"]
    assert sample.shape == (3, 200_000) and (sample > 0).all()
    population = data[:, :300][data[:, :300] > 0].astype(float) / 255
    assert abs(sample[0].mean() - population.mean()) < 0.005
    assert np.allclose(np.percentile(sample[0], [25, 50, 75]), np.percentile(population, [25, 50, 75]), atol=0.01)
    # the sampler alone: fewer pixels than the cap are all kept, in stream order; more give exactly the cap
    s = UniformPixelSample(10, np.random.default_rng(0))
    s.add(np.arange(6.0)[None])
    assert s.result().tolist() == [[0, 1, 2, 3, 4, 5]]
    s = UniformPixelSample(10, np.random.default_rng(0))
    for k in range(50):
        s.add(np.arange(k * 7, k * 7 + 7, dtype=float)[None])
    got = s.result()
    assert got.shape == (1, 10) and len(set(got[0].tolist())) == 10 and (np.diff(got[0]) > 0).all()


def test_uint8_data_with_a_16_bit_sensor_is_refused_everywhere(tmp_path):
    """landsat8 scales 16-bit DN (2.75e-5, -0.2): uint8 data through it became a constant -0.19 image."""
    from geodino.data.images import match_bit_depth
    from geodino.data.loaders import SourceConfig, build_source
    from geodino.data.sensors import get_sensor
    from geodino.data.stats import compute_stats
    from geodino.viz.attention import read_input

    rng = np.random.default_rng(0)
    p = write_tif(tmp_path / "l7.tif", rng.integers(1, 255, (6, 32, 32), dtype=np.uint8))
    want = r"raster .*l7.tif is uint8 but sensor 'landsat8' scales 16-bit DN .*8-bit DN.*--scale"
    with pytest.raises(InputError, match=want):
        compute_stats(str(p), sensor="landsat8", samples=4, tile_size=16, progress=False)
    with pytest.raises(InputError, match=want):
        read_input(p, sensor="landsat8")
    with pytest.raises(InputError, match=want):
        build_source(SourceConfig(type="raster", paths=[str(p)], sensor="landsat8", tile_size=16))
    s2 = get_sensor("sentinel2_l2a").select(["B04", "B03", "B02"])
    with pytest.raises(InputError, match=r"image x.png is uint8 but sensor 'sentinel2_l2a' scales 16-bit DN"):
        match_bit_depth(np.zeros((3, 4, 4), np.uint8), "x.png", s2)
    # an explicit 8-bit scale is the way out, and 16-bit data with the sensor is read as before
    sensor, _ = compute_stats(str(p), sensor="landsat8", scale=1 / 255, samples=4, tile_size=16, progress=False)
    assert 0.3 < np.mean(sensor.mean) < 0.7
    q = write_tif(tmp_path / "l8.tif", rng.integers(7000, 20000, (6, 32, 32), dtype=np.uint16))
    sensor, _ = compute_stats(str(q), sensor="landsat8", samples=4, tile_size=16, progress=False)
    assert 0.0 < np.mean(sensor.mean) < 0.4


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_16_bit_values_with_an_8_bit_sensor_are_refused_where_pixels_are_read(tmp_path, capsys, dtype):
    """maxar scales 8-bit DN (1/255): 16-bit values up to 3,999 became reflectance up to 15.7 without a word (data
    stats wrote means of 8.4). Refused by data stats and by the pretraining sources' first reads (the random
    tiles of check_sources_have_pixels, the grid pre-scan), also under on_error: skip; 8-bit values stored as
    16 bits, and the 16-bit nodata value, are fine."""
    import dataclasses

    from geodino.data.loaders import SourceConfig, build_source, check_sources_have_pixels
    from geodino.data.stats import compute_stats
    from geodino.errors import ConfigError
    from tests.test_bad_inputs import one_line_exit_2

    rng = np.random.default_rng(0)
    p = write_tif(tmp_path / "wide.tif", rng.integers(200, 4000, (3, 32, 32)).astype(dtype))
    said = rf"raster .*wide\.tif is 16-bit \({dtype}, values up to 39\d\d\) but sensor 'maxar' scales 8-bit DN"
    with pytest.raises(ConfigError, match=said + r".*set --sensor to your imagery's"):
        compute_stats(str(p), sensor="maxar", samples=4, tile_size=16, progress=False)  # on_error skip by default
    argv = ("data", "stats", p, "--sensor", "maxar", "-o", tmp_path / "s.yaml")
    one_line_exit_2(capsys, tmp_path, *argv, expect=("is 16-bit", "--sensor", "convert the files to 8 bits"))
    random = SourceConfig(type="raster", paths=[str(p)], sensor="maxar", tile_size=16, on_error="skip")
    with pytest.raises(ConfigError, match=said + r".*set `sensor:` to your imagery's"):
        check_sources_have_pixels([build_source(random)], seed=0)
    with pytest.raises(ConfigError, match=said):
        build_source(SourceConfig(type="raster", paths=[str(p)], sensor="maxar", tile_size=16, sampling="grid"))
    narrow = rng.integers(0, 256, (3, 32, 32)).astype(dtype)
    narrow[:, :8] = 9999  # the nodata value: not a pixel
    q = write_tif(tmp_path / "narrow.tif", narrow, nodata=9999)
    sensor, _ = compute_stats(str(q), sensor="maxar", samples=4, tile_size=16, progress=False)
    assert 0.3 < np.mean(sensor.mean) < 0.7
    check_sources_have_pixels([build_source(dataclasses.replace(random, paths=[str(q)]))], seed=0)


def _scene_folders(root, names=("S1", "S2", "S3"), bands=("B02", "B03")) -> None:
    for n in names:
        (root / n).mkdir(parents=True)
        for b in bands:
            write_tif(root / n / f"{n}_{b}.tif", np.full((1, 8, 8), 5, np.uint16))


def test_stack_writes_nothing_when_a_scene_folder_is_incomplete(tmp_path, capsys):
    """S3 (sorting last) lacks B03: it used to leave S1.vrt and S2.vrt behind before failing."""
    _scene_folders(tmp_path / "root", ("S1", "S2"))
    _scene_folders(tmp_path / "root", ("S3",), ("B02",))
    rc = cli.main(["data", "stack", str(tmp_path / "root"), "--bands", "B02", "B03", "--out", str(tmp_path / "v")])
    assert rc == 2
    assert not (tmp_path / "v").exists() or sorted(p.name for p in (tmp_path / "v").iterdir()) == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "S3 has no file for band 'B03'" in err and "no VRT is written" in err


def test_stack_refuses_an_unknown_resampling_and_existing_vrts(tmp_path, capsys):
    """`--resampling foo` was written into the VRT; an existing S1.vrt was silently rewritten with other bands."""
    from geodino.data.vrt import stack_scenes

    _scene_folders(tmp_path / "root", ("S1",), ("B02", "B03", "B04"))
    root, out = str(tmp_path / "root"), str(tmp_path / "v")
    with pytest.raises(SystemExit) as e:
        cli.main(["data", "stack", root, "--bands", "B02", "--out", out, "--resampling", "foo"])
    assert e.value.code == 2 and "invalid choice: 'foo'" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"resampling 'foo' is not a GDAL resampling method; use one of nearest"):
        stack_scenes(root, ["B02"], out, resampling="foo")
    assert cli.main(["data", "stack", root, "--bands", "B02", "B03", "B04", "--out", out]) == 0
    first = (tmp_path / "v" / "S1.vrt").read_text()
    assert cli.main(["data", "stack", root, "--bands", "B02", "B03", "--out", out]) == 2
    assert "S1.vrt already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "v" / "S1.vrt").read_text() == first  # still 3 bands
    assert cli.main(["data", "stack", root, "--bands", "B02", "B03", "--out", out, "--overwrite"]) == 0
    assert (tmp_path / "v" / "S1.vrt").read_text().count("<VRTRasterBand") == 2


def test_index_and_preview_refuse_an_existing_output(tmp_path, capsys):
    """`data index --out` and `data preview -o` replaced an existing file without a word."""
    (tmp_path / "scenes").mkdir()
    p = write_tif(tmp_path / "scenes" / "a.tif", np.full((3, 16, 16), 7, np.uint8))
    gj, png = tmp_path / "fp.geojson", tmp_path / "p.png"
    gj.write_text("keep")
    png.write_text("keep")
    assert cli.main(["data", "index", str(p), "--out", str(gj)]) == 2
    assert cli.main(["data", "preview", f"sources=[{{type: raster, paths: [{p}]}}]", "-o", str(png)]) == 2
    err = capsys.readouterr().err
    assert f"output {gj} already exists; pass --overwrite" in err and f"output {png} already exists" in err
    assert gj.read_text() == "keep" and png.read_text() == "keep"
    assert cli.main(["data", "index", str(p), "--out", str(gj), "--overwrite"]) == 0
    assert "FeatureCollection" in gj.read_text()


def test_messages_name_the_commands_own_settings(tmp_path, capsys):
    """stats on mixed band counts, preview without sources, index/viz hints: each names what the command takes."""
    from geodino.data.stats import compute_stats
    from geodino.viz.attention import read_input

    (tmp_path / "mix").mkdir()
    rgb = write_tif(tmp_path / "mix" / "a_rgb.tif", np.full((3, 16, 16), 7, np.uint8))
    write_tif(tmp_path / "mix" / "b_six.tif", np.full((6, 16, 16), 7, np.uint8))
    with pytest.raises(
        InputError, match=r"b_six.tif gives 6 bands but .*a_rgb.tif gives 3; select the same bands with --bands"
    ):
        compute_stats(str(tmp_path / "mix"), samples=4, tile_size=16, progress=False)
    assert cli.main(["data", "preview", "-o", str(tmp_path / "p.png")]) == 2
    assert "error: sources is empty; add a source, e.g. sources=[" in capsys.readouterr().err
    bad = tmp_path / "bad" / "x.tif"
    bad.parent.mkdir()
    bad.write_text("not a raster")
    assert cli.main(["data", "index", str(bad.parent), "--on-error", "stop"]) == 2
    err = capsys.readouterr().err
    assert "(pass --on-error skip to leave such files out)" in err and "on_error:" not in err
    with pytest.raises(InputError) as e:
        read_input(bad)
    assert "cannot be read" in str(e.value) and "on_error" not in str(e.value)
    # (an RGB-tagged file: its names are only GDAL's colour tags, which the line says)
    with pytest.raises(
        InputError,
        match=r"has no band 'nir' .*; fix --bands or name the file's bands with --sensor; red, green, blue are only "
        r"its colour tags \(GDAL writes them on any 3- or 4-band 8-bit GeoTIFF, a false-colour one too\): --sensor of "
        r"3 bands names its bands by position$",
    ):
        read_input(rgb, bands=["nir"])
    for folder in (tmp_path / "mix", tmp_path / "bad"):
        with pytest.raises(InputError, match=r"is a folder; viz attention takes one image .* or raster .* file"):
            read_input(folder)
