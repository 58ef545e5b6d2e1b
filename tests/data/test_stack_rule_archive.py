"""Pretraining and `data stats` of `data stack` VRTs of Sentinel-2 SAFE products: a VRT geodino wrote from a
product's MTD file (GEODINO_STACK_RADIOMETRY) is read by its declared rule, per scene, into the sensor's reflectance,
so one source spans processing baselines before and after 04.00 with the built-in sensor; the archive refused
the post-04.00 VRT (its offset -0.1 is not sentinel2_l2a's 0). Foreign tags declaring another rule are still
refused (nothing says whether they are right)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.archive import RasterArchive
from geodino.data.stats import compute_stats
from geodino.data.vrt import stack_scenes
from geodino.errors import InputError

from .conftest import write_tif
from .test_safe_offset import l2a_safe, mtd, reflectance

BANDS = ["B02", "B03", "B04"]


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    """(VRT before 04.00, VRT after 04.00, reflectance x 10^4): the same ground, DN and DN + 1000."""
    tmp = tmp_path_factory.mktemp("stack")
    refl = reflectance(n=32, seed=3)
    l2a_safe(tmp / "root", "S2A_MSIL2A_20210601_N0300", refl, 0, mtd(baseline="03.00", offsets=None))
    l2a_safe(tmp / "root", "S2A_MSIL2A_20230601_N0509", refl, 1000, mtd(baseline="05.09"))
    old, new = stack_scenes(tmp / "root", BANDS, tmp / "vrt")
    return old, new, refl


def test_one_source_of_both_baselines_reads_one_reflectance(stacked):
    """The built-in sentinel2_l2a (DN * 0.0001) over both VRTs: the old archive refused the post-04.00 one; now
    each scene reads by its own rule, equal reflectance for the same ground (DN - 1000 vs DN)."""
    old, new, refl = stacked
    archive = RasterArchive([str(old), str(new)], sensor="sentinel2_l2a", bands=BANDS, progress=False)
    by_path = {s.path: i for i, s in enumerate(archive.scenes)}
    a = archive.sample(by_path[str(old)], 0, 0, 32, 32)["image"]
    b = archive.sample(by_path[str(new)], 0, 0, 32, 32)["image"]
    np.testing.assert_allclose(a, refl / 1e4, atol=1e-6)
    np.testing.assert_allclose(b, a, atol=1e-6)
    assert b.dtype == np.float32
    assert list(archive.scene_rules) == [str(new)]  # the old one declares the sensor's own rule


def test_each_scene_keeps_its_own_rule_when_the_scenes_are_reordered(stacked):
    """The rules are keyed by scene path: keyed by index, a filter or reorder of the scenes after the check (none
    does one today) read the post-04.00 VRT by the sensor's rule (0.1 too high) and the old one 0.1 too low."""
    old, new, refl = stacked
    archive = RasterArchive([str(old), str(new)], sensor="sentinel2_l2a", bands=BANDS, progress=False)
    archive.scenes.reverse()
    assert [s.path for s in archive.scenes] == [str(new), str(old)]
    for i, s in enumerate(archive.scenes):
        np.testing.assert_allclose(archive.sample(i, 0, 0, 32, 32)["image"], refl / 1e4, atol=1e-6, err_msg=s.path)


def test_data_stats_of_a_post_04_vrt_gives_reflectance_means(stacked):
    """`data stats --sensor sentinel2_l2a` of the post-04.00 VRT: means of reflectance (not 0.1 higher); without
    a sensor, both VRTs together: the same means (the first declares DN / 10000, the second reads by its own)."""
    old, new, refl = stacked
    want = refl.reshape(3, -1).mean(axis=1) / 1e4
    sensor, prov = compute_stats([str(new)], sensor="sentinel2_l2a", bands=BANDS, tile_size=32, progress=False)
    np.testing.assert_allclose(sensor.mean, want, atol=1e-5)
    assert sensor.offset == 0.0 and sensor.scale == 1e-4
    assert prov["own_rule"] == (
        "1 of 1 scene read by the rule their `geodino data stack` VRT took from the product's metadata "
        "(DN * 0.0001 - 0.1), 0 by sensor sentinel2_l2a's DN * 0.0001 + 0"
    )
    both, prov = compute_stats([str(old), str(new)], tile_size=32, progress=False)
    np.testing.assert_allclose(both.mean, want, atol=1e-5)
    assert prov["own_rule"].startswith("1 of 2 scenes read by the rule")
    _, prov = compute_stats([str(old)], tile_size=32, progress=False)
    assert "own_rule" not in prov


