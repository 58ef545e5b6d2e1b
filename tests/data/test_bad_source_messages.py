"""Bad inputs of data sources and `data stats` (docs/errors.md): each refusal is one line naming the file (or store)
and what to do. Before: a window that failed to read under on_error: stop, and a file GDAL cannot open, said no way
out; an all-nodata archive in `data stats` and a grid of only nodata tiles named no file; a datacube of unnamed bands
(b1..bN, e.g. a (y, x) array) with a sensor of another band count was read as the sensor's B01.. by name; a store
whose dims hold no y/x printed a Python list; band numbers in `bands:` were "no band '1'" with no hint of b1."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.data.archive import RasterArchive
from geodino.data.raster_source import RasterSource
from geodino.errors import InputError
from tests.data.conftest import band_cube, tif_folder, write_tif
from tests.helpers import write_zarr3


def _error_line(capsys) -> str:
    [line] = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    return line


def test_a_window_that_fails_under_stop_names_the_window_and_the_way_out(tmp_path):
    _, bad = tif_folder(tmp_path, 2)  # t1.tif: the header reads, the pixels stop after a third of the file
    stop = RasterArchive([str(bad)], on_error="stop", progress=False)
    with pytest.raises(InputError) as err:
        stop.read(0, 0, 32, 64, 32)
    text = str(err.value)
    assert text.startswith(f"raster {bad}: window read failed at rows 32..64, columns 0..64 (")
    assert text.endswith("re-download or re-copy it, or remove it (set on_error: skip to leave such files out)")
    skip = RasterArchive(
        [str(bad)], on_error="skip", progress=False
    )  # its callers (warnings, summaries) say what to do
    with pytest.raises(InputError, match=r"the file may be truncated or corrupt\)$"):
        skip.read(0, 0, 32, 64, 32)


def test_a_file_gdal_cannot_open_says_what_to_do(tmp_path, capsys):
    junk = tmp_path / "notes.tif"
    junk.write_text("not a raster\n")
    assert cli.main(["data", "stats", str(junk), "--out", str(tmp_path / "s.yaml")]) == 2
    line = _error_line(capsys)
    assert f"raster {junk} cannot be read (RasterioIOError: " in line and "format);" in line
    assert line.endswith("check it with gdalinfo; re-download or re-copy it, or remove it")
    ok = write_tif(tmp_path / "ok.tif", np.ones((3, 16, 16), "uint8"))
    with pytest.raises(InputError) as err:
        RasterArchive([str(ok), str(junk)], on_error="stop", progress=False)
    assert str(err.value).endswith("or remove it (set on_error: skip to leave such files out)")
    assert not (tmp_path / "s.yaml").exists()


def test_a_grid_of_only_nodata_tiles_names_the_source_its_file_and_nodata(tmp_path):
    blank = write_tif(tmp_path / "blank.tif", np.zeros((3, 64, 64), "uint8"), nodata=0)
    with pytest.raises(InputError) as err:
        RasterSource(RasterArchive([str(blank)], progress=False), tile_size=32, sampling="grid", name="s2")
    text = str(err.value)
    assert text.startswith(f"source 's2' ({blank}): every one of its 4 grid tiles has more nodata than")
    assert "max_nodata_fraction=0.5 (nodata value 0, NaN or masked pixels)" in text and "\n" not in text


@pytest.mark.parametrize("shape", [(64, 64), (4, 64, 64)], ids=["y-x-array", "four-unnamed-bands"])
def test_a_cube_of_unnamed_bands_needs_the_sensors_band_count(tmp_path, shape):
    """A (y, x) store, or one with a band dim but no band names, gave b1..bN, which the sensor then resolved by name
    (b1 -> B01), so a one-band store trained as Sentinel-2's coastal band with its statistics, silently."""
    import xarray as xr

    from geodino.data.cubes import CubeSource

    data = np.full((1, *shape) if len(shape) == 2 else shape, 1000, "uint16")
    ds = band_cube(data, [f"b{i + 1}" for i in range(data.shape[0])])
    if len(shape) == 2:
        ds = ds.isel(band=0, drop=True)  # no band dim at all
    else:
        ds = ds.drop_vars("band")  # a band dim without a coordinate
    store = tmp_path / "c.zarr"
    write_zarr3(ds, store)
    n = data.shape[0]
    with pytest.raises(InputError) as err:
        CubeSource([str(store)], sensor="sentinel2_l2a", tile_size=32)
    text = str(err.value)
    assert text.startswith(f"datacube {store} gives {n} unnamed band{'s' if n > 1 else ''} (b1")
    assert "but sensor 'sentinel2_l2a' has 12 (B01," in text and text.endswith(f"with {n} band{'s' if n > 1 else ''}")
    named = CubeSource([str(store)], sensor="naip", tile_size=32) if n == 4 else None  # same count: positional
    assert named is None or named.sensor.bands == ("R", "G", "B", "N")
    assert isinstance(ds, xr.Dataset)


