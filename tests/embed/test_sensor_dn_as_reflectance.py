"""`geodino embed IN16.tif --sensor my.yaml`, with my.yaml from `geodino data stats IN16.tif` (no --scale: scale 1
for 16-bit DN), fed the DN themselves (0..4000) to a backbone whose mean/std are reflectance: features unrelated to
the right ones (mean cosine -0.54 against --scale 0.0001 on a 64 px scene), and not a word. The README and the
16-bit refusal both point users to that recipe. Now a one-line warning names the fix; sensors with a DN scale, and
backbones normalised in DN units (pretrained on such a sensor), stay quiet."""

from __future__ import annotations

import warnings

import numpy as np

from geodino import cli
from tests.embed.conftest import write_tif
from tests.helpers import write_sensor_yaml

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def _warned(tmp_path, sensor, spec):
    img = np.random.default_rng(0).integers(0, 4000, (3, 32, 32)).astype(np.uint16)
    src = write_tif(tmp_path / "u16.tif", img)
    out = tmp_path / f"f_{sensor.stem}_{len(spec)}.tif"
    argv = ["embed", str(src), "-b", spec, "--out", str(out), "--sensor", str(sensor), "--tile", "32",
            "--overlap", "0", "--no-progress"]  # fmt: skip
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        assert cli.main(argv) == 0
    assert out.exists()
    return [str(w.message) for w in held if "as reflectance" in str(w.message)]


def test_dn_read_as_reflectance_before_a_reflectance_backbone_warns_once(tmp_path):
    dn = write_sensor_yaml(tmp_path / "dn.yaml", 1.0, 2000.0, 1150.0)
    said = _warned(tmp_path, dn, SPEC + "&sensor=imagenet")
    assert len(said) == 1, said
    assert "'dn'" in said[0] and "uint16" in said[0] and "--scale" in said[0]


def test_a_sensor_with_a_dn_scale_is_quiet(tmp_path):
    refl = write_sensor_yaml(tmp_path / "refl.yaml", 1e-4, 0.2, 0.115)
    assert not _warned(tmp_path, refl, SPEC + "&sensor=imagenet")


def test_a_backbone_normalised_in_dn_units_is_quiet(tmp_path):
    dn = write_sensor_yaml(tmp_path / "dn.yaml", 1.0, 2000.0, 1150.0)
    assert not _warned(tmp_path, dn, SPEC + f"&sensor={dn}")
