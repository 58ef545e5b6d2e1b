"""`geodino embed` applies the DN step a backbone records to integer input (no --sensor/--scale). A foreign HF
processor that does not rescale (do_rescale false, rescale_factor 1) but standardises with reflectance statistics
(ImageNet's 0.485 ...) then fed uint8/uint16 DN as they are, and a processor whose x/255 cannot reach its DN-unit
means standardised 0..1 by ~1000: features far off without a word (`FrozenBackbone.preprocess` warned, embed did
not). One warning now names the backbone, the input and the way out (--scale / --sensor)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest

from geodino.embed.input_scaling import warn_record_units
from geodino.models.checkpoints.normalization import PROCESSOR_ORIGIN

IMAGENET = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _bb(scale: float, mean: list[float], std: list[float], **more) -> SimpleNamespace:
    rec = {"mean": mean, "std": std, "scale": scale, "origin": PROCESSOR_ORIGIN, **more}
    return SimpleNamespace(normalization=rec, norm_source="recorded in hf/preprocessor_config.json: ...", spec="hf")


def _warned(dtype: str, bb: SimpleNamespace) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_record_units(SimpleNamespace(dtype=dtype, path="in.tif"), bb)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_dn_as_given_under_reflectance_statistics_warns(dtype):
    (msg,) = _warned(dtype, _bb(1.0, *IMAGENET))
    assert msg.startswith(
        f"backbone hf reads the {dtype} DN of in.tif as given, x*1 (recorded in hf/preprocessor_config.json)"
    )
    assert "reflectance units (mean 0.485 ...)" in msg and "--scale FACTOR" in msg and "--sensor NAME" in msg


def test_a_scale_that_cannot_reach_the_means_warns():
    (msg,) = _warned("uint8", _bb(1 / 255, [1000.0] * 3, [500.0] * 3))
    assert (
        "scales the uint8 DN of in.tif by x*0.00392157 (recorded in hf/preprocessor_config.json) to at most 1, but its"
        in msg
    )


@pytest.mark.parametrize(
    ("dtype", "bb"),
    [
        ("uint8", _bb(1 / 255, *IMAGENET)),  # the RGB releases' processor on 8-bit imagery: consistent
        ("uint16", _bb(1.0, [1000.0] * 3, [500.0] * 3)),  # DN as given under DN-unit statistics
        ("uint16", _bb(1e-4, [0.1] * 3, [0.05] * 3, offset=-0.1, sensor="sentinel2_l2a")),
        ("int16", _bb(0.01, [-15.0], [4.0])),  # SAR dB x 100: |mean| > 2 but reachable
        ("float32", _bb(1.0, *IMAGENET)),  # float input is read as reflectance, the record does not apply
    ],
)
def test_consistent_units_stay_quiet(dtype, bb):
    assert _warned(dtype, bb) == []


def test_embed_warns_once_for_the_input_and_not_with_scale(tmp_path):
    """End to end: an HF folder whose processor (as transformers writes one, no geodino record) does not rescale and
    standardises with ImageNet statistics, on uint16 input."""
    import json

    import torch

    from geodino.backbones import load_backbone
    from geodino.embed import embed_raster
    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone
    from tests.embed.conftest import random_image, write_tif

    torch.manual_seed(0)
    folder = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "hf", layout="hf")
    mean, std = IMAGENET
    processor = {"do_rescale": False, "do_normalize": True, "image_mean": mean, "image_std": std}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    tif = write_tif(tmp_path / "in.tif", random_image(32, 32, 3, dtype="uint16"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embed_raster(str(tif), str(folder), tmp_path / "a.tif")
    ours = [str(w.message) for w in caught if "DN of" in str(w.message)]
    assert len(ours) == 1 and f"reads the uint16 DN of {tif} as given" in ours[0]
    from geodino.embed.config import EmbedConfig
    from geodino.embed.prepare import _input_scaling

    with warnings.catch_warnings(record=True) as caught:  # --scale: the user's factor, the record does not apply
        warnings.simplefilter("always")
        bb = load_backbone(folder)
        source = SimpleNamespace(kind="raster", bands=None, input_count=3)
        info = SimpleNamespace(path=tif, dtype="uint16", count=3, descriptions=(None,) * 3)
        _input_scaling(info, source, EmbedConfig(scale=1e-4, file_scale=False), bb)
    assert not [w for w in caught if "DN of" in str(w.message)]