def test_a_store_without_y_x_dims_says_how_to_name_them(tmp_path):
    import xarray as xr

    from geodino.data.cubes import CubeSource

    store = tmp_path / "odd.zarr"
    write_zarr3(xr.DataArray(np.zeros((2, 8, 8), "uint16"), dims=("chan", "row", "col")).to_dataset(name="v"), store)
    with pytest.raises(InputError) as err:
        CubeSource([str(store)], sensor="sentinel2_l2a", tile_size=8, allow_no_crs=True)
    assert str(err.value) == (
        f"datacube {store}: its variable's dims (chan, row, col) hold no y/x (or lat/lon) dimension; name the row "
        "and column dims y and x (xarray: ds.rename({'row': 'y', 'col': 'x'})) and write the store again"
    )


def test_band_numbers_in_bands_point_to_the_b_names(tmp_path, capsys):
    path = write_tif(tmp_path / "u.tif", np.ones((3, 16, 16), "uint16"))  # uint16: no colour interpretation
    with pytest.raises(InputError) as err:
        RasterArchive([str(path)], bands=["1", "2"], progress=False)  # YAML [1, 2] under list[str] keys
    assert str(err.value).endswith("carry no names calls them b1, b2 ..., so write b1, b2 in `bands:`")  # both
    with pytest.raises(InputError) as err:
        RasterArchive([str(path)], bands=["foo"], progress=False)  # a name: the usual advice
    assert "fix `bands:`" in str(err.value)
    # a uint8 file GDAL marked RGB: its names for those positions (b1, b2 still read them)
    rgb = write_tif(tmp_path / "rgb.tif", np.ones((3, 16, 16), "uint8"))
    with pytest.raises(InputError) as err:
        RasterArchive([str(rgb)], bands=["1", "2"], progress=False)
    assert str(err.value).endswith("not numbered: write red, green in `bands:` (the file's names of those bands)")
    assert RasterArchive([str(rgb)], bands=["b3", "b2", "b1"], progress=False).scenes[0].band_indexes == (3, 2, 1)


def test_a_tile_list_that_does_not_exist_says_so(tmp_path):
    from geodino.data.curate.tilelist import _list_columns

    gone = tmp_path / "curated.parquet"
    with pytest.raises(InputError) as err:
        _list_columns([str(gone)], ("window",))
    assert str(err.value) == f"tile list {gone} does not exist; check the path, or write one with `geodino data curate`"
    gone.write_text("not parquet")
    with pytest.raises(InputError, match=r"curated.parquet is not a Parquet tile list \(\w+\); check the path"):
        _list_columns([str(gone)], ("window",))


