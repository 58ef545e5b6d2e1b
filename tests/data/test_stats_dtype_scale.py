"""`geodino data stats` without --sensor or --scale reads DN by the dtype rule every reader applies
(`geodino.data.dtype_rule`: uint16 and int16 / 10000). It wrote scale 1 for 16-bit DN: the YAML's mean/std agreed
with the pixels it reads, but every step that takes pixels as reflectance did not; pretraining's RGB colour jitter
clamps to 0..1, so each crop of a 3-band uint16 archive read with that YAML came out one flat colour. Types without
a default (32-bit integers) are refused naming --scale, as embed and the probes refuse them."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.stats import compute_stats, write_stats
from geodino.errors import InputError
from tests.helpers import write_tif


def test_uint16_stats_are_reflectance_and_pretraining_crops_keep_their_texture(tmp_path):
    from geodino.data.config import SourceConfig
    from geodino.data.crops import CropsConfig, MultiCropTransform
    from geodino.data.source_build import build_source

    dn = np.random.default_rng(0).integers(200, 3000, (3, 32, 32)).astype(np.uint16)
    tif = write_tif(tmp_path / "rgb16.tif", dn)
    yaml = write_stats([str(tif)], tmp_path / "rgb16.yaml", tile_size=32, progress=False)
    source = build_source(SourceConfig(type="raster", paths=[str(tif)], sensor=str(yaml), tile_size=32), progress=False)
    assert source.sensor.scale == pytest.approx(1e-4) and source.sensor.rgb_like
    np.testing.assert_allclose(source.sensor.mean, dn.reshape(3, -1).mean(axis=1) / 1e4, rtol=1e-4)
    transform = MultiCropTransform(CropsConfig(global_size=16, local_size=8, n_local=0), source.sensor)
    crop = transform(source.get(0, 0), np.random.default_rng(0))["global_crops"][0]
    assert len(np.unique(crop.numpy())) > 100  # 3 values (one flat colour) when DN were clamped to 0..1


def test_int16_reads_by_the_dtype_rule_and_int32_needs_a_scale(tmp_path):
    dn = np.random.default_rng(1).integers(-500, 3000, (2, 32, 32))
    signed, _ = compute_stats(str(write_tif(tmp_path / "i16.tif", dn.astype(np.int16))), tile_size=32, progress=False)
    assert signed.scale == pytest.approx(1e-4)
    np.testing.assert_allclose(signed.mean, dn.reshape(2, -1).mean(axis=1) / 1e4, rtol=1e-4)
    i32 = write_tif(tmp_path / "i32.tif", dn.astype(np.int32))
    with pytest.raises(InputError) as err:
        compute_stats(str(i32), tile_size=32, progress=False)
    said = str(err.value)
    assert said.startswith(f"raster {i32} is int32: 32-bit integers") and "pass --scale FACTOR" in said, said
    assert "\n" not in said
    as_given, _ = compute_stats(str(i32), scale=1, tile_size=32, progress=False)
    np.testing.assert_allclose(as_given.mean, dn.reshape(2, -1).mean(axis=1), rtol=1e-5)
