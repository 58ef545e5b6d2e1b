"""The sweep's input side: windows read in the raster's own dtype, DN -> reflectance as one affine step that numpy
and torch apply to the same bits, and the accelerator order (the raw batch copied to the device and prepared there)
giving the raster the CPU order gives."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.embed import embed_raster, sweep
from geodino.embed.config import EmbedConfig
from geodino.embed.input_scaling import InputScale, as_float32_on, input_scaler
from geodino.embed.sources import RasterSource, SourceInfo
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone


def _info(dtype: str, count: int) -> SourceInfo:
    return SourceInfo("x.tif", 8, 8, count, dtype, None, None, None, (None,) * count)


RULES = [  # (dtype, bands, config, hand-written float32 rule of the data x)
    ("uint8", 3, {}, lambda x: x * np.float32(1 / 255)),
    ("uint16", 4, {}, lambda x: x * np.float32(1e-4)),
    ("int16", 2, {"scale": 0.003}, lambda x: x * np.float32(0.003)),
    ("float32", 3, {}, lambda x: x),
    ("uint16", 6, {"sensor": "landsat8"}, lambda x: x * np.float32(2.75e-05) + np.float32(-0.2)),
    (
        "uint16",
        2,
        {"band_scale": [1e-4, 2e-4], "band_offset": [-0.1, 0.05]},
        lambda x: x * np.float32([1e-4, 2e-4]).reshape(-1, 1, 1) + np.float32([-0.1, 0.05]).reshape(-1, 1, 1),
    ),
]


@pytest.mark.parametrize(("dtype", "bands", "options", "by_hand"), RULES)
def test_torch_scales_to_the_bits_of_the_numpy_rule(dtype, bands, options, by_hand):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        raw = rng.random((2, bands, 5, 7)).astype(dtype)
    else:
        top = min(np.iinfo(dtype).max, 30000)
        raw = rng.integers(max(np.iinfo(dtype).min, -3000), top, (2, bands, 5, 7)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the assumed x/10000 of 16-bit input warns; not what this test is about
        rule, _ = input_scaler(_info(dtype, bands), EmbedConfig(**options))
    assert isinstance(rule, InputScale)
    expected = by_hand(raw.astype(np.float32))  # numpy, tile by tile, as the reader applied the rule before
    with_torch = rule.apply_(torch.from_numpy(raw).float()).numpy()  # the batch, as the sweep applies it
    assert with_torch.dtype == np.float32
    np.testing.assert_array_equal(with_torch.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"]
)
def test_raw_values_cross_as_float32_exactly_as_numpy_casts_them(dtype):
    """uint16/uint32 cross as the signed integer of their width and are masked back (torch converts them only in
    part on accelerators): every value, the extremes included, equals numpy's cast bit for bit."""
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind in "iu":
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        raw = np.concatenate([np.array([lo, hi, 0, 1], dtype), rng.integers(lo, hi, 2000, dtype=dtype, endpoint=True)])
    else:
        big = np.finfo(dtype).max
        raw = np.concatenate([np.array([-big, big, 0, np.inf, -np.inf], dtype), rng.normal(0, 1e3, 2000).astype(dtype)])
    with np.errstate(over="ignore"):
        expected = raw.astype(np.float32)
    got = as_float32_on(torch.from_numpy(raw), "cpu").numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_windows_are_read_in_the_rasters_dtype_and_zero_filled_outside(tmp_path):
    data = random_image(40, 50, c=2, dtype="uint16")
    src = RasterSource(str(write_tif(tmp_path / "u16.tif", data))).open()
    try:
        inside, ok = src.read(8, 24, 10, 30)
        assert inside.dtype == np.uint16 and ok.all()
        np.testing.assert_array_equal(inside, data[:, 8:24, 10:30])
        edge, ok = src.read(32, 48, 40, 60)  # runs 8 rows and 10 columns past the raster
        assert edge.dtype == np.uint16 and edge.shape == (2, 16, 20)
        np.testing.assert_array_equal(edge[:, :8, :10], data[:, 32:, 40:])
        assert not edge[:, 8:].any() and not edge[:, :, 10:].any()
        assert ok[:8, :10].all() and not ok[8:].any() and not ok[:, 10:].any()
        outside, ok = src.read(100, 116, 0, 16)
        assert outside.dtype == np.uint16 and not outside.any() and not ok.any()
    finally:
        src.close()


_OPTS = dict(tile=32, overlap=8, batch_size=3, progress=False, sensor=None, scale=1 / 300, dtype="float32")


