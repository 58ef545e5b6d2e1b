"""`geodino convert FILE OUT --sensor S` without `--bands` records the sensor's normalisation (its band names,
scale, mean and std as geodino's sensors table gives them); it recorded nothing, so an HF folder's processor
passed DN through. A sensor whose band count is not the checkpoint's is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

import geodino.cli
from geodino.data.sensors import get_sensor
from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


def tiny(c: int, tmp_path, record=None):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=c, depth=1)
    return save_backbone(model, tmp_path / f"t{c}.safetensors", normalization=record)


def convert(*argv) -> int:
    return geodino.cli.main([str(a) for a in argv])


def test_sensor_alone_records_the_sensor(tmp_path):
    src = tiny(4, tmp_path)
    out = tmp_path / "hf"
    assert convert("convert", src, out, "--to", "hf", "--sensor", "naip") == 0
    naip = get_sensor("naip").to_dict()
    rec = read_backbone_weights(out).normalization
    assert rec["sensor"] == "naip" and rec["bands"] == ["R", "G", "B", "N"]
    assert rec["mean"] == pytest.approx(naip["mean"]) and rec["std"] == pytest.approx(naip["std"])
    pp = json.loads((out / "preprocessor_config.json").read_text())
    assert pp["do_normalize"] is True and pp["rescale_factor"] == pytest.approx(naip["scale"])
    assert pp["image_mean"] == pytest.approx(naip["mean"]) and pp["image_std"] == pytest.approx(naip["std"])
    assert pp["geodino_normalization"]["bands"] == ["R", "G", "B", "N"]


def test_src_bands_pick_the_sensor_bands_and_bands_still_override(tmp_path):
    src = tiny(4, tmp_path)
    s2 = get_sensor("sentinel2_l2a").to_dict()
    idx = [s2["bands"].index(b) for b in ("B02", "B03", "B04", "B08")]
    out = tmp_path / "o.safetensors"
    argv = ["convert", src, out, "--sensor", "sentinel2_l2a", "--src-bands", "B02", "B03", "B04", "B08"]
    assert convert(*argv) == 0
    rec = read_backbone_weights(out).normalization
    assert rec["bands"] == ["B02", "B03", "B04", "B08"] and rec["scale"] == pytest.approx(s2["scale"])
    assert rec["mean"] == pytest.approx([s2["mean"][i] for i in idx])
    # --bands keeps deciding (a subset of the named bands: the record follows)
    out2 = tmp_path / "o2.safetensors"
    assert convert(*argv[:2], out2, *argv[3:], "--bands", "B08", "B04") == 0
    rec2 = read_backbone_weights(out2).normalization
    assert rec2["bands"] == ["B08", "B04"] and rec2["mean"] == pytest.approx([s2["mean"][idx[3]], s2["mean"][idx[2]]])


def test_a_recorded_normalisation_is_kept(tmp_path):
    """The record the model was trained with stays; an unnamed one is named after the sensor's bands."""
    unnamed = {"mean": [0.1, 0.2, 0.3, 0.4], "std": [0.5, 0.5, 0.5, 0.5]}
    src = tiny(4, tmp_path, unnamed)
    out = tmp_path / "o.safetensors"
    assert convert("convert", src, out, "--sensor", "naip") == 0
    rec = read_backbone_weights(out).normalization
    assert rec["mean"] == pytest.approx(unnamed["mean"]) and rec["bands"] == ["R", "G", "B", "N"]


def test_a_sensor_with_another_band_count_is_refused_in_one_line(tmp_path, capsys):
    src = tiny(4, tmp_path)
    out = tmp_path / "hf"
    assert convert("convert", src, out, "--to", "hf", "--sensor", "sentinel2_l2a") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sensor sentinel2_l2a has 12 bands" in err[0] and "takes 4 input bands" in err[0]
    assert not out.exists()
    assert convert("convert", src, out, "--to", "hf", "--sensor", "naip", "--src-bands", "R", "G", "B") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--src-bands name 3 bands" in err[0]


def test_help_says_what_sensor_alone_does(capsys):
    with pytest.raises(SystemExit):
        geodino.cli.main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "without --bands, the output records its normalisation" in text


def test_a_file_naming_some_of_the_sensor_bands_is_not_refused(tmp_path):
    """A 4-band record of 12-band Sentinel-2 names the file's bands: --sensor alone keeps it (it was refused for
    the sensor's 12 bands)."""
    rec = {"sensor": "sentinel2_l2a", "bands": ["B02", "B03", "B04", "B08"], "mean": [0.1] * 4, "std": [0.2] * 4}
    src = tiny(4, tmp_path, rec)
    out = tmp_path / "o.safetensors"
    assert convert("convert", src, out, "--sensor", "sentinel2_l2a") == 0
    got = read_backbone_weights(out).normalization
    assert got["bands"] == rec["bands"] and got["mean"] == pytest.approx(rec["mean"])
