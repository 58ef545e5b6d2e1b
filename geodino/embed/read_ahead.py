"""Windowed reads of the sweep on several threads, handed back in sweep order.

One reader thread decodes about 600-900 tiles of 512 px a second (GDAL's deflate and the copies around it); a bf16
ViT-S on a data-centre GPU infers ~3,900, so on an accelerator the single reader bounds a feature raster. GDAL
releases the GIL while it decodes, so a few threads, each with its own dataset handle (GDAL handles are not
shared between threads), read the next tiles while the sweep's reader thread stacks the current ones. Results come
back in the order asked, so batches, blending and stores are exactly those of one thread. On a CPU run the backbone
is the bound and the cores are its, so the sweep keeps one reader there (`read_threads`; `EmbedConfig.read_threads`
sets the count).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from geodino.cpus import usable_cpus

__all__ = ["read_ahead", "read_threads"]

T = TypeVar("T")
R = TypeVar("R")


def read_threads(device_type: str, setting: int = 0) -> int:
    """Threads reading windows for a sweep on `device_type` ("cpu", "cuda", ...): `setting` (the run's
    `read_threads`) when > 0, else 1 on a CPU and a quarter of the CPU's cores, 2 to 4, on an accelerator."""
    if setting > 0:
        return int(setting)
    if device_type == "cpu":
        return 1
    return min(4, max(2, usable_cpus() // 4))


def read_ahead(
    source: Any, items: Iterable[T], read: Callable[[Any, T], R], threads: int, stop: threading.Event
) -> Generator[tuple[T, R], None, None]:
    """(item, read(handle, item)) for each item in order; `threads` > 1 reads up to 2 x threads items ahead, each
    thread on its own `source.open()` handle (closed at the end). A read's error is raised here, when its item's
    turn comes; nothing is read once `stop` is set."""
    if threads <= 1:
        src = source.open()
        try:
            for item in items:
                if stop.is_set():
                    return
                yield item, read(src, item)
        finally:
            src.close()
        return
    local, handles, lock = threading.local(), [], threading.Lock()

    def on_thread(item: T) -> R:
        if stop.is_set():
            raise _Stopped
        src = getattr(local, "src", None)
        if src is None:
            src = local.src = source.open()
            with lock:
                handles.append(src)
        return read(src, item)

    pending: deque[tuple[T, Future]] = deque()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="embed-read")
    try:
        todo = iter(items)
        for item in todo:
            pending.append((item, pool.submit(on_thread, item)))
            if len(pending) >= 2 * threads:
                break
        while pending:
            item, fut = pending.popleft()
            nxt = next(todo, _END)
            if nxt is not _END:
                pending.append((nxt, pool.submit(on_thread, nxt)))
            if stop.is_set():
                return
            try:
                result = fut.result()
            except _Stopped:
                return
            yield item, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for src in handles:
            src.close()


class _Stopped(Exception):
    """A read not started because the sweep stopped (never raised to the caller: `read_ahead` returns first)."""


_END: Any = object()
