"""geodino backbones inside torchgeo's trainers, TerraTorch's registry, timm and transformers, all offline."""

from __future__ import annotations

import enum
import sys
import types
import warnings

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import EXPORT_RECORD

REC = EXPORT_RECORD


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, in_chans=4, depth=4)


@pytest.fixture(scope="module")
def timm_dir(model, tmp_path_factory):
    return save_backbone(model, tmp_path_factory.mktemp("t") / "timm_dir", layout="timm", normalization=REC)


# Lightning's: the task's step is called here without a Trainer, on purpose
@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")
def test_torchgeo_classification_task_takes_the_timm_folder(model, timm_dir):
    from torchgeo.trainers import ClassificationTask

    task = ClassificationTask(model=f"local-dir:{timm_dir}", weights=True, in_channels=4, num_classes=3)
    assert torch.equal(task.model.patch_embed.proj.weight, model.patch_embed.proj.weight)  # pretrained weights
    assert list(task.model.pretrained_cfg["mean"]) == REC["mean"]
    batch = {"image": torch.rand(2, 4, 32, 32), "label": torch.tensor([0, 2])}
    loss = task.training_step(batch, 0)
    loss.backward()
    assert loss.ndim == 0 and task.model.get_classifier().weight.grad is not None
    assert task.model.global_pool == "token"  # the linear head sees the class token, not the mean patch token


# Lightning's: the task's step is called here without a Trainer, on purpose
@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")
def test_torchgeo_segmentation_task_takes_the_timm_folder(model, timm_dir):
    from torchgeo.trainers import SemanticSegmentationTask

    task = SemanticSegmentationTask(
        model="dpt", backbone=f"tu-local-dir:{timm_dir}", weights=True, in_channels=4, num_classes=3
    )
    assert torch.equal(task.model.encoder.model.patch_embed.proj.weight, model.patch_embed.proj.weight)
    batch = {"image": torch.rand(2, 4, 32, 32), "mask": torch.randint(0, 3, (2, 32, 32))}
    assert task.model(batch["image"]).shape == (2, 3, 32, 32)
    loss = task.training_step(batch, 0)
    assert torch.isfinite(loss)


def test_timm_folder_tokens_match_geodino(model, timm_dir):
    import timm

    tm = timm.create_model(f"local-dir:{timm_dir}", pretrained=True).eval()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        ours = model.eval().forward_features(x)["x_norm_patchtokens"]
        theirs = tm.forward_features(x)[:, tm.num_prefix_tokens :]
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_timm_folder_pools_the_class_token(model, timm_dir):
    """`timm.create_model("local-dir:...")` reads the pooling from config.json's `model_args`: the pooled output is
    the class token (DINOv3's convention, what geodino's probes use), not timm's default mean patch token."""
    import json

    import timm

    from geodino.models.checkpoints import read_backbone_weights

    tm = timm.create_model(f"local-dir:{timm_dir}", pretrained=True).eval()
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        feats = tm.forward_features(x)
        pooled = tm(x)
    assert pooled.shape == (2, 192)
    torch.testing.assert_close(pooled, feats[:, 0], atol=1e-5, rtol=1e-5)
    assert tm.global_pool == "token"
    assert not torch.allclose(pooled, feats[:, tm.num_prefix_tokens :].mean(1), atol=1e-3)
    with torch.no_grad():  # and the class token is geodino's
        torch.testing.assert_close(pooled, model.eval().forward_features(x)["x_norm_clstoken"], atol=1e-5, rtol=1e-5)
    assert json.loads((timm_dir / "config.json").read_text())["model_args"]["global_pool"] == "token"
    # avg pooling on request, as the docs say
    avg = timm.create_model(f"local-dir:{timm_dir}", pretrained=True, global_pool="avg").eval()
    with torch.no_grad():
        torch.testing.assert_close(avg(x), feats[:, tm.num_prefix_tokens :].mean(1), atol=1e-5, rtol=1e-5)
    # geodino's own reader still takes the folder: the same weights
    back = read_backbone_weights(timm_dir).state
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items() if k in back and "bias_mask" not in k)


class HLSBands(enum.Enum):  # the shape of TerraTorch's band enums
    BLUE = "BLUE"
    GREEN = "GREEN"
    RED = "RED"
    NIR_NARROW = "NIR_NARROW"
    SWIR_1 = "SWIR_1"
    SWIR_2 = "SWIR_2"


