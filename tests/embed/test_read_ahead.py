"""Windowed reads on several threads (`geodino.embed.read_ahead`): results in the order asked, one handle per
thread, all closed, errors raised at their item's turn, and a sweep storing the same bytes as with one reader."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rasterio

import geodino.embed.read_ahead as read_ahead_module
from geodino.embed import embed_raster
from geodino.embed.read_ahead import read_ahead, read_threads
from geodino.errors import ConfigError, InputError
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone


class _Source:
    """Hands out handles that record which thread read what (and sleep a little, so reads overlap)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.opened: list[_Handle] = []
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def open(self) -> _Handle:
        h = _Handle(self)
        with self.lock:
            self.opened.append(h)
        return h


class _Handle:
    def __init__(self, source: _Source) -> None:
        self.source, self.closed, self.threads = source, False, set()

    def read(self, item: int) -> int:
        assert not self.closed
        self.threads.add(threading.get_ident())
        time.sleep(0.002 * (item % 3))  # later items may finish first
        if item == self.source.fail_at:
            raise InputError(f"cannot read item {item}")
        return item * item

    def close(self) -> None:
        self.closed = True


def _read(handle: _Handle, item: int) -> int:
    return handle.read(item)


@pytest.mark.parametrize("threads", [1, 3])
def test_results_come_in_the_order_asked_each_thread_on_its_own_handle(threads):
    src = _Source()
    got = list(read_ahead(src, range(40), _read, threads, threading.Event()))
    assert got == [(i, i * i) for i in range(40)]
    assert 1 <= len(src.opened) <= threads and all(h.closed for h in src.opened)
    assert all(len(h.threads) == 1 for h in src.opened)  # a handle is never shared between threads
    if threads > 1:
        assert len(src.opened) > 1  # the reads did spread over threads


def test_a_failed_read_is_raised_at_its_turn_and_every_handle_closed():
    src = _Source(fail_at=7)
    seen = []
    with pytest.raises(InputError, match="cannot read item 7"):
        for item, _ in read_ahead(src, range(40), _read, 3, threading.Event()):
            seen.append(item)
    assert seen == list(range(7))
    assert all(h.closed for h in src.opened)


def test_nothing_more_is_read_once_stopped():
    src, stop = _Source(), threading.Event()
    seen = []
    for item, _ in read_ahead(src, range(1000), _read, 3, stop):
        seen.append(item)
        if item == 4:
            stop.set()
    assert seen == list(range(5))
    assert all(h.closed for h in src.opened)


def test_the_sweeps_reader_count(monkeypatch):
    assert read_threads("cpu") == 1  # the cores are the forward's
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)  # the usable CPUs
    assert read_threads("cuda") == 4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert read_threads("cuda") == 2
    assert read_threads("cpu", 3) == 3 and read_threads("cuda", 1) == 1  # the run's read_threads


def test_a_negative_reader_count_is_refused_in_one_line(tmp_path):
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    with pytest.raises(ConfigError, match=r"^read_threads=-1 is not valid; give 0 \(automatic\) or a count >= 1$"):
        embed_raster(src, ConvBackbone(), tmp_path / "out.zarr", read_threads=-1, progress=False)


def test_a_sweep_on_three_readers_stores_what_one_reader_stores(tmp_path, monkeypatch):
    data = random_image(100, 130, c=3)
    data[:, 30:60, 40:90] = 0
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    opts = dict(tile=32, overlap=8, batch_size=3, progress=False, max_block_cols=12, chunk=12)

    def stored(name: str) -> np.ndarray:
        with rasterio.open(embed_raster(src, bb, tmp_path / name, **opts)) as ds:
            return ds.read()

    one = stored("one.zarr")
    opts["read_threads"] = 3
    threads: set[str] = set()
    real = read_ahead_module.read_ahead

    def spying(source, items, read, n, stop):
        def on(handle, item):
            threads.add(threading.current_thread().name)
            return read(handle, item)

        return real(source, items, on, n, stop)

    monkeypatch.setattr("geodino.embed.sweep.read_ahead", spying)
    three = stored("three.zarr")
    assert len(threads) > 1 and all(t.startswith("embed-read") for t in threads)
    assert np.isnan(one).any()
    np.testing.assert_array_equal(three.view(np.uint32), one.view(np.uint32))


def test_a_damaged_raster_read_on_three_threads_is_the_same_one_line(tmp_path):
    data = random_image(128, 128, c=3)
    path = write_tif(tmp_path / "in.tif", data)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # the header reads, later blocks fail
    bb = ConvBackbone(in_chans=3, dim=8, patch=4, n_convs=2)
    lines = []
    for n in (1, 3):
        with pytest.raises(InputError) as err:
            embed_raster(path, bb, tmp_path / f"out{n}.zarr", tile=32, overlap=8, progress=False, read_threads=n)
        lines.append(str(err.value))
    assert lines[0] == lines[1] and "truncated or corrupt" in lines[0]
