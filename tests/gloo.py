"""Runs a function on 2 (or N) CPU processes joined in one gloo process group: the launch the distributed tests
share (a file:// rendezvous in a temporary folder, `torch.multiprocessing.spawn`, each rank's result saved with
torch.save and loaded back in the test's process)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any


def spawn_gloo(fn: Callable[..., Any], *args: Any, world: int = 2) -> list[Any]:
    """Call `fn(rank, world, *args)` on `world` spawned processes in one gloo group and return each rank's return
    value (None where it returned None), in rank order. `fn` must be a module-level function (it is pickled by
    name); a rank that raises makes spawn raise."""
    import torch
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_rank, args=(world, tmp, fn, args), nprocs=world, join=True)
        files = [os.path.join(tmp, f"{rank}.pt") for rank in range(world)]
        return [torch.load(f) if os.path.exists(f) else None for f in files]


def _rank(rank: int, world: int, tmp: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """One spawned rank: join the group, run `fn`, save what it returns, wait for every rank, leave the group."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{os.path.join(tmp, 'init')}", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
        if result is not None:
            torch.save(result, os.path.join(tmp, f"{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)  # gloo worker threads can abort at interpreter exit (see the install notes)
