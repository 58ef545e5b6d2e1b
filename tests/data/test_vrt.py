"""Per-band files (10 m and 20 m) stacked into one VRT read like a multi-band raster."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.data.archive import RasterArchive
from geodino.data.vrt import stack_scenes
from geodino.errors import InputError

from .conftest import ramp, write_tif


def test_stack_mixed_resolution_bands(tmp_path):
    scene = tmp_path / "root" / "S2A_T33_20240101"
    scene.mkdir(parents=True)
    b02 = ramp(1, 40, 60, seed=1)
    b03 = ramp(1, 40, 60, seed=2)
    b11 = ramp(1, 20, 30, seed=3)  # 20 m
    write_tif(scene / "T33UUP_20240101_B02_10m.tif", b02)
    write_tif(scene / "T33UUP_20240101_B03_10m.tif", b03)
    write_tif(scene / "T33UUP_20240101_B11_20m.tif", b11, res=20.0)
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B03", "B11"], tmp_path / "vrt", resampling="nearest")
    with rasterio.open(vrt) as src:
        assert (src.count, src.width, src.height) == (3, 60, 40)
        assert src.descriptions == ("B02", "B03", "B11")
        data = src.read()
    np.testing.assert_array_equal(data[0], b02[0])
    np.testing.assert_array_equal(data[2], np.repeat(np.repeat(b11[0], 2, 0), 2, 1))  # nearest upsampling
    archive = RasterArchive([vrt], sensor="sentinel2_l2a", bands=["B11", "B02"])
    s = archive.sample(0, 4, 6, 8, 8)
    np.testing.assert_allclose(s["image"][1], b02[0, 6:14, 4:12] * 1e-4, rtol=1e-6)


def test_missing_band_file(tmp_path):
    scene = tmp_path / "root" / "s1"
    scene.mkdir(parents=True)
    write_tif(scene / "B02.tif", ramp(1, 8, 8))
    with pytest.raises(InputError, match=r"scene folder .*s1 has no file for band 'B08'"):
        stack_scenes(tmp_path / "root", ["B02", "B08"], tmp_path / "out")


def test_stack_cli(tmp_path, monkeypatch, capsys):
    import geodino.cli as cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.data.commands",))
    scene = tmp_path / "r" / "a"
    scene.mkdir(parents=True)
    write_tif(scene / "x_B04.tif", ramp(1, 8, 8))
    assert cli.main(["data", "stack", str(tmp_path / "r"), "--bands", "B04", "--out", str(tmp_path / "v")]) == 0
    assert (tmp_path / "v" / "a.vrt").is_file()
    assert cli.main(["data", "stack", str(tmp_path / "nothing"), "--bands", "B04", "--out", str(tmp_path / "v")]) == 2
    assert "is not a folder of scene folders" in capsys.readouterr().err


def test_a_killed_vrt_writers_temporary_is_swept_by_the_next_write(tmp_path, capsys):
    """`write_vrt` names its temporary with `geodino.io.temp_name` (it was `.NAME.PID.tmp`, which `sweep_temps`
    never matched, so a killed writer's stayed beside the stack forever): the next write removes it."""
    import os
    import subprocess
    import sys

    from geodino import io
    from geodino.data.vrt import write_vrt

    out = tmp_path / "stack.vrt"
    killed = (
        "import os, signal, sys\nfrom geodino.data import vrt\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\nvrt.write_vrt('<VRTDataset/>', sys.argv[1])\n"
    )
    run = subprocess.Popen([sys.executable, "-c", killed, str(out)])
    assert run.wait() == -9
    (left,) = tmp_path.iterdir()
    assert left.name == io.temp_name(out).name.replace(f"-{os.getpid()}.", f"-{run.pid}.") and not out.exists()
    capsys.readouterr()
    assert write_vrt("<VRTDataset></VRTDataset>\n", out) == out
    assert [p.name for p in tmp_path.iterdir()] == ["stack.vrt"] and out.read_text() == "<VRTDataset></VRTDataset>\n"
    assert f"removed 1 temporary of a killed run: {left.name}" in capsys.readouterr().err
