"""Bad-input messages of `data stats`, `data index`, `data stack`, `data preview`, `convert` and `demo --help`: one line
naming the file, flag or value and what to do (exit 2 from the CLI, no traceback)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino import cli
from geodino.errors import ConfigError, InputError


def _tif(path, dtype="uint16", count=4, size=64, crs="EPSG:32631"):
    data = np.random.default_rng(0).integers(1, 200, (count, size, size)).astype(dtype)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=count, dtype=dtype, crs=crs,
                       transform=from_origin(500000, 5000000, 10, 10)) as dst:  # fmt: skip
        dst.write(data)
    return path


def _cut_in_geokeys(src, dst, at=34735):
    """`src` cut inside its GeoKeyDirectory (tag `at`; 33550: its pixel scale, so no geotransform either), as a
    download that stopped in the header: libtiff opens it with only warnings, and without its CRS."""
    import struct

    raw = src.read_bytes()
    ifd = struct.unpack("<I", raw[4:8])[0]
    n = struct.unpack("<H", raw[ifd : ifd + 2])[0]
    for i in range(n):
        tag, _typ, _cnt, value = struct.unpack("<HHII", raw[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
        if tag == at:  # its values live at `value`
            dst.write_bytes(raw[: value + 4])
            return dst
    raise AssertionError("no GeoKeyDirectory")


def _error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if "error:" in line]


def test_stats_nodata_out_of_range_names_the_flag_not_the_config_key(tmp_path, capsys):
    """`data stats --nodata 300` on uint8 said "set the source's `nodata:`" (a config key the CLI user has none of)."""
    tif = _tif(tmp_path / "u8.tif", dtype="uint8", count=3)
    assert cli.main(["data", "stats", str(tif), "--nodata", "300", "-o", str(tmp_path / "s.yaml")]) == 2
    (line,) = _error(capsys)
    assert "nodata 300" in line and "u8.tif" in line and "--nodata" in line and "nodata:`" not in line


def test_config_nodata_out_of_range_keeps_the_config_wording(tmp_path):
    """A config-driven archive (training, preview, curate) still names the source's `nodata:` key."""
    from geodino.data.archive import RasterArchive

    tif = _tif(tmp_path / "u8.tif", dtype="uint8", count=3)
    with pytest.raises(InputError, match=r"set the source's `nodata:` in that range"):
        RasterArchive([str(tif)], nodata=300)


@pytest.mark.parametrize("scale", ["-1", "0", "nan"])
def test_stats_refuses_a_scale_that_is_not_positive(tmp_path, capsys, scale):
    """--scale -1 / 0 was accepted and wrote statistics of negated or zeroed pixels."""
    tif = _tif(tmp_path / "a.tif")
    out = tmp_path / "s.yaml"
    assert cli.main(["data", "stats", str(tif), "--scale", scale, "-o", str(out)]) == 2
    (line,) = _error(capsys)
    assert f"--scale {scale}" in line and "positive" in line and "leave --scale out" in line
    assert not out.exists()


def test_stats_index_and_archive_call_a_file_cut_in_its_header_truncated(tmp_path, capsys):
    """A GeoTIFF cut inside its GeoTIFF keys opens without a CRS: it was reported as "has no CRS; assign one"."""
    cut = _cut_in_geokeys(_tif(tmp_path / "full.tif"), tmp_path / "cut.tif")
    with rasterio.open(cut) as src:
        assert src.crs is None  # the symptom the old message blamed
    with warnings.catch_warnings(record=True) as seen:  # the error alone names the file: no skip warning before it
        warnings.simplefilter("always")
        assert cli.main(["data", "stats", str(cut), "-o", str(tmp_path / "s.yaml")]) == 2
        lines = _error(capsys)
        assert len(lines) == 1 and "cut.tif" in lines[0] and "truncated or corrupt" in lines[0]
        assert "has no CRS" not in lines[0] and "GeoKeyDirectory" in lines[0]
        assert cli.main(["data", "index", str(cut)]) == 2  # it had indexed it as a scene without a CRS
        lines = _error(capsys)
        assert len(lines) == 1 and "cut.tif" in lines[0] and "truncated or corrupt" in lines[0]
    assert [str(w.message) for w in seen] == []


def test_a_file_cut_in_its_first_directory_is_called_truncated(tmp_path, capsys):
    """Cut 8 bytes in: "cannot be read (RasterioIOError: ...)" now says truncated or corrupt, naming the file."""
    cut = tmp_path / "head.tif"
    cut.write_bytes(_tif(tmp_path / "full.tif").read_bytes()[:8])
    assert cli.main(["data", "stats", str(cut), "-o", str(tmp_path / "s.yaml")]) == 2
    (line,) = _error(capsys)
    assert "head.tif is truncated or corrupt" in line and "RasterioIOError" not in line


def test_stack_band_file_cut_in_its_header_is_called_truncated(tmp_path, capsys):
    scene = tmp_path / "root" / "s1"
    scene.mkdir(parents=True)
    _tif(scene / "x_B02.tif", count=1)
    _cut_in_geokeys(_tif(tmp_path / "b3.tif", count=1), scene / "x_B03.tif", at=33550)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code = cli.main(
            ["data", "stack", str(tmp_path / "root"), "--bands", "B02", "B03", "--out", str(tmp_path / "v")]
        )
    assert code == 2 and not [str(w.message) for w in seen]  # rasterio's "no geotransform" warning came first
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "x_B03.tif is truncated or corrupt" in err and "move its scene folder out" in err


