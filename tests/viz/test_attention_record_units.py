"""`viz attention` reads a raster (and a photo) given without --sensor by the DN step the backbone records, as
`geodino embed` does; an HF processor that does not rescale (do_rescale false) but standardises with ImageNet
statistics drew the maps of uint16/uint8 DN as they are, without a word (embed warned: d4e03a5). The same rule
(`record_units_reason`, one home) now warns once from `read_input`, naming viz's own way out (--sensor; it has no
--scale); a normal record (x/255 with ImageNet statistics) on uint8 stays quiet."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from tests.helpers import hf_imagenet_backbones, write_tif


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    """{do_rescale: a loaded HF-folder backbone whose preprocessor_config.json has ImageNet mean/std}."""
    return hf_imagenet_backbones(tmp_path_factory.mktemp("hf"))


def _read(path, bb):
    from geodino.viz.attention import read_input

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sample = read_input(path, backbone=bb)
    return sample, [str(w.message) for w in caught if "DN of" in str(w.message)]


@pytest.mark.parametrize("dtype", ["uint16", "uint8"])
def test_a_raster_read_by_a_record_that_does_not_rescale_warns_once(tmp_path, backbones, dtype):
    top = 4000 if dtype == "uint16" else 255
    tif = write_tif(tmp_path / "in.tif", np.random.default_rng(0).integers(0, top, (3, 16, 16)).astype(dtype))
    sample, said = _read(tif, backbones[False])
    assert float(sample["image"].max()) > 2  # the record applied: DN as given
    assert len(said) == 1, said
    assert f"reads the {dtype} DN of {tif} as given, x*1" in said[0] and "(mean 0.485 ...)" in said[0]
    assert "; pass --sensor NAME" in said[0] and "--scale FACTOR" not in said[0] and "\n" not in said[0]


def test_a_photo_warns_too_and_a_normal_record_stays_quiet(tmp_path, backbones):
    png = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(png)
    _, said = _read(png, backbones[False])
    assert len(said) == 1 and f"reads the uint8 DN of {png} as given" in said[0], said
    tif = write_tif(tmp_path / "u8.tif", np.random.default_rng(1).integers(0, 256, (3, 16, 16)).astype("uint8"))
    for path in (png, tif):
        sample, said = _read(path, backbones[True])
        assert said == [] and float(sample["image"].max()) <= 1  # x/255 with ImageNet statistics: consistent
