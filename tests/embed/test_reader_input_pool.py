"""On a CPU the reader thread prepares each batch's float32 backbone input into a few pooled buffers that the main
thread gives back once the batch is blended (`Sweeper._ready` / `_give_back`): a new float32 batch per batch,
allocated by the reader and freed by the main thread, left glibc's reader arena holding the gaps (peak RSS of an
8192 px raster: +200 MiB). The pooled inputs must give the raster the unpooled order gives, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from geodino.embed import embed_raster, sweep
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

_OPTS = dict(tile=32, overlap=8, batch_size=2, progress=False, sensor=None, scale=1 / 300, dtype="float32")


class _Recording(ConvBackbone):
    """Keeps every input it was given alive (so a fresh tensor per batch could never share an address)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.inputs: list[torch.Tensor] = []

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> tuple[list, list]:
        self.inputs.append(x)
        return super().features(x, layers, norm)


class _InPlaceNormalize(ConvBackbone):
    """Normalises in place and returns its input (the pooled buffer itself, not a new tensor)."""

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x.sub_(0.5).div_(0.25)


def _store(path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def test_cpu_batches_reuse_a_few_input_buffers_however_many_batches(tmp_path):
    src = write_tif(tmp_path / "in.tif", random_image(200, 200, c=3))
    bb = _Recording(in_chans=3, dim=8, patch=4, n_convs=2)
    embed_raster(src, bb, tmp_path / "out.zarr", **_OPTS)
    storages = {x.untyped_storage().data_ptr() for x in bb.inputs}
    assert len(bb.inputs) >= 30
    # the batches in flight at once: 3 queued, one blended, one being prepared (and one the reader waits to put)
    assert len(storages) <= 6, f"{len(storages)} input buffers for {len(bb.inputs)} batches"


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("backbone", [ConvBackbone, _InPlaceNormalize])
def test_pooled_inputs_write_the_raster_unpooled_inputs_write(tmp_path, monkeypatch, dtype, backbone):
    """uint8/float32 are cast straight into the pooled buffer, uint16 through `as_float32_on` and copied in; a
    normaliser's new tensor is copied back, an in-place one is the buffer; masked batches included."""
    data = random_image(70, 90, c=3, dtype=dtype)
    data[:, 20:35, 30:60] = 0  # nodata: masked batches
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    bb = backbone(in_chans=3, dim=8, patch=4, n_convs=2)
    pooled = _store(embed_raster(src, bb, tmp_path / "pooled.zarr", **_OPTS))
    monkeypatch.setattr(sweep.Sweeper, "_ready", _unpooled_ready)
    unpooled = _store(embed_raster(src, bb, tmp_path / "unpooled.zarr", **_OPTS))
    assert np.isnan(pooled).any() and not np.isnan(pooled).all()
    np.testing.assert_array_equal(pooled.view(np.uint32), unpooled.view(np.uint32))


def _unpooled_ready(self: sweep.Sweeper, tiles: Any) -> Any:
    """The reader's preparation as it was before the pool: a new tensor per batch."""
    if self.prep_in_reader and tiles:
        with torch.inference_mode():
            tiles.ready = self._input(tiles)
    return tiles
