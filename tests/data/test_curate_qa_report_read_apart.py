"""report.json of a reprojected source whose QA band (QA60) is also a model input: the qa rule decodes that band
read apart with nearest resampling (codes intact) while the backbone gets it interpolated. The report said only
`qa(qa=4; t=0.5)` and `qa_band: null`; it now names the band in `cloud_rules` and says how it was read in
`qa_read_apart` (None for a native-grid source, whose codes are the file's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from geodino import cli
from tests.data.test_curate_qa_band import SPEC
from tests.data.test_qa_reprojected import QA60, _scene, _sensor_yaml

RUN = ["--size", "2", "--clusters", "2", "--dedup", "1.01", "--no-progress", "--max-nodata", "1"]


def _curate(tmp_path: Path, **grid) -> dict:
    path = tmp_path / "scene.tif"
    _scene(path, "QA60", QA60, nodata=None)
    sensor = _sensor_yaml(tmp_path / "s2qa.yaml", "QA60")
    src = {"name": "s", "type": "raster", "paths": [str(path)], "sensor": str(sensor), "tile_size": 32, **grid}
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"sources": [src]}}))
    out = tmp_path / "cur"
    spec = SPEC.replace("bands=4", "bands=5")  # B02 B03 B04 B08 QA60
    assert cli.main(["data", "curate", "--config", str(cfg), "-b", spec, "-o", str(out), *RUN]) == 0
    return json.loads((out / "report.json").read_text()) | {"md": (out / "report.md").read_text()}


# a QA band read as a model band is this test's input; its warning is test_qa_band_as_model_input's subject
@pytest.mark.filterwarnings("ignore:band .* is a QA band:UserWarning")
def test_reprojected_model_qa_band_is_said_read_apart(tmp_path):
    report = _curate(tmp_path, crs="EPSG:32632", res=10)
    assert report["cloud_rules"] == {"s": "qa(QA60: a model input band, its codes read apart with nearest; t=0.5)"}
    assert report["qa_band"] == {"s": None}  # no --qa-band
    apart = report["qa_read_apart"]["s"]
    assert apart.startswith("QA60 (qa60): a model input band") and "nearest" in apart and "bilinear" in apart
    assert "- s: qa(QA60: a model input band, its codes read apart with nearest; t=0.5)" in report["md"]


# a QA band read as a model band is this test's input; its warning is test_qa_band_as_model_input's subject
@pytest.mark.filterwarnings("ignore:band .* is a QA band:UserWarning")
def test_native_grid_source_reads_nothing_apart(tmp_path):
    report = _curate(tmp_path)
    assert report["cloud_rules"] == {"s": "qa(qa=4; t=0.5)"}  # the image's own codes, the text as before
    assert report["qa_read_apart"] == {"s": None}
