"""Classification keys no probe runs with, refused when the config is read and naming the key: split fractions
outside [0, 1) or leaving no training image (1.5 kept one training image per class and ran), a negative
max_samples (read as all), an empty linear grid (named all four keys at once), logistic-regression C values <= 0
(sklearn's traceback after extraction, exit 1), an unknown layer set (no key named, only once the task extracted),
and a carved val/test split left empty (failed later as 'dataset image_folder (test) has no images')."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError, InputError
from geodino.eval.classification import LogRegConfig
from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.features import FeatureConfig
from geodino.eval.linear import LinearConfig
from tests.eval.test_datasets import make_folder


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        ({"val_fraction": 1.5}, r"^data\.val_fraction=1\.5 must be >= 0 and < 1 "),
        ({"test_fraction": -0.1}, r"^data\.test_fraction=-0\.1 must be >= 0 and < 1 "),
        (
            {"val_fraction": 0.5, "test_fraction": 0.5},
            r"^data\.val_fraction=0\.5 and data\.test_fraction=0\.5 add up to 1; .* leave a training part",
        ),
        ({"max_samples": -1}, r"^data\.max_samples=-1 must be >= 0 \(images per split; 0 = all\)$"),
        ({"split_seed": -1}, r"^data\.split_seed=-1 must be >= 0 "),  # numpy's bare ValueError, exit 1
    ],
)
def test_split_keys_that_make_no_split_are_refused_naming_the_key(keys, said):
    with pytest.raises(ConfigError, match=said):
        DatasetConfig(name="image_folder", root="x", **keys)


def test_empty_linear_grids_bad_c_values_and_unknown_layer_sets_name_their_key():
    with pytest.raises(ConfigError, match=r"^linear\.weight_decays=\[\] must list at least one value \(default "):
        LinearConfig(weight_decays=[])
    with pytest.raises(ConfigError, match=r"^logreg\.cs=\[0\.1, -1\.0\] must list positive C values"):
        LogRegConfig(cs=[0.1, -1.0])
    with pytest.raises(ConfigError, match=r"^logreg\.cs=\[\] must list positive C values"):
        LogRegConfig(cs=[])
    with pytest.raises(ConfigError, match=r"^logreg\.max_iter=0 must be >= 1"):
        LogRegConfig(max_iter=0)
    with pytest.raises(ConfigError, match=r"^features\.layers='foo' is not a layer set; use one of last, four_last"):
        FeatureConfig(layers="foo")
    assert FeatureConfig(layers="Four_Last").layers == "Four_Last"  # names are read case-blind, kept as written


def test_a_carved_split_left_empty_names_its_fraction_and_the_fix(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 3})
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path), test_fraction=0.0)
    with pytest.raises(InputError) as err:
        build_dataset(cfg, "test")
    assert str(err.value) == (
        f"data.test_fraction=0.0 leaves the test split of the 6 images in {tmp_path} empty (its smallest class has "
        "3); raise it to 0.17 or more, or add images; or report on val: eval_split=val"
    )
    assert len(build_dataset(cfg, "train")) + len(build_dataset(cfg, "val")) == 6
    # the fraction it names gives one test image of each class (3 x 0.17 rounds to 1)
    named = DatasetConfig(name="image_folder", root=str(tmp_path), test_fraction=0.17)
    assert len(build_dataset(named, "test")) == 2
