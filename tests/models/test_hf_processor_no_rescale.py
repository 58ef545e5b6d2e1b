"""A foreign HF folder whose processor does not rescale (do_rescale false, or rescale_factor 1) standardises the
pixel values as given; geodino read its record as a bare mean/std and divided integer input by dtype (uint16 /
10000), so `load_backbone(folder).preprocess(x)` gave other inputs than transformers' DINOv3ViTImageProcessorFast
(a DN-unit mean of 1000: -2.0 instead of 3.1). The processor's rescale is now the record's DN step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import geodino.cli
from geodino.backbones import load_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")

C, MEAN, STD = 4, [1000.0, 1200.0, 900.0, 2500.0], [500.0, 400.0, 450.0, 800.0]


def foreign(path, **kw):
    """A DINOv3ViTModel folder and image processor written by transformers (no geodino record)."""
    from transformers import DINOv3ViTConfig, DINOv3ViTImageProcessorFast, DINOv3ViTModel

    torch.manual_seed(0)
    cfg = DINOv3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_channels=C, patch_size=8
    )
    DINOv3ViTModel(cfg).save_pretrained(path)
    proc = DINOv3ViTImageProcessorFast(image_mean=MEAN, image_std=STD, do_resize=False, **kw)
    proc.save_pretrained(path)
    return proc


def hf(proc, a: np.ndarray) -> torch.Tensor:
    out = proc(images=a, return_tensors="pt", do_convert_rgb=False, input_data_format="channels_first")
    return out["pixel_values"][0]


def dn(dtype: str, seed: int = 0) -> np.ndarray:
    hi = 256 if dtype == "uint8" else 4000
    return np.random.default_rng(seed).integers(0, hi, (C, 16, 24)).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint16", "uint8"])
def test_rescale_factor_one_keeps_the_processor_values(tmp_path, dtype):
    proc = foreign(tmp_path, do_rescale=True, rescale_factor=1.0)
    a = dn(dtype)
    got = load_backbone(tmp_path).preprocess(torch.from_numpy(a))
    torch.testing.assert_close(got, hf(proc, a), atol=1e-5, rtol=0)


def test_do_rescale_false_takes_dn_as_given(tmp_path):
    """transformers takes only float input without rescale (its normalize refuses integers): the HF user casts,
    x.astype(float32), and geodino gives the same from the integers and from those floats (not refused as DN)."""
    proc = foreign(tmp_path, do_rescale=False)
    fb = load_backbone(tmp_path)
    a = dn("uint16")
    want = hf(proc, a.astype(np.float32))
    torch.testing.assert_close(fb.preprocess(torch.from_numpy(a)), want, atol=1e-5, rtol=0)
    torch.testing.assert_close(fb.preprocess(torch.from_numpy(a.astype(np.float32))), want, atol=1e-5, rtol=0)


def test_converting_the_folder_keeps_its_processor(tmp_path, capsys):
    """`geodino convert FOLDER OUT --to hf` wrote the bare record's rescale 1/255: a 255x other processor."""
    from transformers import AutoImageProcessor

    proc = foreign(tmp_path / "src", do_rescale=True, rescale_factor=1.0)
    out = tmp_path / "out"
    assert geodino.cli.main(["convert", str(tmp_path / "src"), str(out), "--to", "hf"]) == 0
    a = dn("uint16", 1)
    again = AutoImageProcessor.from_pretrained(out)
    torch.testing.assert_close(hf(again, a), hf(proc, a), atol=1e-5, rtol=0)
    torch.testing.assert_close(load_backbone(out).preprocess(torch.from_numpy(a)), hf(proc, a), atol=1e-5, rtol=0)


def test_integers_as_given_under_reflectance_statistics_warn_once(tmp_path):
    """A do_rescale false processor with statistics in reflectance units (made for float input, which transformers
    alone accepts there) now reads integer DN as given: one warning names the way back to the dtype rule."""
    from transformers import DINOv3ViTConfig, DINOv3ViTImageProcessorFast, DINOv3ViTModel

    cfg = DINOv3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    DINOv3ViTModel(cfg).save_pretrained(tmp_path)
    DINOv3ViTImageProcessorFast(do_resize=False, do_rescale=False).save_pretrained(tmp_path)  # ImageNet mean/std
    fb = load_backbone(tmp_path)
    a = torch.from_numpy(dn("uint8")[:3])
    with pytest.warns(UserWarning, match=r"reads integer input as given .* rule='dtype'") as caught:
        fb.preprocess(a)
        fb.preprocess(a)
    assert len([w for w in caught if "as given" in str(w.message)]) == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(fb.preprocess(a, rule="dtype"), fb.normalize(a.float() / 255))
        fb.preprocess(a.float() / 255)  # reflectance floats: quiet
        load_backbone(tmp_path).preprocess(torch.ones(3, 16, 16, dtype=torch.uint8))  # values <= 2: quiet


def test_dn_unit_statistics_stay_quiet(tmp_path):
    foreign(tmp_path, do_rescale=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_backbone(tmp_path).preprocess(torch.from_numpy(dn("uint16")))
