"""Loading distillation checkpoints written with the other placement of the students, by parameter name.

Co-located students (one process, or no `students.ranks`/`share`) keep one `checkpoints/step_N.ckpt` holding every
student, every EMA and one AdamW over all of them; students on their own ranks keep `<student>/checkpoints/
step_N.ckpt`, each with that student alone and an AdamW over its parameters only. The optimizer's integer parameter
ids differ between the two (each file numbers its own groups from 0), but every saved param group carries a `names`
list (`tiny.backbone.cls_token`, ...), so the state is remapped by name: `optimizer_state_by_name` builds the state
dict of the optimizer at hand from one or several saved ones, and `load_by_name` loads a run's students, EMAs and
optimizer from the checkpoints of either placement (one co-located file, or one file per student).

A relaunch with the other placement (`train.resume=auto`) resumes from the newest step every student has there
(`other_placement`, called by `run_folder.take_run_folder` on every rank: each reads the folders, and with several
processes the ranks' steps are gathered and must agree, else the start is refused in one line, as ranks on a
node-local output_dir would choose differently); the switched run continues as a run started in the new placement
from that state would (its iBOT masks depend on the step and the rank, so not as the old placement's run would
have). Its log.csv files are made from the other placement's (`log_csv.merge_logs`, `log_csv.split_log`). A
folder holding both placements' checkpoints (after a switch) resumes from the one of the higher step (its own
placement on a tie) and says so in one log line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from geodino.errors import CheckpointError

if TYPE_CHECKING:
    from geodino.train.distill_arch import DistillMetaArch

__all__ = [
    "Switch",
    "check_same_steps",
    "load_by_name",
    "optimizer_state_by_name",
    "other_placement",
    "placement_step",
]


def optimizer_state_by_name(saved: list[dict[str, Any]], opt: torch.optim.Optimizer) -> dict[str, Any]:
    """`opt`'s state dict filled from the optimizer state dicts `saved` (any placement), matched by parameter name:
    each of `opt`'s groups takes its options (betas, lr, multipliers...) from the saved group of the same names, and
    each parameter its moments and step. Refused in one line when a name is missing, found twice, or the saved group
    lists other names (another recipe's grouping), since such a state would give moments to other parameters."""
    by_name: dict[str, tuple[Any, dict[str, Any]]] = {}
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for sd in saved:
        for g in sd["param_groups"]:
            if "names" not in g or len(g["names"]) != len(g["params"]):
                raise CheckpointError("a saved optimizer group has no parameter names: it cannot be remapped")
            key = tuple(g["names"])
            groups[key] = {k: v for k, v in g.items() if k != "params"}
            for pid, name in zip(g["params"], g["names"], strict=True):
                if name in by_name:
                    raise CheckpointError(f"parameter {name!r} is in two saved optimizer states")
                by_name[name] = (sd["state"].get(pid), groups[key])
    target = opt.state_dict()
    state: dict[int, Any] = {}
    param_groups = []
    for g in target["param_groups"]:
        key = tuple(g["names"])
        if key not in groups:
            missing = [n for n in key if n not in by_name]
            what = f"has no state of {missing[0]!r}" if missing else f"groups {key[0]!r} with other parameters"
            raise CheckpointError(f"the saved optimizer {what}; resume with the recipe that wrote it")
        param_groups.append({**groups[key], "params": list(g["params"])})
        for pid, name in zip(g["params"], key, strict=True):
            if by_name[name][0] is not None:
                state[pid] = by_name[name][0]
    return {"state": state, "param_groups": param_groups}


def load_by_name(objs: list[dict[str, Any]], arch: DistillMetaArch, opt: torch.optim.Optimizer, where: Path) -> int:
    """Load `arch`'s students and EMAs and `opt` from checkpoint dicts of either placement (`objs`: one co-located
    checkpoint, or one per student; students of `objs` that `arch` does not train are skipped); the step they share
    is returned. `where` names the folder in errors."""
    from geodino.models.checkpoints import load_strict
    from geodino.train.checkpointing import DISTILL_FIT_HINT

    steps = {int(o["step"]) for o in objs}
    if len(steps) != 1:
        raise CheckpointError(f"the checkpoints of {where} are of different steps {sorted(steps)}")
    for name, module in arch.students.items():
        have = [o for o in objs if name in o["students"]]
        if len(have) != 1:
            raise CheckpointError(f"{len(have)} checkpoints of {where} hold student {name!r}; one is needed")
        load_strict(module, have[0]["students"][name], f"student {name}", str(where), DISTILL_FIT_HINT)
        ema_state = have[0]["students_ema"][name]
        load_strict(arch.students_ema[name], ema_state, f"student {name} EMA", str(where), DISTILL_FIT_HINT)
    opt.load_state_dict(optimizer_state_by_name([o["optimizer"] for o in objs], opt))
    return steps.pop()


def placement_step(out_dir: Path, names: list[str], colocated: bool) -> tuple[int, dict[str, Path]]:
    """The newest step every student has in the folders of one placement (0 when none) and, for each student, the
    checkpoint of that step: co-located, the newest `checkpoints/step_N.ckpt` (every student in it); on their own
    ranks, the newest step found in every `<student>/checkpoints/`."""
    from geodino.train.checkpoint_folder import checkpoint_step, find_checkpoints
    from geodino.train.distill.export import checkpoint_dir

    if colocated:
        found = find_checkpoints(checkpoint_dir(out_dir, names, True))
        return (checkpoint_step(found[-1]) or 0, dict.fromkeys(names, found[-1])) if found else (0, {})
    each = [{checkpoint_step(p) or 0: p for p in find_checkpoints(checkpoint_dir(out_dir, [n], False))} for n in names]
    common = set.intersection(*(set(f) for f in each)) - {0} if each else set()
    if not common:
        return 0, {}
    step = max(common)
    return step, {n: f[step] for n, f in zip(names, each, strict=True)}


def _placement(colocated: bool) -> str:
    return "co-located" if colocated else "on their own ranks"


@dataclass(frozen=True)
class Switch:
    """Where a relaunch with the other placement resumes: the step, each student's checkpoint of it, and whether
    those were written co-located."""

    step: int
    paths: dict[str, Path]
    colocated: bool

    def load(self, arch: DistillMetaArch, opt: torch.optim.Optimizer) -> int:
        """Load this rank's students, their EMAs and `opt` from these checkpoints (by name: `load_by_name`); the
        step."""
        import logging

        from geodino.models.checkpoints import load_file
        from geodino.train.distill.export import FORMAT

        paths = list(dict.fromkeys(self.paths[n] for n in arch.students))
        objs = [load_file(p) for p in paths]
        for p, o in zip(paths, objs, strict=True):
            if o.get("format") != FORMAT:
                raise CheckpointError(f"checkpoint {p} was not written by geodino distill; use another output_dir")
        step = load_by_name(objs, arch, opt, paths[0].parent)
        where = ", ".join(map(str, paths))
        logging.getLogger("geodino.distill").info("resumed from %s (students %s) at step %d", where, self._by, step)
        return step

    @property
    def _by(self) -> str:
        return _placement(self.colocated)

    def carry_logs(self, out_dir: Path, names: list[str], mine: list[str]) -> None:
        """This writer's log.csv in the new placement from the old placement's (rows before the resumed step):
        co-located now, one log merged from every student's; on its own ranks now, student `mine[0]`'s rows split
        from the co-located log (`log_csv`)."""
        from geodino.train.distill.log_csv import merge_logs, split_log

        if self.colocated:  # on their own ranks now: a subgroup trains one student
            split_log(out_dir / "log.csv", mine[0], names, out_dir / mine[0] / "log.csv", self.step)
        else:
            merge_logs({n: out_dir / n / "log.csv" for n in names}, out_dir / "log.csv", self.step)


def other_placement(
    out_dir: Path, names: list[str], colocated: bool, gather: Callable[..., list[tuple[int, ...]]] | None = None
) -> tuple[Switch | None, str | None]:
    """`train.resume=auto` in a folder with checkpoints of the other placement of the students: the `Switch` to
    resume from when the other placement's common step (`placement_step`) is higher than this placement's (None
    otherwise: this placement's own resume goes ahead), and the line to log when both placements hold checkpoints
    (which one wins, and why). `gather` (several processes: `rank_agreement.gather_ints`, a collective every rank calls)
    gives every rank's two steps: ranks that see other steps (an output_dir on a node's own disk) are refused in one
    line (`check_same_steps`), as each would otherwise resume from another step or placement."""
    mine, _ = placement_step(out_dir, names, colocated)
    theirs, paths = placement_step(out_dir, names, not colocated)
    if gather is not None:
        check_same_steps(gather(mine, theirs), out_dir, colocated)
    if theirs == 0:
        return None, None
    switch = Switch(theirs, paths, not colocated) if theirs > mine else None
    if mine == 0:
        return switch, None
    won = (_placement(not colocated), theirs) if switch else (_placement(colocated), mine)
    line = (
        f"output_dir {out_dir} holds checkpoints of both placements of the students (co-located up to step "
        f"{theirs if not colocated else mine}, on their own ranks up to step {mine if not colocated else theirs}): "
        f"resuming from the newest, {won[0]} at step {won[1]}"
    )
    return switch, line


def check_same_steps(views: list[tuple[int, ...]], out_dir: Path, colocated: bool) -> None:
    """Refuse (one line) when ranks saw other placement steps in `out_dir`: `views` holds each rank's (this
    placement's step, the other placement's step), 0 for none."""
    from geodino.errors import CheckpointError
    from geodino.train.resume_point import SHARED_FOLDER

    def seen(view: tuple[int, ...]) -> str:
        co, own = view if colocated else view[::-1]
        return (
            f"{f'co-located checkpoints up to step {co}' if co else 'no co-located checkpoints'} and "
            f"{f'checkpoints of students on their own ranks up to step {own}' if own else 'none on their own ranks'}"
        )

    for r, view in enumerate(views):
        if tuple(view) != tuple(views[0]):
            raise CheckpointError(
                f"rank {r} sees {seen(view)} in {out_dir} while rank 0 sees {seen(views[0])}; {SHARED_FOLDER}"
            )