def test_foreign_tags_of_another_rule_are_still_refused(stacked, tmp_path):
    """A GeoTIFF declaring offset -0.1, and the post-04.00 VRT with geodino's tag removed: refused as before."""
    import rasterio

    old, new, _ = stacked
    tif = write_tif(tmp_path / "b.tif", (reflectance(n=32) + 1000).astype("uint16"), descriptions=BANDS)
    with rasterio.open(tif, "r+") as dst:
        dst.scales, dst.offsets = (1e-4,) * 3, (-0.1,) * 3
    text = new.read_text()
    assert "GEODINO_STACK_RADIOMETRY" in text
    bare = tmp_path / "bare.vrt"  # the band files lie outside the VRT folder: referenced by absolute path
    bare.write_text("\n".join(ln for ln in text.splitlines() if "GEODINO_STACK_RADIOMETRY" not in ln) + "\n")
    for foreign in (tif, bare):
        with pytest.raises(InputError, match=f"raster {foreign} declares physical value = DN \\* 0.0001 - 0.1"):
            RasterArchive([str(old), str(foreign)], sensor="sentinel2_l2a", bands=BANDS, progress=False)


def test_a_sensor_of_other_units_still_refuses_a_stack_vrt(stacked):
    """A sensor whose scale is not the VRT's (a YAML of DN units: scale 1, DN means) still refuses both VRTs: their
    rules give reflectance, not the sensor's units, so a scene read by its own rule was standardised by DN means
    without a word (pixels ~0.05 where the sensor's mean is ~500)."""
    import dataclasses

    from geodino.data.sensors import get_sensor

    old, new, _ = stacked
    s2 = get_sensor("sentinel2_l2a")
    n = len(s2.bands)
    dn = dataclasses.replace(s2, name="s2_dn", scale=1.0, offset=0.0, mean=(500.0,) * n, std=(300.0,) * n)
    for vrt in (old, new):
        with pytest.raises(InputError, match=f"raster {vrt} declares physical value = DN \\* 0.0001"):
            RasterArchive([str(vrt)], sensor=dn, bands=BANDS, progress=False)


def test_pretraining_says_once_how_many_scenes_read_by_their_stack_rule(stacked, tmp_path, capsys):
    """Pretraining's data probe says in one line how many scenes of a source are read by their `data stack` VRT's
    rule and how many by the sensor's (it said nothing: a multi-year archive read by two rules without a word); a
    source of none says nothing."""
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig
    from geodino.train.pretrain_build import probe_data
    from tests.train.conftest import write_config

    old, new, _ = stacked

    def probe(*paths) -> str:
        source = f"{{type: raster, paths: [{', '.join(map(str, paths))}], tile_size: 32, sensor: sentinel2_l2a}}"
        over = [f"data.sources=[{source}]", "data.sources.0.bands=[B02, B03, B04]"]
        probe_data(load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", old), over))
        return capsys.readouterr().err

    lines = [ln for ln in probe(old, new).splitlines() if "data stack" in ln]
    assert lines == [
        "geodino: data source 'source0': 1 of 2 scenes read by the rule their `geodino data stack` VRT took from the "
        "product's metadata (DN * 0.0001 - 0.1), 1 by sensor sentinel2_l2a's DN * 0.0001 + 0"
    ]
    assert "data stack" not in probe(old)