def test_terratorch_factory_accepts_any_band_count(model, tmp_path):
    from geodino.integrations.terratorch import datamodule_stats, geodino_vit

    path = save_backbone(model, tmp_path / "bb.safetensors", normalization=REC)
    bands = [HLSBands.BLUE, HLSBands.GREEN, HLSBands.RED, HLSBands.NIR_NARROW, HLSBands.SWIR_1, HLSBands.SWIR_2]
    with pytest.warns(UserWarning, match=r"2 bands \(SWIR_1, SWIR_2\) match no band of checkpoint .* get the mean"):
        bb = geodino_vit(ckpt_path=str(path), bands=bands, out_indices=[1, 3])
    assert bb.out_channels == [192, 192] and bb.in_chans == 6 and bb.model.training
    w = bb.model.patch_embed.proj.weight
    # matched bands keep their kernels (scaled by C_src / C_dst, the documented adaptation rule)
    torch.testing.assert_close(w[:, 2], model.patch_embed.proj.weight[:, 2] * 4 / 6)
    feats = bb(torch.rand(2, 6, 32, 32))
    assert [f.shape for f in feats] == [(2, 1 + 16, 192)] * 2  # class token first, then 4 x 4 patches
    # the same bands as the file: the weights are the file's
    same = geodino_vit(ckpt_path=str(path), bands=["BLUE", "GREEN", "RED", "NIR_NARROW"], return_cls_token=False)
    assert torch.equal(same.model.patch_embed.proj.weight, model.patch_embed.proj.weight)
    assert same(torch.rand(1, 4, 16, 16))[0].shape == (1, 4, 192)
    assert geodino_vit(ckpt_path=None, bands=3, arch="vit_tiny", patch_size=8).in_chans == 3
    means, stds = datamodule_stats(str(path))
    assert means[0] == pytest.approx(0.05 / 1e-4) and stds[3] == pytest.approx(0.1 / 1e-4)


@pytest.fixture(scope="module")
def rgb_export(tmp_path_factory):
    """A 3-band (R, G, B by the 3-band default) vit_tiny export and its patch-embedding kernel [D, 3, p, p]."""
    torch.manual_seed(1)
    rgb = build_model("vit_tiny", patch_size=8, in_chans=3, depth=2)
    path = save_backbone(rgb, tmp_path_factory.mktemp("rgb") / "rgb.safetensors")
    return str(path), rgb.patch_embed.proj.weight.detach().clone()


def test_terratorch_model_bands_reorder_the_kernels(rgb_export):
    """TerraTorch's `model_bands` (`backbone_model_bands`) is the input bands, as `bands`: B, G, R data on an
    R, G, B export moves each kernel to its band (it was ignored: the R kernel stayed on channel 0)."""
    from geodino.integrations.terratorch import geodino_vit

    path, w = rgb_export
    bb = geodino_vit(ckpt_path=path, model_bands=[HLSBands.BLUE, HLSBands.GREEN, HLSBands.RED], out_indices=[1])
    assert bb.in_chans == 3
    torch.testing.assert_close(bb.model.patch_embed.proj.weight, w[:, [2, 1, 0]], atol=0, rtol=0)
    strings = geodino_vit(ckpt_path=path, model_bands=["BLUE", "GREEN", "RED"])
    assert torch.equal(strings.model.patch_embed.proj.weight, bb.model.patch_embed.proj.weight)
    # the same bands under both names (spelt differently) are one setting
    both = geodino_vit(ckpt_path=path, bands=["blue", "green", "red"], model_bands=["BLUE", "GREEN", "RED"])
    assert torch.equal(both.model.patch_embed.proj.weight, bb.model.patch_embed.proj.weight)


def test_terratorch_four_model_bands_give_a_four_band_model(rgb_export):
    from geodino.integrations.terratorch import geodino_vit

    path, w = rgb_export
    four = [HLSBands.BLUE, HLSBands.GREEN, HLSBands.RED, HLSBands.NIR_NARROW]
    with pytest.warns(UserWarning, match=r"1 band \(NIR_NARROW\) matches no band of checkpoint"):
        bb = geodino_vit(ckpt_path=path, model_bands=four, out_indices=[1])
    assert bb.in_chans == 4
    got = bb.model.patch_embed.proj.weight
    torch.testing.assert_close(got[:, :3], w[:, [2, 1, 0]] * 3 / 4)  # matched, scaled by C_src / C_dst
    torch.testing.assert_close(got[:, 3], w.mean(1) * 3 / 4)  # unmatched: the mean kernel
    assert bb(torch.rand(1, 4, 16, 16))[0].shape == (1, 5, 192)


