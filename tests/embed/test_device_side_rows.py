"""On an accelerator, finished rows are L2-normalised and cast to float16 on the device before their one copy to
the host (half the bytes, no host arithmetic). Forced here on the CPU, that order must store what the host order
stores: the same bits for a plain float16 or float32 store, within float16 / int8 rounding when the L2 norm (a
reduction in another order) is taken there."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.embed import embed_raster, sweep, sweep_band
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone


def _store(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.mark.parametrize(
    ("dtype", "l2", "exact"),
    [("float16", False, True), ("float32", False, True), ("float16", True, False), ("float32", True, False)],
)
def test_rows_finished_on_the_device_store_what_the_host_stores(tmp_path, monkeypatch, dtype, l2, exact):
    data = random_image(70, 90, c=3)
    data[:, 20:35, 30:60] = 0  # nodata cells: masked after the cast
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    opts = dict(tile=32, overlap=8, batch_size=3, progress=False, sensor=None, scale=1 / 300, dtype=dtype)
    host = _store(embed_raster(src, bb, tmp_path / "host.zarr", l2_normalize=l2, **opts))
    init, sent = sweep._Band.__init__, []

    def device_order(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.on_device = True

    real_encode = sweep_band.encode

    def recording(feats, valid, dt):
        sent.append(feats.dtype)
        return real_encode(feats, valid, dt)

    monkeypatch.setattr(sweep._Band, "__init__", device_order)
    monkeypatch.setattr(sweep_band, "encode", recording)
    device = _store(embed_raster(src, bb, tmp_path / "device.zarr", l2_normalize=l2, **opts))
    assert sent and set(sent) == {np.dtype(dtype)}  # a float16 store's rows cross already cast
    assert np.isnan(host).any() and np.array_equal(np.isnan(host), np.isnan(device))
    if exact:
        bits = np.uint16 if dtype == "float16" else np.uint32
        assert np.array_equal(host.view(bits), device.view(bits))
    else:
        ok = ~np.isnan(host)
        tol = 1e-3 if dtype == "float16" else 1e-6
        np.testing.assert_allclose(device[ok], host[ok], atol=tol, rtol=0)
        norms = np.sqrt(np.nansum(device.astype(np.float64) ** 2, axis=0))
        assert np.allclose(norms[ok[0]], 1.0, atol=5e-3)


def test_int8_rows_are_quantised_on_the_host_from_float32(tmp_path, monkeypatch):
    """int8 codes come from float32 values on the host in both orders (the device only normalises)."""
    src = write_tif(tmp_path / "in.tif", random_image(64, 64, c=3))
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    opts = dict(tile=32, overlap=8, progress=False, sensor=None, scale=1 / 300, dtype="int8", l2_normalize=True)
    host = _store(embed_raster(src, bb, tmp_path / "host.zarr", **opts)).astype(int)
    init = sweep._Band.__init__

    def device_order(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.on_device = True

    monkeypatch.setattr(sweep._Band, "__init__", device_order)
    device = _store(embed_raster(src, bb, tmp_path / "device.zarr", **opts)).astype(int)
    assert np.abs(device - host).max() <= 1 and (device == host).mean() > 0.99
