"""The key a user writes, as a warning's advice names it. A library call (`layer_indices(layers=...)`, a probe's
`data.scale`) knows its bare key; inside a probe suite's task the user writes `tasks.<name>.<dotted key>`. The suite
runner sets the namer while a task runs (`geodino.eval.runner_inputs.task_keys_named`), and every warning asks
`user_key`: one mechanism, so the layer-set and input-scaling warnings (and any later one) cannot drift apart.
Errors are renamed by the runner after they are raised (`name_task_keys`); warnings are printed before it could."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

__all__ = ["keys_named_by", "user_key"]

_NAMER: contextvars.ContextVar[Callable[[str], str] | None] = contextvars.ContextVar("geodino_key_namer", default=None)


def user_key(key: str) -> str:
    """`key` as the user writes it here: itself outside a suite task, `tasks.<name>.<dotted key>` inside one."""
    namer = _NAMER.get()
    return key if namer is None else namer(key)


@contextlib.contextmanager
def keys_named_by(namer: Callable[[str], str]) -> Iterator[None]:
    """`user_key` answers with `namer` inside the block (reset after it, also when it raises)."""
    token = _NAMER.set(namer)
    try:
        yield
    finally:
        _NAMER.reset(token)
