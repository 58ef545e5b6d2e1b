"""The attention-mass mask never keeps a patch of zero attention (DINO's rule, `--mass 1` included), and the
COG band and panel title name the mass share as given, not rounded to a whole percent."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.viz.attention import mass_mask
from tests.embed.conftest import random_image, write_tif
from tests.viz.conftest import dino_mask


def test_mass_one_keeps_the_patches_with_attention_not_the_zeros():
    a = np.array([[0.5, 0.0], [0.3, 0.2]])
    assert mass_mask(a, 1.0).tolist() == [[True, False], [True, True]]  # 0.0 adds nothing to 100 %
    assert mass_mask(a, 0.7).tolist() == [[True, False], [True, False]]  # 0.5 + 0.3 = 80 % >= 70 %
    assert mass_mask(a, 0.5).tolist() == [[True, False], [False, False]]
    # a float32 softmax that underflowed: the tiny positive share stays, the exact zeros go
    b = np.array([[1.0, 0.0, 1e-40], [0.0, 0.0, 0.25]], np.float32)
    assert mass_mask(b, 1.0).tolist() == [[True, False, True], [False, False, True]]
    valid = np.array([[True, True, True], [True, False, True]])
    assert mass_mask(b, 1.0, valid).tolist() == [[True, False, True], [False, False, True]]
    assert not mass_mask(np.zeros((2, 3)), 0.6).any()  # no attention at all: nothing holds any share of it


def test_matches_dino_with_exact_zeros():
    rng = np.random.default_rng(1)
    a = rng.dirichlet(np.ones(24) * 0.3, size=5).reshape(5, 4, 6)
    a[rng.random(a.shape) < 0.3] = 0.0  # exact zeros in every head
    a /= a.sum(axis=(1, 2), keepdims=True)
    for mass in (0.2, 0.6, 0.95, 1.0):
        np.testing.assert_array_equal(mass_mask(a, mass), dino_mask(a, mass))


@pytest.mark.parametrize(("mass", "name"), [("0.004", "mask_0.4pct"), ("0.605", "mask_60.5pct"), ("1", "mask_100pct")])
def test_cog_band_names_the_mass_as_given(tmp_path, mass, name):
    import rasterio

    tif = write_tif(tmp_path / "s.tif", random_image(32, 32))
    out = tmp_path / "o"
    args = ["viz", "attention", str(tif), "-b", "arch:vit_tiny?depth=1&seed=0", "-o", str(out), "--mass", mass]
    assert cli.main([*args, "--sensor", "imagenet"]) == 0
    with rasterio.open(out / "attention.tif") as cog:
        assert cog.descriptions[1] == name
        assert float(cog.tags()["mass"]) == float(mass)
