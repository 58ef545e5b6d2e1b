"""The probes' `InputScaling` applies the DN step a backbone records to integer images, as `geodino embed` does; an
HF processor that does not rescale (do_rescale false) but standardises with ImageNet statistics fed the probes
uint8 DN as they are, without a word (embed warned: d4e03a5). The same rule (`record_units_reason`, one home) now
warns once per dataset, naming the probe's own key (`data_scale`, `data.scale` of a classification dataset,
`tasks.<name>.<key>` inside a suite task); a normal record (x/255 with ImageNet statistics) stays quiet."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from tests.helpers import hf_imagenet_backbones


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    """{do_rescale: a loaded HF-folder backbone whose preprocessor_config.json has ImageNet mean/std}."""
    return hf_imagenet_backbones(tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    root = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    files = [root / f"{i}.png" for i in range(3)]
    for f in files:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(f)
    return files


def _settled(bb, files, keys=("data_scale", "data_offset")):
    from geodino.eval.scaling import InputScaling

    scaling = InputScaling(bb, keys=keys)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaling.settle(files, lambda p: (np.asarray(Image.open(p)).transpose(2, 0, 1), None))
        for f in files:  # every image of the dataset gets the rule: still one warning
            scaling.apply(np.asarray(Image.open(f)).transpose(2, 0, 1))
    return scaling, [str(w.message) for w in caught if "DN of" in str(w.message)]


def test_a_record_that_does_not_rescale_warns_once_naming_data_scale(backbones, pngs):
    scaling, said = _settled(backbones[False], pngs)
    assert "x*1 (the backbone's DN scale" in scaling.describe()  # the record applies: DN reach the backbone as given
    assert len(said) == 1, said
    assert f"reads the uint8 DN of {pngs[0]} and 2 other images as given, x*1" in said[0]
    assert "reflectance units (mean 0.485 ...)" in said[0] and "; set data_scale to the DN" in said[0]
    assert "--scale" not in said[0] and "\n" not in said[0]


def test_inside_a_suite_task_the_key_is_the_tasks(backbones, pngs):
    from geodino.eval.datasets import DatasetConfig
    from geodino.eval.runner_inputs import task_keys_named

    with task_keys_named("eurosat", DatasetConfig):
        _, said = _settled(backbones[False], pngs[:1], keys=("data.scale", "data.offset"))
    assert len(said) == 1 and f"DN of {pngs[0]} as given" in said[0]
    assert "set tasks.eurosat.data.scale to" in said[0], said[0]


def test_a_normal_record_and_an_explicit_scale_stay_quiet(backbones, pngs):
    from geodino.eval.scaling import InputScaling

    scaling, said = _settled(backbones[True], pngs)
    assert "x*0.00392157 (the backbone's DN scale" in scaling.describe() and said == []
    explicit = InputScaling(backbones[False], scale=1 / 255)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explicit.settle(pngs, lambda p: (np.asarray(Image.open(p)).transpose(2, 0, 1), None))
    assert not [w for w in caught if "DN of" in str(w.message)]
