"""Landsat 4/5 TM and 7 ETM+ sensors: their band numbering (SR_B1 blue, SR_B2 green, SR_B3 red, SR_B4 NIR) differs
from Landsat 8/9 OLI's (SR_B2 blue ... SR_B5 NIR), so band names must resolve through the right one, and names
that the built-in sensors number differently are refused without a sensor instead of silently read as OLI's."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geodino import cli
from geodino.backbones import load_backbone
from geodino.data.sensors import get_sensor
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

TM = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"]
OLI = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]


@pytest.fixture(scope="module")
def rgb_pth(tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """An RGB (R, G, B) teacher.pth and its patch-embedding kernel."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=1, patch_size=8)
    path = tmp_path_factory.mktemp("rgb") / "teacher.pth"
    torch.save(model.state_dict(), path)
    return path, model.patch_embed.proj.weight.detach().clone()


def assert_rgb_kernels(adapted: torch.Tensor, src: torch.Tensor, order: dict[int, int]) -> None:
    """Band j of `adapted` is source band `order[j]` (0 R, 1 G, 2 B) times the fill scale; the rest the mean."""
    scale = src.shape[1] / adapted.shape[1]  # fill="mean": every kernel x C_src / C_dst
    for j in range(adapted.shape[1]):
        want = src[:, order[j]] if j in order else src.mean(dim=1)
        torch.testing.assert_close(adapted[:, j], want * scale)


def test_landsat7_and_5_are_collection2_surface_reflectance():
    """landsat7 / landsat5 (aliases l7, l5, landsat4, l4): TM/ETM+ band numbers, C2 L2 scale and offset, OLI's
    statistics of the same bands (blue from blue, ...), red/green/blue previews from SR_B3/SR_B2/SR_B1."""
    l7, l5, l8 = get_sensor("landsat7"), get_sensor("landsat5"), get_sensor("landsat8")
    for alias, name in (("l7", "landsat7"), ("L5", "landsat5"), ("landsat4", "landsat5"), ("l4", "landsat5")):
        assert get_sensor(alias).name == name
    for s in (l7, l5):
        assert s.bands == tuple(TM) and s.rgb_bands == ("SR_B3", "SR_B2", "SR_B1") and s.nodata == 0
        assert (s.scale, s.offset) == (2.75e-5, -0.2)
        assert s.mean == l8.mean and s.std == l8.std  # blue<-OLI blue, ..., swir22<-OLI swir22, in that order
        assert "OLI" in s.source
        assert [s.resolve_band(b) for b in ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")] == [
            "SR_B1",
            "SR_B2",
            "SR_B3",
            "SR_B4",
            "SR_B4",
            "SR_B5",
            "SR_B7",
        ]
        assert s.resolve_band("B1") == "SR_B1" and s.resolve_band("B7") == "SR_B7"
        assert s.resolve_band("B6", strict=False) is None  # TM/ETM+ band 6 is thermal, not surface reflectance
    sel = l7.select(["red", "green", "blue"])
    assert sel.bands == ("SR_B3", "SR_B2", "SR_B1") and sel.mean == tuple(l8.select(["red", "green", "blue"]).mean)
    dn = np.array([0, 7273, 10000, 20000, 43636, 65535], dtype=np.uint16).reshape(6, 1, 1)
    np.testing.assert_allclose(l7.to_reflectance(dn), dn.astype(np.float64) * 2.75e-5 - 0.2, rtol=1e-6, atol=1e-6)
    t = torch.from_numpy(dn.astype(np.int32))
    torch.testing.assert_close(l5.to_reflectance(t), t.float() * 2.75e-5 - 0.2)