def test_terratorch_bands_and_model_bands_that_differ_are_refused(rgb_export):
    from geodino.errors import ConfigError
    from geodino.integrations.terratorch import geodino_vit

    path, _ = rgb_export
    with pytest.raises(ConfigError, match=r"^geodino_vit got bands=\[RED, GREEN, BLUE\] and model_bands="
                       r"\[BLUE, GREEN, RED\], which differ; give one of them \(backbone_bands or "
                       r"backbone_model_bands in a TerraTorch config\)$"):  # fmt: skip
        geodino_vit(ckpt_path=path, bands=["RED", "GREEN", "BLUE"], model_bands=[HLSBands.BLUE, "GREEN", "RED"])
    with pytest.raises(ConfigError, match=r"got bands=4 and model_bands=\[BLUE, GREEN, RED\], which differ"):
        geodino_vit(ckpt_path=path, bands=4, model_bands=["BLUE", "GREEN", "RED"])
    # a count that agrees with the names is no conflict: the names decide
    bb = geodino_vit(ckpt_path=path, bands=3, model_bands=["BLUE", "GREEN", "RED"])
    assert bb.in_chans == 3 and not torch.equal(bb.model.patch_embed.proj.weight[:, 0], rgb_export[1][:, 0])


def test_terratorch_dropped_options_are_named_in_one_warning():
    import warnings

    from geodino.integrations.terratorch import geodino_vit

    with pytest.warns(UserWarning, match=r"^geodino_vit ignores 2 options num_frames, vpt: it takes ckpt_path") as rec:
        geodino_vit(arch="vit_tiny", patch_size=8, bands=3, pretrained=False, num_frames=1, vpt=True)
    assert len(rec) == 1
    with warnings.catch_warnings():  # TerraTorch's factory reads backbone_padding itself: not dropped, no warning
        warnings.simplefilter("error")
        geodino_vit(arch="vit_tiny", patch_size=8, bands=3, pretrained=False, padding="reflect")


def test_terratorch_count_without_names_is_a_one_line_error(model, tmp_path):
    from geodino.errors import ConfigError
    from geodino.integrations.terratorch import geodino_vit

    path = save_backbone(model, tmp_path / "bb.safetensors", normalization=REC)
    with pytest.raises(ConfigError, match="has 4 input bands but 6 were requested; name them"):
        geodino_vit(ckpt_path=str(path), bands=6)


def test_terratorch_registration_follows_its_registry_protocol(monkeypatch):
    """TerraTorch is not installed here: a stand-in `terratorch.registry` with its Registry behaviour (keyed by
    the constructor's __name__, `build(name, **kwargs)`) receives the registration made at import time."""

    class Registry(dict):
        def register(self, fn):
            self[fn.__name__] = fn
            return fn

        def build(self, name, *args, **kwargs):
            return self[name](*args, **kwargs)

    reg = Registry()
    fake = types.ModuleType("terratorch.registry")
    fake.TERRATORCH_BACKBONE_REGISTRY = reg
    monkeypatch.setitem(sys.modules, "terratorch", types.ModuleType("terratorch"))
    monkeypatch.setitem(sys.modules, "terratorch.registry", fake)
    monkeypatch.delitem(sys.modules, "geodino.integrations.terratorch", raising=False)
    import geodino.integrations.terratorch as tt

    assert "geodino_vit" in reg and reg["geodino_vit"] is tt.geodino_vit
    bb = reg.build("geodino_vit", bands=["RED", "NIR"], arch="vit_tiny", patch_size=8, pretrained=False)
    assert bb.in_chans == 2 and bb(torch.rand(1, 2, 16, 16))[0].shape == (1, 5, 192)
    monkeypatch.delitem(sys.modules, "geodino.integrations.terratorch", raising=False)


def test_terratorch_sensor_names_the_band_numbering_and_in_chans_must_agree(rgb_export):
    """Landsat 7 SR_B1..SR_B3 are blue..red, Landsat 8's SR_B2..SR_B4: without a sensor the names are refused
    (asking for one); `sensor=` (backbone_sensor) resolves them. in_chans that differs from the band names'
    count was ignored silently; now one line."""
    from geodino.errors import ConfigError
    from geodino.integrations.terratorch import geodino_vit

    path, w = rgb_export
    with pytest.raises(ConfigError, match="mean different bands in different sensors"):
        geodino_vit(ckpt_path=path, model_bands=["SR_B4", "SR_B3", "SR_B2"])
    l8 = geodino_vit(ckpt_path=path, model_bands=["SR_B4", "SR_B3", "SR_B2"], sensor="landsat8")
    torch.testing.assert_close(l8.model.patch_embed.proj.weight, w, atol=0, rtol=0)  # red, green, blue: R, G, B
    l7 = geodino_vit(ckpt_path=path, model_bands=["SR_B3", "SR_B2", "SR_B1"])  # only Landsat 5/7 have SR_B1
    torch.testing.assert_close(l7.model.patch_embed.proj.weight, w, atol=0, rtol=0)
    with pytest.raises(ConfigError, match=r"^geodino_vit got in_chans=4 and 3 band names"):
        geodino_vit(ckpt_path=path, bands=["red", "green", "blue"], in_chans=4)


