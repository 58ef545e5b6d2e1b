"""Where a distillation process runs: its device and the process group. Distillation runs its own loop (not
Lightning's), so it joins the group itself from the launcher's variables (`geodino.train.launcher`).

The device is agreed while joining: the backend follows it (NCCL on CUDA, gloo on CPU), so a rank that sees no GPU
(a node without one, a CUDA_VISIBLE_DEVICES typo) cannot join the others' NCCL group. Checked before joining, it
stopped alone while the others waited in the rendezvous for it (30 min); with `train.device=auto` it joined gloo
while the others joined NCCL and every rank hung in the first collective. Now every rank meets in the rendezvous's
store first, tells the others its device (or why it has none), and all stop in the same line or join together."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from geodino.errors import ConfigError, TrainingError
from geodino.train.distill.config import DistillConfig
from geodino.train.launcher import local_gpu

__all__ = ["JOIN_TIMEOUT_ENV", "init_distributed", "pick_device"]

T = TypeVar("T")
JOIN_TIMEOUT_ENV = "GEODINO_JOIN_TIMEOUT"  # seconds every process waits for the others to join (default 1800)


def pick_device(cfg: DistillConfig) -> torch.device:
    """`train.device` resolved: auto is CUDA when visible; on CUDA, this process's GPU (`local_gpu`)."""
    want = cfg.train.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
        return torch.device("cuda", local_gpu())
    return torch.device("cpu")


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


def init_distributed(cfg: DistillConfig) -> torch.device:
    """This process's device (`pick_device`), agreed by every process, and the process group joined when
    WORLD_SIZE > 1 (gloo on CPU, NCCL on GPU): set by torchrun, or by `srun_world` from an `srun` step of several
    tasks. A device refused on some ranks, or `train.device=auto` resolved to CUDA on some and CPU on others, stops
    every rank in one line before any joins the group."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return pick_device(cfg)
    wait = join_timeout()
    try:  # torch's env:// rendezvous, as init_process_group does it, with the join's own timeout
        store, rank, world = _interruptible(lambda: next(dist.rendezvous("env://", timeout=wait)))
    except (RuntimeError, TimeoutError) as exc:  # DistStoreError is a RuntimeError
        raise TrainingError(_join_failed(exc, wait)) from exc
    try:
        device, error = pick_device(cfg), None
    except Exception as exc:  # a refusal, or a bug (which keeps its traceback on this rank)
        device, error = None, exc
    _agree_on_device(store, rank, world, device, error, wait)
    assert device is not None
    if device.type == "cuda":
        torch.cuda.set_device(device)
    store.set_timeout(datetime.timedelta(minutes=30))  # the collectives' timeout, torch's default
    prefixed = dist.PrefixStore("default_pg", store)  # as init_process_group names its keys in a store it made
    if device.type == "cuda":  # bound to this GPU, as pretraining's early join does (NCCL's barrier need not guess)
        dist.init_process_group("nccl", store=prefixed, rank=rank, world_size=world, device_id=device)
    else:
        dist.init_process_group("gloo", store=prefixed, rank=rank, world_size=world)
    return device


def _agree_on_device(
    store, rank: int, world: int, device: torch.device | None, error: Exception | None, wait: datetime.timedelta
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
            f"train.device=auto gave CUDA on rank(s) {', '.join(on['cuda'])} and the CPU on rank(s) "
            f"{', '.join(on['cpu'])} (no CUDA device visible there); every process must run on the same kind of "
            "device: make a GPU visible to each, or set train.device=cpu"
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
        f"{wait.total_seconds():g} s ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); a process "
        f"failed or was killed before joining (see its output); {JOIN_TIMEOUT_ENV}=SECONDS sets this wait"
    )
