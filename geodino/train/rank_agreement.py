"""Start checks agreed across ranks: each rank reads its own disk (run folder, lock, checkpoints, teacher, data), so a
check only some ranks fail must stop every rank in one line instead of leaving the others waiting in the next
collective. Pretraining and distillation both use it (one home)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["agree_on_refusal", "agreed_items", "gather_ints", "raise_agreed", "refusal_view", "refusals_agreed"]

T = TypeVar("T")


def agree_on_refusal(error: Exception | None) -> None:
    """Every rank stops, or none: a start check that only some ranks can fail (each reads its own file system: the
    run folder, its lock, its checkpoints) is agreed before the next collective. Each rank gives its refusal or None
    (one all-gather of objects; under NCCL on this process's GPU, set by `init_distributed`) and every rank raises
    the refusal of the lowest rank that refused, in one line: its own when every rank refused (a shared folder:
    the line one process gives), else prefixed with that rank and those that did not refuse. Before, the others went on
    to wait in the next collective for ranks that had stopped (a hang under NCCL, a gloo traceback under srun),
    rank 0 writing config.yaml and the rest into its folder first. An error that is not a geodino refusal (a bug)
    keeps its traceback on its rank; the others stop in one line naming it. Alone (no process group, or one
    process): `error` itself."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        if error is not None:
            raise error
        return
    seen: list[tuple[str, str, bool] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(seen, refusal_view(error))
    raise_agreed(seen, dist.get_rank(), error)


def refusal_view(error: Exception | None) -> tuple[str, str, bool] | None:
    """What a rank tells the others of its refusal: (kind, line, whether a geodino refusal), or None."""
    from geodino.errors import GeoDinoError

    return None if error is None else (type(error).__name__, str(error), isinstance(error, GeoDinoError))


def raise_agreed(seen: list[tuple[str, str, bool] | None], rank: int, error: Exception | None) -> None:
    """Raise the agreed refusal on this `rank` from every rank's `refusal_view` (`seen`, by rank), as
    `agree_on_refusal` says; return when no rank refused."""
    import copy

    from geodino import errors
    from geodino.errors import GeoDinoError

    refused = [r for r, view in enumerate(seen) if view is not None]
    if not refused:
        return
    first = refused[0]
    kind, line, ours = seen[first]  # type: ignore[misc]
    if not ours:
        if rank == first and error is not None:
            raise error
        raise GeoDinoError(f"rank {first} failed at the start ({kind}: {line}); its traceback is in its output")
    went = [r for r, view in enumerate(seen) if view is None]
    if went:  # some ranks saw nothing to refuse: which rank said it, and which did not
        who = f"rank{'s' * (len(went) > 1)} {', '.join(map(str, went))}" if len(went) <= 4 else f"{len(went)} ranks"
        line = f"rank {first} refused the start ({who} did not): {line}"
    if rank == first and error is not None:
        if line == str(error):
            raise error
        same = copy.copy(error)  # its kind and fields, the agreed line
        same.args = (line,)
        raise same from error
    cls = getattr(errors, kind, None)
    raise (cls if isinstance(cls, type) and issubclass(cls, GeoDinoError) else GeoDinoError)(line)


@contextmanager
def refusals_agreed() -> Iterator[None]:
    """A block of start checks that only some ranks may fail (each reads its own teacher file, data copy or
    output_dir) and that calls no collective: agreed at its end by every rank (`agree_on_refusal`), so that a
    refusal stops every rank in its one line instead of leaving the others waiting in the next collective."""
    try:
        yield
    except Exception as exc:
        agree_on_refusal(exc)
        raise
    agree_on_refusal(None)


def agreed_items(make: Callable[[], Iterator[T]]) -> Iterator[T]:
    """`make()`'s items, each read agreed by every rank: for a loop whose steps call collectives (the heads warm-up)
    and read a batch of this rank's own data each step, so that a tile one rank cannot read stops every rank in its
    line (`agree_on_refusal`) instead of leaving the others waiting in the step's next collective. Every rank must
    take items in step (one all-reduce of a flag per item, on the GPU under NCCL; a second collective only when a
    rank failed); an iterator one rank ends ends on every rank. `make` is called at the first item, so that its
    own checks are agreed too. Alone (no process group, or one process): `make()`'s items as they are."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        yield from make()
        return
    on = "cuda" if dist.get_backend() == "nccl" else "cpu"
    items: Iterator[T] | None = None
    while True:
        error: Exception | None = None
        state = 0  # 0: an item, 1: this rank's items ended, 2: this rank failed
        try:
            items = make() if items is None else items
            item = next(items)
        except StopIteration:
            state = 1
        except Exception as exc:  # a refusal, or a bug (which keeps its traceback on its rank)
            error, state = exc, 2
        flag = torch.tensor([state], device=on)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        worst = int(flag.item())
        if worst == 2:
            agree_on_refusal(error)
        if worst == 1:
            return
        yield item


def gather_ints(*values: int) -> list[tuple[int, ...]]:
    """`values` of every rank, by rank (one all-gather of int64s, on the GPU under NCCL): what each rank sees, for
    a choice every rank must make alike."""
    import torch
    import torch.distributed as dist

    on = "cuda" if dist.get_backend() == "nccl" else "cpu"
    mine = torch.tensor(list(values), dtype=torch.int64, device=on)
    parts = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mine)
    return [tuple(int(x) for x in p.tolist()) for p in parts]
