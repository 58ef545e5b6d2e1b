"""geodino.backbones: specs, frozen features, normalisation, band adaptation, fingerprints, timm baselines."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.backbones import layer_indices, load_backbone, parse_spec
from geodino.errors import CheckpointError, ConfigError, InputError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import trained_like


def test_parse_spec():
    assert parse_spec("arch:vit_small?seed=0&bands=12&patch_size=16") == (
        "arch",
        "vit_small",
        {"seed": "0", "bands": "12", "patch_size": "16"},
    )
    assert parse_spec("timm:resnet18") == ("timm", "resnet18", {})
    assert parse_spec("/x/y.pth?bands=B02,B03") == ("path", "/x/y.pth", {"bands": "B02,B03"})
    with pytest.raises(ConfigError, match="not key=value"):
        parse_spec("arch:vit_small?seed")


def test_layer_sets():
    assert layer_indices("last", 12) == [11]
    assert layer_indices("four_last", 12) == [8, 9, 10, 11]
    assert layer_indices("four_even", 12) == [2, 5, 8, 11]
    assert layer_indices("four_even", 24) == [5, 11, 17, 23]
    assert layer_indices("four_even_official", 24) == [4, 11, 17, 23]
    assert layer_indices("four_even", 40) == [9, 19, 29, 39]
    assert layer_indices([0, -1], 12) == [0, 11]
    with pytest.raises(ConfigError, match="out of range"):
        layer_indices([12], 12)
    with pytest.raises(ConfigError, match="unknown layers 'middle'"):
        layer_indices("middle", 12)


def test_arch_spec_is_seeded_frozen_and_gives_features():
    fb = load_backbone("arch:vit_tiny?seed=0&bands=5&depth=4")
    again = load_backbone("arch:vit_tiny?seed=0&bands=5&depth=4")
    other = load_backbone("arch:vit_tiny?seed=1&bands=5&depth=4")
    assert (fb.in_chans, fb.n_blocks, fb.embed_dim, fb.patch_size) == (5, 4, 192, 16)
    assert fb.fingerprint == again.fingerprint != other.fingerprint
    torch.testing.assert_close(fb.model.cls_token, again.model.cls_token)
    # no seed means seed 0, whatever the global generator holds: one name, one model (and one cache entry)
    torch.manual_seed(123)
    default = load_backbone("arch:vit_tiny?depth=4&bands=5")
    assert default.fingerprint == fb.fingerprint
    assert torch.equal(default.model.patch_embed.proj.weight, fb.model.patch_embed.proj.weight)
    torch.manual_seed(7)
    t0 = load_backbone("timm:vit_tiny_patch16_224")
    t1 = load_backbone("timm:vit_tiny_patch16_224?seed=0")
    assert t0.fingerprint == t1.fingerprint
    assert torch.equal(t0.model.patch_embed.proj.weight, t1.model.patch_embed.proj.weight)
    # building a seeded backbone leaves the caller's generator where it was (the seed is not a side effect)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_backbone("arch:vit_tiny?depth=1")
    load_backbone("timm:vit_tiny_patch16_224")
    assert torch.equal(torch.rand(3), expected)
    assert not any(p.requires_grad for p in fb.parameters())
    fb.train()
    assert not fb.training and not fb.model.training
    x = torch.randn(2, 5, 32, 48)
    maps, cls = fb.features(x, layers="four_last")
    assert len(maps) == 4 and maps[0].shape == (2, 192, 2, 3) and cls[0].shape == (2, 192)
    ref = fb.model.get_intermediate_layers(x, n=[1, 3], reshape=True, return_class_token=True)
    maps2, cls2 = fb.features(x, layers=[1, 3])
    torch.testing.assert_close(maps2[1], ref[1][0])
    torch.testing.assert_close(cls2[0], ref[0][1])
    torch.testing.assert_close(fb(x), cls[-1])
    assert fb.normalize(x).equal(x)  # 5 unnamed bands without a sensor: identity statistics


def test_sensor_normalisation_selects_bands():
    from geodino.data.sensors import get_sensor

    s2 = get_sensor("sentinel2_l2a")
    fb = load_backbone("arch:vit_tiny?depth=1&bands=B02,B03,B04,B08&sensor=sentinel2_l2a")
    sel = s2.select(["B02", "B03", "B04", "B08"])
    x = torch.rand(1, 4, 16, 16)
    expected = (x - torch.tensor(sel.mean).view(-1, 1, 1)) / torch.tensor(sel.std).view(-1, 1, 1)
    torch.testing.assert_close(fb.normalize(x), expected)
    assert fb.bands == ["B02", "B03", "B04", "B08"]
    rgb = load_backbone("arch:vit_tiny?depth=1")
    torch.testing.assert_close(rgb.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_checkpoint_spec_band_adaptation_through_sensor_names(tmp_path):
    rgb = trained_like()
    path = tmp_path / "dinov3_vitt16_pretrain_sat493m-test.pth"
    save_backbone(rgb, path)
    fb_rgb = load_backbone(str(path))
    torch.testing.assert_close(fb_rgb.mean.flatten(), torch.tensor([0.430, 0.411, 0.296]))  # SAT stats from name
    with pytest.warns(UserWarning, match=r"1 band \(B08\) match(es)? no band of checkpoint"):
        fb = load_backbone(path, bands=["B02", "B03", "B04", "B08"], sensor="sentinel2_l2a", fill="zeros")
    assert fb.in_chans == 4 and fb.bands == ["B02", "B03", "B04", "B08"]
    x = torch.randn(1, 3, 32, 32)
    x4 = torch.randn(1, 4, 32, 32)
    x4[:, 2], x4[:, 1], x4[:, 0] = x[:, 0], x[:, 1], x[:, 2]  # B04 = red, B03 = green, B02 = blue
    torch.testing.assert_close(fb(x4), fb_rgb(x), atol=1e-5, rtol=1e-5)
    assert fb.fingerprint != fb_rgb.fingerprint
    with pytest.raises(CheckpointError, match=r"has 3 input bands but bands=12 was requested; name the bands"):
        load_backbone(f"{path}?bands=12")


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_named_bands_of_the_files_count_are_matched_by_name(tmp_path):
    """Bands named in another order move the kernels (the count alone says nothing about the order), and a name
    that matches no band of the file gets the mean kernel with a warning naming it."""
    m = trained_like(in_chans=4)
    path = tmp_path / "four.pth"
    save_backbone(
        m,
        path,
        normalization={"bands": ["blue", "green", "red", "nir"], "mean": [0.0] * 4, "std": [1.0] * 4, "scale": 1.0},
    )
    same = load_backbone(path)
    moved = load_backbone(f"{path}?bands=nir,red,green,blue")
    x = torch.randn(1, 4, 32, 32)
    torch.testing.assert_close(moved(x.flip(1)), same(x), atol=1e-5, rtol=1e-5)
    assert moved.bands == ["nir", "red", "green", "blue"]
    torch.testing.assert_close(moved.mean.flatten(), torch.zeros(4))  # the record follows the names
    with pytest.warns(
        UserWarning,
        match=r"1 band \(nri\) matches no band of checkpoint .*four.pth \(blue, green, "
        r"red, nir\): it gets the mean kernel",
    ):
        typo = load_backbone(path, bands=["blue", "green", "red", "nri"])
    w = typo.model.patch_embed.proj.weight
    torch.testing.assert_close(w[:, 3], m.patch_embed.proj.weight.mean(1))
    unchanged = load_backbone(path, bands=["Blue", "GREEN", "red", "nir"])  # the file's own bands: kept as is
    assert unchanged.fingerprint == same.fingerprint
    # sensor names of the same bands match through the sensor's aliases (B08 is Sentinel-2's nir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2 = load_backbone(path, bands=["B02", "B03", "B04", "B08"])
        s2_moved = load_backbone(path, bands=["B08", "B04", "B03", "B02"], sensor="sentinel2_l2a")
    assert torch.equal(s2.model.patch_embed.proj.weight, m.patch_embed.proj.weight)
    torch.testing.assert_close(s2_moved.model(x.flip(1)), same.model(x), atol=1e-5, rtol=1e-5)


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_fingerprint_is_the_file_hash(tmp_path):
    import hashlib
    import json

    path = tmp_path / "a.safetensors"
    save_backbone(trained_like(), path)
    fb = load_backbone(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = hashlib.sha256(json.dumps({"file": digest, "which": "teacher"}, sort_keys=True).encode()).hexdigest()
    assert fb.fingerprint == expected


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_hf_folder_spec(tmp_path):
    m = trained_like(in_chans=4)
    folder = save_backbone(m, tmp_path / "hf", layout="hf")
    fb = load_backbone(folder)
    x = torch.randn(1, 4, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(fb(x), m(x), atol=1e-5, rtol=1e-5)


def test_timm_baselines():
    vit = load_backbone("timm:vit_tiny_patch16_224?seed=0")
    assert (vit.kind, vit.in_chans, vit.patch_size, vit.n_blocks, vit.embed_dim) == ("timm", 3, 16, 12, 192)
    maps, cls = vit.features(torch.randn(2, 3, 32, 48), layers="four_even")
    assert len(maps) == 4 and maps[0].shape == (2, 192, 2, 3) and cls[0].shape == (2, 192)
    cnn = load_backbone("timm:resnet18?bands=4")
    assert cnn.in_chans == 4 and cnn.patch_size == 32
    maps, cls = cnn.features(torch.randn(1, 4, 64, 64), layers="last")
    assert maps[0].shape == (1, 512, 2, 2)
    torch.testing.assert_close(cls[0], maps[0].mean(dim=(2, 3)))
    with pytest.raises(ConfigError, match="unknown timm model 'vit_tiny_patch16_2244'"):
        load_backbone("timm:vit_tiny_patch16_2244")


def test_bad_inputs(tmp_path):
    fb = load_backbone("arch:vit_tiny?depth=1")
    with pytest.raises(InputError, match=r"image size 30x32 is not a multiple of the patch size 16"):
        fb.features(torch.randn(1, 3, 30, 32))
    with pytest.raises(InputError, match=r"input has 4 bands but backbone arch:vit_tiny\?depth=1 takes 3"):
        fb.features(torch.randn(1, 4, 32, 32))
    with pytest.raises(CheckpointError, match="not found"):
        load_backbone(tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="unknown architecture 'vit_giant'"):
        load_backbone("arch:vit_giant")
    path = tmp_path / "m.pth"
    save_backbone(trained_like(), path)
    with pytest.raises(ConfigError, match="unknown option"):
        load_backbone(f"{path}?depth=3")


def test_wraps_an_in_memory_model():
    m = trained_like()
    fb = load_backbone(m)
    assert fb.spec == "<module>" and len(fb.fingerprint) == 64
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(fb(x), m(x))


def test_full_cli_reports_bad_backbone_spec(capsys):
    """Through the complete `geodino` parser (every part's commands registered)."""
    import geodino.cli

    assert geodino.cli.main(["info", "arch:vit_gigantic"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("geodino: error: unknown architecture 'vit_gigantic'") and "\n" not in err


def test_preprocess_scales_raw_pixels_and_normalize_refuses_them(tmp_path):
    """`preprocess` takes raw pixels as readers give them: 8-bit RGB equals official DINOv3's `make_transform`
    (ToDtype(float32, scale=True) + Normalize with ImageNet statistics); a backbone's record (or a sensor passed
    with it) brings its DN scale and offset. `normalize` refuses integer input (uint8 reached values of ~1100)."""
    from torchvision.transforms import v2

    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    bb = load_backbone("arch:vit_tiny?depth=1&patch_size=8")  # 3 bands, no sensor: ImageNet statistics
    official = v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    )
    torch.testing.assert_close(bb.preprocess(x), official(x), atol=1e-5, rtol=0)
    assert bb.dn_scale() is None
    with pytest.raises(
        InputError, match=r"^normalize takes reflectance-scaled float input, got torch.uint8 .*preprocess"
    ):
        bb.normalize(x)

    dn = torch.randint(7273, 30000, (3, 16, 16), dtype=torch.int32).to(torch.uint16)
    l8 = load_backbone("arch:vit_tiny?depth=1&patch_size=8&bands=red,green,blue&sensor=landsat8")
    expect = l8.normalize(dn.float() * 2.75e-5 - 0.2)  # Landsat C2 L2 surface reflectance
    torch.testing.assert_close(l8.preprocess(dn), expect, atol=1e-5, rtol=0)
    torch.testing.assert_close(bb.preprocess(dn), bb.normalize(dn.float() / 10000), atol=1e-5, rtol=0)  # no record

    norm = {"bands": ["R", "G", "B"], "scale": [1e-4, 2e-4, 1e-4], "offset": -0.1, "mean": [0.1] * 3, "std": [0.2] * 3}
    path = save_backbone(trained_like(), tmp_path / "bb.safetensors", normalization=norm)
    rec = load_backbone(str(path))
    scale = torch.tensor([1e-4, 2e-4, 1e-4]).reshape(3, 1, 1)
    torch.testing.assert_close(rec.preprocess(dn), (dn.float() * scale - 0.1 - 0.1) / 0.2, atol=1e-5, rtol=0)
    refl = torch.rand(3, 16, 16)
    torch.testing.assert_close(bb.preprocess(refl), bb.normalize(refl))  # floats are reflectance already


def test_preprocess_uses_the_dtype_rule_where_the_record_does_not_fit():
    """As embed and the probes (`data.bit_depth.scale_misfit`): float input is reflectance whatever the record
    (a passed Sentinel-2 sensor scaled it by 1e-4 again), uint8 with a 16-bit scale is /255 (it gave -0.97..-0.55),
    16-bit values above 255 with an 8-bit scale are /10000 (they gave 118..546)."""
    s2 = load_backbone("arch:vit_tiny?depth=1&patch_size=8&bands=red,green,blue&sensor=sentinel2_l2a")
    refl = torch.rand(3, 16, 16) * 0.5
    torch.testing.assert_close(s2.preprocess(refl), s2.normalize(refl))
    u8 = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(s2.preprocess(u8), s2.normalize(u8.float() / 255), atol=1e-6, rtol=0)
    rgb8 = load_backbone("arch:vit_tiny?depth=1&patch_size=8&sensor=imagenet")
    u16 = torch.randint(300, 30000, (3, 16, 16), dtype=torch.int32).to(torch.uint16)
    torch.testing.assert_close(rgb8.preprocess(u16), rgb8.normalize(u16.float() / 10000), atol=1e-6, rtol=0)
    small = torch.randint(0, 256, (3, 16, 16), dtype=torch.int32).to(torch.uint16)  # 8-bit values stored as 16 bits
    fresh = load_backbone("arch:vit_tiny?depth=1&patch_size=8&sensor=imagenet")  # rgb8 keeps its uint16 choice
    torch.testing.assert_close(fresh.preprocess(small), fresh.normalize(small.float() / 255), atol=1e-6, rtol=0)


def test_preprocess_auto_rule_keeps_its_first_choice_across_batches():
    """A 16-bit archive read batch by batch through an 8-bit record: a dark first batch (values <= 255) fits the
    record and sets the choice; decided per batch, a later bright batch was /10000 while the dark one was /255
    (39x brighter). The contradicting batch is refused, naming the rule to pass; rule="dtype" / "record" scale every
    batch alike, and a first batch above 255 keeps the dtype rule for a later dark one."""
    rgb8 = load_backbone("arch:vit_tiny?depth=1&patch_size=8&sensor=imagenet")
    dark = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.int32).to(torch.uint16)
    bright = torch.randint(300, 30000, (1, 3, 16, 16), dtype=torch.int32).to(torch.uint16)
    torch.testing.assert_close(rgb8.preprocess(dark), rgb8.normalize(dark.float() / 255), atol=1e-6, rtol=0)
    with pytest.raises(InputError, match=r"^this torch.uint16 batch does not fit .*rule='dtype'"):
        rgb8.preprocess(bright)
    torch.testing.assert_close(rgb8.preprocess(bright, rule="dtype"), rgb8.normalize(bright.float() / 10000))
    torch.testing.assert_close(
        rgb8.preprocess(bright, rule="record"), rgb8.normalize(bright.float() / 255), atol=1e-5, rtol=1e-6
    )
    other = load_backbone("arch:vit_tiny?depth=1&patch_size=8&sensor=imagenet")
    torch.testing.assert_close(other.preprocess(bright), other.normalize(bright.float() / 10000), atol=1e-6, rtol=0)
    torch.testing.assert_close(other.preprocess(dark), other.normalize(dark.float() / 10000), atol=1e-6, rtol=0)
    u8 = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)  # uint8 has its own choice
    torch.testing.assert_close(other.preprocess(u8), other.normalize(u8.float() / 255), atol=1e-6, rtol=0)
    bare = load_backbone("arch:vit_tiny?depth=1&patch_size=8")
    with pytest.raises(InputError, match=r"rule='record' but backbone .* carries no DN scale"):
        bare.preprocess(u8, rule="record")
    with pytest.raises(InputError, match=r"rule='tile' is not one of"):
        bare.preprocess(u8, rule="tile")