@pytest.mark.parametrize(
    "overrides",
    [
        {"pos_embed_rope_base": 10000.0},  # timm's DINOv3 entries fixed rope_temperature=100: tokens were off by 9e-3
        {"layerscale_init": None},  # timm's entries have LayerScale: strict loading failed on missing gamma_1
        {"proj_bias": False, "ffn_bias": False},  # Eva always has these biases: strict loading failed
    ],
    ids=["rope_base", "no_layerscale", "no_biases"],
)
# saving a random model in timm's layout drops its mask token, which test_convert asserts is said
@pytest.mark.filterwarnings("ignore:timm.s DINOv3 Eva stores no mask token:UserWarning")
def test_timm_folder_matches_geodino_for_other_settings(overrides, tmp_path):
    """`timm.create_model("local-dir:...")` rebuilds the exact backbone for settings beyond the released ones: every
    token (class, storage, patches) equals geodino's forward at a non-square size with 5 bands."""
    import timm

    torch.manual_seed(0)
    ours = build_model("vit_tiny", patch_size=8, in_chans=5, depth=2, **overrides).eval()
    with torch.no_grad():  # move every weight off its init so that each one matters
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = save_backbone(ours, tmp_path / "timm_dir", layout="timm")
    tm = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = torch.randn(2, 5, 24, 40)
    with torch.no_grad():
        ff = ours.forward_features(x)
        ref = torch.cat([ff["x_norm_clstoken"][:, None], ff["x_storage_tokens"], ff["x_norm_patchtokens"]], 1)
        torch.testing.assert_close(tm.forward_features(x), ref, atol=1e-5, rtol=1e-5)


# saving a random model in timm's layout drops its mask token, which test_convert asserts is said
@pytest.mark.filterwarnings("ignore:timm.s DINOv3 Eva stores no mask token:UserWarning")
def test_timm_files_read_back_with_their_heads_and_rope_base(tmp_path):
    """A timm file (.safetensors or .pth) records timm's `model_args`; geodino reads back the head count and RoPE
    base from them (it took the table's heads for the width and base 100: tokens off by 0.18)."""
    from geodino.models.checkpoints import load_model

    torch.manual_seed(0)
    ours = build_model("vit_small", patch_size=8, in_chans=4, depth=2, num_heads=12, pos_embed_rope_base=1000.0)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randn(1, 4, 24, 40)
    with torch.no_grad():
        ref = ours.eval().forward_features(x)["x_norm_patchtokens"]
    for name in ("t.safetensors", "t.pth", "t_dir"):
        back = load_model(save_backbone(ours, tmp_path / name, layout="timm")).eval()
        assert back.config["num_heads"] == 12 and back.config["pos_embed_rope_base"] == 1000.0, name
        with torch.no_grad():
            torch.testing.assert_close(back.forward_features(x)["x_norm_patchtokens"], ref, atol=1e-5, rtol=1e-5)


def test_timm_refuses_what_eva_cannot_express(tmp_path):
    from geodino.errors import CheckpointError

    minmax = build_model("vit_tiny", patch_size=8, depth=1, pos_embed_rope_base=None, pos_embed_rope_min_period=0.5,
                         pos_embed_rope_max_period=50.0)  # fmt: skip
    with pytest.raises(CheckpointError, match=r"^a min/max-period RoPE cannot be expressed in timm"):
        save_backbone(minmax, tmp_path / "mm", layout="timm")
    eps6 = build_model("vit_tiny", patch_size=8, depth=1, norm_layer="layernorm")
    with pytest.warns(UserWarning, match=r"eps 1e-6 .* timm's DINOv3 Eva fixes eps 1e-5"):
        save_backbone(eps6, tmp_path / "eps6", layout="timm")


