"""`tf32_matmuls` under threads and nesting: the process-global TF32 switch ends as the first entry found it.

No GPU needed: on a CUDA device the context only sets `torch.backends.cuda.matmul`, which is readable and settable
on any build, so `torch.device("cuda")` stands for the GPU."""

from __future__ import annotations

import threading

import pytest
import torch

from geodino.models.tf32x3 import tf32_matmuls

CUDA = torch.device("cuda")
WAIT = 10.0  # seconds; a step that never comes fails the test instead of hanging it


@pytest.fixture
def tf32_off():
    """The legacy switch off for the test (the default), the state found restored after."""
    start = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        assert torch.backends.cuda.matmul.allow_tf32 is False
        yield
    finally:
        torch.set_float32_matmul_precision(start)


def _step(event: threading.Event) -> None:
    assert event.wait(WAIT), "the other thread never reached its step"


def test_interleaved_threads_leave_tf32_as_found(tf32_off):
    """A enters, B enters, A exits, B exits: after both the switch is off again (each restoring what it saw left it
    on), and B still has TF32 after A has left."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}
    errors: list[BaseException] = []

    def a() -> None:
        try:
            with tf32_matmuls(CUDA):
                seen["a inside"] = torch.backends.cuda.matmul.allow_tf32
                a_in.set()
                _step(b_in)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            a_in.set()
            a_out.set()

    def b() -> None:
        try:
            _step(a_in)
            with tf32_matmuls(CUDA):
                b_in.set()
                _step(a_out)
                seen["b inside after a left"] = torch.backends.cuda.matmul.allow_tf32
        except BaseException as e:
            errors.append(e)
        finally:
            b_in.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * WAIT)
    assert not errors, errors
    assert seen == {"a inside": True, "b inside after a left": True}
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_nested_blocks_in_one_thread_restore_after_the_outer(tf32_off):
    with tf32_matmuls(CUDA):
        with tf32_matmuls(CUDA):
            assert torch.backends.cuda.matmul.allow_tf32 is True
        assert torch.backends.cuda.matmul.allow_tf32 is True  # the outer block still runs TF32 products
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_an_exception_restores_and_the_next_block_starts_fresh(tf32_off):
    with pytest.raises(RuntimeError, match="boom"), tf32_matmuls(CUDA), tf32_matmuls(CUDA):
        raise RuntimeError("boom")
    assert torch.backends.cuda.matmul.allow_tf32 is False
    torch.backends.cuda.matmul.allow_tf32 = True  # a caller's own TF32 is kept: the next first entry finds it
    with tf32_matmuls(CUDA):
        pass
    assert torch.backends.cuda.matmul.allow_tf32 is True
