"""Pretraining/stats archives and the DN -> physical rule a raster declares itself (GDAL <Scale>/<Offset>): the
sensor gives the rule there, so a file whose tags declare another is refused up front, naming the file, both rules
and what to do; tags equal to the sensor's rule (or none, 1/0) read as before."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.archive import RasterArchive
from geodino.data.sensors import Sensor
from geodino.errors import InputError
from tests.data.conftest import ramp, write_tif

SENSOR = Sensor("demo3", ("b1", "b2", "b3"), 1e-4, (0.1,) * 3, (0.1,) * 3, False, nodata=0)


def tag(path, scales, offsets):
    import rasterio

    with rasterio.open(path, "r+") as dst:
        dst.scales = scales
        dst.offsets = offsets
    return path


def test_a_declared_rule_other_than_the_sensors_is_refused_up_front(tmp_path):
    """b.tif declares DN * 0.0001 - 0.1 (Sentinel-2 baseline >= 04.00), the sensor reads DN * 0.0001: the old
    archive read it by the sensor's rule, 0.1 too bright, without a word. Refused while indexing, naming the file,
    both rules and the ways out; the file declaring nothing passes (a.tif alone)."""
    a = write_tif(tmp_path / "a.tif", ramp(3, 16, 16))
    b = tag(write_tif(tmp_path / "b.tif", ramp(3, 16, 16, seed=1)), (1e-4,) * 3, (-0.1,) * 3)
    with pytest.raises(InputError) as err:
        RasterArchive([str(a), str(b)], sensor=SENSOR, progress=False)
    msg = str(err.value)
    assert f"raster {b} declares physical value = DN * 0.0001 - 0.1 (GDAL scale/offset of bands b1, b2, b3)" in msg
    assert "but sensor 'demo3' reads DN * 0.0001 + 0" in msg
    assert "sensor YAML of scale: 0.0001 and offset: -0.1" in msg and "gdal_edit.py -scale 1 -offset 0" in msg
    assert "\n" not in msg
    RasterArchive([str(a)], sensor=SENSOR, progress=False)


def test_the_sensors_own_rule_declared_per_band_passes_and_reads_by_it(tmp_path):
    """Per-band tags equal to a per-band sensor rule (float32-rounded, as some writers store them) pass, and the
    sample is DN * scale + offset computed by hand; a band picked by `bands` is compared with its own rule."""
    scales, offsets = (2.75e-5, 1e-4, 1e-4), (-0.2, 0.0, -0.1)
    sensor = Sensor("per_band", ("b1", "b2", "b3"), scales, (0.1,) * 3, (0.1,) * 3, False, offset=offsets)
    data = ramp(3, 16, 16)
    path = tag(write_tif(tmp_path / "a.tif", data), tuple(float(np.float32(s)) for s in scales), offsets)
    arch = RasterArchive([str(path)], sensor=sensor, progress=False)
    assert arch.scenes[0].scales == pytest.approx(scales) and arch.scenes[0].offsets == offsets
    img = arch.sample(0, 0, 0, 16, 16)["image"]
    by_hand = data * np.asarray(scales)[:, None, None] + np.asarray(offsets)[:, None, None]
    np.testing.assert_allclose(img, by_hand, rtol=1e-5, atol=1e-6)
    # band b3 alone, read with the sensor's b1 rule: its tags (offset -0.1) are not b1's (offset -0.2)
    with pytest.raises(InputError, match=r"DN \* 0\.0001 - 0\.1 .*reads DN \* 2\.75e-05 - 0\.2"):
        RasterArchive([str(path)], sensor=sensor.select(["b1"]), bands=["b3"], band_names=["b1", "b2", "b3"],
                      progress=False)  # fmt: skip


def test_the_index_cache_keeps_the_declared_rule(tmp_path):
    """An index reloaded from `index_cache` still knows the files' tags (an index without them would pass a file
    the fresh index refuses)."""
    path = tag(write_tif(tmp_path / "a.tif", ramp(3, 16, 16)), (1e-4,) * 3, (-0.1,) * 3)
    cache = tmp_path / "index.json"
    ok = Sensor("tagged", ("b1", "b2", "b3"), 1e-4, (0.1,) * 3, (0.1,) * 3, False, offset=-0.1)
    RasterArchive([str(path)], sensor=ok, index_cache=cache, progress=False)
    assert '"offsets": [-0.1, -0.1, -0.1]' in cache.read_text()
    with pytest.raises(InputError, match="declares physical value = DN"):
        RasterArchive([str(path)], sensor=SENSOR, index_cache=cache, progress=False)


# a small store keeps the test fast; its few-pixels warning is expected (test_stats_edge asserts that warning)
@pytest.mark.filterwarnings("ignore:.*fewer than 1,000 valid pixels:UserWarning")
def test_data_stats_without_a_rule_takes_the_files_declared_rule(tmp_path):
    """`data stats` without --sensor guessed scale 1 for uint16: on files that declare 0.0001 / -0.1 it wrote
    statistics in DN with scale 1, which a training source reading the same files then mixes with the tags' rule.
    It now takes the first file's declared rule (per band): the YAML records it and its mean/std are those of
    DN * 0.0001 - 0.1 (hand-computed over the whole 16x16 file, one window); a second file declaring another rule is
    refused, naming it; an explicit --scale still decides, and a file it disagrees with is refused."""
    from geodino.data.stats import compute_stats

    data = ramp(3, 16, 16)
    path = tag(write_tif(tmp_path / "a.tif", data), (1e-4, 1e-4, 2e-4), (-0.1,) * 3)
    sensor, _ = compute_stats(str(path), samples=4, tile_size=16, progress=False)
    assert sensor.scale == pytest.approx((1e-4, 1e-4, 2e-4)) and sensor.offset == pytest.approx((-0.1,) * 3)
    refl = data.reshape(3, -1).astype(np.float64) * np.array([[1e-4], [1e-4], [2e-4]]) - 0.1
    np.testing.assert_allclose(sensor.mean, refl.mean(axis=1), atol=2e-6)
    np.testing.assert_allclose(sensor.std, refl.std(axis=1, ddof=1), rtol=1e-3)
    other = tag(write_tif(tmp_path / "b.tif", data), (1e-4,) * 3, (0.0,) * 3)
    with pytest.raises(InputError, match=r"raster .*b\.tif declares physical value = DN \* 0\.0001 \+ 0 "):
        compute_stats([str(path), str(other)], samples=4, tile_size=16, progress=False)
    with pytest.raises(InputError, match=r"declares physical value = .* reads DN \* 0\.0001 \+ 0"):
        compute_stats(str(path), samples=4, tile_size=16, progress=False, scale=1e-4, offset=0.0)