def test_a_compressed_shard_is_said_once_and_the_empty_source_says_what_a_shard_is(tmp_path):
    import gzip
    import io
    import tarfile

    from geodino.data.images import TarShardSource

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info = tarfile.TarInfo("a.png")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"\x89PNG"))
    shard = tmp_path / "s.tar"
    shard.write_bytes(gzip.compress(raw.getvalue()))  # a .tar.gz named .tar
    with pytest.warns(UserWarning) as rec, pytest.raises(InputError) as err:
        TarShardSource(str(shard))
    [said] = [str(w.message) for w in rec if "cannot be read" in str(w.message)]
    assert said.startswith(f"tar shard {shard} cannot be read (") and "it is compressed" in said
    assert said.endswith("kept the 0 images stored whole before that point, skipped the rest")
    assert str(err.value).endswith("a shard is an uncompressed .tar of image files (.jpg, .jpeg, .png, .webp, ...): "
                                   "check the paths")  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("resampling", "bilinar", "use one of nearest, bilinear, "),
        ("on_error", "maybe", "use one of stop, skip"),
        ("sampling", "grd", "use one of random, grid (did you mean 'grid'?)"),
        ("tile_units", "km", "use one of px, m"),
        ("time_sampling", "middle", "use one of random, first, last, stack"),
        ("max_nodata_fraction", 2.0, "give a fraction between 0 and 1"),
        ("tile_size", -5, "give a size > 0 in tile_units (px), e.g. 256"),  # said no key (and only at build)
        ("stride", 0, "give a size > 0 in tile_units (px)"),
    ],
)
def test_a_source_setting_outside_its_choices_names_its_key(key, value, said):
    """`resampling: bilinar` with `crs:` failed every window read as "the file may be truncated or corrupt;
    re-download it"; the others said `sampling must be ...` without the key, or (max_nodata_fraction 2) nothing."""
    from geodino.data.config import DataConfig, SourceConfig
    from geodino.errors import ConfigError

    cfg = DataConfig(sources=[SourceConfig(paths=["x.tif"], **{key: value})])
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert str(err.value).startswith(f"data.sources[0].{key}={value!r}; ") and said in str(err.value)


def test_a_raster_without_crs_is_named_in_the_command_that_fixes_it(tmp_path):
    path = write_tif(tmp_path / "nocrs.tif", np.ones((3, 16, 16), "uint8"), crs=None)
    with pytest.raises(InputError) as err:
        RasterArchive([str(path)], on_error="stop", progress=False)
    assert f"has no CRS; assign one (e.g. `gdal_edit.py -a_srs EPSG:... {path}`)" in str(err.value)


def test_stats_refuses_a_plot_named_as_its_yaml(tmp_path, capsys):
    path = write_tif(tmp_path / "a.tif", np.ones((3, 16, 16), "uint8") * 7)
    out = tmp_path / "s.yaml"  # the plot's suffix rule answers first (5adb858)
    assert cli.main(["data", "stats", str(path), "--out", str(out), "--plot", str(out)]) == 2
    assert _error_line(capsys).endswith("data stats writes a PNG (the per-band histograms), not .yaml; name it s.png")
    assert not out.exists()
    out = tmp_path / "s.png"  # a YAML named .png, and the plot there too: the YAML replaced the PNG
    assert cli.main(["data", "stats", str(path), "--out", str(out), "--plot", str(out)]) == 2
    assert _error_line(capsys).endswith(f"is the --out file (plot= and out= in Python); give the histograms a PNG "
                                        f"of their own (e.g. --plot {tmp_path / 's_hist.png'})")  # fmt: skip
    assert not out.exists()


def test_a_crs_target_that_cannot_be_reached_is_not_blamed_on_the_file(tmp_path):
    """`crs: EPSG:9999999` (or a LOCAL_CS file under `crs:`) said the file "cannot be read ... re-download it"."""
    path = write_tif(tmp_path / "a.tif", np.ones((3, 16, 16), "uint8"))
    with pytest.raises(InputError) as err:
        RasterArchive([str(path)], crs="EPSG:9999999", res=10, on_error="stop", progress=False)
    text = str(err.value)
    assert text.startswith(f"raster {path}: cannot be reprojected onto crs EPSG:9999999 (")
    assert "check `crs:` and the file's CRS" in text and "re-download" not in text


def test_a_preview_of_only_nodata_tiles_warns_that_pretrain_would_refuse_it(tmp_path):
    from geodino.data.config import DataConfig, SourceConfig
    from geodino.data.preview import write_preview

    blank = write_tif(tmp_path / "blank.tif", np.zeros((3, 40, 40), "uint8"), nodata=0)
    cfg = DataConfig(sources=[SourceConfig(paths=[str(blank)], tile_size=32, name="s")])
    with pytest.warns(UserWarning, match=r"every one of the 1 tile drawn from source 's' holds no valid pixel"):
        write_preview(cfg, tmp_path / "p.png", samples=1)
    assert (tmp_path / "p.png").exists()  # still drawn: the magenta shows where
