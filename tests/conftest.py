"""Set-ups every test shares."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """geodino's per-user cache (the weights digests: `geodino.backbones.weights_digest`) in a temporary folder, so
    that no test writes to the real home's ~/.cache, nor reads what a user's runs left there. Subprocesses (CLI
    tests) inherit it."""
    before = os.environ.get("GEODINO_CACHE_DIR")
    os.environ["GEODINO_CACHE_DIR"] = str(tmp_path_factory.mktemp("user_cache"))
    yield
    if before is None:
        os.environ.pop("GEODINO_CACHE_DIR", None)
    else:
        os.environ["GEODINO_CACHE_DIR"] = before


@pytest.fixture(autouse=True)
def _fresh_corrupt_image_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with `geodino.data.images`' count of corrupt images at 0, as a fresh process: a training
    process names the first `images.NAMED` and then says a count at 21, 100, ..., so the skips of earlier tests on
    the same xdist worker silenced a warning a test asserts, or added a count line that failed a test
    (error::UserWarning), depending on which tests ran before. Not imported here: only reset where it was."""
    import sys

    images = sys.modules.get("geodino.data.images")
    if images is not None:
        monkeypatch.setattr(images, "_skipped_count", 0)


@pytest.fixture(autouse=True)
def _settled_headers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """`geodino.data.headers` caches no header of a file changed within `io_stamps.RACY_NS` by its ctime, which a
    test cannot date back: its clock runs an hour ahead, so files a test writes count as settled and their headers
    are cached, as a run's inputs are. A test of fresh files sets the returned shift to [0]."""
    import time
    import types

    from geodino.data import headers

    shift = [3600 * 10**9]
    real = time.time_ns
    monkeypatch.setattr(headers, "time", types.SimpleNamespace(time_ns=lambda: real() + shift[0]))
    return shift
