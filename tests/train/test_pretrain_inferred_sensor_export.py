"""A pretraining source naming no `sensor:` over 3-band uint8 rasters trains with SAT-493M's statistics (the
loader's rule); its export recorded no normalisation (the data config names none), warned to "pass the sensor it
was trained with", and `load_backbone` then standardised with ImageNet's: other statistics than in training."""

from __future__ import annotations

import warnings

import pytest

from geodino.config import load_config
from geodino.data.sensors import get_sensor
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import write_config, write_rasters


def test_rasters_without_a_sensor_export_the_sat493m_statistics_they_trained_with(tmp_path) -> None:
    from geodino.backbones import load_backbone

    data = write_rasters(tmp_path / "rasters", n=2, size=48)
    cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "run", data)
    cfg_path.write_text(cfg_path.read_text().replace(", sensor: imagenet}", "}"))
    cfg = load_config(PretrainConfig, cfg_path, ["trainer.max_steps=1", "batch_size=2"])
    assert cfg.data.sources[0].sensor is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", module="lightning")  # Lightning's own notes on a tiny CPU run
        warnings.filterwarnings("ignore", module="torch")
        run = pretrain(cfg)
    sat = get_sensor("sat493m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "records no input normalisation" warning
        fb = load_backbone(str(run / "export" / "teacher.pth"))
    rec = fb.normalization
    assert rec is not None and rec["sensor"] == "sat493m"
    assert rec["mean"] == pytest.approx(list(sat.mean)) and rec["std"] == pytest.approx(list(sat.std))
    assert list(rec["mean"]) == pytest.approx([0.43, 0.411, 0.296], abs=1e-3)


def test_the_resolved_sensor_is_taken_only_for_a_source_naming_none() -> None:
    """`sensors` fills a source without `sensor:`; a named one keeps its own, and none resolved keeps the reason."""
    from geodino.data.normalization import data_normalization

    raster = {"type": "raster", "paths": ["x"], "sensor": None}
    rec, why = data_normalization({"sources": [raster]}, sensors=[get_sensor("sat493m")])
    assert why == "" and rec["sensor"] == "sat493m" and rec["origin"] == "pretraining data (sensor sat493m)"
    assert data_normalization({"sources": [raster]}, sensors=[None]) == (None, "data.sources[0] names no sensor")
    named = {**raster, "sensor": "imagenet"}
    rec, _ = data_normalization({"sources": [named]}, sensors=[get_sensor("sat493m")])
    assert rec["sensor"] == "imagenet"
    rec, _ = data_normalization({"sources": [raster], "norm_sensor": "imagenet"}, sensors=[get_sensor("sat493m")])
    assert rec["mean"] == pytest.approx([0.485, 0.456, 0.406]) and rec["scale"] == get_sensor("sat493m").scale