def test_stack_messages_say_what_to_do_and_list_bands_without_brackets(tmp_path, capsys):
    """ "no files named after bands ['B02', 'B03'] under ROOT" printed a Python list and no next step."""
    scene = tmp_path / "root" / "s1"
    scene.mkdir(parents=True)
    _tif(scene / "x_B02.tif", count=1)
    out = str(tmp_path / "v")
    assert cli.main(["data", "stack", str(tmp_path / "root"), "--bands", "B05", "B06", "--out", out]) == 2
    (line,) = _error(capsys)
    assert "B05, B06" in line and "[" not in line and "pass --bands (bands= in Python) as the band names appear" in line
    assert cli.main(["data", "stack", str(tmp_path / "nope"), "--bands", "B02", "--out", out]) == 2
    (line,) = _error(capsys)
    assert (
        "nope is not a folder of scene folders (it does not exist)" in line
        and "pass the folder that holds the scene folders" in line
    )
    _tif(scene / "x_B03.tif", count=1, crs="EPSG:32632")
    assert cli.main(["data", "stack", str(tmp_path / "root"), "--bands", "B02", "B03", "--out", out]) == 2
    (line,) = _error(capsys)
    assert "x_B03.tif (B03) is in EPSG:32632" in line and "gdalwarp -t_srs EPSG:32631" in line
    (scene / "x_B03.tif").unlink()
    _tif(scene / "x_B03.tif", count=1, crs=None)
    assert cli.main(["data", "stack", str(tmp_path / "root"), "--bands", "B02", "B03", "--out", out]) == 2
    (line,) = _error(capsys)
    assert "x_B03.tif has no CRS" in line and "gdal_edit.py -a_srs" in line


@pytest.mark.parametrize("samples", [0, -2])
def test_write_preview_refuses_no_samples(tmp_path, samples):
    from PIL import Image

    from geodino.data.config import DataConfig, SourceConfig
    from geodino.data.preview import write_preview

    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.full((32, 32, 3), 9, np.uint8)).save(tmp_path / "imgs" / "a.png")
    data = DataConfig(sources=[SourceConfig(type="images", paths=[str(tmp_path / "imgs")])])
    with pytest.raises(ConfigError, match=rf"samples={samples} \(--samples\) must be at least 1"):
        write_preview(data, tmp_path / "p.png", samples=samples)
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("bands", [-3, 0])
def test_convert_refuses_expect_bands_below_one(tmp_path, bands):
    """expect_bands=-3 raised "RuntimeError: Trying to create tensor with negative dimension -3"."""
    import torch

    from geodino.models import build_model
    from geodino.models.checkpoints.convert import convert_checkpoint

    torch.save(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1).state_dict(), tmp_path / "m.pth")
    with pytest.raises(ConfigError, match=rf"expect_bands={bands} \(--expect-bands\) must be a positive number"):
        convert_checkpoint(tmp_path / "m.pth", tmp_path / "o.safetensors", expect_bands=bands)
    assert not (tmp_path / "o.safetensors").exists()


def test_demo_help_is_a_full_sentence(capsys):
    """The description was cut from the module docstring and ended with ':' (the list it introduces missing)."""
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    out = capsys.readouterr().out
    desc = " ".join(out.split("\n\n")[1].split())
    assert desc.endswith(".") and not desc.endswith(":") and "pretrain" in desc


def test_tiff_cut_short_finds_pixels_that_stop_short(tmp_path):
    """The header reads, the pixel data stops (no GDAL warning on opening): the block table says where it ends."""
    from geodino.data.headers import tiff_cut_short

    full = _tif(tmp_path / "full.tif", size=128).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full[: len(full) // 2])
    with rasterio.open(cut) as src:
        assert tiff_cut_short(src, cut) == (len(full), len(full) // 2)


@pytest.mark.parametrize(
    "layout",
    [{}, {"interleave": "band"}, {"tiled": True, "blockxsize": 64, "blockysize": 64, "compress": "deflate"},
     {"tiled": True, "blockxsize": 64, "blockysize": 64, "sparse_ok": True}, {"driver": "COG", "blocksize": 64}],
)  # fmt: skip
def test_healthy_layouts_are_not_called_truncated(tmp_path, layout):
    """No false alarm: strips, band-separate, tiled+compressed, sparse (empty blocks), COG with overviews."""
    from geodino.data.archive import RasterArchive
    from geodino.data.headers import tiff_cut_short

    path = tmp_path / "ok.tif"
    kw = {"driver": "GTiff", **layout}
    data = (
        np.zeros((5, 300, 260), "uint16") if layout.get("sparse_ok") else np.arange(5 * 300 * 260).reshape(5, 300, 260)
    )
    with rasterio.open(path, "w", width=260, height=300, count=5, dtype="uint16", crs="EPSG:32631",
                       transform=from_origin(0, 0, 10, 10), **kw) as dst:  # fmt: skip
        dst.write(data.astype("uint16"))
    with rasterio.open(path) as src:
        assert tiff_cut_short(src, path) is None
    assert len(RasterArchive([str(path)], uniform=False)) == 1


def test_a_file_cut_in_its_header_is_one_warning_when_skipped(tmp_path):
    """Skipped (on_error skip; `viz attention` and `data index` read so): one warning naming the cause; rasterio's
    "Dataset has no geotransform" (a symptom of the cut) came before it."""
    from geodino.data.archive import RasterArchive

    good = _tif(tmp_path / "good.tif")
    cut = _cut_in_geokeys(_tif(tmp_path / "full.tif"), tmp_path / "cut.tif", at=33550)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        archive = RasterArchive([str(good), str(cut)], on_error="skip", require_crs=False, uniform=False)
    assert len(archive) == 1 and archive.skipped[0][0] == str(cut)
    (only,) = [str(w.message) for w in seen]
    assert only.startswith(f"skipping raster {cut}: is truncated or corrupt (GDAL: ")
