"""A dataset whose named bands are the backbone's recorded bands in another order is refused: channels feed the
backbone by position, so before, EuroSAT's B8A-last order (or B04,B03,B02 into a B02,B03,B04 backbone) ran
silently with swapped bands."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import InputError
from geodino.eval.datasets import ProbeDataset
from geodino.eval.features import FeatureConfig, extract_features
from tests.eval.tiny_backbone import TinyBackbone


def _data(bands: list[str], sensor: str = "sentinel2_l1c") -> ProbeDataset:
    def get(i: int) -> dict:
        return {
            "image": torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(i)),
            "label": torch.tensor(i % 2),
        }

    return ProbeDataset(name="toy", root=".", split="train", classes=["a", "b"], bands=bands, sensor=sensor,
                        length=4, getter=get)  # fmt: skip


def _backbone(bands: list[str]) -> TinyBackbone:
    bb = TinyBackbone(in_chans=3, patch=8)
    bb.bands = bands
    return bb


def test_same_bands_in_another_order_are_refused():
    with pytest.raises(
        InputError, match=r"delivers bands B04,B03,B02 .* takes B02,B03,B04.*data.bands=\[B02, B03, B04\]"
    ):
        extract_features(_backbone(["B02", "B03", "B04"]), _data(["B04", "B03", "B02"]), FeatureConfig(cache=False))


def test_matching_order_other_names_or_unvouched_names_run():
    cfg = FeatureConfig(cache=False)
    assert extract_features(_backbone(["B04", "B03", "B02"]), _data(["B04", "B03", "B02"]), cfg).cls.shape[0] == 4
    assert extract_features(_backbone(["R", "G", "B"]), _data(["red", "green", "blue"]), cfg).cls.shape[0] == 4
    # an image folder's red/green/blue are assumed, not known (no sensor): not checked
    fs = extract_features(_backbone(["blue", "green", "red"]), _data(["red", "green", "blue"], sensor=""), cfg)
    assert fs.cls.shape[0] == 4


def test_names_compare_through_the_data_sensors_aliases():
    """A backbone adapted to blue, green, red (`backbone_bands`, `?bands=`) and Sentinel-2 data delivering B04, B03,
    B02: the same bands in another order, refused as embed refuses them (the names were compared as written, so it
    ran, blue fed the kernels moved for red); B02, B03, B04 is its order and runs."""
    cfg = FeatureConfig(cache=False)
    with pytest.raises(
        InputError, match=r"delivers bands B04,B03,B02 .* takes blue,green,red.*data.bands=\[B02, B03, B04\]"
    ):
        extract_features(_backbone(["blue", "green", "red"]), _data(["B04", "B03", "B02"]), cfg)
    assert extract_features(_backbone(["blue", "green", "red"]), _data(["B02", "B03", "B04"]), cfg).cls.shape[0] == 4
