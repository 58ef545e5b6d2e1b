"""The swir cloud rule on 8-bit rasters is named in one warning: Fmask's thresholds assume reflectance, and 8-bit
multispectral values are seldom reflectance x 255. Measured on the real Landsat-7 ETM+ uint8 sample (read at 1/255,
a cloud-free coastal scene): the swir rule called 59 of 121 tiles cloud, the forest and the sea (SWIR-2 DN floor
10/255 > 0.03, sea blue 0.38). uint16 sources and the other rules stay silent."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.data.curate.clouds import cloud_rule, swir_on_bytes
from geodino.data.sensors import get_sensor

L7 = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7")


def test_swir_on_bytes_names_only_swir_sources_with_uint8_rasters():
    swir = cloud_rule(get_sensor("sentinel2_l2a"))
    rgb = cloud_rule(get_sensor("imagenet"))
    dtypes = [["uint8"], ["uint16"], ["uint8"], ["uint16", "uint8"], []]
    assert swir_on_bytes([swir, swir, rgb, swir, swir], dtypes) == [0, 3]


def _scene(tmp_path, dtype):
    import rasterio

    from tests.embed.conftest import write_tif

    data = np.random.default_rng(0).integers(10, 200, (6, 32, 64)).astype(dtype)
    path = write_tif(tmp_path / f"l7_{dtype}.tif", data, nodata=0)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = L7
    return path


def _curate(tif, out):
    """Curate with a sensor YAML of these bands at `data stats`'s default 8-bit scale (1/255) for uint8, 1e-4 else."""
    scale = 1 / 255 if "uint8" in str(tif) else 1e-4
    yaml = out.parent / f"{out.name}.yaml"
    yaml.write_text(
        f"name: l7\nbands: [{', '.join(L7)}]\nscale: {scale}\noffset: 0.0\nmean: [{', '.join(['0.3'] * 6)}]\n"
        f"std: [{', '.join(['0.1'] * 6)}]\nrgb_like: false\nrgb_bands: [SR_B3, SR_B2, SR_B1]\n"
        "aliases: {blue: SR_B1, green: SR_B2, red: SR_B3, nir: SR_B4, swir16: SR_B5, swir22: SR_B7}\n"
    )
    argv = ["data", "curate", str(tif), "--type", "raster", "--sensor", str(yaml), "--tile-size", "32"]
    argv += ["-b", "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0&bands=6", "-o", str(out), "--size", "1"]
    return cli.main([*argv, "--clusters", "1", "--dedup", "1.01", "--max-cloud", "1", "--no-progress"])


def test_curate_warns_for_swir_on_uint8(tmp_path):
    with pytest.warns(UserWarning, match=r"source source0: the swir cloud rule reads reflectance .* 8-bit values"):
        assert _curate(_scene(tmp_path, "uint8"), tmp_path / "a") == 0


def test_curate_is_silent_for_swir_on_uint16(tmp_path, recwarn):
    import json

    assert _curate(_scene(tmp_path, "uint16"), tmp_path / "b") == 0
    assert not [w for w in recwarn if "8-bit" in str(w.message)]
    rules = json.loads((tmp_path / "b" / "report.json").read_text())["cloud_rules"]
    assert next(iter(rules.values())).startswith("swir(")  # the same rule: only the data type differs
