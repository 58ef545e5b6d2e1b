"""geodino_vit's `pretrained_bands` (TerraTorch's `backbone_pretrained_bands`, geodino's `src_bands`): the bands of a
checkpoint that records none. It was dropped with an 'ignores option' warning: a BGR-ordered state_dict was then
taken as R, G, B (kernels swapped without an error), and a 4-band one could not be adapted at all, the error
pointing to load_backbone(src_bands=...), which a TerraTorch config cannot call. Runs without TerraTorch."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.errors import ConfigError
from geodino.integrations.terratorch import geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import EXPORT_RECORD


def _plain(tmp_path, chans: int) -> tuple[str, torch.Tensor]:
    """A state_dict saved as is (official layout, no sidecar, no band record) and its patch-embedding kernels."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=chans, depth=2)
    path = tmp_path / f"plain{chans}.pth"
    torch.save(model.state_dict(), path)
    return str(path), model.patch_embed.proj.weight.detach()


def _kernels(bb) -> torch.Tensor:
    return bb.model.patch_embed.proj.weight.detach()


def test_pretrained_bands_name_the_kernels_of_a_bgr_state_dict(tmp_path):
    path, w = _plain(tmp_path, 3)  # trained on blue, green, red, in that order
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'ignores option pretrained_bands' warning
        bb = geodino_vit(ckpt_path=path, pretrained_bands=["BLUE", "GREEN", "RED"], bands=["RED", "GREEN", "BLUE"])
    torch.testing.assert_close(_kernels(bb), w.flip(1))  # red takes the file's third kernel, blue its first
    # geodino's own name for the same setting, and one string as in a spec
    with pytest.warns(UserWarning, match=r"1 band \(nir\) matches no band .* \(blue, green, red\)"):
        bb = geodino_vit(ckpt_path=path, src_bands="blue,green,red", bands=["red", "nir"])
    torch.testing.assert_close(_kernels(bb)[:, 0], w[:, 2] * 3 / 2)  # the documented C_src / C_dst with a new band


def test_pretrained_bands_let_a_four_band_state_dict_be_adapted(tmp_path):
    path, w = _plain(tmp_path, 4)
    bb = geodino_vit(
        ckpt_path=path, pretrained_bands=["BLUE", "GREEN", "RED", "NIR_NARROW"], bands=["NIR_NARROW", "RED"]
    )
    assert bb.in_chans == 2
    torch.testing.assert_close(_kernels(bb), w[:, [3, 2]])  # a subset keeps its kernels unscaled (subset: copy)


def test_without_pretrained_bands_the_error_names_the_terratorch_key(tmp_path):
    path, _ = _plain(tmp_path, 4)
    with pytest.raises(ConfigError, match=r"has 4 input bands and records no band names.*backbone_pretrained_bands"):
        geodino_vit(ckpt_path=path, bands=["RED", "NIR_NARROW"])


def test_pretrained_bands_that_contradict_the_file_are_refused(tmp_path):
    path, _ = _plain(tmp_path, 4)
    with pytest.raises(ConfigError, match=r"3 pretrained bands \(BLUE, GREEN, RED\) but .* has 4 input bands"):
        geodino_vit(ckpt_path=path, pretrained_bands=["BLUE", "GREEN", "RED"], bands=["RED"])
    with pytest.raises(ConfigError, match=r"a count cannot say which kernel is which"):
        geodino_vit(ckpt_path=path, pretrained_bands=4, bands=["RED"])
    with pytest.raises(ConfigError, match=r"src_bands=\[a, b\] and pretrained_bands=\[c, d\], which differ"):
        geodino_vit(ckpt_path=path, src_bands=["a", "b"], pretrained_bands=["c", "d"])
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=2)
    export = str(save_backbone(model, tmp_path / "bb.safetensors", normalization=EXPORT_RECORD))
    with pytest.raises(ConfigError, match=r"records bands BLUE, GREEN, RED, NIR_NARROW, not pretrained_bands"):
        geodino_vit(ckpt_path=export, pretrained_bands=["RED", "GREEN", "BLUE", "NIR_NARROW"], bands=["RED"])
    # the record's own bands, repeated, are accepted
    bb = geodino_vit(ckpt_path=export, pretrained_bands=EXPORT_RECORD["bands"], bands=["RED"])
    torch.testing.assert_close(_kernels(bb)[:, 0], model.patch_embed.proj.weight.detach()[:, 2])
