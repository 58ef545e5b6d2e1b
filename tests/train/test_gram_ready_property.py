"""`SSLMetaArch.gram_ready`: the read-only public view of the Gram flag's host copy. `ssl_gram.gram_term` read the
private `arch._gram_ready`; it now reads the property, which follows `mark_gram_initialized` and state-dict loads
(the checkpointed `gram_initialized` buffer stays in sync as before) and cannot be assigned around them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from geodino.errors import ConfigError
from geodino.train.ssl import SSLMetaArch
from geodino.train.ssl_gram import gram_term
from tests.train.ssl_fixtures import tiny_cfg

GRAM = ("gram.use_loss=true", "gram.img_level=true", "gram.weight_start_iter=4", "gram.weight_ramp_iters=2")


def _arch() -> SSLMetaArch:
    torch.manual_seed(0)
    return SSLMetaArch(tiny_cfg(*GRAM), total_iters=10)


def test_gram_ready_follows_the_buffer_and_is_read_only() -> None:
    arch = _arch()
    assert arch.gram_ready is False and not bool(arch.gram_initialized)
    arch.mark_gram_initialized()
    assert arch.gram_ready is True and bool(arch.gram_initialized)
    with pytest.raises(AttributeError):
        arch.gram_ready = False  # type: ignore[misc]
    assert arch.gram_ready is True
    arch.load_state_dict(_arch().state_dict())  # a checkpoint saved before the Gram teacher had weights
    assert arch.gram_ready is False and not bool(arch.gram_initialized)


def test_gram_term_reads_the_public_flag() -> None:
    """Any object with the public attributes drives `gram_term` (no private SSLMetaArch state needed)."""
    arch = SimpleNamespace(
        cfg=SimpleNamespace(gram=SimpleNamespace()), gram_loss=object(), gram_teacher={"backbone": None},
        gram_ready=False,
    )  # fmt: skip
    x = torch.zeros(1, 4, 8)
    with pytest.raises(ConfigError, match="the Gram teacher has no weights yet"):
        gram_term(arch, {}, x, x, torch.zeros(1, 4, dtype=torch.bool), (2, 2))
