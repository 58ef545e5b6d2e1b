"""Multi-student distillation: which ranks train which student, and how teacher outputs reach them.

The official multi-distillation recipe (`dinov3/configs/config.py setup_multidistillation`,
`SSLMetaArch.broadcast_to_subgroups`) gives every student a contiguous range of ranks, `[start, end)`, and
one `torch.distributed` subgroup. The frozen teacher runs on *all* ranks, each on its own data batch; its
outputs are all-gathered over the world, cut to the global batch and chunked over the ranks of a subgroup,
so every student sees the whole global batch, split over however many GPUs it owns.

This module keeps that logic in small functions: `plan_subgroups` (pure: the mapping, with one-line
errors), `SubgroupLayout` (what a rank needs to know), `init_subgroups` (the collective group creation) and
`broadcast_to_subgroups` (the gather-narrow-chunk step). With one process, or when no student names ranks,
every student is *co-located* on every rank and shares one teacher forward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from geodino.errors import ConfigError


@dataclass(frozen=True)
class StudentRanks:
    """One student's slot in the world: ranks `[start, end)`; `end - start` GPUs train it."""

    name: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def ranks(self) -> tuple[int, ...]:
        return tuple(range(self.start, self.end))


def _shares_to_sizes(shares: Sequence[float], world_size: int, names: Sequence[str]) -> list[int]:
    """Split `world_size` ranks proportionally to `shares` (largest remainder), then at least one rank each."""
    if world_size < len(shares):
        raise ConfigError(
            f"{len(shares)} students ({', '.join(names)}) need at least {len(shares)} ranks but the world has "
            f"{world_size}; launch more processes or drop the students' ranks/share to co-locate them"
        )
    total = float(sum(shares))
    raw = [world_size * s / total for s in shares]
    sizes = [math.floor(r) for r in raw]
    order = sorted(range(len(shares)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in order[: world_size - sum(sizes)]:
        sizes[i] += 1
    for i, n in enumerate(sizes):  # a tiny share still gets one rank, taken from the largest student
        if n == 0:
            sizes[i] = 1
            sizes[max(range(len(sizes)), key=lambda j: sizes[j])] -= 1
    return sizes


def plan_subgroups(
    students: Sequence[dict[str, Any]], world_size: int, global_batch_size: int | None = None
) -> list[StudentRanks] | None:
    """The rank range of each student, or None when the students are co-located (share every rank).

    `students` are dicts with `name` and optionally `ranks` ([start, end), half-open as the official
    `ranks_range`) or `share` (a positive weight; ranks are split proportionally). Either all students give
    ranks or shares, or none does. With `world_size == 1` students are always co-located. The ranges must be
    disjoint and cover `[0, world_size)`; `global_batch_size` must divide evenly over every range.
    """
    if not students:
        raise ConfigError("students is empty; list at least one student (name and arch)")
    names = [str(s.get("name")) for s in students]
    has_ranks = [s.get("ranks") not in (None, [], ()) for s in students]
    has_share = [s.get("share") not in (None, 0) for s in students]
    for i in range(len(students)):
        if has_ranks[i] and has_share[i]:
            raise ConfigError(f"students[{i}] ({names[i]}) sets both ranks and share; keep one of them")
    if world_size == 1 or not (any(has_ranks) or any(has_share)):
        return None
    if any(has_ranks) and not all(has_ranks):
        missing = [names[i] for i, h in enumerate(has_ranks) if not h]
        raise ConfigError(f"students {missing} have no ranks while others do; give every student ranks: [start, end]")
    if any(has_share) and not all(has_share):
        missing = [names[i] for i, h in enumerate(has_share) if not h]
        raise ConfigError(f"students {missing} have no share while others do; give every student a share")

    plan: list[StudentRanks] = []
    if all(has_ranks):
        for i, s in enumerate(students):
            r = list(s["ranks"])
            if len(r) != 2 or not all(isinstance(v, int) for v in r) or not 0 <= r[0] < r[1]:
                raise ConfigError(
                    f"students[{i}].ranks={r} ({names[i]}) must be [start, end] with 0 <= start < end (end excluded)"
                )
            plan.append(StudentRanks(names[i], r[0], r[1]))
        ordered = sorted(plan, key=lambda p: p.start)
        cursor = 0
        for p in ordered:
            if p.start < cursor:
                raise ConfigError(f"students.ranks overlap at rank {p.start} ({p.name}); make the ranges disjoint")
            if p.start > cursor:
                raise ConfigError(
                    f"ranks {cursor}..{p.start - 1} belong to no student; students.ranks must cover 0..{world_size - 1}"
                )
            cursor = p.end
        if cursor != world_size:
            raise ConfigError(
                f"students.ranks cover ranks 0..{cursor - 1} but the world has {world_size} ranks "
                f"(0..{world_size - 1}); make the ranges cover exactly the launched processes"
            )
    else:
        shares = []
        for i, s in enumerate(students):
            share = float(s["share"])
            if not share > 0:
                raise ConfigError(f"students[{i}].share={s['share']} ({names[i]}) must be a positive number")
            shares.append(share)
        start = 0
        for name, size in zip(names, _shares_to_sizes(shares, world_size, names)):
            plan.append(StudentRanks(name, start, start + size))
            start += size
    if global_batch_size is not None:
        for p in plan:
            if global_batch_size % p.size:
                raise ConfigError(
                    f"train.global_batch_size={global_batch_size} does not split over the {p.size} ranks of student "
                    f"{p.name}; choose a batch divisible by every student's rank count"
                )
    return plan


@dataclass
class SubgroupLayout:
    """What one rank needs: its student(s), its place in the student's subgroup and the batch sizes.

    `students` are the indices of the students this rank trains (all of them when co-located).
    `data_batch` is the per-rank loader batch, `student_batch` the images each rank's student sees per step.
    """

    rank: int
    world_size: int
    students: tuple[int, ...]
    subgroup_rank: int
    subgroup_size: int
    data_batch: int
    student_batch: int
    plan: list[StudentRanks] | None
    group: Any = None  # the torch.distributed ProcessGroup of this rank's student (None: the world / no dist)

    @property
    def colocated(self) -> bool:
        return self.plan is None


def layout_for_rank(
    plan: list[StudentRanks] | None, rank: int, world_size: int, global_batch_size: int, n_students: int = 1
) -> SubgroupLayout:
    """Pure function: the layout of `rank` given a plan (see `plan_subgroups`) and the global batch.

    As official, the loader batch per rank is `ceil(global / world)` (the gathered teacher batch is cut back
    to `global`), and a student on `n` ranks sees `global / n` images per rank.
    """
    if plan is None:
        if global_batch_size % world_size:
            raise ConfigError(
                f"train.global_batch_size={global_batch_size} does not split over {world_size} ranks; "
                "choose a multiple of the number of processes"
            )
        b = global_batch_size // world_size
        return SubgroupLayout(rank, world_size, tuple(range(n_students)), rank, world_size, b, b, None)
    for i, p in enumerate(plan):
        if p.start <= rank < p.end:
            return SubgroupLayout(
                rank=rank,
                world_size=world_size,
                students=(i,),
                subgroup_rank=rank - p.start,
                subgroup_size=p.size,
                data_batch=-(-global_batch_size // world_size),
                student_batch=global_batch_size // p.size,
                plan=plan,
            )
    raise ConfigError(f"rank {rank} belongs to no student; students.ranks must cover 0..{world_size - 1}")


def init_subgroups(plan: list[StudentRanks] | None, global_batch_size: int, n_students: int) -> SubgroupLayout:
    """Create one process group per student (a collective: every rank calls it with the same plan).

    Without an initialised default process group this returns the single-process layout.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return layout_for_rank(None, 0, 1, global_batch_size, n_students)
    rank, world = dist.get_rank(), dist.get_world_size()
    layout = layout_for_rank(plan, rank, world, global_batch_size, n_students)
    if plan is None:
        layout.group = dist.group.WORLD
        return layout
    # new_group must be entered by every rank for every group, in the same order.
    for i, p in enumerate(plan):
        group = dist.new_group(list(p.ranks()))
        if i in layout.students:
            layout.group = group
    return layout


def chunk_for_subgroup(
    gathered: torch.Tensor, over_dim: int, global_size: int | None, subgroup_size: int, subgroup_rank: int
) -> torch.Tensor:
    """Pure part of `broadcast_to_subgroups`: cut the world-gathered tensor to `global_size` along `over_dim`
    and return this subgroup rank's chunk (a copy)."""
    if global_size is not None:
        gathered = gathered.narrow(over_dim, 0, global_size)
    if gathered.shape[over_dim] % subgroup_size:
        raise ValueError(f"dimension {over_dim} of size {gathered.shape[over_dim]} does not split into {subgroup_size}")
    return gathered.chunk(subgroup_size, dim=over_dim)[subgroup_rank].clone()


def broadcast_to_subgroups(
    tensor: torch.Tensor, over_dim: int, layout: SubgroupLayout, global_size: int | None = None
) -> torch.Tensor:
    """All-gather `tensor` over the world, concatenate along `over_dim`, cut to `global_size` and keep this
    rank's chunk within its student's subgroup (identity when co-located or not distributed)."""
    import torch.distributed as dist

    if layout.colocated or not (dist.is_available() and dist.is_initialized()):
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(layout.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    gathered = torch.cat(parts, dim=over_dim)
    return chunk_for_subgroup(gathered, over_dim, global_size, layout.subgroup_size, layout.subgroup_rank)
