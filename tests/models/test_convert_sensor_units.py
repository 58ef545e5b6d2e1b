"""`convert --sensor S` on a file whose record (or name) is another sensor's: a SAT-493M record (8-bit DN / 255)
was kept for Sentinel-2 bands, so the output scaled S2 data by 1/255 and standardised it with 8-bit RGB statistics
(a merged record even said sensor sentinel2_l2a). The output now records the sensor's statistics for its bands, as
for the released *sat493m* file, with a warning; a sensor with the record's DN step keeps the record. And
`--bands` alone on a *sat493m* file keeps the SAT-493M statistics its name implies (it recorded none)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint


@pytest.fixture(scope="module")
def rgb_state():
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, depth=1).state_dict()


def _sat_record():
    from geodino.data.normalization import sensor_record
    from geodino.data.sensors import get_sensor

    return sensor_record(get_sensor("sat493m"), origin="test")


def _s2(bands):
    from geodino.data.sensors import get_sensor

    return get_sensor("sentinel2_l2a").select(bands)


def _convert(src, dst, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_backbone_weights(convert_checkpoint(src, dst, **kw)).normalization


@pytest.mark.parametrize(
    "kw",
    [
        {"bands": ["B02", "B03", "B04", "B08"]},  # merged: SAT's 1/255 for B02-B04, S2's 1e-4 for B08
        {"bands": ["B04", "B03", "B02"]},  # all covered: the SAT record was kept, named R, G, B
        {"src_bands": ["red", "green", "blue"]},  # kept with a warning
    ],
)
# the first case adds B08 on purpose: it gets the mean kernel
@pytest.mark.filterwarnings("ignore:1 band .B08. matches no band of checkpoint:UserWarning")
def test_a_record_of_another_dn_step_gives_way_to_the_sensor(tmp_path, rgb_state, kw):
    src = save_backbone(rgb_state, tmp_path / "sat.pth", normalization=_sat_record())
    with pytest.warns(UserWarning, match=r"records sensor sat493m's normalisation, whose DN scale and offset are not"):
        convert_checkpoint(src, tmp_path / "o.safetensors", sensor="sentinel2_l2a", **kw)
    rec = read_backbone_weights(tmp_path / "o.safetensors").normalization
    want = _s2(kw.get("bands") or ["B04", "B03", "B02"])
    assert rec["sensor"] == "sentinel2_l2a" and rec["bands"] == list(want.bands)
    assert rec["scale"] == pytest.approx(1e-4) and rec["mean"] == pytest.approx(list(want.mean))
    assert rec["std"] == pytest.approx(list(want.std))
    # the released file, which records nothing, gave the same record
    released = tmp_path / "dinov3_vitt16_pretrain_sat493m-0000.pth"
    torch.save(rgb_state, released)
    assert _convert(released, tmp_path / "r.safetensors", sensor="sentinel2_l2a", **kw)["mean"] == rec["mean"]


def test_a_sensor_of_the_records_dn_step_keeps_it(tmp_path, rgb_state):
    """NAIP is 8-bit as SAT-493M is: the recorded R, G, B statistics stay, NAIP's only for N."""
    from geodino.data.sensors import get_sensor

    src = save_backbone(rgb_state, tmp_path / "sat.pth", normalization=_sat_record())
    rec = _convert(src, tmp_path / "o.safetensors", sensor="naip", bands=["R", "G", "B", "N"])
    sat = _sat_record()
    assert rec["mean"] == pytest.approx([*sat["mean"], get_sensor("naip").mean[3]])


def test_bands_alone_keep_the_statistics_a_sat493m_name_implies(tmp_path, rgb_state):
    released = tmp_path / "dinov3_vitt16_pretrain_sat493m-0000.pth"
    torch.save(rgb_state, released)
    sat = _sat_record()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = convert_checkpoint(released, tmp_path / "bgr.safetensors", bands=["B02", "B03", "B04"])
    rec = read_backbone_weights(out).normalization  # was None: the output recorded nothing
    assert rec["sensor"] == "sat493m" and rec["mean"] == pytest.approx(sat["mean"][::-1])
    assert rec["std"] == pytest.approx(sat["std"][::-1]) and rec["scale"] == pytest.approx(1 / 255)
