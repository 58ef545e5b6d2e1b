"""`viz attention --sensor my16.yaml`, my16.yaml from `geodino data stats IN16.tif` without --scale (scale 1 for
16-bit DN), drew the maps of DN 0..4000 fed to a backbone whose mean/std are reflectance, without a word; `geodino
embed` warns about that sensor (a9f0316). The same check (`warn_dn_as_reflectance`, one home) now warns in one line
when `read_input` / `visualize_attention` read a raster by such a sensor for such a backbone; sensors with a DN
scale and backbones normalised in DN units stay quiet. viz attention has no --scale: only the sensor fix is named."""

from __future__ import annotations

import warnings

import numpy as np

from tests.helpers import write_sensor_yaml, write_tif

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def _said(tmp_path, sensor, spec):
    from geodino.viz.attention import visualize_attention

    img = np.random.default_rng(0).integers(0, 4000, (3, 32, 32)).astype(np.uint16)
    src = write_tif(tmp_path / "u16.tif", img)
    out = tmp_path / f"att_{sensor.stem}_{len(spec)}"
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        files = visualize_attention(src, spec, out, sensor=str(sensor))
    assert files and out.is_dir()
    return [str(w.message) for w in held if "as reflectance" in str(w.message)]


def test_dn_read_as_reflectance_before_a_reflectance_backbone_warns_once(tmp_path):
    dn = write_sensor_yaml(tmp_path / "dn.yaml", 1.0, 2000.0, 1150.0)
    said = _said(tmp_path, dn, SPEC + "&sensor=imagenet")
    assert len(said) == 1, said
    assert "\n" not in said[0] and "'dn'" in said[0] and "uint16" in said[0] and "u16.tif" in said[0]
    assert "--scale 0.0001" in said[0] and "--scale FACTOR instead of --sensor" not in said[0], said[0]


def test_a_sensor_with_a_dn_scale_is_quiet(tmp_path):
    refl = write_sensor_yaml(tmp_path / "refl.yaml", 1e-4, 0.2, 0.115)
    assert not _said(tmp_path, refl, SPEC + "&sensor=imagenet")


def test_a_backbone_normalised_in_dn_units_is_quiet(tmp_path):
    dn = write_sensor_yaml(tmp_path / "dn.yaml", 1.0, 2000.0, 1150.0)
    assert not _said(tmp_path, dn, SPEC + f"&sensor={dn}")


def test_the_check_is_callable_after_reading_without_the_backbone(tmp_path):
    """The CLI reads the input before it loads the backbone when --sensor is given: `warn_sensor_dn` then."""
    from geodino.backbones import load_backbone
    from geodino.viz.attention_input import read_input, warn_sensor_dn

    img = np.random.default_rng(0).integers(0, 4000, (3, 32, 32)).astype(np.uint16)
    src = write_tif(tmp_path / "u16.tif", img)
    dn = write_sensor_yaml(tmp_path / "dn.yaml", 1.0, 2000.0, 1150.0)
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        sample = read_input(src, sensor=str(dn))  # no backbone: nothing to compare with, nothing said
        assert not [w for w in held if "as reflectance" in str(w.message)]
        warn_sensor_dn(sample, load_backbone(SPEC + "&sensor=imagenet"))
    assert len([w for w in held if "as reflectance" in str(w.message)]) == 1


def test_the_command_line_warns_once_too(tmp_path):
    """`geodino viz attention IN --sensor dn.yaml` reads the input before it loads the backbone; it said nothing."""
    from geodino.cli import main

    dn = write_sensor_yaml(tmp_path / "dn.yaml", 1.0, 2000.0, 1150.0)
    img = np.random.default_rng(0).integers(0, 4000, (3, 32, 32)).astype(np.uint16)
    src = write_tif(tmp_path / "u16.tif", img)
    argv = ["viz", "attention", str(src), "--backbone", SPEC + "&sensor=imagenet", "--sensor", str(dn)]
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        rc = main([*argv, "--out", str(tmp_path / "att")])
    said = [str(w.message) for w in held if "as reflectance" in str(w.message)]
    assert rc == 0 and len(said) == 1 and "u16.tif" in said[0], said
