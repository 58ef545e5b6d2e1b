"""EuroSAT and BigEarthNet read torchgeo's fixed split files: a renamed split (data.test_split=val) was ignored
silently, the test split still read; it is now refused in one line that points at eval_split."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError
from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_torchgeo_band_order import _eurosat_with_band_ids

pytest.importorskip("torchgeo")


def test_eurosat_refuses_a_renamed_split(tmp_path):
    _eurosat_with_band_ids(tmp_path)
    assert len(build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path)), "test")) == 2  # defaults: fine
    with pytest.raises(ConfigError, match=r"EuroSAT has fixed train/val/test splits; test_split='val'.*eval_split=val"):
        build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path), test_split="val"), "test")


def test_bigearthnet_refuses_a_renamed_split(tmp_path):
    with pytest.raises(ConfigError, match="BigEarthNet has fixed train/val/test splits; val_split='test'"):
        build_dataset(DatasetConfig(name="bigearthnet", root=str(tmp_path), val_split="test"), "val")
