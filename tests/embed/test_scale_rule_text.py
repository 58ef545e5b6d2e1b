"""The recorded input scaling, pinned: for every way a rule is chosen (the dtype rule, the backbone's record in each
place a record is read from, a rule declared by the file, --sensor, --scale, band_scale/band_offset), the text a run
stores (`input_scale` in the metadata, GEODINO_INPUT_SCALE; `scale` in the resume identity) and the console line.
Resumes of older work folders and mosaics of older scenes compare the stored text byte for byte, so it must not
change; these strings are what the code wrote before the rule became a structured value (`ScaleRule`), checked
against that code."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geodino.embed import embed_raster
from geodino.embed.config import EmbedConfig
from geodino.embed.pipeline import run_lines
from geodino.embed.prepare import prepare
from tests.embed.conftest import random_image, write_tif
from tests.embed.test_gdal_scale_tags import tag
from tests.embed.toy_backbones import ConvBackbone

CHANGE = "--sensor/--scale to change"
STATS = {"bands": ["b1", "b2", "b3"], "mean": [0.2, 0.2, 0.2], "std": [0.2, 0.2, 0.2]}
SIDECAR = "recorded in l7.heads.pth (sidecar of l7.pth): l7 (b1, b2, b3), pretraining data"
CONFIG = "recorded in t.pth (training data config): unnamed sensor (3 bands)"
SAFETENSORS = "recorded in m.safetensors (safetensors metadata geodino_normalization): s2 (b1, b2, b3)"
HF = "recorded in hf/preprocessor_config.json: unnamed sensor (3 bands)"

# (dtype, options, record (norm_source, normalization) or None, stored input_scale, resume identity, console words)
CASES = [
    ("uint8", {}, None, "x/255 (uint8)", "", f"x/255 (the default for uint8 input; {CHANGE})"),
    ("uint16", {}, None, "x/10000 (uint16, assumed)", "", f"x/10000 (the default for uint16 input, assumed; {CHANGE})"),
    ("int16", {}, None, "x/10000 (int16, assumed)", "", f"x/10000 (the default for int16 input, assumed; {CHANGE})"),
    ("float32", {}, None, "x (float input used as reflectance)", "",
     f"x (float input used as reflectance; {CHANGE})"),
    ("uint16", {"scale": 1e-4}, None, "x*0.0001", "x*0.0001", "x*0.0001 (passed)"),
    ("uint8", {"sensor": "imagenet"}, None, "sensor:imagenet", "sensor:imagenet", "sensor:imagenet (passed)"),
    ("uint16", {"band_scale": [1e-4], "band_offset": [-0.1]}, None, "x*0.0001-0.1 (band_scale/band_offset)",
     "x*0.0001-0.1 (band_scale/band_offset)", "x*0.0001-0.1 (passed as band_scale/band_offset)"),
    ("uint16", {"band_scale": [1e-4, 2e-4, 1e-4]}, None, "x*[0.0001,0.0002,0.0001] (band_scale/band_offset)",
     "x*[0.0001,0.0002,0.0001] (band_scale/band_offset)",
     "x*[0.0001,0.0002,0.0001] (passed as band_scale/band_offset)"),
    ("declared", {}, None, "x*0.0001-0.1 (the input's GDAL scale/offset)",
     "x*0.0001-0.1 (the input's GDAL scale/offset)", "x*0.0001-0.1 (declared by the input: its GDAL scale/offset)"),
    # the backbone's record, from each place a record is read
    ("uint8", {}, (SIDECAR, {"sensor": "l7", "scale": 1 / 255}),
     "x*0.00392157 (sensor l7, recorded in l7.heads.pth (sidecar of l7.pth))",
     "x*0.00392157 (sensor l7, recorded in l7.heads.pth (sidecar of l7.pth))",
     f"x*0.00392157 (the backbone's record: sensor l7, in l7.heads.pth beside l7.pth; {CHANGE})"),
    ("uint16", {}, (CONFIG, {"scale": 2e-4, "offset": -0.1}),
     "x*0.0002+-0.1 (recorded in t.pth (training data config))",
     "x*0.0002+-0.1 (recorded in t.pth (training data config))",
     f"x*0.0002+-0.1 (the backbone's record: in t.pth, training data config; {CHANGE})"),
    ("uint16", {}, (SAFETENSORS, {"sensor": "s2", "scale": [1e-4, 2e-4, 1e-4]}),
     "x*[0.0001,0.0002,0.0001] (sensor s2, recorded in m.safetensors (safetensors metadata geodino_normalization))",
     "x*[0.0001,0.0002,0.0001] (sensor s2, recorded in m.safetensors (safetensors metadata geodino_normalization))",
     "x*[0.0001,0.0002,0.0001] (the backbone's record: sensor s2, in m.safetensors, safetensors metadata "
     f"geodino_normalization; {CHANGE})"),
    ("uint16", {}, (HF, {"scale": 1e-4}), "x*0.0001 (recorded in hf/preprocessor_config.json)",
     "x*0.0001 (recorded in hf/preprocessor_config.json)",
     f"x*0.0001 (the backbone's record: in hf/preprocessor_config.json; {CHANGE})"),
    # a backbone loaded with a sensor passed records it; one without a place says "the backbone"
    ("uint16", {}, ("sensor s2 (passed)", {"sensor": "s2", "scale": 1e-4}), "x*0.0001 (sensor s2 (passed))",
     "x*0.0001 (sensor s2 (passed))", f"x*0.0001 (the backbone's record: sensor s2, passed; {CHANGE})"),
    ("uint16", {}, ("", {"sensor": "s2", "scale": 1e-4}), "x*0.0001 (sensor s2, the backbone)",
     "x*0.0001 (sensor s2, the backbone)", f"x*0.0001 (the backbone's record: sensor s2, the backbone; {CHANGE})"),
    # float input does not take a record: the dtype rule, and the record's presence puts it in the identity
    ("float32", {}, (SIDECAR, {"sensor": "l7", "scale": 1 / 255}), "x (float input used as reflectance)",
     "x (float input used as reflectance)", f"x (float input used as reflectance; {CHANGE})"),
]  # fmt: skip


def _input(tmp_path, dtype: str):
    if dtype == "declared":  # DN + 1000 declaring scale 0.0001, offset -0.1 (Sentinel-2 baseline >= 04.00)
        path = write_tif(tmp_path / "in.tif", random_image(16, 16, dtype="uint16") + 1000)
        return tag(path, (1e-4,) * 3, (-0.1,) * 3)
    data = random_image(16, 16, dtype="uint16" if dtype == "int16" else dtype)
    return write_tif(tmp_path / "in.tif", data.astype(dtype))


def _backbone(record):
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=1)
    if record is not None:
        bb.norm_source, rec = record[0], {**STATS, **record[1]}
        bb.normalization = rec
    return bb


@pytest.mark.parametrize(("dtype", "options", "record", "stored", "ident", "said"), CASES, ids=[c[3] for c in CASES])
def test_the_stored_text_and_the_console_words_of_every_rule(tmp_path, capsys, dtype, options, record, stored, ident,
                                                             said):  # fmt: skip
    path, bb = _input(tmp_path, dtype), _backbone(record)
    opts = {"tile": 16, "overlap": 0, "progress": False, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dtype rule's "assuming reflectance" and the like: not what is pinned
        prep = prepare(path, EmbedConfig(**opts), bb)
        assert (prep.meta["input_scale"], prep.ident["scale"]) == (stored, ident)
        with run_lines():
            embed_raster(path, bb, tmp_path / "out.tif", **opts)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "input DN -> reflectance" in ln]
    assert lines == [f"geodino: input DN -> reflectance {said}"]


def test_the_record_in_a_probes_line_and_in_viz_is_named_as_embed_names_it():
    """The probes' rule line and `viz attention`'s line name a record's place in one pair of brackets."""
    from geodino.eval.scaling import InputScaling
    from geodino.viz.attention_input import record_rule

    bb = _backbone((SIDECAR, {"sensor": "l7", "scale": 1 / 255}))
    _, _, text = InputScaling(bb).rule(np.full((3, 2, 2), 9, np.uint8))
    assert text == "x*0.00392157 (the backbone's DN scale: sensor l7, in l7.heads.pth beside l7.pth)"
    from geodino.embed.sweep import recorded_scale

    rec = recorded_scale(bb)
    assert rec is not None
    assert record_rule(rec[2]) == (
        "DN -> reflectance x*0.00392157 (the backbone's record: sensor l7, in l7.heads.pth beside l7.pth; --sensor to "
        "change)"
    )


@pytest.mark.parametrize(
    "norm_source",
    ["", "sensor s2", "recorded in a b.pth (sidecar of c d.pth): x", "recorded in x (y) (z): w", "odd (bracket: x",
     "recorded in m/config.json (pretrained_cfg): a: b", "the backbone's (own)"],
)  # fmt: skip
def test_a_records_stored_text_keeps_the_backbones_words_as_they_are(norm_source):
    """Whatever the backbone says of its record's place, the stored text carries it as before: the words before the
    first colon (`norm_source`), "the backbone" without any, in the record's bracket."""
    from geodino.embed.scale_rule import ScaleRule

    where = (norm_source or "the backbone").split(":")[0]
    for sensor in ("", "l7"):
        named = f"sensor {sensor}, " if sensor else ""
        assert ScaleRule.of_record("x*2", sensor, norm_source).stored() == f"x*2 ({named}{where})"