def test_band_count_message_names_the_python_and_the_spec_forms():
    """The band-count refusal reaches CLI users too (embed, viz, curate): it named only the Python keyword
    `bands=[...]`; it now gives the spec a -b flag takes, the backbone's own options kept."""
    bb = load_backbone("arch:vit_tiny?depth=1&patch_size=8")
    x = torch.rand(1, 4, 16, 16)
    spec = r"'arch:vit_tiny\?depth=1&patch_size=8&bands=red,green,blue' \(your band names\) as a -b/--backbone spec"
    with pytest.raises(InputError, match=r"^input has 4 bands but backbone .* takes 3; .*load_backbone\(\.\.\., "):
        bb.features(x)
    with pytest.raises(InputError, match=spec):
        bb.normalize(x[0])


def test_preprocess_refuses_float_dn_and_band_numbers_and_bad_fill(tmp_path):
    """Float DN (`x.float()` of a uint16 read) under a backbone whose record scales DN by 1e-4 was read as
    reflectance, 10,000x too bright (mean 87,938 against 6.5 for the same DN as integers), while the HF processor
    of the same export scaled it: refused with the ways out; rule='record' scales it as the integers are. Band
    numbers to load_backbone were matched as names, none matched, and the patch embedding became the mean kernel
    with only a warning; a bad `fill` passed silently when no band needed filling."""
    s2 = load_backbone("arch:vit_tiny?depth=1&patch_size=8&bands=red,green,blue&sensor=sentinel2_l2a")
    dn = torch.randint(1, 10000, (1, 3, 16, 16), dtype=torch.int32)
    with pytest.raises(InputError, match=r"^float input reaches \d+, which is not reflectance.*rule='record'"):
        s2.preprocess(dn.float())
    torch.testing.assert_close(s2.preprocess(dn.float(), rule="record"), s2.preprocess(dn), atol=1e-5, rtol=1e-6)
    refl = torch.rand(1, 3, 16, 16) * 1.5  # bright but plausible reflectance passes
    torch.testing.assert_close(s2.preprocess(refl), s2.normalize(refl))
    with pytest.raises(ConfigError, match=r"^bands=\[1, 2, 3\] cannot be used: a backbone's bands are band names"):
        load_backbone("arch:vit_tiny?depth=1&patch_size=8", bands=[1, 2, 3])
    # a checkpoint whose bands need no filling (an arch: spec refuses fill= outright: it has nothing to adapt)
    path = save_backbone(build_model("vit_tiny", depth=1, patch_size=8), tmp_path / "rgb.safetensors")
    with pytest.raises(ConfigError, match=r"^fill='foo' must be 'mean' or 'zeros'"):
        load_backbone(path, fill="foo")
