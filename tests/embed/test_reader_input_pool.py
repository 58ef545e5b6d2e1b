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


class _Normalizes(ConvBackbone):
    """`normalize` and its in-place form, as `FrozenBackbone` has them, counting the batches each was given."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls = {"normalize": 0, "normalize_": 0}

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        self.calls["normalize"] += x.shape[0] > 0
        return (x - 0.5) / 0.25

    def normalize_(self, x: torch.Tensor) -> torch.Tensor:
        self.calls["normalize_"] += 1
        return x.sub_(0.5).div_(0.25)


def _nodata_tif(tmp_path, dtype: str = "uint8", h: int = 200, w: int = 200):
    data = random_image(h, w, c=3, dtype=dtype)
    data[:, 20:35, 30:60] = 0  # nodata: masked batches
    data[:, h * 3 // 4 :, : w // 5] = 0  # whole 16-px cells too
    return write_tif(tmp_path / "in.tif", data, nodata=0)


def test_cpu_batches_reuse_a_few_validity_arrays_however_many_batches(tmp_path, monkeypatch):
    """The validity arrays the reader stacks (and the main thread blends with) come from the same few pooled arrays:
    one new array per batch, freed by the main thread, stayed in the reader's malloc arena between its batches."""
    kept: list[np.ndarray] = []  # alive, so a fresh array per batch could never share an address
    add = sweep._Band.add

    def recording_add(self, i, tiles, feats, weights):
        kept.append(tiles.valid)
        return add(self, i, tiles, feats, weights)

    monkeypatch.setattr(sweep._Band, "add", recording_add)
    embed_raster(
        _nodata_tif(tmp_path), ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2), tmp_path / "o.zarr", **_OPTS
    )
    addresses = {v.__array_interface__["data"][0] for v in kept}
    assert len(kept) >= 30
    assert len(addresses) <= 6, f"{len(addresses)} validity arrays for {len(kept)} batches"


def test_in_place_normalisation_on_the_pooled_buffers(tmp_path):
    """A backbone with `normalize_` (FrozenBackbone's) is normalised in the pooled buffer: no batch-sized tensor
    from `normalize` per batch."""
    bb = _Normalizes(in_chans=3, dim=8, patch=4, n_convs=2)
    embed_raster(_nodata_tif(tmp_path), bb, tmp_path / "o.zarr", **_OPTS)
    assert bb.calls["normalize_"] >= 30 and bb.calls["normalize"] == 0, bb.calls


def test_a_subclass_normalize_is_used_as_it_is(tmp_path):
    """`normalize_` is used only beside the `normalize` of its own class: a subclass that overrides `normalize`
    alone keeps its own."""

    class Shifted(_Normalizes):
        def normalize(self, x: torch.Tensor) -> torch.Tensor:
            self.calls["normalize"] += x.shape[0] > 0
            return (x - 0.25) / 0.5

    bb = Shifted(in_chans=3, dim=8, patch=4, n_convs=2)
    embed_raster(_nodata_tif(tmp_path), bb, tmp_path / "o.zarr", **_OPTS)
    assert bb.calls["normalize"] >= 30 and bb.calls["normalize_"] == 0, bb.calls


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_in_place_steps_write_the_raster_the_new_tensors_write(tmp_path, monkeypatch, dtype):
    """Cast into the pooled buffer (numpy's for uint16), normalised and masked in place: the same bits as the
    new-tensor steps (`normalize`, `masked_fill`), nodata included, for geodino's own backbone."""
    from geodino.backbones import load_backbone

    src = _nodata_tif(tmp_path, dtype, 150, 170)
    bb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    opts = {**_OPTS, "tile": 64, "overlap": 16, "scale": 1 / 300 if dtype != "float32" else None}
    pooled = _store(embed_raster(src, bb, tmp_path / "pooled.zarr", **opts))
    monkeypatch.setattr(sweep.Sweeper, "_ready", _unpooled_ready)
    unpooled = _store(embed_raster(src, bb, tmp_path / "unpooled.zarr", **opts))
    assert np.isnan(pooled).any() and not np.isnan(pooled).all()
    np.testing.assert_array_equal(pooled.view(np.uint32), unpooled.view(np.uint32))


def test_frozen_backbone_normalize_in_place_gives_normalize_bits_and_checks_the_same():
    from geodino.backbones import load_backbone
    from geodino.errors import InputError

    bb = load_backbone("arch:vit_tiny?seed=0&depth=1")
    x = torch.rand(2, 3, 16, 16) * 3 - 1
    x[0, 1, 2, 3] = float("nan")
    want = bb.normalize(x)
    got = bb.normalize_(x.clone())
    np.testing.assert_array_equal(got.numpy().view(np.uint32), want.numpy().view(np.uint32))
    with pytest.raises(InputError, match="band"):
        bb.normalize_(torch.rand(2, 4, 16, 16))
    with pytest.raises(InputError, match="float"):
        bb.normalize_(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