@pytest.mark.parametrize(
    "record",
    [
        dict(REC, scale=2.75e-5, offset=-0.2),  # Landsat C2 L2: folded into mean/std
        dict(REC, scale=[1e-4, 1e-4, 2e-4, 1e-3]),  # per band: folded
        dict(REC, scale=1.0),  # already reflectance
        None,  # nothing recorded: geodino uses the input as given (mean 0 / std 1)
    ],
    ids=["offset", "per_band_scale", "scale_1", "no_record"],
)
# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_hf_processor_on_uint16_dn_matches_geodino(model, record, tmp_path):
    """`AutoImageProcessor` on a uint16 DN raster (as rasterio reads one) gives geodino's normalised input: it
    failed with 'Input tensor should be a float tensor' wherever the DN scale was folded or 1 (do_rescale false),
    and without a record it divided by 255 while `load_backbone` takes such a file's input as given."""
    import numpy as np
    from transformers import AutoImageProcessor

    from geodino.backbones import load_backbone

    folder = save_backbone(model, tmp_path / "hf", layout="hf", normalization=record)
    proc = AutoImageProcessor.from_pretrained(folder)
    dn = np.random.default_rng(0).integers(0, 10000, (24, 40, 4)).astype(np.uint16)  # H, W, bands
    pixels = proc(images=[dn], return_tensors="pt", input_data_format="channels_last")["pixel_values"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the record-less warning
        bb = load_backbone(str(folder))
    n = bb.normalization or {"scale": 1.0, "offset": 0.0}
    scale = torch.as_tensor(n["scale"], dtype=torch.float32).reshape(-1, 1, 1)
    offset = torch.as_tensor(n.get("offset", 0.0), dtype=torch.float32).reshape(-1, 1, 1)
    want = bb.normalize(torch.from_numpy(dn.astype(np.float32)).permute(2, 0, 1)[None] * scale + offset)
    assert pixels.dtype == torch.float32
    torch.testing.assert_close(pixels, want, atol=1e-4, rtol=1e-5)


def test_terratorch_datamodule_stats_follow_the_backbone_bands(rgb_export, tmp_path):
    """`datamodule_stats` gave the export's own band order only: for data in another order (the backbone adapted by
    `bands`/`model_bands` to B, G, R on an R, G, B export) the datamodule standardised each band with another
    band's statistics. With `bands` they follow the data's order; a band the record lacks is one line."""
    from geodino.errors import ConfigError
    from geodino.integrations.terratorch import datamodule_stats, geodino_vit

    rec = {"bands": ["R", "G", "B"], "scale": 1 / 255, "mean": [0.4, 0.3, 0.2], "std": [0.2, 0.15, 0.1]}
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1)
    path = str(save_backbone(model, tmp_path / "rgb.safetensors", normalization=rec))
    bands = [HLSBands.BLUE, HLSBands.GREEN, HLSBands.RED]
    bb = geodino_vit(ckpt_path=path, model_bands=bands)
    torch.testing.assert_close(bb.model.patch_embed.proj.weight, model.patch_embed.proj.weight[:, [2, 1, 0]])
    means, stds = datamodule_stats(path, bands=bands)
    assert means == pytest.approx([0.2 * 255, 0.3 * 255, 0.4 * 255]) and stds == pytest.approx([25.5, 38.25, 51.0])
    assert datamodule_stats(path)[0] == pytest.approx([0.4 * 255, 0.3 * 255, 0.2 * 255])  # the export's order
    with pytest.raises(ConfigError, match=r"^the normalisation .* records covers bands R, G, B, not NIR_NARROW; give"):
        datamodule_stats(path, bands=[*bands, HLSBands.NIR_NARROW])
    # load_backbone matched the kernels (blue = B) but not the record, and fell back to ImageNet's statistics
    from geodino.backbones import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb = load_backbone(path, bands=["blue", "green", "red"])
    assert fb.mean.flatten().tolist() == pytest.approx([0.2, 0.3, 0.4])
    # a record of a sensor geodino does not know (a user's YAML) naming Sentinel-2 codes: matched as the kernels are
    s2 = {"sensor": "my_s2", "bands": ["B02", "B03", "B04", "B08"], "scale": 1e-4, "mean": [0.1, 0.2, 0.3, 0.4],
          "std": [0.1, 0.1, 0.1, 0.1]}  # fmt: skip
    path4 = str(save_backbone(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1), tmp_path / "s2.pth",
                              normalization=s2))  # fmt: skip
    assert datamodule_stats(path4, bands=["nir", "red", "green", "blue"])[0] == pytest.approx([4000, 3000, 2000, 1000])