def test_landsat7_names_get_the_rgb_kernels_of_an_rgb_export(rgb_pth):
    """The auditor's case: SR_B1/SR_B2/SR_B3 of Landsat 7 are blue/green/red and take the B/G/R kernels (old code:
    SR_B2 got blue's, SR_B4 (NIR) red's, SR_B1 the mean kernel), with sensor=landsat7 and, since only TM/ETM+ have
    an SR_B1 band, without one; `geodino convert --sensor landsat7` the same."""
    path, src = rgb_pth
    order = {0: 2, 1: 1, 2: 0}  # SR_B1 <- B, SR_B2 <- G, SR_B3 <- R; SR_B4, SR_B5, SR_B7: the mean kernel
    for sensor in (None, "landsat7", "landsat5"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SR_B4/5/7 match no RGB band: the mean kernel, said in a warning
            fb = load_backbone(path, bands=TM, sensor=sensor)
        assert_rgb_kernels(fb.model.patch_embed.proj.weight, src, order)
    assert fb.in_chans == 6
    out = path.parent / "l7.pth"
    argv = ["convert", str(path), str(out), "--bands", "SR_B3", "SR_B2", "SR_B1", "SR_B4", "--sensor", "landsat7"]
    with pytest.warns(UserWarning, match=r"1 band \(SR_B4\) matches no band of checkpoint .*mean kernel"):
        assert cli.main([*argv, "--fill", "mean"]) == 0
    got = torch.load(out, weights_only=True)["patch_embed.proj.weight"]
    assert_rgb_kernels(got, src, {0: 0, 1: 1, 2: 2})


def test_names_the_sensors_number_differently_need_the_sensor(rgb_pth):
    """SR_B2..SR_B4 (and B2..B4) are blue..red for Landsat 8/9 (and Sentinel-2) but green..NIR for Landsat 4/5/7:
    without a sensor, one line names them, the sensors and what to pass; with one, each numbering holds. Sensors
    that agree (landsat8/landsat9, sentinel2_l1c/l2a) stay unambiguous."""
    path, src = rgb_pth
    with pytest.raises(ConfigError) as err:
        load_backbone(path, bands=["SR_B2", "SR_B3", "SR_B4"])
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("band names SR_B2, SR_B3, SR_B4 mean different bands in different sensors (")
    assert "SR_B2: blue in landsat8/landsat9, green in landsat7/landsat5" in msg
    assert "SR_B4: red in landsat8/landsat9, nir in landsat7/landsat5" in msg
    for hint in ("sensor=landsat8 or sensor=landsat7", "?sensor=landsat7", "--sensor landsat7", "red, green, blue"):
        assert hint in msg
    with pytest.raises(ConfigError, match=r"band names B2, B3, B4 mean .*B2: blue in sentinel2_l1c/sentinel2_l2a/"):
        load_backbone(f"{path}?bands=B2,B3,B4")
    with pytest.raises(ConfigError, match=r"^band name SR_B4 means different bands .*SR_B4: red in landsat8"):
        load_backbone(path, bands=["SR_B4"])
    # with the sensor: each numbering (landsat8 as before: SR_B2 blue, SR_B4 red)
    l8 = load_backbone(path, bands=["SR_B2", "SR_B3", "SR_B4"], sensor="landsat8")
    assert_rgb_kernels(l8.model.patch_embed.proj.weight, src, {0: 2, 1: 1, 2: 0})
    with pytest.warns(UserWarning, match=r"1 band \(SR_B4\) matches no band of checkpoint .*mean kernel"):
        l7 = load_backbone(f"{path}?bands=SR_B2,SR_B3,SR_B4&sensor=landsat7&fill=mean")
    assert_rgb_kernels(l7.model.patch_embed.proj.weight, src, {0: 1, 1: 0})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # agreeing sensors: no refusal and no unmatched band
        oli = load_backbone(path, bands=["SR_B4", "SR_B3", "SR_B2"], sensor="l9")
        s2 = load_backbone(path, bands=["B04", "B03", "B02"])
        plain = load_backbone(path, bands=["blue", "green", "red"])
    assert not [w for w in seen if "matches no band" in str(w.message)]
    assert_rgb_kernels(oli.model.patch_embed.proj.weight, src, {0: 0, 1: 1, 2: 2})
    assert_rgb_kernels(s2.model.patch_embed.proj.weight, src, {0: 0, 1: 1, 2: 2})
    assert_rgb_kernels(plain.model.patch_embed.proj.weight, src, {0: 2, 1: 1, 2: 0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full_oli = load_backbone(path, bands=OLI)  # SR_B6 is OLI's alone: the OLI numbering, no sensor needed
    assert_rgb_kernels(full_oli.model.patch_embed.proj.weight, src, {0: 2, 1: 1, 2: 0})


def test_convert_refuses_ambiguous_names_in_one_line(rgb_pth, capsys, tmp_path):
    """`geodino convert --bands SR_B2 SR_B3 SR_B4` without --sensor: exit 2, one line, nothing written."""
    path, _ = rgb_pth
    out = tmp_path / "out.pth"
    capsys.readouterr()
    assert cli.main(["convert", str(path), str(out), "--bands", "SR_B2", "SR_B3", "SR_B4"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geodino: error: band names SR_B2, SR_B3, SR_B4 mean different")
    assert "--sensor landsat7" in lines[0] and not out.exists()


def test_an_export_recording_landsat7_bands_moves_its_kernels_by_name(tmp_path):
    """An export trained on Landsat 7 records its sensor's bands (SR_B1..SR_B7) and statistics: names asked of it
    resolve through that numbering (red is SR_B3, not OLI's SR_B4), with or without the sensor."""
    from geodino.data.normalization import sensor_record

    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=1, patch_size=8, in_chans=6)
    src = model.patch_embed.proj.weight.detach().clone()
    path = save_backbone(model, tmp_path / "l7.safetensors", normalization=sensor_record("landsat7"))
    l7 = get_sensor("landsat7")
    for bands, sensor in ((["red", "green", "blue"], None), (["SR_B3", "SR_B2", "SR_B1"], None), (["B3"], "l7")):
        fb = load_backbone(path, bands=bands, sensor=sensor)
        w = fb.model.patch_embed.proj.weight
        for j, b in enumerate(bands):
            torch.testing.assert_close(w[:, j], src[:, TM.index(l7.resolve_band(b))])  # a subset: unscaled
    fb = load_backbone(path, bands=["SR_B3", "SR_B4"])  # the record's statistics of the kept bands
    torch.testing.assert_close(fb.mean.flatten(), torch.tensor(l7.select(["red", "nir"]).mean))


def test_an_export_recording_landsat8_resolves_names_through_its_own_sensor(tmp_path):
    """An export trained on a subset of Landsat 8 bands (SR_B4, SR_B3, SR_B2) records sensor landsat8: asked for
    red, green, blue or for SR_B2..SR_B4 with no sensor, the names resolve through the file's own numbering (the
    ambiguity refusal asked for sensor=landsat8 here, although the file says it); load_backbone, convert and
    load_model alike. An export that records no sensor still refuses ambiguous names."""
    from geodino.data.normalization import sensor_record
    from geodino.models.checkpoints import load_model
    from geodino.models.checkpoints.convert import convert_checkpoint

    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=1, patch_size=8)
    src = model.patch_embed.proj.weight.detach().clone()
    rec = sensor_record(get_sensor("landsat8").select(["SR_B4", "SR_B3", "SR_B2"]))
    path = save_backbone(model, tmp_path / "l8.safetensors", normalization=rec)
    for bands in (["blue", "green", "red"], ["SR_B2", "SR_B3", "SR_B4"]):  # both mean B, G, R of the file
        w = load_backbone(path, bands=bands).model.patch_embed.proj.weight
        torch.testing.assert_close(w, src[:, [2, 1, 0]])
        w = load_model(path, bands=bands).patch_embed.proj.weight
        torch.testing.assert_close(w, src[:, [2, 1, 0]])
    out = convert_checkpoint(path, tmp_path / "bgr.pth", bands=["SR_B2", "SR_B3", "SR_B4"])
    torch.testing.assert_close(load_model(out).patch_embed.proj.weight, src[:, [2, 1, 0]])
    bare = save_backbone(model, tmp_path / "bare.safetensors")  # records nothing: R, G, B by default
    with pytest.raises(ConfigError, match=r"mean different bands in different sensors"):
        load_backbone(bare, bands=["SR_B2", "SR_B3", "SR_B4"])


def test_hls_band_names_keep_their_trained_kernels(tmp_path):
    """TerraTorch's HLSBands names (NIR_NARROW, SWIR_1, SWIR_2, ...) asked of a Landsat 8 or Sentinel-2 export mean
    its NIR / SWIR bands: they got the mean kernel with a warning (Prithvi-style configs lost three trained bands)."""
    from geodino.data.normalization import sensor_record

    hls = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=1, patch_size=8, in_chans=6)
    src = model.patch_embed.proj.weight.detach().clone()
    path = save_backbone(model, tmp_path / "l8.safetensors", normalization=sensor_record("landsat8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no band gets the mean kernel
        w = load_backbone(path, bands=hls).model.patch_embed.proj.weight
    torch.testing.assert_close(w, src)  # the export's own order: B2..B7 = blue .. swir22
    s2 = get_sensor("sentinel2_l2a")
    assert [s2.resolve_band(b) for b in hls] == ["B02", "B03", "B04", "B8A", "B11", "B12"]
    assert get_sensor("landsat7").resolve_band("NIR_NARROW") == "SR_B4"


def test_plain_names_keep_the_statistics_the_export_records(tmp_path):
    """A Landsat 8 export asked for `red, nir` kept the kernels but dropped its recorded statistics (the record's
    band names are SR_B4, SR_B5: matched literally), falling back to mean 0 / std 1 with a warning. Names resolve
    through the recorded sensor now, in load_backbone and convert."""
    from geodino.data.normalization import sensor_record
    from geodino.models.checkpoints import read_backbone_weights
    from geodino.models.checkpoints.convert import convert_checkpoint

    torch.manual_seed(0)
    model = build_model("vit_tiny", depth=1, patch_size=8, in_chans=6)
    path = save_backbone(model, tmp_path / "l8.safetensors", normalization=sensor_record("landsat8"))
    want = get_sensor("landsat8").select(["SR_B4", "SR_B5"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "records no input normalisation" warning
        fb = load_backbone(path, bands=["red", "nir"])
        out = convert_checkpoint(path, tmp_path / "rn.pth", bands=["red", "nir"])
    torch.testing.assert_close(fb.mean.flatten(), torch.tensor(want.mean))
    assert fb.normalization["bands"] == ["SR_B4", "SR_B5"] and fb.normalization["offset"] == -0.2
    assert read_backbone_weights(out).normalization["mean"] == pytest.approx(list(want.mean))
