"""A subset of a checkpoint's bands (4 of 12) keeps the trained kernels: the adaptation multiplied them by
C_src / C_dst (3 for 4 of 12), which is not the model it was trained as. Unscaled, the adapted model is exactly the
source model with the dropped bands at their mean (0 after standardisation), the input it has seen; measured on the
4-band demo backbone, the rescaled rule's patch tokens had cosine 0.970 (2 of 4 bands) and 0.836 (1 of 4) to that.
`subset="rescale"` keeps the old rule."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import ConfigError
from geodino.integrations.terratorch import geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import adapt_patch_embed, load_model, save_backbone

BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]


@pytest.fixture(scope="module")
def six_band_file(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vit_small", in_chans=6, depth=2, embed_dim=32, num_heads=2, patch_size=8)
    rec = {"bands": BANDS, "mean": [0.1] * 6, "std": [0.2] * 6, "scale": 1e-4}
    return save_backbone(model, tmp_path_factory.mktemp("s") / "six.safetensors", normalization=rec)


def test_a_subset_copies_the_kernels_unscaled():
    w = torch.randn(8, 12, 4, 4)
    src = [f"B{i}" for i in range(12)]
    keep = ["B3", "B1", "B7", "B11"]
    idx = [3, 1, 7, 11]
    for fill in ("mean", "zeros"):
        torch.testing.assert_close(adapt_patch_embed(w, src, keep, fill=fill), w[:, idx])
        torch.testing.assert_close(adapt_patch_embed(w, src, keep, fill=fill, subset="rescale"), w[:, idx] * 3)
    # a band the file lacks: the documented rule, scaled (the mean kernel stands in for the file's bands)
    torch.testing.assert_close(adapt_patch_embed(w, src, ["B3", "x"])[:, 0], w[:, 3] * 6)
    with pytest.raises(ConfigError, match="band subset rule 'half'"):
        adapt_patch_embed(w, src, keep, subset="half")


def test_subset_model_is_the_source_model_with_dropped_bands_at_their_mean(six_band_file):
    full = load_model(six_band_file).eval()
    keep = ["red", "nir", "swir16"]
    sub = load_model(six_band_file, bands=keep).eval()
    x = torch.randn(2, 6, 32, 32)  # standardised input: a band's mean is 0
    ideal = x.clone()
    ideal[:, [0, 1, 5]] = 0.0
    with torch.no_grad():
        want = full.get_intermediate_layers(ideal, n=2, return_class_token=True)
        got = sub.get_intermediate_layers(x[:, [2, 3, 4]], n=2, return_class_token=True)
    for (p0, c0), (p1, c1) in zip(want, got, strict=True):
        torch.testing.assert_close(p1, p0, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c1, c0, atol=1e-5, rtol=1e-5)


def test_the_old_rule_stays_selectable_everywhere(six_band_file):
    w = load_model(six_band_file).patch_embed.proj.weight.detach()
    keep = "red,nir,swir16"
    copy = load_backbone(f"{six_band_file}?bands={keep}")
    old = load_backbone(f"{six_band_file}?bands={keep}&subset=rescale")
    assert torch.equal(copy.model.patch_embed.proj.weight, w[:, [2, 3, 4]])
    torch.testing.assert_close(old.model.patch_embed.proj.weight, w[:, [2, 3, 4]] * 2)
    assert copy.fingerprint != old.fingerprint  # feature caches of the two rules are not mixed up
    same = load_backbone(f"{six_band_file}?bands={keep}", subset="rescale")
    assert torch.equal(same.model.patch_embed.proj.weight, old.model.patch_embed.proj.weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt = geodino_vit(str(six_band_file), bands=keep.split(","), subset="rescale")
    torch.testing.assert_close(tt.model.patch_embed.proj.weight, w[:, [2, 3, 4]] * 2)
    with pytest.raises(ConfigError, match="subset='half' must be 'copy' or 'rescale'"):
        load_backbone(f"{six_band_file}?bands={keep}&subset=half")


def test_convert_cli_takes_the_subset_rule(six_band_file, tmp_path):
    from geodino.cli import main

    w = load_model(six_band_file).patch_embed.proj.weight.detach()
    for rule, factor in (("copy", 1), ("rescale", 2)):
        out = tmp_path / f"{rule}.pth"
        argv = ["convert", str(six_band_file), str(out), "--bands", "red,nir,swir16", "--subset", rule]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(argv) == 0
        torch.testing.assert_close(load_model(out).patch_embed.proj.weight, w[:, [2, 3, 4]] * factor)


@pytest.mark.parametrize("bands", [[4, 3, 2], ["4", "3", "2"], "4,3,2", 3])
def test_convert_checkpoint_refuses_band_numbers_in_python_too(six_band_file, tmp_path, bands):
    """As `geodino convert --bands 4 3 2` (983a888): numbers matched no name and, with fill=mean, every band got the
    mean kernel with only a warning; a count is not a set of names."""
    from geodino.models.checkpoints.convert import convert_checkpoint

    with pytest.raises(ConfigError, match=r"^bands="):
        convert_checkpoint(six_band_file, tmp_path / "o.pth", bands=bands)
    assert not (tmp_path / "o.pth").exists()
    out = convert_checkpoint(six_band_file, tmp_path / "ok.pth", bands="red,nir")  # names as text still work
    assert load_model(out).patch_embed.proj.weight.shape[1] == 2
