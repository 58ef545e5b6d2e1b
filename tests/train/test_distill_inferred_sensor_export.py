"""A distillation source naming no `sensor:` over 3-band uint8 rasters trains the students on SAT-493M-standardised
input (the loader's rule), but the export recorded no normalisation (the data config names none) and
`load_backbone` then standardised with ImageNet's. The run now records what its loader resolved, in the export and
in every checkpoint (as pretraining does since ecd9d4a), so both load with the statistics the students saw."""

from __future__ import annotations

import warnings

import pytest

from geodino.data.sensors import get_sensor
from tests.train.conftest import ONE_STUDENT, write_rasters
from tests.train.test_distill import _cfg


def test_students_of_rasters_without_a_sensor_record_the_sat493m_statistics(tmp_path) -> None:
    from geodino.backbones import load_backbone
    from geodino.train.distill import distill

    data = write_rasters(tmp_path / "rasters", n=2, size=48)
    out = tmp_path / "run"
    source = f"data.sources=[{{type: raster, paths: [{data}], tile_size: 48}}]"  # no sensor
    exports = distill(_cfg(tmp_path, out, ONE_STUDENT, source))
    sat = get_sensor("sat493m")
    ckpt = out / "tiny" / "checkpoints" / "step_00000002.ckpt"
    if not ckpt.is_file():  # the co-located layout
        ckpt = out / "checkpoints" / "step_00000002.ckpt"
    for spec in (str(exports["tiny"]), f"{ckpt}?which=tiny"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "records no input normalisation: using ImageNet mean/std"
            rec = load_backbone(spec).normalization
        assert rec is not None and rec["sensor"] == "sat493m", spec
        assert rec["mean"] == pytest.approx(list(sat.mean)) and rec["std"] == pytest.approx(list(sat.std)), spec
