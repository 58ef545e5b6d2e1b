"""The Gram stage's per-step checks ("is the Gram teacher initialised?") read a host-side flag, not the checkpointed
`gram_initialized` buffer: `bool()` of a CUDA buffer waited for the device at every step. The buffer still goes into
checkpoints, and loading one sets the flag from it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from geodino.errors import ConfigError
from geodino.train.ssl import SSLMetaArch
from tests.train.ssl_fixtures import ssl_batch, tiny_cfg

GRAM = ("gram.use_loss=true", "gram.img_level=true", "gram.weight_start_iter=4", "gram.weight_ramp_iters=2")


class _NoHostRead(torch.Tensor):
    """A buffer whose value may not be read on the host (the test's stand-in for a device sync)."""

    def __bool__(self) -> bool:
        raise AssertionError("gram_initialized read on the host")

    def item(self) -> Any:
        raise AssertionError("gram_initialized read on the host")


def _arch() -> SSLMetaArch:
    torch.manual_seed(0)
    return SSLMetaArch(tiny_cfg(*GRAM), total_iters=10)


def test_a_gram_step_does_not_read_the_buffer_on_the_host() -> None:
    arch = _arch()
    batch = ssl_batch(gram_size=64, seed=3)
    with torch.no_grad():
        arch(batch, iteration=6)  # snapshots the Gram teacher from the EMA teacher
    assert bool(arch.gram_initialized)
    arch._buffers["gram_initialized"] = torch.ones((), dtype=torch.bool).as_subclass(_NoHostRead)
    with torch.no_grad():
        loss, logs = arch(batch, iteration=7)  # both Gram checks (snapshot due? weights there?) run
    assert torch.isfinite(loss) and "gram_loss" in logs


@pytest.mark.parametrize("saved", [True, False])
def test_loading_a_checkpoint_sets_the_flag_from_it(saved: bool) -> None:
    """A resumed run takes the flag from the checkpoint: a Gram teacher saved initialised is not overwritten by a
    snapshot of the EMA teacher; one saved uninitialised is snapshotted when due."""
    donor = _arch()
    donor.gram_initialized.fill_(saved)
    arch = _arch()
    if not saved:
        arch.mark_gram_initialized()
    arch.load_state_dict(donor.state_dict())
    snapshots: list[int] = []
    real = arch.snapshot_gram_from_teacher

    def spy() -> None:
        snapshots.append(1)
        real()

    arch.snapshot_gram_from_teacher = spy  # type: ignore[method-assign]
    with torch.no_grad():
        arch(ssl_batch(gram_size=64, seed=3), iteration=6)
    assert snapshots == ([] if saved else [1])
    assert bool(arch.gram_initialized)


def test_a_fresh_arch_and_a_materialised_one_start_uninitialised() -> None:
    arch = _arch()
    assert not bool(arch.gram_initialized)
    with torch.no_grad():
        arch(ssl_batch(gram_size=64, seed=3), iteration=6)
    assert bool(arch.gram_initialized)
    arch.materialize("cpu")
    snapshots: list[int] = []
    arch.snapshot_gram_from_teacher = lambda: snapshots.append(1)  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="Gram teacher has no weights yet"):
        with torch.no_grad():
            arch(ssl_batch(gram_size=64, seed=3), iteration=6)
    assert snapshots == [1]
