"""Every export carries the input normalisation it was trained with, and `load_backbone` uses it."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from geodino.backbones import load_backbone
from geodino.errors import CheckpointError
from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone, save_export
from geodino.models.checkpoints.normalization import check_normalization, folded_mean_std, select_normalization

REC = {
    "sensor": "demo4",
    "bands": ["blue", "green", "red", "nir"],
    "scale": 1e-4,
    "offset": 0.0,
    "mean": [0.05, 0.08, 0.07, 0.3],
    "std": [0.02, 0.03, 0.04, 0.1],
    "origin": "pretraining data (sensor demo4)",
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, in_chans=4, depth=2)


def _mean(fb) -> list[float]:
    return [round(v, 6) for v in fb.mean.flatten().tolist()]


@pytest.mark.parametrize(
    ("layout", "name", "where"),
    [
        ("official", "o.pth", "o.heads.pth (sidecar of o.pth)"),
        ("official", "o.safetensors", "o.safetensors (safetensors metadata geodino_normalization)"),
        ("hf", "hf", "hf/preprocessor_config.json"),
        ("timm", "t.safetensors", "t.safetensors (safetensors metadata geodino_normalization)"),
        ("timm", "t.pth", "t.heads.pth (sidecar of t.pth)"),
        ("timm", "tdir", "tdir/config.json (geodino_normalization)"),
    ],
)
def test_every_format_carries_the_record_and_load_backbone_uses_it(tmp_path, model, layout, name, where):
    out = save_backbone(model, tmp_path / name, layout=layout, normalization=REC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recorded normalisation gives no warning
        fb = load_backbone(str(out))
    assert _mean(fb) == REC["mean"] and [round(v, 6) for v in fb.std.flatten().tolist()] == REC["std"]
    assert fb.bands == REC["bands"] and fb.normalization["scale"] == pytest.approx(1e-4)
    assert fb.norm_source.startswith(f"recorded in {where}: demo4 (blue, green, red, nir)")
    x = torch.rand(1, 4, 16, 16)
    expected = (x - torch.tensor(REC["mean"]).view(1, 4, 1, 1)) / torch.tensor(REC["std"]).view(1, 4, 1, 1)
    torch.testing.assert_close(fb.normalize(x), expected)


def test_export_writes_the_record_into_sidecar_and_metadata(tmp_path, model):
    pth, st, heads = save_export(tmp_path / "bb", model, dict(model.config), normalization=REC)
    assert torch.load(heads, weights_only=True)["normalization"]["mean"] == REC["mean"]
    from safetensors import safe_open

    with safe_open(str(st), framework="pt") as f:
        assert json.loads(f.metadata()["geodino_normalization"])["bands"] == REC["bands"]
    assert read_backbone_weights(pth).normalization["std"] == REC["std"]


def test_no_record_warns_naming_the_flag_and_a_passed_sensor_wins(tmp_path, model):
    plain = tmp_path / "plain.pth"
    torch.save(model.state_dict(), plain)
    with pytest.warns(UserWarning, match=r"records no input normalisation: using mean 0 / std 1; .*\?sensor=NAME"):
        fb = load_backbone(str(plain))
    assert fb.norm_source == "none recorded: mean 0 / std 1" and _mean(fb) == [0.0] * 4
    out = save_backbone(model, tmp_path / "r.safetensors", normalization=REC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb = load_backbone(f"{out}?sensor=sentinel2_l2a&bands=B02,B03,B04,B08")
    assert fb.norm_source.startswith("sensor sentinel2_l2a (passed); the file records demo4")
    assert _mean(fb) != REC["mean"]


def test_band_adaptation_keeps_the_recorded_stats_of_the_kept_bands(tmp_path, model):
    out = save_backbone(model, tmp_path / "r.safetensors", normalization=REC)
    fb = load_backbone(str(out), bands=["red", "nir"])
    assert fb.in_chans == 2 and _mean(fb) == [0.07, 0.3] and fb.bands == ["red", "nir"]
    with pytest.warns(UserWarning, match="after band adaptation to bands the record lacks"):
        with pytest.warns(UserWarning, match=r"1 band \(swir16\) match(es)? no band of checkpoint"):
            load_backbone(str(out), bands=["red", "nir", "swir16"])


def test_hf_folder_loads_with_auto_image_processor_and_auto_model(tmp_path, model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoImageProcessor, AutoModel

    folder = save_backbone(model, tmp_path / "hf", layout="hf", normalization=REC)
    proc = AutoImageProcessor.from_pretrained(folder)
    assert list(proc.image_mean) == REC["mean"] and proc.rescale_factor == pytest.approx(1e-4)
    dn = torch.randint(1, 10000, (4, 32, 32)).float()
    pixels = proc(images=[dn], return_tensors="pt", input_data_format="channels_first")["pixel_values"]
    fb = load_backbone(str(folder))
    torch.testing.assert_close(pixels, fb.normalize(dn[None] * 1e-4))
    hf = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        cls = hf(pixel_values=pixels).last_hidden_state[:, 0]
    torch.testing.assert_close(cls, fb(pixels), atol=1e-4, rtol=1e-4)


def test_hf_per_band_scale_is_folded_into_mean_and_std(tmp_path, model):
    from geodino.models.checkpoints.hf import hf_preprocessor_config

    rec = dict(REC, scale=[1e-4, 1e-4, 2e-4, 2e-4], offset=-0.1)
    pp = hf_preprocessor_config(check_normalization(rec), 8, 4)
    assert pp["do_rescale"] is True and pp["rescale_factor"] == 1.0  # folded; the rescale turns integers to floats
    dn = torch.tensor([1000.0, 2000.0, 3000.0, 4000.0])
    s, o = torch.tensor(rec["scale"]), -0.1
    want = (dn * s + o - torch.tensor(REC["mean"])) / torch.tensor(REC["std"])
    got = (dn - torch.tensor(pp["image_mean"])) / torch.tensor(pp["image_std"])
    torch.testing.assert_close(got, want)
    assert folded_mean_std(check_normalization(REC))[1][0] == pytest.approx(0.02 / 1e-4)


def test_hf_folder_without_record_is_not_taken_as_recorded(tmp_path, model):
    with pytest.warns(UserWarning, match=r"HF folder .* records no input normalisation"):
        folder = save_backbone(model, tmp_path / "hf", layout="hf")
    pp = json.loads((folder / "preprocessor_config.json").read_text())
    assert pp["geodino_normalization"] is None and pp["do_normalize"] is False and len(pp["image_mean"]) == 4
    with pytest.warns(UserWarning, match="records no input normalisation"):
        load_backbone(str(folder))


def test_timm_folder_loads_in_timm_with_pretrained_cfg(tmp_path, model):
    import timm

    folder = save_backbone(model, tmp_path / "tdir", layout="timm", normalization=REC)
    tm = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert list(tm.pretrained_cfg["mean"]) == REC["mean"] and tm.pretrained_cfg["input_size"][0] == 4
    fb = load_backbone(str(folder))
    x = fb.normalize(torch.rand(1, 4, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(tm.forward_features(x)[:, 0], fb(x), atol=1e-5, rtol=1e-5)


def test_convert_carries_the_record_and_selects_adapted_bands(tmp_path, model):
    from geodino.models.checkpoints.convert import convert_checkpoint

    src = save_backbone(model, tmp_path / "a.safetensors", normalization=REC)
    hf = convert_checkpoint(src, tmp_path / "hf", dst_layout="hf")
    assert read_backbone_weights(hf).normalization["bands"] == REC["bands"]
    two = convert_checkpoint(src, tmp_path / "two.pth", bands=["nir", "red"])
    assert read_backbone_weights(two).normalization["mean"] == [0.3, 0.07]


def test_convert_to_bands_the_record_lacks_records_the_named_sensor(tmp_path):
    """`convert --bands R G B N --sensor naip` of an R,G,B export: the record covers R, G, B only, so the output
    recorded nothing (an HF folder with do_normalize false, mean 0 / std 1) although naip has every output band;
    it records R, G, B's recorded statistics and naip's for N now (without a sensor it still records nothing, with
    the warning)."""
    from geodino.data.sensors import get_sensor
    from geodino.models.checkpoints.convert import convert_checkpoint

    torch.manual_seed(0)
    rgb = {"bands": ["R", "G", "B"], "scale": 1 / 255, "mean": [0.4, 0.4, 0.3], "std": [0.2, 0.15, 0.14]}
    src = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "rgb.pth", normalization=rgb)
    naip = get_sensor("naip")
    with pytest.warns(UserWarning, match=r"1 band \(N\) match(es)? no band of checkpoint"):
        hf = convert_checkpoint(src, tmp_path / "hf", dst_layout="hf", bands=["R", "G", "B", "N"], sensor="naip")
    rec = read_backbone_weights(hf).normalization
    assert rec["sensor"] == "naip" and rec["bands"] == ["R", "G", "B", "N"]
    assert rec["mean"] == pytest.approx([*rgb["mean"], naip.mean[3]]) and rec["std"][3] == pytest.approx(naip.std[3])
    pp = json.loads((hf / "preprocessor_config.json").read_text())
    assert pp["do_normalize"] is True and pp["image_mean"] == pytest.approx([*rgb["mean"], naip.mean[3]])
    with pytest.warns(UserWarning, match=r"records none"):  # no sensor: nothing covers N
        with pytest.warns(UserWarning, match=r"1 band \(N\) match(es)? no band of checkpoint"):
            pth = convert_checkpoint(src, tmp_path / "x.pth", bands=["R", "G", "B", "N"])
    assert read_backbone_weights(pth).normalization is None


def test_bad_records_are_one_line_errors():
    with pytest.raises(CheckpointError, match="normalisation has 2 means and 1 std;"):
        check_normalization({"mean": [0, 1], "std": [1]}, "x.safetensors")
    with pytest.raises(CheckpointError, match="names 3 bands but has 2 means"):
        check_normalization({"mean": [0, 1], "std": [1, 1], "bands": ["a", "b", "c"]}, "x")
    assert select_normalization(REC, ["NIR", "Blue"])["mean"] == [0.3, 0.05]
    assert select_normalization(REC, ["swir"]) is None


def test_training_export_records_the_data_sensor(tmp_path, model):
    from geodino.data.sensors import Sensor, save_sensor_yaml
    from geodino.train.checkpointing import FORMAT, export

    sensor = Sensor("demo4", ("blue", "green", "red", "nir"), 1e-4, (0.1, 0.2, 0.3, 0.4), (0.1, 0.1, 0.1, 0.2), False)
    yaml = save_sensor_yaml(sensor, tmp_path / "sensor.yaml")
    state = {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()}
    data = {"sources": [{"type": "raster", "paths": ["x"], "sensor": str(yaml)}], "norm_sensor": None}
    ckpt = {"state_dict": state, "geodino": {"format": FORMAT, "config": {"data": data}, "backbone": model.config}}
    torch.save(ckpt, tmp_path / "last.ckpt")
    pth = export(tmp_path / "last.ckpt", tmp_path / "exp" / "bb.pth")[0]
    fb = load_backbone(str(pth))
    assert _mean(fb) == [0.1, 0.2, 0.3, 0.4] and fb.bands == ["blue", "green", "red", "nir"]
    assert fb.normalization["origin"] == "pretraining data (sensor demo4)"
    # the training checkpoint itself, as a spec, gives the same
    assert _mean(load_backbone(str(tmp_path / "last.ckpt"))) == [0.1, 0.2, 0.3, 0.4]
    # a data config whose sensor is unnamed gives no record, and export says what to pass
    ckpt["geodino"]["config"]["data"]["sources"][0]["sensor"] = None
    torch.save(ckpt, tmp_path / "last.ckpt")
    with pytest.warns(UserWarning, match=r"records no input normalisation \(data.sources\[0\] names no sensor\)"):
        export(tmp_path / "last.ckpt", tmp_path / "exp" / "bb.pth", overwrite=True)


def test_a_web_image_source_without_a_sensor_records_the_imagenet_one_it_trained_with():
    """An images/tar source naming no sensor trains with imagenet statistics; its export recorded none."""
    from geodino.data.normalization import data_normalization

    rec, why = data_normalization({"sources": [{"type": "images", "paths": ["x"], "sensor": None}]})
    assert why == "" and rec["mean"] == pytest.approx([0.485, 0.456, 0.406])
    rec, why = data_normalization({"sources": [{"type": "raster", "paths": ["x"], "sensor": None}]})
    assert rec is None and why == "data.sources[0] names no sensor"  # rasters infer theirs from the files


def test_record_bands_match_the_sensor_codes_the_kernels_match(tmp_path):
    """A record naming blue, green, red, nir of sentinel2_l2a and bands asked as B08, B04, B02: the patch embedding
    was adapted through the sensor's names (B02 is blue) but the record was not, so load_backbone fell back to
    ImageNet's mean/std (warning that the record lacked the bands) and `convert --bands` recorded nothing; both
    now take the record's statistics in the asked order."""
    from geodino.models.checkpoints.convert import convert_checkpoint

    rec = {"sensor": "sentinel2_l2a", "bands": ["blue", "green", "red", "nir"], "scale": 1e-4,
           "mean": [0.01, 0.02, 0.03, 0.04], "std": [0.1, 0.2, 0.3, 0.4]}  # fmt: skip
    torch.manual_seed(0)
    m = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    src = save_backbone(m, tmp_path / "bb.safetensors", normalization=rec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "records no input normalisation" warning
        fb = load_backbone(str(src), bands=["B08", "B04", "B02"])
    assert fb.bands == ["nir", "red", "blue"] and _mean(fb) == pytest.approx([0.04, 0.03, 0.01])
    hf = convert_checkpoint(src, tmp_path / "hf", dst_layout="hf", bands=["nir", "red", "B02"])
    pp = json.loads((hf / "preprocessor_config.json").read_text())
    assert pp["image_mean"] == [0.04, 0.03, 0.01] and pp["image_std"] == [0.4, 0.3, 0.1]
    w = m.patch_embed.proj.weight.detach()  # and the kernels follow the same bands
    k = read_backbone_weights(hf).state["patch_embed.proj.weight"]
    torch.testing.assert_close(k, w[:, [3, 2, 0]])  # a subset of the file's bands: copied unscaled
    # a name no sensor alias resolves still finds nothing (and the None of an unresolved name matches nothing)
    assert select_normalization(check_normalization(rec), ["blue", "thermal"], lambda b: None) is None
