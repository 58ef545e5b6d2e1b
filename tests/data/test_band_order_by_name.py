"""Band order across files and sources, and the normalisation statistics matched to the data's bands by name.

Files holding the same bands in different orders were each read in their own order (one model channel was SR_B2
in one source, SR_B5 in another), and `data.norm_sensor` was matched to the data's bands by position (the data's
SR_B5 standardised with SR_B2's statistics, and the export record labelled so)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.data.config import CropsConfig, DataConfig, SourceConfig
from geodino.data.crops import MultiCropTransform
from geodino.data.loaders import SampleDataset, build_ssl_loader
from geodino.data.normalization import data_normalization
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import ConfigError

from .conftest import write_tif

L8 = get_sensor("landsat8")
# one DN per band (SR_B2 .. SR_B7), all distinct, so a band read at another channel shows
DN = {b: 10000 + 1000 * i for i, b in enumerate(L8.bands)}
REORDERED = ["SR_B5", "SR_B2", "SR_B3", "SR_B4", "SR_B6", "SR_B7"]


def _landsat(path, order):
    data = np.stack([np.full((40, 40), DN[b], np.uint16) for b in order])
    return write_tif(path, data, descriptions=list(order))


def _crops() -> CropsConfig:
    return CropsConfig(global_size=16, local_size=16, n_local=1, jitter_prob=0, blur_probs=[0, 0, 0])


def _channel_dn(source) -> list[float]:
    """The DN of each channel of a source's first tile (its image is constant per band)."""
    image = source.get(0, 0)["image"]
    return [round(float((v + 0.2) / 2.75e-5)) for v in image.reshape(image.shape[0], -1).mean(1)]


def test_a_file_with_its_bands_in_another_order_is_read_in_the_sensors_order(tmp_path):
    from geodino.data.archive import RasterArchive

    a = RasterArchive([_landsat(tmp_path / "reord.tif", REORDERED)], sensor="landsat8", progress=False)
    assert a.sensor.bands == L8.bands
    image = a.sample(0, 0, 0, 8, 8)["image"]
    assert np.allclose(image[:, 0, 0], [DN[b] * 2.75e-5 - 0.2 for b in L8.bands], atol=1e-4)
    # both orders in one archive: every scene in the sensor's order
    both = RasterArchive(
        [_landsat(tmp_path / "plain.tif", L8.bands), tmp_path / "reord.tif"], sensor="landsat8", progress=False
    )
    for i in range(2):
        assert np.allclose(both.sample(i, 0, 0, 4, 4)["image"][:, 0, 0], image[:, 0, 0])


def test_mixed_sources_whose_files_order_the_bands_differently_feed_each_band_on_one_channel(tmp_path):
    a = SourceConfig(name="a", type="raster", paths=[str(_landsat(tmp_path / "a.tif", L8.bands))], sensor="landsat8")
    b = SourceConfig(name="b", type="raster", paths=[str(_landsat(tmp_path / "b.tif", REORDERED))], sensor="landsat8")
    a.tile_size = b.tile_size = 32
    cfg = DataConfig(sources=[a, b])
    loader = build_ssl_loader(cfg, _crops(), batch_size=2, num_workers=0, max_steps=1, progress=False)
    bands = [s.sensor.bands for s in loader.sources]
    assert bands == [L8.bands, L8.bands]
    want = [DN[band] for band in L8.bands]
    assert [_channel_dn(s) for s in loader.sources] == [want, want]
    rec, why = data_normalization(cfg)
    assert why == "" and rec["bands"] == list(L8.bands)


