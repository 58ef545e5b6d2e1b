"""`datamodule_stats` refuses what `geodino_vit` refuses for the same bands: a count other than the record's (it gave
all the export's statistics, so a 3-band datamodule got 4 means), a band listed twice; its numbers carry no float
noise of the DN-scale division; and `geodino_vit` refuses a bad `fill`/`subset` before any band warning."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.errors import ConfigError
from geodino.integrations.terratorch import datamodule_stats, geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

REC = {"sensor": "demo4", "bands": ["blue", "green", "red", "nir"], "scale": 1e-4}
REC |= {"mean": [0.05, 0.08, 0.07, 0.3], "std": [0.02, 0.03, 0.04, 0.1]}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    return str(save_backbone(model, tmp_path_factory.mktemp("bb") / "bb.pth", normalization=REC))


def test_a_band_count_other_than_the_record_is_refused(export):
    with pytest.raises(ConfigError, match=r"got bands=3 but the normalisation .*bb.pth records covers 4 bands "):
        datamodule_stats(export, bands=3)
    with pytest.raises(ConfigError, match=r"got bands=6 .*\(blue, green, red, nir\); name the data's bands"):
        datamodule_stats(export, bands="6")
    # the record's own count is its own bands, in its order; 0.3 / 1e-4 reads 3000.0, not 2999.9999999999995
    assert datamodule_stats(export, bands=4) == ([500.0, 800.0, 700.0, 3000.0], [200.0, 300.0, 400.0, 1000.0])


def test_a_band_listed_twice_is_refused(export):
    with pytest.raises(ConfigError, match=r"^datamodule_stats got bands=\[blue, red, blue\], which lists blue twice"):
        datamodule_stats(export, bands=["blue", "red", "blue"])


@pytest.mark.parametrize(("key", "value", "use"), [("fill", "zero", "'mean' or 'zeros'"), ("subset", "x", "'copy'")])
def test_a_bad_rule_is_refused_before_any_band_warning(export, key, value, use):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError, match=rf"^geodino_vit got {key}='{value}'; use {use}.*backbone_{key}"):
            geodino_vit(ckpt_path=export, bands=["blue", "swir16"], **{key: value})
    assert not [w for w in caught if "kernel" in str(w.message)]  # it said swir16 would get the 'zero' kernel


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_ckpt_path_is_refused(blank):
    # it built a random ViT without a word (a template's blank, an unset ${CKPT} in a TerraTorch YAML)
    with pytest.raises(
        ConfigError, match=r"^geodino_vit got an empty ckpt_path .*or leave it out \(null\) for a random"
    ):
        geodino_vit(ckpt_path=blank)
