"""The sweep's writer stores a chunk row at a time (`ChunkRowWriter`, issue 15) and the float16 cast goes through
torch: the stored bytes are those of direct row-by-row writes, progress records never claim rows not yet in the
store, and each chunk is encoded once when the sweep is faster than `ROWS_FLUSH_S`."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import embed_raster, sweep, sweep_writer
from geodino.embed.encoding import to_float16
from geodino.embed.writers import VAR, ChunkRowWriter, ZarrBlockWriter, create_store
from tests.embed.conftest import random_image, write_tif


def _store(path: Path, h: int, w: int, dtype: str = "float16", chunk: int = 8) -> Path:
    from affine import Affine

    create_store(
        path, height=h, width=w, transform=Affine(10, 0, 0, 0, -10, 0), crs="EPSG:32633",
        band_names=["a", "b", "c"], dtype=dtype, chunk=chunk, metadata={},
    )  # fmt: skip
    return path


def _files(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((store / VAR).iterdir())}


def _data(h: int, w: int, dtype: str, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((3, h, w)).astype(np.float32)
    x[:, 3, 2] = np.nan
    return x.astype(dtype) if dtype.startswith("float") else np.nan_to_num(x).astype(dtype)  # NaN has no int8


@pytest.mark.parametrize("dtype", ["float16", "float32", "int8"])
def test_chunk_row_writer_stores_the_bytes_of_direct_writes(tmp_path, dtype):
    """Rows in slices that cross chunk rows, a last chunk row cut by the raster's edge, a flush part-way (a progress
    record older than ROWS_FLUSH_S) and a second column range: the chunk files equal those of direct writes."""
    h, w = 29, 24  # chunk 8: the last chunk row is 5 rows high
    data = _data(h, w, dtype)
    ref = _store(tmp_path / "ref.zarr", h, w, dtype)
    out = _store(tmp_path / "out.zarr", h, w, dtype)
    direct, rows = ZarrBlockWriter(ref), ChunkRowWriter(out)
    cuts = [0, 3, 6, 11, 16, 21, 29]  # 16: a slice ending on a chunk boundary; 21 -> 29: the edge chunk row
    for c0, c1 in ((0, 16), (16, 24)):
        for k, (r0, r1) in enumerate(itertools.pairwise(cuts)):
            direct.write(r0, c0, data[:, r0:r1, c0:c1])
            rows.add(r0, c0, data[:, r0:r1, c0:c1])
            if (c0, k) == (0, 2):
                rows.flush()
                assert rows.stored_to == 11
        assert rows.stored_to == h  # the edge chunk row is complete at the raster's last row
    rows.flush()
    assert _files(out) == _files(ref)


def test_chunk_row_writer_holds_rows_until_their_chunk_row_is_complete(tmp_path):
    """Each chunk is written once when the rows come in slices smaller than a chunk (before: at every slice), and
    `stored_to` says which rows a progress record may claim."""
    h, w = 24, 16
    data = _data(h, w, "float16")
    out = _store(tmp_path / "out.zarr", h, w)
    writer = ChunkRowWriter(out)
    writes: list[tuple[int, int]] = []
    real = writer.direct.write
    writer.direct.write = lambda r0, c0, d: writes.append((r0, d.shape[1])) or real(r0, c0, d)
    for r0 in range(0, h, 3):
        writer.add(r0, 0, data[:, r0 : r0 + 3])
        assert writer.stored_to == (r0 + 3) // 8 * 8
    assert writes == [(0, 8), (8, 8), (16, 8)]
    ref = _store(tmp_path / "ref.zarr", h, w)
    ZarrBlockWriter(ref).write(0, 0, data)
    assert _files(out) == _files(ref)


def test_chunk_row_writer_resumes_inside_a_chunk_row(tmp_path):
    """A block resumed part-way starts mid-chunk: the rows already stored are kept (merged by zarr)."""
    h, w = 16, 8
    data = _data(h, w, "float32")
    out = _store(tmp_path / "out.zarr", h, w, "float32")
    ZarrBlockWriter(out).write(0, 0, data[:, :5])  # the killed run's rows
    writer = ChunkRowWriter(out)
    for r0 in (5, 7, 12):
        writer.add(r0, 0, data[:, r0 : min(h, r0 + 5) if r0 < 12 else h])
    writer.flush()
    ref = _store(tmp_path / "ref.zarr", h, w, "float32")
    ZarrBlockWriter(ref).write(0, 0, data)
    assert _files(out) == _files(ref)


class _DirectRows:
    """The writer before issue 15: every slice straight into the store."""

    def __init__(self, path):
        self.direct, self.c0, self.stored_to, self.held_since, self.held = ZarrBlockWriter(path), -1, 0, 0.0, False

    def add(self, r0, c0, data):
        self.direct.write(r0, c0, data)
        self.c0, self.stored_to = c0, r0 + data.shape[1]

    def flush(self):
        pass


@pytest.mark.parametrize("flush_s", [0.0, 1e9])
@pytest.mark.parametrize("opts", [dict(dtype="float16"), dict(dtype="int8", max_block_cols=16, block_rows=32)])
def test_sweep_stores_the_bytes_of_row_by_row_writes(tmp_path, conv_bb, monkeypatch, flush_s, opts):
    """The whole pipeline (tile rows every 6 cells, chunks of 16): the same chunk files as with the writer that stored
    every tile row at once, whether held rows are stored at every record (ROWS_FLUSH_S 0) or only complete chunk
    rows; every progress record is written once the rows it claims read back as in the finished store."""
    import zarr

    from geodino.embed import workdir

    src = write_tif(tmp_path / "in.tif", random_image(150, 100, seed=3))
    opts = dict(tile=32, overlap=8, chunk=16, progress=False, **opts)
    monkeypatch.setattr(sweep_writer, "ChunkRowWriter", _DirectRows)
    ref = embed_raster(src, conv_bb, tmp_path / "ref.zarr", **opts)
    monkeypatch.undo()

    checks: list[tuple[str, int, int]] = []
    blocks = {}
    real = {"rows": sweep_writer.mark_rows, "done": sweep_writer.mark_done, "run": sweep.Sweeper.run}

    def check(kind, work, index, rows_done):  # in the writer thread, as the record is written
        store = zarr.open_array(str(work / workdir.STORE / VAR), mode="r", zarr_format=2)
        final = zarr.open_array(str(ref / VAR), mode="r", zarr_format=2)
        b = blocks[index]
        got, want = store[:, b.r0 : rows_done, b.c0 : b.c1], final[:, b.r0 : rows_done, b.c0 : b.c1]
        np.testing.assert_array_equal(got, want)  # NaN == NaN
        checks.append((kind, index, rows_done))

    def rows(work, index, rows_done, n_valid):
        check("rows", work, index, rows_done)
        real["rows"](work, index, rows_done, n_valid)

    def done(work, index, n_valid=None):
        check("done", work, index, blocks[index].r1)
        real["done"](work, index, n_valid)

    def run(self, todo):
        blocks.update({b.index: b for b in self.plan.blocks()})
        return real["run"](self, todo)

    monkeypatch.setattr(sweep_writer, "mark_rows", rows)
    monkeypatch.setattr(sweep_writer, "mark_done", done)
    monkeypatch.setattr(sweep.Sweeper, "run", run)
    monkeypatch.setattr(sweep_writer, "ROWS_FLUSH_S", flush_s)
    out = embed_raster(src, conv_bb, tmp_path / "out.zarr", **opts)
    assert _files(out) == _files(ref)
    assert {k for k, _, _ in checks} == {"rows", "done"}


@pytest.mark.parametrize("shape", [(3, 24, 512), (2, 5, 7)])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # numpy's, on the reference side
def test_to_float16_is_numpy_bit_for_bit(shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-9, 6, shape)).astype(np.float32)
    np.testing.assert_array_equal(to_float16(x).view(np.uint16), x.astype(np.float16).view(np.uint16))
    # every exponent, ties at float16's rounding, subnormals, overflow to inf; then NaNs with payloads
    bits = rng.integers(0, 2**32, 2**20, dtype=np.uint64).astype(np.uint32)
    bits[: 2**12] = (np.arange(2**12, dtype=np.uint32) << 20) | 0x1000  # halfway between float16 neighbours
    y = bits.view(np.float32)
    finite = y[~np.isnan(y)]
    np.testing.assert_array_equal(to_float16(finite).view(np.uint16), finite.astype(np.float16).view(np.uint16))
    np.testing.assert_array_equal(to_float16(y).view(np.uint16), y.astype(np.float16).view(np.uint16))
    strided = x[:, ::2, ::-1]
    np.testing.assert_array_equal(to_float16(strided).view(np.uint16), strided.astype(np.float16).view(np.uint16))


_PAYLOAD_NAN = np.array([0x7FA00000], np.uint32).view(np.float32)[0]  # numpy makes it 0x7d00, torch 0x7f00


def _edge_cases() -> dict[str, np.ndarray]:
    """Arrays at the edges of `to_float16`'s NaN check (isnan of the max): a NaN first, in the middle and last (odd
    lengths: vector loops' tails), with infinities of both signs (a sum would be NaN without one), -0.0, empty."""
    x = np.random.default_rng(1).standard_normal((4, 6, 37)).astype(np.float32)
    cases = {"no NaN": x, "empty": np.zeros(0, np.float32), "empty 2-D": np.zeros((0, 3), np.float32)}
    for nan_name, nan in (("NaN", np.float32(np.nan)), ("payload NaN", _PAYLOAD_NAN)):
        for where, i in (("first", 0), ("middle", x.size // 2), ("last", x.size - 1)):
            y = x.copy()
            y.flat[i] = nan
            cases[f"{nan_name} {where}"] = y
    infs = x.copy()
    infs.flat[[0, 5, -1]] = [np.inf, -np.inf, np.inf]
    cases["+-inf"] = infs
    cases["+-inf and NaN last"] = infs.copy()
    cases["+-inf and NaN last"].flat[-1] = _PAYLOAD_NAN
    zeros = x.copy()
    zeros.flat[::3] = -0.0
    cases["-0.0"] = zeros
    cases["all -0.0"] = np.full((3, 5), -0.0, np.float32)
    strided = x.copy()
    strided[:, 1::2] = _PAYLOAD_NAN  # outside the view: torch converts it
    cases["strided, NaN outside"] = strided[:, ::2, 1::2]
    strided = strided.copy()
    strided[-1, -2, -2] = _PAYLOAD_NAN  # the last value of the view
    cases["strided, NaN last"] = strided[:, ::2, 1::2]
    return cases


@pytest.mark.parametrize("name", list(_edge_cases()))
def test_to_float16_edge_cases_are_numpy_bit_for_bit(name):
    x = _edge_cases()[name]
    got, want = to_float16(x), x.astype(np.float16)
    assert got.dtype == np.float16 and got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    # NaNs too: an array holding one is converted by numpy (torch would give _PAYLOAD_NAN another payload)
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


def test_held_rows_are_not_stored_into_a_removed_work_folder(tmp_path, conv_bb, monkeypatch):
    """A run interrupted after its work folder was removed (another run's --overwrite): the rows the writer still
    holds are not stored at the end, which would recreate the folder."""
    import shutil
    import time

    from geodino.embed.pipeline import work_dir_for

    src = write_tif(tmp_path / "in.tif", random_image(150, 100, seed=3))
    out = tmp_path / "o.zarr"
    work = work_dir_for(out)

    def remove_then_interrupt(n_blocks: int, n_rows: int) -> None:
        if n_rows == 2:  # rows 0-12 of the first chunk row (16 high) are held
            time.sleep(0.5)  # the writer takes them (it would find the folder gone at once otherwise)
            shutil.rmtree(work)
            raise KeyboardInterrupt("simulated Ctrl-C")

    monkeypatch.setattr(sweep, "_after_row", remove_then_interrupt)
    monkeypatch.setattr(sweep_writer, "ROWS_FLUSH_S", 1e9)
    with pytest.raises(KeyboardInterrupt):
        embed_raster(src, conv_bb, out, tile=32, overlap=8, chunk=16, progress=False)
    assert not work.exists(), "the writer recreated the removed work folder"