def test_sources_selecting_the_same_bands_in_different_orders_are_refused_in_one_line(tmp_path):
    path = str(_landsat(tmp_path / "a.tif", L8.bands))
    a = SourceConfig(name="rgb", type="raster", paths=[path], sensor="landsat8", bands=["SR_B4", "SR_B3", "SR_B2"])
    b = SourceConfig(name="bgr", type="raster", paths=[path], sensor="landsat8", bands=["SR_B2", "SR_B3", "SR_B4"])
    a.tile_size = b.tile_size = 32
    with pytest.raises(ConfigError) as err:
        build_ssl_loader(DataConfig(sources=[a, b]), _crops(), batch_size=2, num_workers=0, max_steps=1, progress=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert "'rgb' and 'bgr'" in msg and "SR_B4, SR_B3, SR_B2" in msg and "SR_B2, SR_B3, SR_B4" in msg


def _mean_of(sensor: Sensor, band: str) -> float:
    return sensor.mean[sensor.bands.index(band)]


def test_norm_sensor_statistics_follow_the_datas_band_names(tmp_path):
    """Data read as SR_B5, SR_B2, ... (`bands:` in that order) under norm_sensor landsat8: channel 0 gets SR_B5's
    mean/std in the crops, the sample loader and the export record."""
    path = str(_landsat(tmp_path / "a.tif", L8.bands))
    src = SourceConfig(name="l8", type="raster", paths=[path], sensor="landsat8", bands=REORDERED, tile_size=32)
    cfg = DataConfig(sources=[src], norm_sensor="landsat8")
    want_mean = [_mean_of(L8, b) for b in REORDERED]
    want_std = [L8.std[L8.bands.index(b)] for b in REORDERED]
    loader = build_ssl_loader(cfg, _crops(), batch_size=2, num_workers=0, max_steps=1, progress=False)
    t = loader.collate_fn.transforms[0]
    assert np.allclose(t.mean.flatten().numpy(), want_mean) and np.allclose(t.std.flatten().numpy(), want_std)
    rec, why = data_normalization(cfg)
    assert why == "" and rec["bands"] == REORDERED
    assert np.allclose(rec["mean"], want_mean) and np.allclose(rec["std"], want_std)
    ds = SampleDataset(loader.sources[0], norm_sensor="landsat8")
    z = ds[0]["image"][:, 0, 0]
    refl = torch.tensor([DN[b] * 2.75e-5 - 0.2 for b in REORDERED])
    assert torch.allclose(z, (refl - torch.tensor(want_mean)) / torch.tensor(want_std), atol=1e-3)


def test_a_norm_sensor_naming_only_some_data_bands_is_refused(tmp_path):
    data = Sensor("mine", ("SR_B2", "SR_B3", "thermal"), 2.75e-5, (0.1,) * 3, (0.1,) * 3, False, offset=-0.2)
    with pytest.raises(ConfigError, match=r"names data bands SR_B2, SR_B3 but not thermal") as err:
        MultiCropTransform(_crops(), data, L8.select(["SR_B2", "SR_B3", "SR_B4"]))
    assert "\n" not in str(err.value)


def test_the_rgb_backbone_statistics_still_apply_to_three_rgb_bands():
    """SAT-493M / ImageNet statistics (R, G, B) on Sentinel-2 B04, B03, B02 or on unnamed 3-band data: in order."""
    from geodino.data.normalization import norm_for_data

    sat = get_sensor("sat493m")
    s2_rgb = get_sensor("sentinel2_l2a").select(["B04", "B03", "B02"])
    assert norm_for_data(sat, s2_rgb).mean == sat.mean
    plain = Sensor("plain", ("b1", "b2", "b3"), 1 / 255, (0.5,) * 3, (0.2,) * 3, True)
    assert norm_for_data(get_sensor("imagenet"), plain).mean == get_sensor("imagenet").mean
    # Landsat 7 data under Landsat 8 statistics: blue gets blue's (OLI SR_B2), not OLI's SR_B1-less positions
    l7 = get_sensor("landsat7")
    assert norm_for_data(L8, l7).mean == L8.mean
    # a 4-band norm sensor on 3 unnamed bands: the band counts differ
    with pytest.raises(ConfigError, match="has 4 bands but the data has 3"):
        norm_for_data(get_sensor("naip"), plain)
