"""`curate --qa-band NAME`: a QA band of each raster read only for the cloud screen, never by the backbone.

A 5-band GeoTIFF (B02, B03, B04, B08 and an SCL band) of 4 tiles in a row, two of them under SCL cloud classes
(8/9/10) with clear-looking spectra: with `--bands B02 B03 B04 B08 --qa-band SCL` the qa rule drops exactly those
two, and the backbone sees 4 channels. A band name the file lacks is refused in one line naming the file and its
bands."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from geodino import cli
from geodino.errors import InputError
from tests.embed.conftest import write_tif

SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0&bands=4"
BANDS = ("B02", "B03", "B04", "B08", "SCL")


def _scene(tmp_path):
    """4 tiles of 32 px in a row; SCL 4 (vegetation) except tile 1 (classes 8/9/10) and tile 3 (class 9)."""
    import rasterio

    rng = np.random.default_rng(0)
    data = np.zeros((5, 32, 128), np.uint16)
    data[:4] = rng.integers(300, 2000, (4, 32, 128))  # textured, dark: no spectral rule calls it cloud
    data[4] = 4
    data[4, :, 32:64] = rng.choice([8, 9, 10], (32, 32))
    data[4, :, 96:128] = 9
    path = write_tif(tmp_path / "s2.tif", data, nodata=0)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = BANDS
    return path


def _argv(tif, out, *extra):
    return [
        "data",
        "curate",
        str(tif),
        "--type",
        "raster",
        "--sensor",
        "sentinel2_l2a",
        "--bands",
        "B02",
        "B03",
        "B04",
        "B08",
        "--tile-size",
        "32",
        "-b",
        SPEC,
        "-o",
        str(out),
        "--size",
        "2",
        "--clusters",
        "2",
        "--dedup",
        "1.01",
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize("name", ["SCL", "5"])
def test_qa_band_drops_cloudy_tiles_and_stays_out_of_the_backbone(tmp_path, monkeypatch, name):
    from geodino.backbones import FrozenBackbone

    tif = _scene(tmp_path)
    channels: list[int] = []
    original = FrozenBackbone.features
    monkeypatch.setattr(
        FrozenBackbone, "features", lambda self, x, *a, **k: channels.append(x.shape[1]) or original(self, x, *a, **k)
    )
    out = tmp_path / "cur"
    assert cli.main(_argv(tif, out, "--qa-band", name)) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["removed"]["cloud"] == 2 and report["kept"] == 2
    tiles = pd.read_parquet(out / "tiles.parquet").sort_values("col")
    assert tiles.status.tolist() == ["kept", "cloud", "kept", "cloud"]
    assert tiles.cloud_share.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert channels and set(channels) == {4}  # B02, B03, B04, B08: the SCL band never reached the backbone
    (rule,) = report["cloud_rules"].values()
    assert rule.startswith(f"qa(qa_band={name} (scl)") and "screening only" in rule
    assert report["config"]["qa_band"] == name and list(report["qa_band"].values()) == [f"{name} (scl)"]


def test_without_qa_band_the_cloudy_tiles_stay(tmp_path):
    """The problem --qa-band solves: with SCL left out of --bands, auto falls back to a spectral rule."""
    tif = _scene(tmp_path)
    out = tmp_path / "cur"
    assert cli.main(_argv(tif, out)) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["removed"]["cloud"] == 0 and "qa" not in next(iter(report["cloud_rules"].values()))


def test_missing_qa_band_refused_in_one_line(capsys, tmp_path):
    from tests.test_bad_inputs import one_line_exit_2

    tif = _scene(tmp_path)
    line = one_line_exit_2(
        capsys,
        tmp_path,
        *_argv(tif, tmp_path / "cur", "--qa-band", "QA60"),
        expect=("--qa-band QA60", str(tif), "no band named 'QA60'", "1 B02", "5 SCL"),
    )
    assert "Traceback" not in line
    one_line_exit_2(
        capsys,
        tmp_path,
        *_argv(tif, tmp_path / "cur", "--qa-band", "SCL", "--cloud-rule", "swir"),
        expect=("--qa-band SCL", "--cloud-rule auto or qa"),
    )


def test_qa_band_that_is_a_model_input_refused(tmp_path):
    from geodino.data.curate.qaband import resolve_qa_band

    tif = _scene(tmp_path)
    scene = SimpleNamespace(path=str(tif), band_indexes=(1, 2, 3, 5))
    with pytest.raises(InputError, match=r"band 5 of raster .* is also read as a model input band"):
        resolve_qa_band("SCL", [scene], "test")
    with pytest.raises(InputError, match=r"band 2 of raster .* is B03, not SCL, QA60 or QA_PIXEL"):
        resolve_qa_band("2", [SimpleNamespace(path=str(tif), band_indexes=(1,))], "test")
