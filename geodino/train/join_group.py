"""Joining the default process group of a launched multi-process run, shared by pretraining (before Lightning,
`pretrain_start.join_launched_group`) and distillation (its own loop, `distill.processes.init_distributed`).

The device is agreed while joining: the backend follows it (NCCL on CUDA, gloo on CPU), so a rank that sees no GPU
(a node without one, a CUDA_VISIBLE_DEVICES typo) cannot join the others' NCCL group. Checked before joining, it
stopped alone while the others waited in the rendezvous for it (30 min); with an `auto` device it joined gloo while
the others joined NCCL and every rank hung in the first collective. Here every rank meets in the rendezvous's store
first, tells the others its device (or why it has none), and all stop in the same line or join together. The waits
are bounded (`GEODINO_JOIN_TIMEOUT`) and a SIGTERM while waiting stops the process at once."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from geodino.errors import ConfigError, TrainingError, one_line

__all__ = ["JOIN_TIMEOUT_ENV", "join_group", "join_timeout"]

T = TypeVar("T")
JOIN_TIMEOUT_ENV = "GEODINO_JOIN_TIMEOUT"  # seconds every process waits for the others to join (default 1800)


def join_timeout() -> datetime.timedelta:
    """How long a process waits for the others to join (`GEODINO_JOIN_TIMEOUT` seconds; torch's 30 min by default):
    a process killed before joining (SIGTERM, a crash in its imports) leaves the others waiting this long."""
    raw = os.environ.get(JOIN_TIMEOUT_ENV, "").strip()
    if not raw:
        return datetime.timedelta(minutes=30)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"{JOIN_TIMEOUT_ENV}={raw!r} must be a number of seconds > 0 (unset: 1800)")
    return datetime.timedelta(seconds=seconds)


def join_group(pick: Callable[[], torch.device], auto_key: str) -> torch.device:
    """Join the default process group from the launcher's variables (torch's env:// rendezvous: `WORLD_SIZE`,
    `RANK`, `MASTER_ADDR`, `MASTER_PORT`) on the device `pick()` gives this process, agreed by every process first:
    gloo on CPU, NCCL bound to this process's GPU. A `pick()` refusal on some ranks, or `auto_key` (the setting
    named `auto`, e.g. `train.device`) resolved to CUDA on some and the CPU on others, stops every rank in one line
    before any joins the group. The device."""
    import torch.distributed as dist

    wait = join_timeout()
    try:  # torch's env:// rendezvous, as init_process_group does it, with the join's own timeout
        store, rank, world = _interruptible(lambda: next(dist.rendezvous("env://", timeout=wait)))
    except (RuntimeError, TimeoutError) as exc:  # DistStoreError is a RuntimeError
        raise TrainingError(_join_failed(exc, wait)) from exc
    try:
        device, error = pick(), None
    except Exception as exc:  # a refusal, or a bug (which keeps its traceback on this rank)
        device, error = None, exc
    _agree_on_device(store, rank, world, device, error, wait, auto_key)
    assert device is not None
    if device.type == "cuda":
        torch.cuda.set_device(device)
    store.set_timeout(datetime.timedelta(minutes=30))  # the collectives' timeout, torch's default
    prefixed = dist.PrefixStore("default_pg", store)  # as init_process_group names its keys in a store it made
    if device.type == "cuda":  # bound to this GPU: NCCL's first barrier need not guess the device
        dist.init_process_group("nccl", store=prefixed, rank=rank, world_size=world, device_id=device)
    else:
        dist.init_process_group("gloo", store=prefixed, rank=rank, world_size=world)
    return device


def _agree_on_device(
    store: Any,
    rank: int,
    world: int,
    device: torch.device | None,
    error: Exception | None,
    wait: datetime.timedelta,
    auto_key: str,
) -> None:
    """Every rank's device (or refusal) through the rendezvous's store (no process group exists yet): every rank
    raises the same line, or returns when all can run on the same kind of device."""
    from geodino.train.rank_agreement import raise_agreed, refusal_view

    key = f"geodino/device/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"  # a torchrun restart: fresh keys
    store.set(f"{key}/{rank}", json.dumps([refusal_view(error), None if device is None else device.type]))
    try:
        views = _interruptible(lambda: [json.loads(store.get(f"{key}/{r}")) for r in range(world)])
    except (RuntimeError, TimeoutError) as exc:
        raise TrainingError(_join_failed(exc, wait)) from exc
    kinds = {r: kind for r, (_, kind) in enumerate(views)}
    ends = error is not None or any(view is not None for view, _ in views) or len(set(kinds.values())) > 1
    if ends and rank == 0:  # rank 0 may host the store (srun): it leaves after every rank has read it
        store.set(f"{key}/read/{rank}", "1")
        try:
            _interruptible(lambda: store.wait([f"{key}/read/{r}" for r in range(world)]))
        except (RuntimeError, TimeoutError):  # a rank gone before reading: the line below is still this rank's
            pass
    elif ends:
        store.set(f"{key}/read/{rank}", "1")
    raise_agreed([tuple(view) if view is not None else None for view, _ in views], rank, error)
    if len(set(kinds.values())) > 1:
        on = {k: [str(r) for r, v in kinds.items() if v == k] for k in ("cuda", "cpu")}
        raise ConfigError(
            f"{auto_key}=auto gave CUDA on rank(s) {', '.join(on['cuda'])} and the CPU on rank(s) "
            f"{', '.join(on['cpu'])} (no CUDA device visible there); every process must run on the same kind of "
            f"device: make a GPU visible to each, or set {auto_key}=cpu"
        )


def _interruptible(wait: Callable[[], T]) -> T:
    """`wait()` (a wait in torch's store, in native code) run in a helper thread while this thread stays in Python:
    SIGTERM or Ctrl-C while the others are awaited stops the process at once (`geodino: interrupted`). Run in the
    main thread, the signal waited for the store's timeout (30 min) before its handler could run."""
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = wait()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    helper = threading.Thread(target=run, name="geodino-join", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.2)  # signal handlers run between the joins
    if "error" in box:
        raise box["error"]
    return box["value"]


def _join_failed(exc: BaseException, wait: datetime.timedelta) -> str:
    """The one line of a join that timed out: a process failed or was killed before joining."""
    addr = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    return (
        f"the {os.environ.get('WORLD_SIZE', '?')} processes of the run did not all join at {addr} within "
        f"{wait.total_seconds():g} s ({one_line(exc)}); a process "
        f"failed or was killed before joining (see its output); {JOIN_TIMEOUT_ENV}=SECONDS sets this wait"
    )