def _store(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def _masked_raster_in_cpu_order(tmp_path: Path, dtype: str) -> tuple[Path, ConvBackbone, np.ndarray]:
    """A 3-band raster holding a nodata block (masked batches), the toy backbone, and the store the CPU order writes
    for them with `_OPTS`: what an accelerator order must write bit for bit."""
    data = random_image(70, 90, c=3, dtype=dtype)
    data[:, 20:35, 30:60] = 0  # nodata: masked batches
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    return src, bb, _store(embed_raster(src, bb, tmp_path / "cpu.zarr", **_OPTS))


def _force_accelerator_order(monkeypatch: pytest.MonkeyPatch, *, pin: bool = False) -> None:
    """Sweepers built from now on prepare each batch in the main thread, as on a GPU (`pin`: in page-locked
    memory too, which torch does only with CUDA)."""
    init = sweep.Sweeper.__init__

    def accelerator_order(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.prep_in_reader = False
        if pin:
            self.pin = True

    monkeypatch.setattr(sweep.Sweeper, "__init__", accelerator_order)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_the_accelerator_order_writes_the_raster_the_cpu_order_writes(tmp_path, monkeypatch, dtype):
    """On a GPU the reader hands the raw batch over and the main thread copies, scales, normalises and masks it on
    the device; forced here on the CPU, that order must store the same bytes, and its batches must cross in the
    raster's dtype (a uint8 batch is a quarter of the float32 bytes)."""
    src, bb, cpu_order = _masked_raster_in_cpu_order(tmp_path, dtype)
    crossed: list[np.dtype] = []
    in_main: list[bool] = []
    prepare = sweep.Sweeper._input

    def recording(self, tiles):
        crossed.append(tiles.x.dtype)
        in_main.append(threading.current_thread() is threading.main_thread())
        return prepare(self, tiles)

    _force_accelerator_order(monkeypatch)
    monkeypatch.setattr(sweep.Sweeper, "_input", recording)
    device_order = _store(embed_raster(src, bb, tmp_path / "device.zarr", **_OPTS))
    assert crossed and set(crossed) == {np.dtype(dtype)}
    assert all(in_main)  # prepared by the main thread: the CPU order prepares in the reader thread
    assert np.isnan(cpu_order).any()  # the nodata block is in the output, so masking was exercised
    np.testing.assert_array_equal(device_order.view(np.uint32), cpu_order.view(np.uint32))


@pytest.mark.parametrize("order", ["cpu", "accelerator"])
def test_a_big_endian_cube_embeds_as_its_native_copy(tmp_path, monkeypatch, order):
    """A cube whose values are big-endian (netCDF-3's byte order, kept by readers that map the file) is batched in
    the machine's order: torch takes no other, and the raster equals that of the same values in native order."""
    import rioxarray  # noqa: F401
    import xarray as xr

    data = random_image(64, 64, dtype="uint16")
    coords = {"band": [1, 2, 3], "y": 4e6 - 10 * (np.arange(64) + 0.5), "x": 5e5 + 10 * (np.arange(64) + 0.5)}

    def cube(values):
        return xr.DataArray(values, dims=("band", "y", "x"), coords=coords).rio.write_crs("EPSG:32633")

    if order == "accelerator":
        _force_accelerator_order(monkeypatch)
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    opts = dict(tile=32, overlap=8, progress=False, scale=1e-4)
    big = data.astype(">u2")
    assert big.dtype.byteorder == ">" and np.array_equal(big, data)

    def store(values, name):
        import rasterio

        with rasterio.open(embed_raster(cube(values), bb, tmp_path / name, **opts)) as ds:
            return ds.read()

    np.testing.assert_array_equal(store(big, "big.zarr").view(np.uint32), store(data, "native.zarr").view(np.uint32))


def test_a_pinned_batch_takes_its_nodata_mask_from_pinned_memory_and_writes_the_same_raster(tmp_path, monkeypatch):
    """On CUDA a batch's values and its validity mask are views of page-locked tensors, so both cross to the device
    without the host waiting (the mask was a blocking copy of a numpy array, negated on the host, per masked batch).
    Pinning forced here on the CPU (torch pins only with CUDA): the mask reaches `_input` as the held tensor, never
    through `torch.from_numpy`, and the raster equals the CPU order's bit for bit."""
    src, bb, cpu_order = _masked_raster_in_cpu_order(tmp_path, "uint8")
    prepare, empty, from_numpy = sweep.Sweeper._input, torch.empty, torch.from_numpy
    masks_from_numpy: list[tuple[int, ...]] = []
    masked_batches: list[bool] = []

    def recording(self, tiles):
        held_valid = getattr(tiles, "held_valid", None)
        shared = held_valid is not None and np.shares_memory(tiles.valid, held_valid.numpy())
        masked_batches.append(not all(tiles.full) and shared)
        return prepare(self, tiles)

    def spy(a):
        if a.dtype == bool:  # no other boolean array goes through torch in a sweep
            masks_from_numpy.append(a.shape)
        return from_numpy(a)

    monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: empty(*a, **k))  # pinning needs CUDA
    monkeypatch.setattr(torch, "from_numpy", spy)
    _force_accelerator_order(monkeypatch, pin=True)
    monkeypatch.setattr(sweep.Sweeper, "_input", recording)
    pinned = _store(embed_raster(src, bb, tmp_path / "pinned.zarr", **_OPTS))
    assert not masks_from_numpy, f"nodata masks of shapes {masks_from_numpy} crossed from numpy"
    assert any(masked_batches)  # batches holding nodata went through `_input`, their masks views of held tensors
    np.testing.assert_array_equal(pinned.view(np.uint32), cpu_order.view(np.uint32))
