"""The band-count probe of `prepare` (a forward of 2 x 2 patches) runs on one intra-op thread and gives the caller's
thread count back, also when the backbone raises: on a shared CPU the full OpenMP team waited out a time slice at
each barrier of that tiny forward (median 0.99 s against 0.08 s on one thread, load 4-8)."""

from __future__ import annotations

import pytest
import torch

from geodino.embed.prepare import _probe_dim


class _Recorder:
    patch_size, in_chans = 16, 3

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.threads = fail, []

    def features(self, x, layers, norm):
        self.threads.append(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("backbone failed")
        return [torch.zeros(1, 7, 2, 2), torch.zeros(1, 7, 2, 2)], None


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_probe_runs_on_one_thread_and_restores_the_count(two_threads) -> None:
    bb = _Recorder()
    assert _probe_dim(bb, [1, 2], "concat", True, "cpu") == (14, 2)
    assert bb.threads == [1] and torch.get_num_threads() == two_threads


def test_probe_restores_the_count_when_the_backbone_raises(two_threads) -> None:
    bb = _Recorder(fail=True)
    with pytest.raises(RuntimeError, match="backbone failed"):
        _probe_dim(bb, [1], "mean", True, "cpu")
    assert bb.threads == [1] and torch.get_num_threads() == two_threads
